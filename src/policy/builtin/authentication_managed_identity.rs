//! `<authentication-managed-identity resource client-id
//! output-token-variable-name ignore-error>`: a bearer token for
//! `resource` from the gateway's identity (see `gateway/identity.rs`: an
//! OAuth2 client-credentials provider or an IMDS-compatible endpoint),
//! set as the backend request's `Authorization: Bearer` and, when asked,
//! stored in a variable. The pipeline fetches the token (an await); this
//! file resolves the attributes and applies the result. Section: inbound.

use super::{Compiler, Outcome, PolicyError, State, Val};
use crate::expr::Value;
use crate::policy::xml::Element;

#[derive(Debug)]
pub struct ManagedIdentity {
    resource: Val,
    client_id: Option<Val>,
    output: Option<Val>,
    pub ignore_error: bool,
}

/// The attributes of one run, evaluated.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub resource: String,
    pub client_id: Option<String>,
}

impl ManagedIdentity {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<ManagedIdentity> {
        let Some(resource) = cx.attr(e, "resource") else {
            cx.error(
                e.span.start,
                "<authentication-managed-identity> needs resource (the audience of the token)"
                    .into(),
            );
            return None;
        };
        Some(ManagedIdentity {
            resource,
            client_id: cx.attr(e, "client-id"),
            output: cx.attr(e, "output-token-variable-name"),
            ignore_error: cx.flag(e, "ignore-error", false),
        })
    }

    /// Evaluates the attributes for this request.
    pub fn request(&self, st: &State) -> Result<TokenRequest, PolicyError> {
        let resource = self.resource.text(st)?.trim().to_string();
        if resource.is_empty() {
            return Err(PolicyError::new(
                500,
                "ManagedIdentityError",
                "authentication-managed-identity: the resource is empty",
            ));
        }
        let client_id = match &self.client_id {
            Some(v) => Some(v.text(st)?.trim().to_string()).filter(|c| !c.is_empty()),
            None => None,
        };
        Ok(TokenRequest {
            resource,
            client_id,
        })
    }

    /// Applies the token (or the failure: an error unless `ignore-error`,
    /// which goes on without a header).
    pub fn finish(
        &self,
        st: &mut State,
        token: Result<&str, String>,
    ) -> Result<Outcome, PolicyError> {
        match token {
            Ok(t) => {
                st.ctx
                    .request
                    .message
                    .headers
                    .set("Authorization", format!("Bearer {t}"));
                if let Some(name) = &self.output {
                    let name = name.text(st)?;
                    st.ctx.variables.insert(name, Value::str(t));
                }
                Ok(Outcome::Continue)
            }
            Err(_) if self.ignore_error => Ok(Outcome::Continue),
            Err(message) => Err(PolicyError::new(
                500,
                "ManagedIdentityTokenFailure",
                format!("authentication-managed-identity: no token could be obtained: {message}"),
            )),
        }
    }
}

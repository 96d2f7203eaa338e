//! `<authentication-basic username password>`: sets the backend request's
//! `Authorization: Basic base64(username:password)`. Section: inbound.

use super::{Compiler, Outcome, PolicyError, State, Val};
use crate::policy::xml::Element;
use base64::Engine;

#[derive(Debug)]
pub struct AuthenticationBasic {
    username: Val,
    password: Val,
}

impl AuthenticationBasic {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<AuthenticationBasic> {
        let (Some(username), Some(password)) = (cx.attr(e, "username"), cx.attr(e, "password"))
        else {
            cx.error(
                e.span.start,
                "<authentication-basic> needs username and password".into(),
            );
            return None;
        };
        if let Val::Lit(u) = &username {
            if u.contains(':') {
                cx.error(
                    e.span.start,
                    "authentication-basic: the username must not contain ':'".into(),
                );
                return None;
            }
        }
        Some(AuthenticationBasic { username, password })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let value = self.header_value(st)?;
        st.ctx.request.message.headers.set("Authorization", value);
        Ok(Outcome::Continue)
    }

    /// `Basic base64(username:password)` for this request.
    pub fn header_value(&self, st: &State) -> Result<String, PolicyError> {
        let user = self.username.text(st)?;
        let password = self.password.text(st)?;
        if user.contains(':') {
            return Err(PolicyError::new(
                500,
                "InvalidCredentials",
                "authentication-basic: the username must not contain ':'",
            ));
        }
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Ok(format!("Basic {token}"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn sets_basic_authorization() {
        let doc = test_doc(
            r#"<policies><inbound><authentication-basic username="@(&quot;al&quot; + &quot;ice&quot;)" password="open sesame" /></inbound></policies>"#,
        )
        .unwrap();
        let mut st = test_state(Section::Inbound);
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(
            st.ctx
                .request
                .message
                .headers
                .joined("authorization")
                .as_deref(),
            Some("Basic YWxpY2U6b3BlbiBzZXNhbWU=")
        );
        let e = test_doc(
            r#"<policies><inbound><authentication-basic username="a:b" password="p" /></inbound></policies>"#,
        )
        .unwrap_err();
        assert!(format!("{e:?}").contains("':'"));
        // Compiled without the catalog, a thumbprint is not resolved.
        assert!(test_doc(
            r#"<policies><inbound><authentication-certificate thumbprint="ABC" /></inbound></policies>"#,
        )
        .is_ok());
    }
}

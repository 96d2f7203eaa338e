//! `<authentication-certificate certificate-id | thumbprint | body>`: the
//! request's `forward-request` presents this client certificate to the
//! backend over TLS (the gateway keeps one TLS client per certificate).
//! `certificate-id` names a stored certificate (`/mgmt/certificates/{id}`)
//! and `thumbprint` matches a stored certificate's SHA-1 thumbprint, both
//! resolved when the document is written (an unknown one is a compile
//! error, as in APIM); `body` is an inline PEM chain with its private
//! key, parsed when compiling. Expressions in these attributes and
//! PKCS#12 (`body` + `password`) are refused at compile time for now.
//! Section: inbound.

use super::{Compiler, Outcome, PolicyError, State, Val};
use crate::model::ClientCert;
use crate::policy::xml::Element;
use std::sync::Arc;

/// How a policy names a stored certificate.
#[derive(Debug, Clone, Copy)]
pub enum CertRef<'a> {
    Id(&'a str),
    Thumbprint(&'a str),
}

#[derive(Debug)]
pub struct AuthenticationCertificate {
    /// `None` when compiled without the catalog (`turnpike policy check`).
    cert: Option<Arc<ClientCert>>,
}

impl AuthenticationCertificate {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<AuthenticationCertificate> {
        let given: Vec<&str> = ["certificate-id", "thumbprint", "body"]
            .into_iter()
            .filter(|n| e.attr(n).is_some())
            .collect();
        if given.len() != 1 {
            cx.error(
                e.span.start,
                "<authentication-certificate> needs exactly one of certificate-id, thumbprint or body".into(),
            );
            return None;
        }
        let which = given[0];
        let at = e.attr(which).map_or(e.span.start, |a| a.value_span.start);
        if e.attr("password").is_some() {
            cx.error(
                at,
                "<authentication-certificate> with a PKCS#12 body (body + password) is valid APIM that this gateway does not run yet: give the certificate chain and its private key as PEM, or store it at /mgmt/certificates".into(),
            );
            return None;
        }
        let value = match cx.attr(e, which)? {
            Val::Lit(v) => v.trim().to_string(),
            _ => {
                cx.error(
                    at,
                    format!("<authentication-certificate> with an expression in '{which}' is valid APIM that this gateway does not run yet: the certificate is resolved when the policy is written, so '{which}' must be a literal"),
                );
                return None;
            }
        };
        if which == "body" {
            if !value.contains("-----BEGIN") {
                cx.error(
                    at,
                    "<authentication-certificate> with a PKCS#12 body (base64) is valid APIM that this gateway does not run yet: give the certificate chain and its private key as PEM".into(),
                );
                return None;
            }
            return match crate::model::parse_pem(&value) {
                Ok(c) => Some(AuthenticationCertificate {
                    cert: Some(Arc::new(c)),
                }),
                Err(d) => {
                    let why: Vec<String> = d.iter().map(|d| d.message.clone()).collect();
                    cx.error(
                        at,
                        format!("authentication-certificate: body {}", why.join("; ")),
                    );
                    None
                }
            };
        }
        let Some(lookup) = cx.certificates else {
            return Some(AuthenticationCertificate { cert: None });
        };
        let r = if which == "certificate-id" {
            CertRef::Id(&value)
        } else {
            CertRef::Thumbprint(&value)
        };
        match lookup(r) {
            Some(cert) => Some(AuthenticationCertificate { cert: Some(cert) }),
            None => {
                let msg = match r {
                    CertRef::Id(id) => format!(
                        "certificate '{id}' does not exist (create it at /mgmt/certificates/{id})"
                    ),
                    CertRef::Thumbprint(t) => {
                        format!("no stored certificate has the thumbprint '{t}'")
                    }
                };
                cx.error(at, msg);
                None
            }
        }
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        if let Some(c) = &self.cert {
            st.client_cert = Some(c.clone());
        }
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn compile(xml: &str) -> Result<Doc, Vec<Diagnostic>> {
        // No certificate is stored.
        compile_document_certs(xml, &|_| None, &|_| None, &|_| true, Some(&|_| None), None)
    }

    #[test]
    fn refuses_what_it_cannot_resolve() {
        let msg = |xml: &str| {
            let e = compile(&format!("<policies><inbound>{xml}</inbound></policies>")).unwrap_err();
            format!("{e:?}")
        };
        assert!(
            msg(r#"<authentication-certificate certificate-id="nope" />"#)
                .contains("certificate 'nope' does not exist")
        );
        assert!(
            msg(r#"<authentication-certificate thumbprint="AB" />"#).contains("thumbprint 'AB'")
        );
        assert!(
            msg(r#"<authentication-certificate certificate-id="a" thumbprint="b" />"#)
                .contains("exactly one")
        );
        assert!(
            msg(r#"<authentication-certificate body="@(&quot;x&quot;)" />"#)
                .contains("must be a literal")
        );
        assert!(
            msg(r#"<authentication-certificate body="MIIK" password="p" />"#).contains("PKCS#12")
        );
        assert!(msg(r#"<authentication-certificate body="MIIKaW" />"#).contains("PKCS#12"));
        assert!(msg(
            r#"<authentication-certificate body="-----BEGIN CERTIFICATE-----&#10;-----END CERTIFICATE-----" />"#
        )
        .contains("no private key"));
        // Without the catalog (policy check), ids are not resolved.
        assert!(test_doc(
            r#"<policies><inbound><authentication-certificate certificate-id="x" /></inbound></policies>"#
        )
        .is_ok());
    }
}

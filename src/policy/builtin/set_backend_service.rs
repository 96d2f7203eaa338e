//! `<set-backend-service base-url | backend-id>`: replaces the backend base
//! URL for this request; the path after the API's path (or the one
//! `rewrite-uri` set) and the query follow. Sections: inbound, backend.
//!
//! `backend-id="dapr" dapr-app-id dapr-method dapr-namespace` (with `[dapr]
//! sidecar_url` configured; inbound only, as in APIM): the request goes to
//! the sidecar's service invocation,
//! `{sidecar}/v1.0/invoke/{app-id}[.{namespace}]/method/{method}`; without
//! `dapr-method` (which APIM requires) the method is the path after the
//! API's path. The query follows.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::context::Url;
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound, Section::Backend];

#[derive(Debug)]
pub enum Target {
    BaseUrl(Val),
    BackendId(Val),
    Dapr {
        sidecar: Url,
        app: Val,
        method: Option<Val>,
        namespace: Option<Val>,
    },
}

#[derive(Debug)]
pub struct SetBackendService {
    target: Target,
}

impl SetBackendService {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<SetBackendService> {
        let target = match (cx.attr(e, "base-url"), cx.attr(e, "backend-id")) {
            (Some(u), None) => {
                if let Val::Lit(text) = &u {
                    if Url::parse(text.trim()).is_none() {
                        let at = e
                            .attr("base-url")
                            .map(|a| a.value_span.start)
                            .unwrap_or(e.span.start);
                        cx.error(
                            at,
                            format!("base-url '{text}' is not an absolute http(s) URL"),
                        );
                        return None;
                    }
                }
                Target::BaseUrl(u)
            }
            (None, Some(id)) => Target::BackendId(id),
            _ => {
                cx.error(
                    e.span.start,
                    "<set-backend-service> needs exactly one of base-url and backend-id".into(),
                );
                return None;
            }
        };
        Some(SetBackendService { target })
    }

    /// `set-backend-service dapr-app-id=...`: `sidecar` is `[dapr]
    /// sidecar_url`.
    pub fn parse_dapr(cx: &mut Compiler, e: &Element, sidecar: Url) -> Option<SetBackendService> {
        if e.attr("base-url").is_some() {
            cx.error(
                e.span.start,
                "<set-backend-service dapr-app-id> takes no base-url: the Dapr sidecar is the backend".into(),
            );
            return None;
        }
        let id = cx.literal(e, "backend-id").unwrap_or_default();
        if id.trim() != "dapr" {
            cx.error(
                e.span.start,
                format!("<set-backend-service dapr-app-id> needs backend-id=\"dapr\", not '{id}'"),
            );
            return None;
        }
        let app = cx.attr(e, "dapr-app-id")?;
        if matches!(&app, Val::Lit(a) if a.trim().is_empty()) {
            cx.error(e.span.start, "dapr-app-id must not be empty".into());
            return None;
        }
        Some(SetBackendService {
            target: Target::Dapr {
                sidecar,
                app,
                method: cx.attr(e, "dapr-method"),
                namespace: cx.attr(e, "dapr-namespace"),
            },
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        st.backend_id = None;
        let url = match &self.target {
            Target::BaseUrl(v) => {
                let text = v.text(st)?;
                Url::parse(text.trim()).ok_or_else(|| {
                    PolicyError::new(
                        500,
                        "InvalidBackendUrl",
                        format!("'{text}' is not an absolute http(s) URL"),
                    )
                })?
            }
            Target::BackendId(v) => {
                let id = v.text(st)?;
                let url = st.backends.get(id.trim()).cloned().ok_or_else(|| {
                    PolicyError::new(
                        500,
                        "BackendNotFound",
                        format!("backend '{id}' does not exist"),
                    )
                })?;
                st.backend_id = Some(id.trim().to_string());
                url
            }
            Target::Dapr {
                sidecar,
                app,
                method,
                namespace,
            } => {
                let mut target = app.text(st)?.trim().to_string();
                if let Some(ns) = namespace {
                    let ns = ns.text(st)?;
                    if !ns.trim().is_empty() {
                        target = format!("{target}.{}", ns.trim());
                    }
                }
                let method = match method {
                    Some(m) => {
                        // The method replaces the path after the API's.
                        let m = m.text(st)?;
                        st.suffix = String::new();
                        m.trim().trim_start_matches('/').to_string()
                    }
                    None => std::mem::take(&mut st.suffix)
                        .trim_start_matches('/')
                        .to_string(),
                };
                if target.is_empty() || target.contains('/') {
                    return Err(PolicyError::new(
                        500,
                        "InvalidBackendUrl",
                        format!("'{target}' is not a Dapr app id"),
                    ));
                }
                let mut url = sidecar.clone();
                url.path = format!("/v1.0/invoke/{target}/method/{method}");
                url
            }
        };
        st.backend_base = Some(url);
        st.update_url();
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::expr::context::Url;

    #[test]
    fn by_url_and_by_backend_id() {
        let doc = test_doc(r#"<policies><inbound><set-backend-service base-url="@(&quot;http://&quot; + context.Variables[&quot;h&quot;] + &quot;/api&quot;)" /></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        st.ctx
            .variables
            .insert("h".into(), Value::str("eu.example"));
        st.backend_base = Url::parse("http://default/x");
        st.suffix = "/items/1".into();
        st.ctx.request.url.query = vec![("q".into(), "1".into())];
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(
            st.ctx.request.url.to_string(),
            "http://eu.example/api/items/1?q=1"
        );

        let doc = test_doc(
            r#"<policies><inbound><set-backend-service backend-id="b1" /></inbound></policies>"#,
        )
        .unwrap();
        let mut st = test_state(Section::Inbound);
        let mut b = std::collections::HashMap::new();
        b.insert(
            "b1".to_string(),
            Url::parse("https://b1.example/v1").unwrap(),
        );
        st.backends = std::sync::Arc::new(b);
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(st.ctx.request.url.to_string(), "https://b1.example/v1");
        let doc = test_doc(
            r#"<policies><inbound><set-backend-service backend-id="nope" /></inbound></policies>"#,
        )
        .unwrap();
        let e = run_plain(
            doc.section(Section::Inbound).unwrap(),
            &mut test_state(Section::Inbound),
        )
        .unwrap_err();
        assert_eq!(e.reason, "BackendNotFound");
    }

    fn dapr_doc(attrs: &str) -> Result<Doc, Vec<crate::policy::Diagnostic>> {
        let sidecar = Url::parse("http://127.0.0.1:3500").unwrap();
        compile_document_opts(
            &format!("<policies><inbound><set-backend-service {attrs} /></inbound></policies>"),
            &|_| None,
            &|_| None,
            &|_| true,
            Some(&sidecar),
        )
    }

    #[test]
    fn dapr_targets_the_sidecar_invocation_url() {
        let run = |attrs: &str| {
            let doc = dapr_doc(attrs).unwrap();
            let mut st = test_state(Section::Inbound);
            st.backend_base = Url::parse("http://default/x");
            st.suffix = "/orders/7".into();
            st.ctx.request.url.query = vec![("q".into(), "1".into())];
            run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
            st.ctx.request.url.to_string()
        };
        assert_eq!(
            run(
                r#"backend-id="dapr" dapr-app-id="orders" dapr-method="list" dapr-namespace="prod""#
            ),
            "http://127.0.0.1:3500/v1.0/invoke/orders.prod/method/list?q=1"
        );
        assert_eq!(
            run(r#"backend-id="dapr" dapr-app-id="@(&quot;o&quot; + &quot;rders&quot;)""#),
            "http://127.0.0.1:3500/v1.0/invoke/orders/method/orders/7?q=1"
        );
        assert!(dapr_doc(r#"backend-id="other" dapr-app-id="a""#).is_err());
        assert!(dapr_doc(r#"dapr-app-id="a" dapr-method="m""#).is_err());
        let sidecar = Url::parse("http://127.0.0.1:3500").unwrap();
        let e = compile_document_opts(
            r#"<policies><backend><set-backend-service backend-id="dapr" dapr-app-id="a" dapr-method="m" /></backend></policies>"#,
            &|_| None,
            &|_| None,
            &|_| true,
            Some(&sidecar),
        )
        .unwrap_err();
        assert!(e[0].message.contains("only in <inbound>"), "{e:?}");
        assert!(dapr_doc(r#"base-url="http://x" dapr-app-id="a""#).is_err());
        let e = test_doc(r#"<policies><inbound><set-backend-service backend-id="dapr" dapr-app-id="a" /></inbound></policies>"#).unwrap_err();
        assert!(e[0].message.contains("[dapr] sidecar_url"), "{e:?}");
    }
}

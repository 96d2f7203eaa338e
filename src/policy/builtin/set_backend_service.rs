//! `<set-backend-service base-url | backend-id>`: replaces the backend base
//! URL for this request; the path after the API's path (or the one
//! `rewrite-uri` set) and the query follow. Sections: inbound, backend.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::context::Url;
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound, Section::Backend];

#[derive(Debug)]
pub enum Target {
    BaseUrl(Val),
    BackendId(Val),
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
}

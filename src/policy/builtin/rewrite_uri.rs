//! `<rewrite-uri template copy-unmatched-params>`: replaces the path (and
//! query) of the request relative to the backend base URL. `{param}`
//! placeholders take the operation's matched template parameters; query
//! parameters of the request that the template does not set are kept
//! unless `copy-unmatched-params="false"`. Sections: inbound.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::context::{parse_query, COMPONENT};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound];

#[derive(Debug)]
pub struct RewriteUri {
    template: Val,
    copy_unmatched: bool,
}

impl RewriteUri {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<RewriteUri> {
        let template = cx.attr(e, "template")?;
        let copy_unmatched = cx.flag(e, "copy-unmatched-params", true);
        Some(RewriteUri {
            template,
            copy_unmatched,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let template = self.template.text(st)?;
        // Fill {param} placeholders from the matched parameters.
        let mut filled = String::new();
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            filled.push_str(&rest[..open]);
            let name = &rest[open + 1..open + close];
            let value = st
                .ctx
                .request
                .matched_parameters
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone());
            match value {
                Some(v) => filled
                    .push_str(&percent_encoding::utf8_percent_encode(&v, COMPONENT).to_string()),
                None => {
                    filled.push('{');
                    filled.push_str(name);
                    filled.push('}');
                }
            }
            rest = &rest[open + close + 1..];
        }
        filled.push_str(rest);
        let (path, query) = match filled.split_once('?') {
            Some((p, q)) => (p.to_string(), parse_query(q)),
            None => (filled, Vec::new()),
        };
        let mut q = query;
        if self.copy_unmatched {
            for (k, v) in &st.ctx.request.url.query {
                if !q.iter().any(|(n, _)| n.eq_ignore_ascii_case(k)) {
                    q.push((k.clone(), v.clone()));
                }
            }
        }
        st.suffix = if path.starts_with('/') || path.is_empty() {
            path
        } else {
            format!("/{path}")
        };
        st.ctx.request.url.query = q;
        st.update_url();
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::expr::context::Url;

    #[test]
    fn template_params_and_unmatched_query() {
        let doc = test_doc(r#"<policies><inbound><rewrite-uri template="/v2/items/{id}?view=full" /></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        st.backend_base = Url::parse("http://backend/base");
        st.ctx.request.matched_parameters = vec![("id".into(), "a b".into())];
        st.ctx.request.url.query = vec![("x".into(), "1".into()), ("view".into(), "short".into())];
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(
            st.ctx.request.url.to_string(),
            "http://backend/base/v2/items/a%20b?view=full&x=1"
        );

        let doc = test_doc(r#"<policies><inbound><rewrite-uri template="/only" copy-unmatched-params="false" /></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        st.backend_base = Url::parse("http://backend");
        st.ctx.request.url.query = vec![("x".into(), "1".into())];
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(st.ctx.request.url.to_string(), "http://backend/only");
    }
}

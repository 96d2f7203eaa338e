//! `<set-query-parameter name exists-action><value/>*</...>`: the query of
//! the request to the backend. Sections: inbound, backend.

use super::set_header::{action, Action};
use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound, Section::Backend];

#[derive(Debug)]
pub struct SetQueryParameter {
    name: Val,
    action: Action,
    values: Vec<Val>,
}

impl SetQueryParameter {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<SetQueryParameter> {
        let name = cx.attr(e, "name")?;
        let action = action(cx, e);
        let values = cx.values(e);
        Some(SetQueryParameter {
            name,
            action,
            values,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let name = self.name.text(st)?;
        let mut values = Vec::new();
        for v in &self.values {
            values.push(v.text(st)?);
        }
        let q = &mut st.ctx.request.url.query;
        let exists = q.iter().any(|(k, _)| k.eq_ignore_ascii_case(&name));
        match self.action {
            Action::Delete => {
                q.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
                return Ok(Outcome::Continue);
            }
            Action::Skip if exists => return Ok(Outcome::Continue),
            Action::Override | Action::Skip => q.retain(|(k, _)| !k.eq_ignore_ascii_case(&name)),
            Action::Append => {}
        }
        for v in values {
            q.push((name.clone(), v));
        }
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn sets_appends_and_deletes() {
        let doc = test_doc(r#"<policies><inbound>
            <set-query-parameter name="a" exists-action="override"><value>1</value></set-query-parameter>
            <set-query-parameter name="a" exists-action="append"><value>2</value></set-query-parameter>
            <set-query-parameter name="b" exists-action="skip"><value>new</value></set-query-parameter>
            <set-query-parameter name="c" exists-action="delete" />
        </inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        st.ctx.request.url.query = vec![("b".into(), "old".into()), ("c".into(), "x".into())];
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(st.ctx.request.url.query_string(), "?b=old&a=1&a=2");
    }
}

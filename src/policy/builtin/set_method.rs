//! `<set-method>VERB</set-method>`: the method of the request to the
//! backend (or of a `return-response`). Sections: inbound, on-error.

use super::set_header::valid_name;
use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound, Section::OnError];

#[derive(Debug)]
pub struct SetMethod {
    method: Val,
}

impl SetMethod {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<SetMethod> {
        let method = cx.text(e);
        if let super::Val::Lit(m) = &method {
            if !valid_name(m.trim()) {
                cx.error(
                    e.span.start,
                    format!("'{}' is not an HTTP method", m.trim()),
                );
                return None;
            }
        }
        Some(SetMethod { method })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let m = self.method.text(st)?.trim().to_ascii_uppercase();
        if !valid_name(&m) {
            return Err(PolicyError::new(
                500,
                "InvalidMethod",
                format!("'{m}' is not an HTTP method"),
            ));
        }
        st.ctx.request.method = m;
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn sets_the_method() {
        let doc = test_doc("<policies><inbound><set-method>post</set-method></inbound></policies>")
            .unwrap();
        let mut st = test_state(Section::Inbound);
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(st.ctx.request.method, "POST");
        assert!(test_doc(
            "<policies><inbound><set-method>NOT A VERB</set-method></inbound></policies>"
        )
        .is_err());
    }
}

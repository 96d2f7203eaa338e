//! `<set-status code reason>`: the response status. Sections: all.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

#[derive(Debug)]
pub struct SetStatus {
    code: Val,
    reason: Option<Val>,
}

impl SetStatus {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<SetStatus> {
        let code = cx.attr(e, "code")?;
        if let Val::Lit(c) = &code {
            if !matches!(c.trim().parse::<u16>(), Ok(100..=599)) {
                let at = e
                    .attr("code")
                    .map(|a| a.value_span.start)
                    .unwrap_or(e.span.start);
                cx.error(at, format!("status code must be 100-599, not '{c}'"));
                return None;
            }
        }
        let reason = cx.attr(e, "reason");
        Some(SetStatus { code, reason })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let code = self.code.text(st)?;
        let code = match code.trim().parse::<u16>() {
            Ok(c @ 100..=599) => c,
            _ => {
                return Err(PolicyError::new(
                    500,
                    "InvalidStatusCode",
                    format!("'{code}' is not a status code"),
                ))
            }
        };
        let reason = match &self.reason {
            Some(r) => r.text(st)?,
            None => String::new(),
        };
        let resp = st.response_mut();
        resp.status = code;
        resp.reason = reason;
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn sets_the_status() {
        let doc = test_doc(r#"<policies><outbound><set-status code="@(200 + 1)" reason="Made" /></outbound></policies>"#).unwrap();
        let mut st = test_state(Section::Outbound);
        run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap();
        let r = st.ctx.response.unwrap();
        assert_eq!((r.status, r.reason.as_str()), (201, "Made"));
        assert!(
            test_doc(r#"<policies><outbound><set-status code="99" /></outbound></policies>"#)
                .is_err()
        );
    }
}

//! `<wait for="all|any">`: runs its policies and waits for all of them, or
//! for the first to finish. The gateway runs the `send-request`s that are
//! direct children concurrently: each request is prepared from the state
//! in document order, all are sent together, and the results are stored
//! (for `any`, only the first to complete; the others are cancelled).
//! Other children (`choose`, `cache-lookup-value`, ...) run one after the
//! other before the requests are sent. Sections: inbound, backend,
//! outbound.

use super::{Compiler, PolicyError, Section, State, Step, Val};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound, Section::Backend, Section::Outbound];

#[derive(Debug)]
pub struct Wait {
    mode: Val,
    pub steps: Vec<Step>,
}

impl Wait {
    pub fn parse(cx: &mut Compiler, e: &Element, section: Section, path: &str) -> Option<Wait> {
        let mode = cx.attr(e, "for").unwrap_or(Val::lit("all"));
        if let Val::Lit(m) = &mode {
            if !matches!(m.trim(), "all" | "any") {
                cx.error(
                    e.span.start,
                    format!("for must be all or any, not '{}'", m.trim()),
                );
                return None;
            }
        }
        let steps = cx.steps(e, section, path);
        Some(Wait { mode, steps })
    }

    /// Whether the first completed request ends the wait.
    pub fn any(&self, st: &State) -> Result<bool, PolicyError> {
        match self.mode.text(st)?.trim() {
            "all" => Ok(false),
            "any" => Ok(true),
            other => Err(PolicyError::new(
                500,
                "ExpressionValueEvaluationFailure",
                format!("wait for must be all or any, not '{other}'"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn parses_modes() {
        let doc = test_doc(r#"<policies><inbound><wait for="any"><send-request response-variable-name="a"><set-url>http://a</set-url></send-request></wait></inbound></policies>"#).unwrap();
        let Policy::Wait(w) = &doc.section(Section::Inbound).unwrap()[0].policy else {
            panic!()
        };
        assert!(w.any(&test_state(Section::Inbound)).unwrap());
        assert_eq!(w.steps.len(), 1);
        assert!(
            test_doc(r#"<policies><inbound><wait for="some" /></inbound></policies>"#).is_err()
        );
        assert!(
            test_doc(r#"<policies><on-error><wait for="all" /></on-error></policies>"#).is_err()
        );
    }
}

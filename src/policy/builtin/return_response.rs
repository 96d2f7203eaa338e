//! `<return-response>`: stops the pipeline and answers with a new response
//! built by its `set-status`, `set-header` and `set-body` children
//! (default: 200, empty). With `response-variable-name`, the response a
//! `send-request` stored there is the starting point. Sections: all.

use super::{Compiler, Outcome, PolicyError, Section, State, Step, Val};
use crate::expr::lib::stored;
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

#[derive(Debug)]
pub struct ReturnResponse {
    steps: Vec<Step>,
    variable: Option<Val>,
}

impl ReturnResponse {
    pub fn parse(cx: &mut Compiler, e: &Element, _section: Section) -> Option<ReturnResponse> {
        let variable = cx.attr(e, "response-variable-name");
        for c in e.elements() {
            if !matches!(c.name.as_str(), "set-status" | "set-header" | "set-body") {
                cx.error(
                    c.span.start,
                    format!("<return-response> may contain set-status, set-header and set-body, not <{}>", c.name),
                );
            }
        }
        // The children act on the new response.
        let steps = cx.steps(e, Section::Outbound, "return-response[1]");
        Some(ReturnResponse { steps, variable })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let section = st.section;
        let start = match &self.variable {
            Some(v) => {
                let name = v.text(st)?;
                let found = st.ctx.variables.get(&name).and_then(stored::response_of);
                match found {
                    Some(r) => r.clone(),
                    None => {
                        return Err(PolicyError::new(
                            500,
                            "ExpressionValueEvaluationFailure",
                            format!("context variable '{name}' does not hold a response"),
                        ))
                    }
                }
            }
            None => crate::expr::context::Response {
                status: 200,
                reason: "OK".into(),
                ..Default::default()
            },
        };
        st.ctx.response = Some(start);
        st.section = Section::Outbound;
        let mut result = Ok(Outcome::Respond);
        for s in &self.steps {
            if let Err(e) = s.apply(st) {
                result = Err(e);
                break;
            }
        }
        st.section = section;
        result.map(|_| Outcome::Respond)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn builds_a_response_and_stops() {
        let doc = test_doc(
            r#"<policies><inbound><return-response>
            <set-status code="418" reason="Teapot" />
            <set-header name="X-From" exists-action="override"><value>policy</value></set-header>
            <set-body>short and stout</set-body>
        </return-response><set-variable name="after" value="1" /></inbound></policies>"#,
        )
        .unwrap();
        let mut st = test_state(Section::Inbound);
        let o = run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(o, Outcome::Respond);
        assert!(!st.ctx.variables.contains_key("after"));
        let r = st.ctx.response.unwrap();
        assert_eq!(r.status, 418);
        assert_eq!(r.message.headers.get_all("x-from"), vec!["policy"]);
        assert_eq!(r.message.body.as_deref(), Some(&b"short and stout"[..]));
    }

    #[test]
    fn answers_with_a_stored_response() {
        let doc = test_doc(
            r#"<policies><inbound><return-response response-variable-name="r">
            <set-header name="X-Added" exists-action="override"><value>1</value></set-header>
        </return-response></inbound></policies>"#,
        )
        .unwrap();
        let mut st = test_state(Section::Inbound);
        let e = run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap_err();
        assert!(e.message.contains("does not hold a response"), "{e:?}");
        let mut stored = crate::expr::context::Response {
            status: 202,
            reason: "Accepted".into(),
            ..Default::default()
        };
        stored.message.body = Some(bytes::Bytes::from_static(b"{}"));
        st.ctx
            .variables
            .insert("r".into(), crate::expr::lib::stored::value(stored));
        let o = run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(o, Outcome::Respond);
        let r = st.ctx.response.unwrap();
        assert_eq!(r.status, 202);
        assert_eq!(r.message.headers.get_all("x-added"), vec!["1"]);
        assert_eq!(r.message.body.as_deref(), Some(&b"{}"[..]));
    }
}

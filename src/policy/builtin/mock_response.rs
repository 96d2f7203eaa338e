//! `<mock-response status-code content-type>`: answers with the example of
//! the operation's documented response for that status and content type
//! (or an empty body) without calling the backend. Sections: all.

use super::{Compiler, Outcome, PolicyError, Section, State};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

#[derive(Debug)]
pub struct MockResponse {
    status: u16,
    content_type: Option<String>,
}

impl MockResponse {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<MockResponse> {
        let status = match cx.literal(e, "status-code") {
            None => 200,
            Some(s) => match s.trim().parse::<u16>() {
                Ok(c @ 100..=599) => c,
                _ => {
                    cx.error(
                        e.span.start,
                        format!("status-code must be 100-599, not '{s}'"),
                    );
                    return None;
                }
            },
        };
        let content_type = cx.literal(e, "content-type");
        Some(MockResponse {
            status,
            content_type,
        })
    }

    /// The example text and content type for this status, if documented.
    fn example(&self, responses: &[serde_json::Value]) -> Option<(String, String)> {
        let resp = responses
            .iter()
            .find(|r| r.get("statusCode").and_then(|s| s.as_u64()) == Some(self.status as u64))?;
        let reps = resp.get("representations")?.as_array()?;
        let rep = match &self.content_type {
            Some(ct) => reps.iter().find(|r| {
                r.get("contentType")
                    .and_then(|c| c.as_str())
                    .is_some_and(|c| c.eq_ignore_ascii_case(ct))
            })?,
            None => reps.first()?,
        };
        let ct = rep
            .get("contentType")
            .and_then(|c| c.as_str())
            .unwrap_or("application/json")
            .to_string();
        let value = rep
            .get("examples")
            .and_then(|ex| ex.as_object())
            .and_then(|ex| ex.values().next())
            .and_then(|ex| ex.get("value"))
            .or_else(|| rep.get("example"))
            .or_else(|| rep.get("sample"))?;
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Some((text, ct))
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let example = self.example(&st.responses);
        let resp = st.response_mut();
        resp.status = self.status;
        resp.reason.clear();
        resp.message = Default::default();
        match example {
            Some((text, ct)) => {
                resp.message.headers.set("Content-Type", ct);
                resp.message.body = Some(bytes::Bytes::from(text));
            }
            None => {
                if let Some(ct) = &self.content_type {
                    resp.message.headers.set("Content-Type", ct.clone());
                }
            }
        }
        Ok(Outcome::Respond)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn uses_the_documented_example() {
        let doc = test_doc(r#"<policies><inbound><mock-response status-code="200" content-type="application/json" /></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        st.responses = std::sync::Arc::new(vec![serde_json::json!({
            "statusCode": 200,
            "representations": [{"contentType": "application/json", "examples": {"default": {"value": {"id": 1}}}}]
        })]);
        assert_eq!(
            run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap(),
            Outcome::Respond
        );
        let r = st.ctx.response.unwrap();
        assert_eq!(r.message.body.as_deref(), Some(&br#"{"id":1}"#[..]));
        let mut st = test_state(Section::Inbound);
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert!(st.ctx.response.unwrap().message.body.is_none());
    }
}

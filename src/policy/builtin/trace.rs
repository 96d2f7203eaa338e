//! `<trace source severity><message/><metadata name value/>*</trace>`:
//! records a message for this request (`context` traces, and the debug
//! log) and counts it in the gateway's metrics registry (namespace
//! `turnpike`, metric `trace`, dimensions `source` and `severity`, default
//! severity `verbose`). Sections: all. While the API inspector traces the
//! request, the message also goes into the trace (`State::trace_log`).

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

/// One `trace` message as the API inspector shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub source: String,
    pub severity: String,
    pub message: String,
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Trace {
    source: String,
    severity: String,
    message: Val,
    metadata: Vec<(String, Val)>,
}

impl Trace {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<Trace> {
        let source = cx.literal(e, "source").unwrap_or_default();
        let message = match e.elements().find(|c| c.name == "message") {
            Some(m) => cx.text(m),
            None => cx.text(e),
        };
        let mut metadata = Vec::new();
        for m in e.elements().filter(|c| c.name == "metadata") {
            if let (Some(n), Some(v)) = (cx.literal(m, "name"), cx.attr(m, "value")) {
                metadata.push((n, v));
            }
        }
        let severity = cx
            .literal(e, "severity")
            .unwrap_or_else(|| "verbose".into());
        Some(Trace {
            source,
            severity,
            message,
            metadata,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let mut text = self.message.text(st)?;
        // Structured copies only while the inspector traces the request.
        let mut inspected = st.trace_log.is_some().then(|| Message {
            source: self.source.clone(),
            severity: self.severity.clone(),
            message: text.clone(),
            metadata: Vec::with_capacity(self.metadata.len()),
        });
        for (n, v) in &self.metadata {
            let v = v.text(st)?;
            text.push_str(&format!(" {n}={v}"));
            if let Some(m) = inspected.as_mut() {
                m.metadata.push((n.clone(), v));
            }
        }
        if let (Some(log), Some(m)) = (st.trace_log.as_mut(), inspected) {
            log.push(m);
        }
        tracing::debug!(source = %self.source, message = %text, "trace policy");
        st.ctx.traces.push((self.source.clone(), text));
        st.telemetry.metrics.record(
            "turnpike",
            "trace",
            vec![
                ("source".into(), self.source.clone()),
                ("severity".into(), self.severity.clone()),
            ],
            1.0,
        );
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn records_messages() {
        let doc = test_doc(r#"<policies><inbound><trace source="t" severity="information"><message>@("m" + 1)</message><metadata name="k" value="v" /></trace></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(st.ctx.traces, vec![("t".to_string(), "m1 k=v".to_string())]);
        let counted = st.telemetry.metrics.total(
            "turnpike",
            "trace",
            &[("source", "t"), ("severity", "information")],
        );
        assert_eq!(counted, (1, 1.0));
        assert_eq!(st.trace_log, None, "nothing structured when not inspected");
    }

    #[test]
    fn inspected_requests_get_structured_messages() {
        let doc = test_doc(r#"<policies><inbound><trace source="t"><message>m</message><metadata name="k" value="@("v" + 1)" /></trace></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        st.trace_log = Some(Vec::new());
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(
            st.trace_log,
            Some(vec![trace::Message {
                source: "t".into(),
                severity: "verbose".into(),
                message: "m".into(),
                metadata: vec![("k".into(), "v1".into())],
            }])
        );
        assert_eq!(st.ctx.traces, vec![("t".to_string(), "m k=v1".to_string())]);
    }
}

//! `<log-to-eventhub logger-id partition-id? partition-key?>message</...>`:
//! sends the message (text or expression, truncated at 200 KB) to the
//! logger `logger-id` names (`/mgmt/loggers/{id}`: file, http, stdout),
//! recording the partition id or key with it. The send never waits: a
//! full queue drops the message (counted, warned). A `logger-id` that
//! names no logger is a compile error when the document is written, as in
//! APIM. `partition-id` and `partition-key` are exclusive. Sections: all.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::policy::xml::Element;
use crate::telemetry::loggers::Record;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

#[derive(Debug)]
pub struct LogToEventHub {
    logger_id: String,
    partition_id: Option<Val>,
    partition_key: Option<Val>,
    message: Val,
}

impl LogToEventHub {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<LogToEventHub> {
        let Some(logger_id) = cx.literal(e, "logger-id") else {
            cx.error(e.span.start, "<log-to-eventhub> needs logger-id".into());
            return None;
        };
        let logger_id = logger_id.trim().to_string();
        if !(cx.loggers)(&logger_id) {
            let at = e
                .attr("logger-id")
                .map_or(e.span.start, |a| a.value_span.start);
            cx.error(
                at,
                format!(
                    "logger '{logger_id}' does not exist (create it at /mgmt/loggers/{logger_id})"
                ),
            );
            return None;
        }
        let partition_id = cx.attr(e, "partition-id");
        let partition_key = cx.attr(e, "partition-key");
        if partition_id.is_some() && partition_key.is_some() {
            cx.error(
                e.span.start,
                "<log-to-eventhub> takes partition-id or partition-key, not both".into(),
            );
            return None;
        }
        let message = cx.text(e);
        Some(LogToEventHub {
            logger_id,
            partition_id,
            partition_key,
            message,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let message = self.message.text(st)?;
        let partition_id = match &self.partition_id {
            Some(v) => Some(v.text(st)?),
            None => None,
        };
        let partition_key = match &self.partition_key {
            Some(v) => Some(v.text(st)?),
            None => None,
        };
        let record = Record::new(&self.logger_id, partition_id, partition_key, message);
        // A full queue drops the message (counted and warned by the
        // loggers); the request goes on.
        if !st.telemetry.loggers.send(&self.logger_id, record) {
            tracing::debug!(logger = %self.logger_id, "log-to-eventhub: message not queued");
        }
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn unknown_logger_is_a_compile_error() {
        let xml = r#"<policies><inbound><log-to-eventhub logger-id="nope">x</log-to-eventhub></inbound></policies>"#;
        let errs = compile_document_with(xml, &|_| None, &|_| None, &|id| id == "yes").unwrap_err();
        assert!(
            errs[0].message.contains("logger 'nope' does not exist"),
            "{errs:?}"
        );
        let ok = r#"<policies><inbound><log-to-eventhub logger-id="yes" partition-id="1">@(context.RequestId.ToString())</log-to-eventhub></inbound></policies>"#;
        let doc = compile_document_with(ok, &|_| None, &|_| None, &|id| id == "yes").unwrap();
        let mut st = test_state(Section::Inbound);
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        let both = r#"<policies><inbound><log-to-eventhub logger-id="yes" partition-id="1" partition-key="k">x</log-to-eventhub></inbound></policies>"#;
        assert!(compile_document_with(both, &|_| None, &|_| None, &|_| true).is_err());
    }
}

//! `<forward-request>`: sends the request to the backend. Parsed here; the
//! gateway performs it. Attributes: `timeout` (s), `timeout-ms`,
//! `buffer-request-body`, `buffer-response`, `fail-on-error-status-code`,
//! `follow-redirects`, `http-version` (`1`, `2`, `2or1`). Sections: backend.

use super::{Compiler, Section};
use crate::policy::xml::Element;
use std::time::Duration;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Backend];

/// The HTTP versions `forward-request` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    #[default]
    Any,
    Http1,
    Http2,
}

#[derive(Debug, Clone, Default)]
pub struct ForwardRequest {
    pub timeout: Option<Duration>,
    pub buffer_request_body: bool,
    pub buffer_response: bool,
    pub fail_on_error_status_code: bool,
    pub follow_redirects: bool,
    pub http_version: HttpVersion,
}

impl ForwardRequest {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<ForwardRequest> {
        let timeout = match (cx.number(e, "timeout-ms"), cx.number(e, "timeout")) {
            (Some(ms), _) if ms >= 0.0 => Some(Duration::from_millis(ms as u64)),
            (_, Some(s)) if s >= 0.0 => Some(Duration::from_secs_f64(s.min(86_400.0))),
            (None, None) => None,
            _ => {
                cx.error(e.span.start, "timeouts must not be negative".into());
                None
            }
        };
        let http_version = match cx.literal(e, "http-version").as_deref().map(str::trim) {
            None | Some("2or1") => HttpVersion::Any,
            Some("1") | Some("1.1") => HttpVersion::Http1,
            Some("2") => HttpVersion::Http2,
            Some(other) => {
                cx.error(
                    e.span.start,
                    format!("http-version must be 1, 2 or 2or1, not '{other}'"),
                );
                HttpVersion::Any
            }
        };
        Some(ForwardRequest {
            timeout,
            buffer_request_body: cx.flag(e, "buffer-request-body", false),
            buffer_response: cx.flag(e, "buffer-response", true),
            fail_on_error_status_code: cx.flag(e, "fail-on-error-status-code", false),
            follow_redirects: cx.flag(e, "follow-redirects", false),
            http_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn attributes() {
        let doc = test_doc(r#"<policies><backend><forward-request timeout="5" fail-on-error-status-code="true" http-version="1" /></backend></policies>"#).unwrap();
        let Policy::ForwardRequest(f) = &doc.section(Section::Backend).unwrap()[0].policy else {
            panic!("not a forward-request");
        };
        assert_eq!(f.timeout, Some(std::time::Duration::from_secs(5)));
        assert!(f.fail_on_error_status_code);
        assert!(
            test_doc(r#"<policies><inbound><forward-request /></inbound></policies>"#).is_err(),
            "backend only"
        );
        assert!(test_doc(r#"<policies><backend><forward-request follow-redirects="maybe" /></backend></policies>"#).is_err());
    }
}

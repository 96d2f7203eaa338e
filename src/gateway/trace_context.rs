//! Request identity across hops: the request id header and W3C trace
//! context (`traceparent` / `tracestate`).
//!
//! Owns: validating an incoming request id (kept when it is 1-128 visible
//! ASCII characters, else a new GUID), parsing `traceparent` per W3C Trace
//! Context level 1 (an invalid one starts a new trace), minting the span
//! id of the gateway's hop, and the headers sent to the backend and
//! returned to the client.

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// `traceparent`.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Longest request id taken from a client.
pub const MAX_REQUEST_ID: usize = 128;

/// A parsed `traceparent` (version 00 semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` value. Version `ff`, all-zero ids, bad
    /// lengths or non-lowercase-hex fail; a future version is read by its
    /// first four fields when what follows starts with `-`.
    pub fn parse(v: &str) -> Option<TraceParent> {
        let b = v.as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex_byte(&b[0..2])?;
        if version == 0xff || (version == 0 && b.len() != 55) {
            return None;
        }
        if b.len() > 55 && b[55] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, t) in trace_id.iter_mut().enumerate() {
            *t = hex_byte(&b[3 + 2 * i..5 + 2 * i])?;
        }
        let mut parent_id = [0u8; 8];
        for (i, p) in parent_id.iter_mut().enumerate() {
            *p = hex_byte(&b[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&b[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The `traceparent` header text (version 00).
    pub fn format(&self) -> String {
        let mut s = String::with_capacity(55);
        s.push_str("00-");
        push_hex(&mut s, &self.trace_id);
        s.push('-');
        push_hex(&mut s, &self.parent_id);
        s.push('-');
        push_hex(&mut s, &[self.flags]);
        s
    }

    /// A child of this context: the same trace id and flags, a new span
    /// id (what a call made on behalf of the request carries).
    pub fn child(&self) -> TraceParent {
        TraceParent {
            trace_id: self.trace_id,
            parent_id: random(),
            flags: self.flags,
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        let mut s = String::with_capacity(32);
        push_hex(&mut s, &self.trace_id);
        s
    }
}

/// Lowercase hex only (W3C: uppercase is invalid).
fn hex_byte(b: &[u8]) -> Option<u8> {
    let d = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(d(b[0])? << 4 | d(b[1])?)
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
}

/// `N` random bytes, never all zero, from the per-thread generator (ids
/// are not secrets; no system call per request).
fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    crate::telemetry::otlp::fast_random_fill(&mut b);
    if b == [0; N] {
        // Never all zero (invalid in trace context).
        b[N - 1] = 1;
    }
    b
}

/// The identity of one request as it passes the gateway.
#[derive(Debug, Clone)]
pub struct Hop {
    /// The request id header's value (the client's, or the GUID).
    pub request_id: HeaderValue,
    /// `context.RequestId`: the client's id when it is a GUID, else new.
    pub guid: u128,
    /// The trace context of the gateway's hop (the client's trace id when
    /// it sent a valid `traceparent`, a new span id).
    pub trace: TraceParent,
    /// `traceparent` of this hop, sent on and returned.
    pub traceparent: HeaderValue,
}

impl Hop {
    /// The hop of a request with `headers`; `id_header` names the request
    /// id header.
    pub fn of(headers: &HeaderMap, id_header: &HeaderName) -> Hop {
        let given = headers
            .get(id_header)
            .filter(|v| valid_request_id(v.as_bytes()));
        let (request_id, guid) = match given {
            Some(v) => {
                let guid = v
                    .to_str()
                    .ok()
                    .and_then(parse_guid)
                    .unwrap_or_else(new_guid);
                (v.clone(), guid)
            }
            None => {
                let guid = new_guid();
                let text = format_guid(guid);
                let v =
                    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("0"));
                (v, guid)
            }
        };
        let incoming = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| TraceParent::parse(v.trim()));
        let trace = match incoming {
            Some(p) => TraceParent {
                trace_id: p.trace_id,
                parent_id: random(),
                flags: p.flags & 1,
            },
            None => TraceParent {
                trace_id: random(),
                parent_id: random(),
                flags: 0,
            },
        };
        let traceparent =
            HeaderValue::from_str(&trace.format()).unwrap_or_else(|_| HeaderValue::from_static(""));
        Hop {
            request_id,
            guid,
            trace,
            traceparent,
        }
    }

    /// Sets the request id and `traceparent` on the client's response.
    pub fn to_client(&self, headers: &mut HeaderMap, id_header: &HeaderName) {
        headers.insert(id_header.clone(), self.request_id.clone());
        headers.insert(TRACEPARENT, self.traceparent.clone());
    }
}

/// Whether the client sent a valid `traceparent` (its trace continues).
pub fn continues_trace(headers: &HeaderMap) -> bool {
    headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| TraceParent::parse(v.trim()))
        .is_some()
}

/// 1-128 visible ASCII characters.
pub fn valid_request_id(b: &[u8]) -> bool {
    !b.is_empty() && b.len() <= MAX_REQUEST_ID && b.iter().all(|c| (0x21..=0x7e).contains(c))
}

fn new_guid() -> u128 {
    let mut b: [u8; 16] = random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    u128::from_be_bytes(b)
}

/// `8-4-4-4-12` hex, either case.
fn parse_guid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

/// Lowercase `8-4-4-4-12`.
pub fn format_guid(g: u128) -> String {
    // Written into one allocation (every request without a request id
    // of its own gets one; `format!` cost two allocations and the
    // formatting machinery).
    let b = g.to_be_bytes();
    let mut s = String::with_capacity(36);
    push_hex(&mut s, &b[0..4]);
    for part in [&b[4..6], &b[6..8], &b[8..10], &b[10..16]] {
        s.push('-');
        push_hex(&mut s, part);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn guids_are_formatted_8_4_4_4_12() {
        assert_eq!(
            format_guid(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
            "01234567-89ab-cdef-fedc-ba9876543210"
        );
        assert_eq!(format_guid(0), "00000000-0000-0000-0000-000000000000");
        assert_eq!(
            format_guid(u128::MAX),
            "ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
        let g = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;
        assert_eq!(parse_guid(&format_guid(g)), Some(g));
    }

    #[test]
    fn parses_the_spec_example() {
        let p = TraceParent::parse(GOOD).unwrap();
        assert_eq!(p.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.flags, 1);
        assert_eq!(p.format(), GOOD);
    }

    #[test]
    fn refuses_invalid_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn future_versions_read_their_first_fields() {
        let v = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future";
        assert!(TraceParent::parse(v).is_some());
        let v = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x";
        assert!(TraceParent::parse(v).is_none());
    }

    #[test]
    fn a_hop_keeps_the_trace_and_mints_a_span() {
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_static(GOOD));
        let name = HeaderName::from_static("x-request-id");
        h.insert(name.clone(), HeaderValue::from_static("abc-123"));
        let hop = Hop::of(&h, &name);
        assert_eq!(hop.trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(
            hop.trace.parent_id,
            TraceParent::parse(GOOD).unwrap().parent_id
        );
        assert_eq!(hop.request_id, "abc-123");
        let again = TraceParent::parse(hop.traceparent.to_str().unwrap()).unwrap();
        assert_eq!(again, hop.trace);
    }

    #[test]
    fn request_ids_are_kept_when_valid_and_guids_feed_the_context() {
        let name = HeaderName::from_static("x-request-id");
        let mut h = HeaderMap::new();
        h.insert(
            name.clone(),
            HeaderValue::from_static("0F8FAD5B-D9CB-469F-A165-70867728950E"),
        );
        let hop = Hop::of(&h, &name);
        assert_eq!(
            format_guid(hop.guid),
            "0f8fad5b-d9cb-469f-a165-70867728950e"
        );
        h.insert(name.clone(), HeaderValue::from_static("has space"));
        let hop = Hop::of(&h, &name);
        assert_eq!(hop.request_id.len(), 36);
        assert_eq!(hop.request_id.to_str().unwrap(), format_guid(hop.guid));
        assert!(!valid_request_id(&[b'a'; 129]));
        assert!(valid_request_id(&[b'a'; 128]));
    }
}

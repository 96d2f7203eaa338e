//! The gateway's side of the access log: filling an
//! [`AccessRecord`] from a request as it arrives and from the pipeline's
//! state once the response head is known, and wrapping both bodies so the
//! record is written, with byte counts, when the response body ends.
//!
//! Nothing here runs when `[telemetry] access_log` is off.

use super::error::GatewayError;
use super::pipeline::RequestCtx;
use super::trace_context::Hop;
use super::Body;
use crate::snapshot::Snapshot;
use crate::telemetry::access::{tally_in, tally_out, AccessLog, AccessRecord};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// What is known when a request arrives.
pub struct Start {
    record: AccessRecord,
    /// Names the API and operation of a request refused before the
    /// pipeline (e.g. a 401).
    uri: http::Uri,
    bytes_in: Arc<AtomicU64>,
}

/// Starts the record of `req`; `query` keeps the query string in `path`.
pub fn start(
    req: &Request<Incoming>,
    client: SocketAddr,
    hop: &Hop,
    query: bool,
    deployment: &crate::expr::context::Deployment,
) -> Start {
    let uri = req.uri();
    let path = match (query, uri.path_and_query()) {
        (true, Some(pq)) => pq.as_str().to_string(),
        _ => uri.path().to_string(),
    };
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("")
        .to_string();
    Start {
        record: AccessRecord {
            timestamp: crate::telemetry::loggers::rfc3339(SystemTime::now()),
            request_id: String::from_utf8_lossy(hop.request_id.as_bytes()).into_owned(),
            trace_id: hop.trace.trace_id_hex(),
            client_ip: client.ip().to_string(),
            method: req.method().as_str().to_string(),
            host,
            path,
            region: deployment.region.clone(),
            gateway_id: deployment.gateway_id.clone(),
            cache: "none",
            ..Default::default()
        },
        bytes_in: Arc::new(AtomicU64::new(0)),
        uri: uri.clone(),
    }
}

/// The request with its body boxed, counted when the access log is on.
pub fn count_in(req: Request<Incoming>, start: Option<&Start>) -> Request<Body> {
    match start {
        Some(s) => req.map(|b| {
            tally_in(b, s.bytes_in.clone())
                .map_err(Into::into)
                .boxed_unsync()
        }),
        None => req.map(|b| b.map_err(Into::into).boxed_unsync()),
    }
}

impl Start {
    /// Completes the record from the pipeline's state (`ctx`) or the
    /// error that refused the request, and wraps the response body so
    /// the record is written when it ends.
    pub fn finish(
        self,
        log: &AccessLog,
        started: Instant,
        resp: Response<Body>,
        ctx: Option<&RequestCtx>,
        rejected: Option<(&GatewayError, &Snapshot)>,
    ) -> Response<Body> {
        let mut r = self.record;
        r.status = resp.status().as_u16();
        // A subscription key sent in the query never reaches the record.
        let key_query = match (ctx, rejected) {
            (Some(c), _) => Some(c.api().key_query.as_ref()),
            (None, Some((_, snap))) => snap
                .match_api(self.uri.path())
                .map(|m| m.api.key_query.as_ref()),
            _ => None,
        };
        if r.path.contains('?') {
            r.path = mask_query_value(&r.path, key_query.unwrap_or("subscription-key"));
        }
        if let Some(c) = ctx {
            r.api = c.api().id.to_string();
            r.operation = c.operation().id.to_string();
            r.product = c
                .state
                .ctx
                .product
                .as_ref()
                .map(|p| p.id.clone())
                .unwrap_or_default();
            r.subscription = c.subscription.clone().unwrap_or_default();
            r.user = c
                .state
                .ctx
                .user
                .as_ref()
                .map(|u| u.id.clone())
                .unwrap_or_default();
            r.backend_duration_us = c.backend_time.as_micros() as u64;
            let cached = &c.state.cached;
            r.cache = if cached.hit {
                "hit"
            } else if cached.key.is_some() {
                "miss"
            } else {
                "none"
            };
            if let Some(e) = &c.state.ctx.last_error {
                r.error_source = e.source.clone();
                r.error_reason = e.reason.clone();
            }
        }
        if let Some((e, snap)) = rejected {
            r.error_source = e.source.as_str().to_string();
            r.error_reason = e.reason.to_string();
            if let Some(m) = snap.match_api(self.uri.path()) {
                r.api = m.api.id.to_string();
                let segments: Vec<&str> = m.rest.split('/').filter(|s| !s.is_empty()).collect();
                if let Some(op) = m.api.table.find(&r.method, &segments, self.uri.query()) {
                    r.operation = m.api.operations[op].id.to_string();
                }
            }
        }
        resp.map(|b| tally_out(b, started, self.bytes_in, log.clone(), r).boxed_unsync())
    }
}

/// `path_and_query` with the value of query parameter `name` cut to its
/// first 4 characters and `…` (a hint, never the key).
fn mask_query_value(path_and_query: &str, name: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case(name) && v.chars().count() > 4 => {
                format!("{k}={}…", v.chars().take(4).collect::<String>())
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::mask_query_value;

    #[test]
    fn the_key_in_the_query_is_cut_to_a_hint() {
        assert_eq!(
            mask_query_value(
                "/a/b?x=1&subscription-key=0123456789abcdef&y=2",
                "subscription-key"
            ),
            "/a/b?x=1&subscription-key=0123…&y=2"
        );
        assert_eq!(
            mask_query_value("/a?code=abcdefgh", "code"),
            "/a?code=abcd…"
        );
        assert_eq!(mask_query_value("/a?k=abc", "k"), "/a?k=abc");
        assert_eq!(mask_query_value("/a?x=1", "k"), "/a?x=1");
    }
}

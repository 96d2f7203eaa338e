//! The gateway's spans for OTLP export (`[telemetry] otlp_endpoint`).
//!
//! Owns: the sampling decision of a request (parent-based: a client's
//! `traceparent` decides with its sampled flag; a new trace is sampled
//! by `otlp_sample_ratio` and then propagated with flag `01`), the SERVER
//! span of each sampled request (named `{method} {api path}/{operation
//! template}`, never the raw path), an INTERNAL span per policy section
//! run, and a CLIENT span per backend call whose id is the parent id in
//! the `traceparent` the backend receives. Spans go to the exporter
//! (`telemetry::otlp`) when the response head is known.
//!
//! When OTLP is off, or the request is not sampled, `RequestCtx::span` is
//! `None`: each hook is one branch and allocates nothing.

use super::error::GatewayError;
use super::pipeline::RequestCtx;
use super::trace_context::{Hop, TraceParent, TRACEPARENT};
use super::Body;
use crate::policy::builtin::{Outcome, PolicyError, Section};
use crate::telemetry::otlp::{new_span_id, now_ns, AttrValue, Exporter, SpanData, SpanKind};
use http::{HeaderValue, Request, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The span of one sampled request, with its finished children.
pub struct RequestSpan {
    exporter: Arc<Exporter>,
    trace_id: [u8; 16],
    /// The gateway hop's span id (the `traceparent` returned to the client).
    span_id: [u8; 8],
    /// The client's span, when it sent a `traceparent`.
    parent_id: Option<[u8; 8]>,
    flags: u8,
    /// The hop's `traceparent` (replaced for the backend only when
    /// policies left it as it was).
    traceparent: HeaderValue,
    start_ns: u64,
    method: String,
    path: String,
    host: String,
    client: SocketAddr,
    scheme: &'static str,
    /// Parent of the next child: the running section's span.
    current: [u8; 8],
    children: Vec<SpanData>,
}

/// Decides whether the request is sampled; a sampled new trace gets flag
/// `01` in `hop` (so the backend and the client see it sampled).
pub fn begin<B>(
    exporter: Option<&Arc<Exporter>>,
    hop: &mut Hop,
    req: &Request<B>,
    client: SocketAddr,
    scheme: &'static str,
) -> Option<Box<RequestSpan>> {
    let exporter = exporter?;
    let incoming = req
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| TraceParent::parse(v.trim()));
    let parent_id = match incoming {
        Some(p) if p.flags & 1 == 1 => Some(p.parent_id),
        Some(_) => return None,
        None => {
            if !exporter.sample(&hop.trace.trace_id) {
                return None;
            }
            hop.trace.flags |= 1;
            if let Ok(v) = HeaderValue::from_str(&hop.trace.format()) {
                hop.traceparent = v;
            }
            None
        }
    };
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    Some(Box::new(RequestSpan {
        exporter: exporter.clone(),
        trace_id: hop.trace.trace_id,
        span_id: hop.trace.parent_id,
        parent_id,
        flags: hop.trace.flags,
        traceparent: hop.traceparent.clone(),
        start_ns: now_ns(),
        method: req.method().as_str().to_string(),
        path: req.uri().path().to_string(),
        host: host.to_string(),
        client,
        scheme,
        current: hop.trace.parent_id,
        children: Vec::with_capacity(5),
    }))
}

/// A section span being timed.
pub struct SectionMark {
    id: [u8; 8],
    prev: [u8; 8],
    start_ns: u64,
}

/// Opens a section span (when the request is sampled).
pub fn section_start(ctx: &mut RequestCtx) -> Option<SectionMark> {
    let span = ctx.span.as_mut()?;
    let id = new_span_id();
    let prev = std::mem::replace(&mut span.current, id);
    Some(SectionMark {
        id,
        prev,
        start_ns: now_ns(),
    })
}

/// Closes the section span; an error sets status ERROR with its source
/// and reason.
pub fn section_end(
    ctx: &mut RequestCtx,
    mark: SectionMark,
    section: Section,
    result: &Result<Outcome, PolicyError>,
) {
    let Some(span) = ctx.span.as_mut() else {
        return;
    };
    span.current = mark.prev;
    let error = result.as_ref().err().map(policy_error);
    let mut attributes = vec![("turnpike.section", AttrValue::Str(section.name().into()))];
    if let Err(e) = result {
        attributes.push(("error.type", AttrValue::Str(e.reason.clone())));
    }
    let child = SpanData {
        trace_id: span.trace_id,
        span_id: mark.id,
        parent_id: Some(span.span_id),
        name: section.name().to_string(),
        kind: SpanKind::Internal,
        start_ns: mark.start_ns,
        end_ns: now_ns(),
        attributes,
        error,
    };
    span.children.push(child);
}

fn policy_error(e: &PolicyError) -> String {
    if e.source.is_empty() {
        e.reason.clone()
    } else {
        format!("{}: {}", e.source, e.reason)
    }
}

/// A backend call being timed.
pub struct ClientMark {
    id: [u8; 8],
    start_ns: u64,
    method: http::Method,
}

/// Opens the CLIENT span of a backend call and makes it the parent in
/// the `traceparent` the backend receives (unless policies removed or
/// changed that header).
pub fn client_start(ctx: &mut RequestCtx, req: &mut Request<Body>) -> Option<ClientMark> {
    let span = ctx.span.as_ref()?;
    let id = new_span_id();
    if req.headers().get(TRACEPARENT) == Some(&span.traceparent) {
        let tp = TraceParent {
            trace_id: span.trace_id,
            parent_id: id,
            flags: span.flags,
        };
        if let Ok(v) = HeaderValue::from_str(&tp.format()) {
            req.headers_mut().insert(TRACEPARENT, v);
        }
    }
    Some(ClientMark {
        id,
        start_ns: now_ns(),
        method: req.method().clone(),
    })
}

/// `url` without user info, query or fragment.
fn safe_url(url: &str) -> (String, String) {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..cut];
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = authority.rsplit_once('@').map_or(authority, |x| x.1);
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    (format!("{scheme}://{authority}{path}"), host.to_string())
}

/// Closes the CLIENT span with the backend's status or the failure.
pub fn client_end(
    ctx: &mut RequestCtx,
    mark: ClientMark,
    url: &str,
    resp: &Result<Response<Body>, GatewayError>,
) {
    let Some(span) = ctx.span.as_mut() else {
        return;
    };
    let (full, host) = safe_url(url);
    let mut attributes = vec![
        (
            "http.request.method",
            AttrValue::Str(mark.method.as_str().into()),
        ),
        ("url.full", AttrValue::Str(full)),
        ("server.address", AttrValue::Str(host)),
    ];
    let error = match resp {
        Ok(r) => {
            let status = r.status().as_u16();
            attributes.push(("http.response.status_code", AttrValue::Int(status.into())));
            (status >= 400).then(|| format!("backend answered {status}"))
        }
        Err(e) => {
            attributes.push(("error.type", AttrValue::Str(e.reason.into())));
            Some(format!("{}: {}", e.source.as_str(), e.reason))
        }
    };
    let child = SpanData {
        trace_id: span.trace_id,
        span_id: mark.id,
        parent_id: Some(span.current),
        name: mark.method.as_str().to_string(),
        kind: SpanKind::Client,
        start_ns: mark.start_ns,
        end_ns: now_ns(),
        attributes,
        error,
    };
    span.children.push(child);
}

/// Finishes the SERVER span and queues the request's spans.
pub fn finish(
    span: Box<RequestSpan>,
    resp: &Response<Body>,
    ctx: Option<&RequestCtx>,
    rejected: Option<&GatewayError>,
    deployment: &crate::expr::context::Deployment,
) {
    let span = *span;
    let status = resp.status().as_u16();
    let mut attributes = vec![
        ("http.request.method", AttrValue::Str(span.method.clone())),
        ("url.path", AttrValue::Str(span.path)),
        ("url.scheme", AttrValue::Str(span.scheme.into())),
        ("http.response.status_code", AttrValue::Int(status.into())),
        ("server.address", AttrValue::Str(span.host)),
        (
            "client.address",
            AttrValue::Str(span.client.ip().to_string()),
        ),
        ("turnpike.region", AttrValue::Str(deployment.region.clone())),
        (
            "turnpike.gateway_id",
            AttrValue::Str(deployment.gateway_id.clone()),
        ),
    ];
    let mut name = span.method.clone();
    let mut error = None;
    if let Some(c) = ctx {
        let api = c.api();
        let op = c.operation();
        let mut route = String::from("/");
        route.push_str(api.path.trim_matches('/'));
        if !route.ends_with('/') {
            route.push('/');
        }
        route.push_str(op.url_template.trim_start_matches('/'));
        name = format!("{} {route}", span.method);
        attributes.push(("http.route", AttrValue::Str(route)));
        attributes.push(("turnpike.api_id", AttrValue::Str(api.id.to_string())));
        attributes.push(("turnpike.operation_id", AttrValue::Str(op.id.to_string())));
        if let Some(p) = c.product {
            let id = c.snapshot.products[p].id.to_string();
            attributes.push(("turnpike.product_id", AttrValue::Str(id)));
        }
        if let Some(s) = &c.subscription {
            attributes.push(("turnpike.subscription_id", AttrValue::Str(s.clone())));
        }
        let cached = &c.state.cached;
        let cache = if cached.hit {
            "hit"
        } else if cached.key.is_some() {
            "miss"
        } else {
            "none"
        };
        attributes.push(("turnpike.cache", AttrValue::Str(cache.into())));
        if let Some(e) = &c.state.ctx.last_error {
            attributes.push(("error.type", AttrValue::Str(e.reason.clone())));
            error = Some(format!("{}: {}", e.source, e.reason));
        }
    }
    if let Some(e) = rejected {
        attributes.push(("error.type", AttrValue::Str(e.reason.into())));
        error = Some(format!("{}: {}", e.source.as_str(), e.reason));
    }
    if error.is_none() && status >= 500 {
        error = Some(format!("status {status}"));
    }
    let mut spans = span.children;
    spans.push(SpanData {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_id: span.parent_id,
        name,
        kind: SpanKind::Server,
        start_ns: span.start_ns,
        end_ns: now_ns(),
        attributes,
        error,
    });
    span.exporter.submit(spans);
}

#[cfg(test)]
mod tests {
    use super::safe_url;

    #[test]
    fn backend_urls_lose_credentials_and_query() {
        assert_eq!(
            safe_url("https://u:p@api.example.com:8443/a/b?code=secret#x"),
            (
                "https://api.example.com:8443/a/b".to_string(),
                "api.example.com".to_string()
            )
        );
        assert_eq!(
            safe_url("http://127.0.0.1:9000"),
            ("http://127.0.0.1:9000".to_string(), "127.0.0.1".to_string())
        );
    }
}

//! Calls to other services from policies: `send-request` (awaited, the
//! response stored as an `IResponse`), `send-one-way-request` (spawned,
//! bounded), `retry` (runs its policies again, with APIM's backoff) and
//! `wait` (the `send-request`s directly inside it run concurrently).
//! Requests go through the gateway's pooled upstream client, or through
//! an HTTP proxy (`via_proxy`). Every call is bounded by its timeout and
//! its response body by [`MAX_BUFFERED_BODY`].
//!
//! **Invariant:** no lock is held across an await; a spawned one-way
//! request holds a permit of the gateway's bounded pool until it ends.

// `PolicyError` travels only on the failure path.
#![allow(clippy::result_large_err)]

use super::error::GatewayError;
use super::pipeline::{buffer_request, header_map, run_steps, scoped, RequestCtx, StepFuture};
use super::pipeline::{read_capped, MAX_BUFFERED_BODY};
use super::proxy::{strip_hop_by_hop, Upstream};
use super::trace_context::{Hop, TraceParent, TRACEPARENT};
use super::{empty_body, Body};
use crate::expr::context::{Headers, Message, Response as CtxResponse};
use crate::policy::builtin::proxy::ProxyTarget;
use crate::policy::builtin::retry::{Plan, Retry};
use crate::policy::builtin::send_request::{Outgoing, SendRequest};
use crate::policy::builtin::wait::Wait;
use crate::policy::builtin::{Outcome, Policy, PolicyError, Section, Step};
use crate::snapshot::Snapshot;
use http::header;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::time::Duration;

/// How many `send-one-way-request`s may be in flight at once; more are
/// dropped with a warning.
pub const MAX_ONE_WAY_IN_FLIGHT: usize = 256;

/// What a call made by a policy carries of its request's identity: the
/// request id header and a `traceparent` with the request's trace id and
/// a new span id per call. A header the policy set itself is kept; a
/// `traceparent` copied from the request (`mode="copy"`) is replaced by a
/// child of it.
#[derive(Debug, Clone)]
pub struct CallTrace {
    trace: TraceParent,
    /// The hop's own `traceparent` text (what `mode="copy"` copies).
    hop: String,
    request_id: String,
    id_header: http::HeaderName,
}

impl CallTrace {
    pub fn new(hop: &Hop, id_header: &http::HeaderName) -> CallTrace {
        CallTrace {
            trace: hop.trace,
            hop: String::from_utf8_lossy(hop.traceparent.as_bytes()).into_owned(),
            request_id: String::from_utf8_lossy(hop.request_id.as_bytes()).into_owned(),
            id_header: id_header.clone(),
        }
    }

    /// `out` with the request id and a child `traceparent`.
    pub fn apply(&self, mut out: Outgoing) -> Outgoing {
        let h = &mut out.headers;
        let own = h
            .joined(TRACEPARENT.as_str())
            .is_some_and(|v| v.trim() != self.hop);
        if !own {
            h.set(TRACEPARENT.as_str(), self.trace.child().format());
        }
        if !h.contains(self.id_header.as_str()) {
            h.set(self.id_header.as_str(), self.request_id.clone());
        }
        out
    }
}

/// Fills in where an error happened: the step's name, path and id.
pub(super) fn locate(mut e: PolicyError, step: &Step) -> PolicyError {
    if e.source.is_empty() {
        e.source = step.name.to_string();
    }
    e.path = step.path.to_string();
    e.policy_id = step.id.as_deref().unwrap_or("").to_string();
    e
}

fn failure(e: GatewayError, what: &str) -> PolicyError {
    let message = match e.reason {
        "Timeout" => format!("Gateway timeout: the {what} did not respond in time."),
        "BackendConnectionFailure" => format!("Bad gateway: the {what} could not be reached."),
        _ => e.message.to_string(),
    };
    PolicyError::new(e.status.as_u16(), e.reason, message)
}

/// Sends a prepared request (through the proxy when there is one).
async fn dispatch(
    upstream: &Upstream,
    proxy: Option<&ProxyTarget>,
    req: Request<Body>,
    timeout: Option<Duration>,
    api: &str,
) -> Result<Response<Body>, GatewayError> {
    match proxy {
        None => upstream.send(req, timeout, api).await,
        Some(p) => {
            let wait = timeout.unwrap_or(upstream.response_timeout());
            match tokio::time::timeout(wait, super::via_proxy::send(p, req, api)).await {
                Err(_) => Err(GatewayError::backend_timeout()),
                Ok(r) => r,
            }
        }
    }
}

/// `forward-request`'s send: through `<proxy>` when the request set one.
pub(super) async fn forward_send(
    upstream: &Upstream,
    proxy: Option<&ProxyTarget>,
    tls: &super::tls::TlsChoice,
    req: Request<Body>,
    timeout: Option<Duration>,
    api: &str,
) -> Result<Response<Body>, GatewayError> {
    match proxy {
        // Client certificates and relaxed server checks: direct only.
        None => upstream.send_tls(tls, req, timeout, api).await,
        Some(_) => dispatch(upstream, proxy, req, timeout, api).await,
    }
}

/// Performs one call: the response with its body read (capped), all
/// within the call's timeout.
/// `tls` carries the configuration's stored CA certificates (see
/// [`TlsChoice::trusting`](super::tls::TlsChoice::trusting)).
pub(super) async fn exchange(
    upstream: &Upstream,
    tls: &super::tls::TlsChoice,
    out: Outgoing,
    api: &str,
) -> Result<CtxResponse, PolicyError> {
    let timeout = out.timeout;
    match tokio::time::timeout(timeout, exchange_inner(upstream, tls, out, api)).await {
        Err(_) => Err(failure(GatewayError::backend_timeout(), "service")),
        Ok(r) => r,
    }
}

async fn exchange_inner(
    upstream: &Upstream,
    tls: &super::tls::TlsChoice,
    out: Outgoing,
    api: &str,
) -> Result<CtxResponse, PolicyError> {
    let url = out.url.to_string();
    let uri: http::Uri = url
        .parse()
        .map_err(|_| PolicyError::new(500, "InvalidUrl", format!("'{url}' is not a valid URL")))?;
    let method = http::Method::from_bytes(out.method.as_bytes())
        .map_err(|_| PolicyError::new(500, "InvalidMethod", "the request method is not valid"))?;
    let mut headers = header_map(&out.headers);
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    if let Some((token_req, ignore_error)) = &out.identity {
        match super::identity::token(upstream, token_req).await {
            Ok(t) => {
                let v = http::HeaderValue::try_from(format!("Bearer {}", t.expose()))
                    .map_err(|_| {
                        PolicyError::new(
                            500,
                            "ManagedIdentityTokenFailure",
                            "authentication-managed-identity: the token is not a valid header value",
                        )
                    })?;
                headers.insert(header::AUTHORIZATION, v);
            }
            Err(message) if *ignore_error => {
                tracing::warn!(resource = %token_req.resource, "managed identity token failed (ignored): {message}");
            }
            Err(message) => {
                tracing::warn!(resource = %token_req.resource, "managed identity token failed: {message}");
                return Err(PolicyError::new(
                    500,
                    "ManagedIdentityTokenFailure",
                    format!(
                        "authentication-managed-identity: no token could be obtained: {message}"
                    ),
                ));
            }
        }
    }
    let body = match out.body {
        Some(b) => Full::new(b).map_err(|e| match e {}).boxed_unsync(),
        None => empty_body(),
    };
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    let resp = forward_send(
        upstream,
        out.proxy.as_ref(),
        tls,
        req,
        Some(out.timeout),
        api,
    )
    .await
    .map_err(|e| failure(e, "service"))?;
    let (parts, body) = resp.into_parts();
    let bytes = read_capped(body).await.map_err(|_| {
        PolicyError::new(
            502,
            "ResponseTooLarge",
            format!("The service's response body was larger than {MAX_BUFFERED_BODY} bytes or could not be read."),
        )
    })?;
    let mut headers = Headers::default();
    for (k, v) in &parts.headers {
        headers.append(
            k.as_str(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        );
    }
    headers.remove("content-length");
    Ok(CtxResponse {
        status: parts.status.as_u16(),
        reason: parts.status.canonical_reason().unwrap_or("").to_string(),
        message: Message {
            headers,
            body: Some(bytes),
        },
    })
}

/// `send-one-way-request`: sent on its own task, bounded by its timeout
/// and by the gateway's pool of in-flight one-way requests (dropped with a
/// warning when full). The request goes on at once.
pub(super) fn spawn_one_way(
    upstream: &Upstream,
    tls: super::tls::TlsChoice,
    out: Outgoing,
    api: &str,
) {
    let Ok(permit) = upstream.one_way.clone().try_acquire_owned() else {
        tracing::warn!(
            api,
            limit = MAX_ONE_WAY_IN_FLIGHT,
            "send-one-way-request dropped: too many in flight"
        );
        return;
    };
    let upstream = upstream.detached();
    let api = api.to_string();
    tokio::spawn(async move {
        if let Err(e) = exchange(&upstream, &tls, out, &api).await {
            tracing::info!(api, reason = %e.reason, "send-one-way-request failed: {}", e.message);
        }
        drop(permit);
    });
}

/// `retry`: its policies once, then again while the condition holds and
/// retries are left, sleeping between runs (no lock held).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_retry<'a>(
    ctx: &'a mut RequestCtx,
    snap: &'a Snapshot,
    upstream: &'a Upstream,
    r: &'a Retry,
    plan: Plan,
    step: &'a Step,
    section: Section,
    level: usize,
    reads_response: bool,
) -> StepFuture<'a> {
    Box::pin(async move {
        if r.forwards {
            // The body is sent again on every attempt.
            buffer_request(ctx).await?;
        }
        let mut retries = 0;
        loop {
            let o = run_steps(
                ctx,
                snap,
                upstream,
                &r.steps,
                section,
                level,
                reads_response,
            )
            .await?;
            if o == Outcome::Respond {
                return Ok(o);
            }
            if retries >= plan.count {
                return Ok(Outcome::Continue);
            }
            let again = r
                .again(&ctx.state)
                .map_err(|e| scoped(locate(e, step), level, section))?;
            if !again {
                return Ok(Outcome::Continue);
            }
            retries += 1;
            tokio::time::sleep(plan.delay(retries, jitter())).await;
        }
    })
}

/// A number in [0, 1] for the exponential backoff's spread.
fn jitter() -> f64 {
    getrandom::u64().unwrap_or(u64::MAX / 2) as f64 / u64::MAX as f64
}

/// `wait`: other children run in order first; then the `send-request`s
/// directly inside are sent together. `any` stores the first to complete
/// (the others are cancelled); `all` stores every result in order.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_wait<'a>(
    ctx: &'a mut RequestCtx,
    snap: &'a Snapshot,
    upstream: &'a Upstream,
    w: &'a Wait,
    any: bool,
    section: Section,
    level: usize,
    reads_response: bool,
) -> StepFuture<'a> {
    Box::pin(async move {
        let mut calls: Vec<(usize, Arc<SendRequest>, Outgoing)> = Vec::new();
        for i in 0..w.steps.len() {
            if let Policy::SendRequest(s) = &w.steps[i].policy {
                let out = s
                    .prepare(&ctx.state)
                    .map_err(|e| scoped(locate(e, &w.steps[i]), level, section))?;
                calls.push((i, s.clone(), out));
                continue;
            }
            let o = run_steps(
                ctx,
                snap,
                upstream,
                &w.steps[i..=i],
                section,
                level,
                reads_response,
            )
            .await?;
            if o == Outcome::Respond {
                return Ok(o);
            }
        }
        if calls.is_empty() {
            return Ok(Outcome::Continue);
        }
        let api = ctx.api().id.to_string();
        let tls = super::tls::TlsChoice::trusting(&snap.backend_trust);
        let sends = calls.iter().map(|(_, _, out)| {
            let out = ctx.call_trace.apply(out.clone());
            Box::pin(exchange(upstream, &tls, out, api.as_str()))
        });
        let results: Vec<(usize, Result<CtxResponse, PolicyError>)> = if any {
            let (first, at, _rest) = futures_util::future::select_all(sends).await;
            vec![(at, first)]
        } else {
            futures_util::future::join_all(sends)
                .await
                .into_iter()
                .enumerate()
                .collect()
        };
        for (k, result) in results {
            let (i, s, _) = &calls[k];
            s.store(&mut ctx.state, result)
                .map_err(|e| scoped(locate(e, &w.steps[*i]), level, section))?;
        }
        Ok(Outcome::Continue)
    })
}

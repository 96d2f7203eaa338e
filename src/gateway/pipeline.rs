//! The request pipeline: `inbound` → `backend` → `outbound`, with
//! `on-error` as the single failure exit (APIM §2.5–§2.6).
//!
//! Owns: composing the four scopes (global → product → API → operation)
//! through `<base/>` as the request runs, steering `<choose>`, performing
//! `<forward-request>` (the only step that touches the network), buffering
//! bodies only when a policy of the request's scopes reads them (capped),
//! CORS preflights, and turning the final policy state into a response.
//!
//! **Invariant:** a request runs on the one snapshot it started with; no
//! lock is held across an await.

// `PolicyError` travels only on the failure path.
#![allow(clippy::result_large_err)]

use super::error::GatewayError;
use super::proxy::{strip_hop_by_hop, Upstream};
use super::{empty_body, Body};
use crate::expr::context::{LastError, Response as CtxResponse};
use crate::policy::builtin::{
    authentication_managed_identity::ManagedIdentity,
    caching, counting,
    dapr::DaprCall,
    forward_request::{ForwardRequest, HttpVersion},
    retry::{Plan, Retry},
    send_request::{Outgoing, SendRequest},
    validate_jwt::ValidateJwt,
    wait::Wait,
    Doc, Outcome, Policy, PolicyError, Section, State, Step,
};
use crate::policy::counters::Permit;
use crate::snapshot::{ApiEntry, OperationEntry, Snapshot};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

/// Largest body the gateway buffers for a policy (request or response).
pub const MAX_BUFFERED_BODY: usize = 16 << 20;

/// The scope levels, broadest first.
const SCOPES: [&str; 4] = ["global", "product", "api", "operation"];

/// Everything known about one request while it runs through the pipeline.
pub struct RequestCtx {
    pub snapshot: Arc<Snapshot>,
    pub api: usize,
    pub operation: usize,
    /// Index into `snapshot.products` when the request runs in a product's
    /// context (product-scoped key or open product).
    pub product: Option<usize>,
    /// The subscription the key belongs to, when a valid key was given.
    pub subscription: Option<String>,
    pub client: SocketAddr,
    /// `http` or `https` as the client spoke it.
    pub scheme: &'static str,
    /// The `Host` the client used (for `X-Forwarded-Host`).
    pub host: Option<HeaderValue>,
    /// The request body while it still streams.
    pub body: Option<Body>,
    /// The backend response body while it still streams.
    pub response_body: Option<Body>,
    /// Time spent waiting for backends' response heads (access log).
    pub backend_time: std::time::Duration,
    /// The request's id and trace context, carried by `send-request`.
    pub call_trace: super::callout::CallTrace,
    /// What policies see and change: the `context`, backend URL, CORS.
    pub state: State,
    /// The request's OTLP span (`None`: export off or not sampled).
    pub span: Option<Box<super::otlp::RequestSpan>>,
    /// The API inspector's trace, when a debug token asked for one.
    pub inspector: Option<Box<super::inspector::Recorder>>,
}

impl RequestCtx {
    pub fn api(&self) -> &ApiEntry {
        &self.snapshot.apis[self.api]
    }

    pub fn operation(&self) -> &OperationEntry {
        &self.api().operations[self.operation]
    }

    /// The reason of the last error, for the access log.
    pub fn error_reason(&self) -> &str {
        self.state
            .ctx
            .last_error
            .as_ref()
            .map_or("", |e| e.reason.as_str())
    }
}

pub(super) type StepFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Outcome, PolicyError>> + Send + 'a>>;

fn default_global() -> &'static Doc {
    static DOC: OnceLock<Doc> = OnceLock::new();
    DOC.get_or_init(Doc::default_global)
}

/// The document of a scope level for this request.
fn doc_at<'s>(snap: &'s Snapshot, ctx: &RequestCtx, level: usize) -> Option<&'s Doc> {
    match level {
        0 => snap.global_policy.as_deref(),
        1 => ctx.product.and_then(|p| snap.products[p].policy.as_deref()),
        2 => snap.apis[ctx.api].policy.as_deref(),
        _ => snap.apis[ctx.api].operations[ctx.operation]
            .policy
            .as_deref(),
    }
}

/// Runs the pipeline to a response.
pub fn run<'a>(
    ctx: &'a mut RequestCtx,
    upstream: &'a Upstream,
) -> Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>> {
    Box::pin(run_inner(ctx, upstream))
}

async fn run_inner(ctx: &mut RequestCtx, upstream: &Upstream) -> Response<Body> {
    let snap = ctx.snapshot.clone();
    let (mut reads_request, mut reads_response) = (false, false);
    for level in 0..4 {
        if let Some(d) = doc_at(&snap, ctx, level) {
            reads_request |= d.reads_request_body;
            reads_response |= d.reads_response_body;
        }
    }
    if reads_request {
        if let Err(e) = buffer_request(ctx).await {
            return finish_error(ctx, e, upstream).await;
        }
    }
    if ctx.state.preflight {
        ctx.state.section = Section::Inbound;
        return match run_scope(ctx, &snap, upstream, Section::Inbound, 3, false).await {
            Ok(Outcome::Respond) => finalize(ctx),
            Ok(Outcome::Continue) => GatewayError::not_found().into_response(),
            Err(e) => finish_error(ctx, e, upstream).await,
        };
    }
    match run_sections(ctx, &snap, upstream, reads_response).await {
        Ok(()) => finalize(ctx),
        Err(e) => finish_error(ctx, e, upstream).await,
    }
}

async fn run_sections(
    ctx: &mut RequestCtx,
    snap: &Snapshot,
    upstream: &Upstream,
    reads_response: bool,
) -> Result<(), PolicyError> {
    ctx.state.section = Section::Inbound;
    if run_section(ctx, snap, upstream, Section::Inbound, reads_response).await? == Outcome::Respond
    {
        // A cache-lookup hit skips the backend; outbound still runs.
        if !ctx.state.cached.hit {
            return Ok(());
        }
    } else {
        ctx.state.section = Section::Backend;
        if run_section(ctx, snap, upstream, Section::Backend, reads_response).await?
            == Outcome::Respond
        {
            return Ok(());
        }
    }
    // No forward-request in the effective backend section: outbound runs
    // on an empty 200.
    ctx.state.response_mut();
    ctx.state.section = Section::Outbound;
    run_section(ctx, snap, upstream, Section::Outbound, reads_response).await?;
    Ok(())
}

/// Runs a whole section (operation scope down), in a span when the
/// request is traced.
async fn run_section(
    ctx: &mut RequestCtx,
    snap: &Snapshot,
    upstream: &Upstream,
    section: Section,
    reads_response: bool,
) -> Result<Outcome, PolicyError> {
    let mark = super::otlp::section_start(ctx);
    let result = run_scope(ctx, snap, upstream, section, 3, reads_response).await;
    if let Some(mark) = mark {
        super::otlp::section_end(ctx, mark, section, &result);
    }
    result
}

/// Runs `section` of the scope at `level`; `<base/>` descends to broader
/// scopes. A missing document (or section) behaves as `<base/>`; at the
/// global scope the default document stands in.
///
/// Scopes without the section are skipped in a loop, not by recursion,
/// and this future is not boxed: `run_steps` boxes its own (which breaks
/// the `<base/>` recursion), so a request allocates one future per scope
/// that has policies, not two per scope level.
async fn run_scope(
    ctx: &mut RequestCtx,
    snap: &Snapshot,
    upstream: &Upstream,
    section: Section,
    level: usize,
    reads_response: bool,
) -> Result<Outcome, PolicyError> {
    let mut level = level;
    loop {
        let doc = doc_at(snap, ctx, level);
        if let Some(steps) = doc.and_then(|d| d.section(section)) {
            return run_steps(ctx, snap, upstream, steps, section, level, reads_response).await;
        }
        if level == 0 {
            let steps = default_global().section(section).unwrap_or_default();
            return run_steps(ctx, snap, upstream, steps, section, 0, reads_response).await;
        }
        level -= 1;
    }
}

pub(super) fn run_steps<'a>(
    ctx: &'a mut RequestCtx,
    snap: &'a Snapshot,
    upstream: &'a Upstream,
    steps: &'a [Step],
    section: Section,
    level: usize,
    reads_response: bool,
) -> StepFuture<'a> {
    Box::pin(async move {
        // The awaits of the arms below are boxed: each is large (an HTTP
        // exchange, a Redis round trip) and, inline, would make this
        // future as large as the largest of them, copied whole into its
        // box at every scope level of every section. Boxed, the common
        // arms (steps without awaits, `<base/>`) stay cheap and only the
        // request that takes an arm pays for its allocation.
        //
        // Each step is first turned into an owned `Next`, then awaited:
        // holding a borrowed step across an await would make the future's
        // `Send` depend on a lifetime the checker cannot generalise.
        #[allow(clippy::needless_range_loop)]
        for i in 0..steps.len() {
            if let Some(r) = ctx.inspector.as_deref_mut() {
                r.enter(&steps[i], level, section, &ctx.state);
            }
            let next = next_of(ctx, &steps[i], level, section)?;
            let outcome = match next {
                Next::Done(o) => o,
                Next::Base => {
                    run_scope(ctx, snap, upstream, section, level - 1, reads_response).await?
                }
                Next::Branch(b) => {
                    run_steps(ctx, snap, upstream, b, section, level, reads_response).await?
                }
                Next::Jwt(v, name, path, id) => {
                    Box::pin(super::oidc::validate(&mut ctx.state, upstream, v))
                        .await
                        .map_err(|e| at_step(e, &name, &path, id.as_deref(), level, section))?
                }
                Next::Identity(m, name, path, id) => {
                    Box::pin(managed_identity(&mut ctx.state, upstream, &m))
                        .await
                        .map_err(|e| at_step(e, &name, &path, id.as_deref(), level, section))?
                }
                Next::Limited(permit, b) => {
                    // The permit is held while the contained policies run
                    // and dropped however they end.
                    let o = run_steps(ctx, snap, upstream, b, section, level, reads_response).await;
                    drop(permit);
                    o?
                }
                Next::Send(s, out) => {
                    let result = Box::pin(call_out(ctx, snap, upstream, out)).await;
                    s.store(&mut ctx.state, result)
                        .map_err(|e| scoped(super::callout::locate(e, &steps[i]), level, section))?
                }
                Next::Dapr(d, out) => {
                    let result = Box::pin(call_out(ctx, snap, upstream, out)).await;
                    d.store(&mut ctx.state, result)
                        .map_err(|e| scoped(super::callout::locate(e, &steps[i]), level, section))?
                }
                Next::OneWay(out) => {
                    let tls = super::tls::TlsChoice::trusting(&snap.backend_trust);
                    let out = ctx.call_trace.apply(out);
                    super::callout::spawn_one_way(upstream, tls, out, ctx.api().id.as_ref());
                    Outcome::Continue
                }
                Next::Retry(r, plan) => {
                    super::callout::run_retry(
                        ctx,
                        snap,
                        upstream,
                        r,
                        plan,
                        &steps[i],
                        section,
                        level,
                        reads_response,
                    )
                    .await?
                }
                Next::Wait(w, any) => {
                    super::callout::run_wait(
                        ctx,
                        snap,
                        upstream,
                        w,
                        any,
                        section,
                        level,
                        reads_response,
                    )
                    .await?
                }
                Next::Count(step, plan) => {
                    // Shared counters: the check is awaited (one round trip).
                    let counters = ctx.state.counters.clone();
                    let decided = Box::pin(counting::decide(&counters, &plan)).await;
                    counting::finish(step, &mut ctx.state, &plan, &decided)
                        .map_err(|e| scoped(e, level, section))?
                }
                Next::Cache(step, op) => {
                    // The external cache tier: awaited (bounded by the
                    // `[redis] timeout`; a failure is a miss).
                    let cache = ctx.state.cache.clone();
                    let found = Box::pin(caching::run(&cache, op)).await;
                    caching::finish(step, &mut ctx.state, found)
                        .map_err(|e| scoped(e, level, section))?
                }
                Next::Forward(f, path, id) => {
                    Box::pin(forward(ctx, upstream, &f, reads_response))
                        .await
                        .map_err(|mut e| {
                            if e.source.is_empty() {
                                e.source = "forward-request".into();
                            }
                            e.path = path.to_string();
                            e.policy_id = id.as_deref().unwrap_or("").to_string();
                            scoped(e, level, section)
                        })?;
                    Outcome::Continue
                }
            };
            if let Some(r) = ctx.inspector.as_deref_mut() {
                r.leave(&mut ctx.state, outcome);
            }
            if outcome == Outcome::Respond {
                return Ok(Outcome::Respond);
            }
        }
        Ok(Outcome::Continue)
    })
}

/// Sends a prepared `send-request` or Dapr call: this request's trace
/// context on it, the snapshot's backend trust for TLS. The future holds
/// no borrow of the request (which is not `Sync`).
fn call_out<'a>(
    ctx: &RequestCtx,
    snap: &'a Snapshot,
    upstream: &'a Upstream,
    out: Outgoing,
) -> impl Future<Output = Result<CtxResponse, PolicyError>> + Send + 'a {
    let out = ctx.call_trace.apply(out);
    let api = &snap.apis[ctx.api].id;
    async move {
        let tls = super::tls::TlsChoice::trusting(&snap.backend_trust);
        super::callout::exchange(upstream, &tls, out, api.as_ref()).await
    }
}

/// An error of an awaited step, located at that step (its policy name,
/// path and id) and scope.
fn at_step(
    mut e: PolicyError,
    name: &str,
    path: &str,
    id: Option<&str>,
    level: usize,
    section: Section,
) -> PolicyError {
    e.source = name.to_string();
    e.path = path.to_string();
    e.policy_id = id.unwrap_or("").to_string();
    scoped(e, level, section)
}

/// What a step asks of the pipeline.
enum Next<'a> {
    Done(Outcome),
    Base,
    Branch(&'a [Step]),
    /// `limit-concurrency`: its policies, run while the permit is held.
    Limited(Permit, &'a [Step]),
    Forward(ForwardRequest, Arc<str>, Option<Arc<str>>),
    /// `authentication-managed-identity`: fetches a token first. Name,
    /// path, id.
    Identity(Arc<ManagedIdentity>, Arc<str>, Arc<str>, Option<Arc<str>>),
    /// A counting policy with shared (Redis) counters: its check, awaited.
    Count(&'a Step, counting::Plan),
    /// A caching policy on the external tier: its operation, awaited.
    Cache(&'a Step, caching::Ext),
    /// `validate-jwt` with `openid-config` (and `validate-azure-ad-token`):
    /// fetches keys first. Name, path, id.
    Jwt(Arc<ValidateJwt>, Arc<str>, Arc<str>, Option<Arc<str>>),
    /// `send-request`, prepared (see `callout.rs` for these four).
    Send(Arc<SendRequest>, Outgoing),
    /// `send-one-way-request`, prepared.
    OneWay(Outgoing),
    /// `publish-to-dapr`, `invoke-dapr-binding`, prepared.
    Dapr(Arc<DaprCall>, Outgoing),
    Retry(&'a Retry, Plan),
    /// `wait`; whether `for="any"`.
    Wait(&'a Wait, bool),
}

/// Runs a step that needs no await; says what to do for the others.
fn next_of<'a>(
    ctx: &mut RequestCtx,
    step: &'a Step,
    level: usize,
    section: Section,
) -> Result<Next<'a>, PolicyError> {
    Ok(match &step.policy {
        Policy::Base if level > 0 => Next::Base,
        Policy::Base => Next::Done(Outcome::Continue),
        Policy::Choose(c) => match c
            .select(&ctx.state)
            .map_err(|e| scoped(e, level, section))?
        {
            Some(b) => Next::Branch(b),
            None => Next::Done(Outcome::Continue),
        },
        Policy::ValidateJwt(v) if !v.discovery_urls().is_empty() && !ctx.state.preflight => {
            Next::Jwt(
                v.clone(),
                step.name.clone(),
                step.path.clone(),
                step.id.clone(),
            )
        }
        Policy::ManagedIdentity(m) if !ctx.state.preflight => Next::Identity(
            m.clone(),
            step.name.clone(),
            step.path.clone(),
            step.id.clone(),
        ),
        Policy::LimitConcurrency(l) if !ctx.state.preflight => {
            let permit = l.enter(&ctx.state).map_err(|mut e| {
                if e.source.is_empty() {
                    e.source = step.name.to_string();
                }
                e.path = step.path.to_string();
                e.policy_id = step.id.as_deref().unwrap_or("").to_string();
                scoped(e, level, section)
            })?;
            Next::Limited(permit, &l.steps)
        }
        Policy::RateLimit(_)
        | Policy::RateLimitByKey(_)
        | Policy::Quota(_)
        | Policy::QuotaByKey(_)
            if ctx.state.counters.is_shared() && !ctx.state.preflight =>
        {
            match counting::plan(step, &ctx.state).map_err(|e| scoped(e, level, section))? {
                Some(plan) => Next::Count(step, plan),
                None => Next::Done(Outcome::Continue),
            }
        }
        Policy::CacheLookup(_)
        | Policy::CacheLookupValue(_)
        | Policy::CacheStoreValue(_)
        | Policy::CacheRemoveValue(_)
            if ctx.state.cache.external.is_some() && !ctx.state.preflight =>
        {
            match caching::plan(step, &mut ctx.state).map_err(|e| scoped(e, level, section))? {
                caching::Plan::Ready(o) => Next::Done(o),
                caching::Plan::External(op) => Next::Cache(step, op),
            }
        }
        Policy::ForwardRequest(f) if !ctx.state.preflight => {
            Next::Forward(f.clone(), step.path.clone(), step.id.clone())
        }
        Policy::SendRequest(s) if !ctx.state.preflight => Next::Send(
            s.clone(),
            s.prepare(&ctx.state)
                .map_err(|e| scoped(super::callout::locate(e, step), level, section))?,
        ),
        Policy::Dapr(d) if !ctx.state.preflight => Next::Dapr(
            d.clone(),
            d.prepare(&ctx.state)
                .map_err(|e| scoped(super::callout::locate(e, step), level, section))?,
        ),
        Policy::SendOneWayRequest(s) if !ctx.state.preflight => Next::OneWay(
            s.prepare(&ctx.state)
                .map_err(|e| scoped(super::callout::locate(e, step), level, section))?,
        ),
        Policy::Retry(r) if !ctx.state.preflight => Next::Retry(
            r,
            r.plan(&ctx.state)
                .map_err(|e| scoped(super::callout::locate(e, step), level, section))?,
        ),
        Policy::Wait(w) if !ctx.state.preflight => Next::Wait(
            w,
            w.any(&ctx.state)
                .map_err(|e| scoped(super::callout::locate(e, step), level, section))?,
        ),
        _ => Next::Done(
            step.apply(&mut ctx.state)
                .map_err(|e| scoped(e, level, section))?,
        ),
    })
}

/// `authentication-managed-identity`: the token (cached or fetched), then
/// the header and variable. A failure is logged without secrets.
async fn managed_identity(
    st: &mut State,
    upstream: &Upstream,
    m: &ManagedIdentity,
) -> Result<Outcome, PolicyError> {
    let req = m.request(st)?;
    match super::identity::token(upstream, &req).await {
        Ok(t) => m.finish(st, Ok(t.expose())),
        Err(message) => {
            tracing::warn!(resource = %req.resource, "managed identity token failed: {message}");
            m.finish(st, Err(message))
        }
    }
}

/// Records where an error happened (the innermost scope wins).
pub(super) fn scoped(mut e: PolicyError, level: usize, section: Section) -> PolicyError {
    if e.scope.is_empty() {
        e.scope = SCOPES[level].to_string();
        e.section = section.name().to_string();
    }
    e
}

fn gateway_error(e: GatewayError) -> PolicyError {
    let mut p = PolicyError::new(e.status.as_u16(), e.reason, e.message);
    p.source = e.source.as_str().to_string();
    p
}

/// Reads a streaming body into memory, refusing more than the cap.
pub(super) async fn read_capped(mut body: Body) -> Result<Bytes, PolicyError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(PolicyError::new(
                400,
                "ClientConnectionFailure",
                "The body could not be read.",
            ));
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_BUFFERED_BODY {
                return Err(PolicyError::new(
                    413,
                    "BodyTooLarge",
                    format!("Request entity too large: a body a policy reads may be at most {MAX_BUFFERED_BODY} bytes."),
                ));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

pub(super) async fn buffer_request(ctx: &mut RequestCtx) -> Result<(), PolicyError> {
    if let Some(body) = ctx.body.take() {
        let bytes = read_capped(body).await.map_err(|mut e| {
            e.source = "inbound".into();
            e
        })?;
        ctx.state.ctx.request.message.body = Some(bytes);
    }
    Ok(())
}

/// Converts `context` headers into an HTTP header map (invalid ones are
/// dropped: policies validate what they set).
pub(super) fn header_map(headers: &crate::expr::context::Headers) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(headers.0.len());
    for (k, v) in &headers.0 {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            map.append(n, v);
        }
    }
    map
}

/// `X-Forwarded-For` (appended), `-Proto`, `-Host` and a `Forwarded` element.
fn add_forwarded(headers: &mut HeaderMap, ctx: &RequestCtx) {
    let ip = ctx.client.ip();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
        _ => ip.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(ctx.scheme));
    let node = if ip.is_ipv6() {
        format!("\"[{ip}]\"")
    } else {
        ip.to_string()
    };
    let mut element = format!("for={node};proto={}", ctx.scheme);
    if let Some(host) = &ctx.host {
        headers.insert("x-forwarded-host", host.clone());
        if let Ok(h) = host.to_str() {
            element.push_str(&format!(";host=\"{h}\""));
        }
    }
    let forwarded = match headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {element}"),
        None => element,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.insert(header::FORWARDED, v);
    }
}

/// `<forward-request>`: sends the request as policies left it.
async fn forward(
    ctx: &mut RequestCtx,
    upstream: &Upstream,
    f: &ForwardRequest,
    reads_response: bool,
) -> Result<(), PolicyError> {
    if ctx.state.backend_base.is_none() {
        return Err(gateway_error(GatewayError::no_backend()));
    }
    // A backend entity: its breaker (503 while open), its pool member and
    // its credentials.
    let selected = match ctx.state.backend_id.clone() {
        Some(id) => {
            match super::backends::select(&upstream.backends, &ctx.snapshot.backend_defs, &id)? {
                Some((sel, member_url)) => {
                    if let Some(u) = member_url {
                        ctx.state.backend_base = Some(u);
                        ctx.state.update_url();
                    }
                    Some(sel)
                }
                None => None,
            }
        }
        None => None,
    };
    let tls = super::tls::TlsChoice::of(
        ctx.state.client_cert.as_ref(),
        selected.as_ref().map(|s| &*s.def),
        &ctx.snapshot.backend_trust,
    );
    if f.buffer_request_body || f.follow_redirects {
        buffer_request(ctx).await?;
    }
    let mut redirects = 0;
    loop {
        let mut url = ctx.state.ctx.request.url.to_string();
        let mut headers = header_map(&ctx.state.ctx.request.message.headers);
        if let Some(sel) = &selected {
            sel.apply(&mut url, &mut headers);
        }
        let uri: http::Uri = url.parse().map_err(|_| {
            PolicyError::new(
                500,
                "InvalidBackendUrl",
                format!("'{url}' is not a valid URL"),
            )
        })?;
        strip_hop_by_hop(&mut headers);
        headers.remove(header::HOST);
        add_forwarded(&mut headers, ctx);
        let body = match &ctx.state.ctx.request.message.body {
            Some(b) => {
                headers.remove(header::CONTENT_LENGTH);
                Full::new(b.clone()).map_err(|e| match e {}).boxed_unsync()
            }
            None => ctx.body.take().unwrap_or_else(empty_body),
        };
        let method =
            http::Method::from_bytes(ctx.state.ctx.request.method.as_bytes()).map_err(|_| {
                PolicyError::new(500, "InvalidMethod", "the request method is not valid")
            })?;
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        if f.http_version == HttpVersion::Http2 && url.starts_with("https:") {
            *req.version_mut() = http::Version::HTTP_2;
        }
        let client_span = super::otlp::client_start(ctx, &mut req);
        if let Some(r) = ctx.inspector.as_deref_mut() {
            let set = &ctx.state.ctx.request.message.headers;
            r.backend_request(req.method().as_str(), &url, req.headers(), set);
        }
        let sent = std::time::Instant::now();
        let resp = super::callout::forward_send(
            upstream,
            ctx.state.proxy.as_ref(),
            &tls,
            req,
            f.timeout,
            ctx.api().id.as_ref(),
        )
        .await;
        ctx.backend_time += sent.elapsed();
        if let Some(mark) = client_span {
            super::otlp::client_end(ctx, mark, &url, &resp);
        }
        if let Some(r) = ctx.inspector.as_deref_mut() {
            r.backend_response(&resp, sent.elapsed());
        }
        if let Some(sel) = &selected {
            match &resp {
                Ok(r) => sel.record(super::backends::Outcome::Status(
                    r.status().as_u16(),
                    retry_after(r.headers()),
                )),
                Err(e) => sel.record(super::backends::Outcome::Error(e.reason)),
            }
        }
        let (parts, body) = resp.map_err(gateway_error)?.into_parts();
        let location = parts
            .headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        if f.follow_redirects && parts.status.is_redirection() && redirects < 5 {
            if let Some(loc) = location {
                let next = if loc.starts_with('/') {
                    let u = &ctx.state.ctx.request.url;
                    let port = if u.default_port() {
                        String::new()
                    } else {
                        format!(":{}", u.port)
                    };
                    format!("{}://{}{port}{loc}", u.scheme, u.host)
                } else {
                    loc
                };
                if let Some(u) = crate::expr::context::Url::parse(&next) {
                    redirects += 1;
                    if parts.status == StatusCode::SEE_OTHER {
                        ctx.state.ctx.request.method = "GET".into();
                        ctx.state.ctx.request.message.body = None;
                    }
                    ctx.state.ctx.request.url = u;
                    continue;
                }
            }
        }
        let mut headers = crate::expr::context::Headers::default();
        for (k, v) in &parts.headers {
            headers.append(
                k.as_str(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            );
        }
        let status = parts.status.as_u16();
        ctx.state.ctx.response = Some(CtxResponse {
            status,
            reason: parts.status.canonical_reason().unwrap_or("").to_string(),
            message: crate::expr::context::Message {
                headers,
                body: None,
            },
        });
        let body: Body = body;
        // Token limits and token metrics read the usage: a JSON response
        // is buffered, a server-sent-event stream tapped as it passes.
        let llm = !reads_response && crate::policy::builtin::llm::wants_usage(&ctx.state);
        let event_stream = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"));
        if llm && event_stream {
            ctx.response_body =
                Some(crate::policy::builtin::llm::tap(&mut ctx.state, body).boxed_unsync());
        } else if reads_response || llm {
            let bytes = read_capped(body).await.map_err(|mut e| {
                e.status = 502;
                e.reason = "BackendResponseTooLarge".into();
                e
            })?;
            if let Some(r) = ctx.state.ctx.response.as_mut() {
                r.message.body = Some(bytes);
                r.message.headers.remove("content-length");
            }
        } else {
            ctx.response_body = Some(body);
        }
        if f.fail_on_error_status_code && status >= 400 {
            return Err(PolicyError::new(
                status,
                "BackendResponseStatusCode",
                format!("The backend responded with status code {status}."),
            ));
        }
        return Ok(());
    }
}

/// A response's `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<std::time::Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(std::time::Duration::from_secs)
}

/// Builds the response the client gets from the policy state.
fn finalize(ctx: &mut RequestCtx) -> Response<Body> {
    // Token usage is charged (and token metrics recorded) once the
    // response is known; then deferred counting sees the final response.
    crate::policy::builtin::llm::settle(&mut ctx.state);
    counting::settle(&mut ctx.state);
    let resp = ctx.state.ctx.response.take().unwrap_or(CtxResponse {
        status: 200,
        ..Default::default()
    });
    let mut headers = header_map(&resp.message.headers);
    strip_hop_by_hop(&mut headers);
    let body = match resp.message.body {
        Some(b) => {
            headers.remove(header::CONTENT_LENGTH);
            ctx.response_body = None;
            Full::new(b).map_err(|e| match e {}).boxed_unsync()
        }
        None => ctx.response_body.take().unwrap_or_else(empty_body),
    };
    if let Some(cors) = ctx.state.cors.take() {
        for (k, v) in cors.0 {
            if let (Ok(n), Ok(v)) = (
                HeaderName::try_from(k.as_str()),
                HeaderValue::try_from(v.as_str()),
            ) {
                headers.insert(n, v);
            }
        }
    }
    let mut out = Response::new(body);
    *out.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::OK);
    *out.headers_mut() = headers;
    out
}

/// The message the caller sees by default: internal failures stay vague.
fn public_message(e: &PolicyError) -> String {
    if e.status == 500 {
        "Internal server error".into()
    } else {
        e.message.clone()
    }
}

/// `on-error`: sets `context.LastError` and the default error response,
/// runs the composed on-error sections, and answers with what they leave.
async fn finish_error(ctx: &mut RequestCtx, e: PolicyError, upstream: &Upstream) -> Response<Body> {
    if e.status >= 500
        && e.reason != "BackendConnectionFailure"
        && e.reason != "Timeout"
        && e.reason != "BackendUnavailable"
    {
        tracing::warn!(
            api = %ctx.api().id,
            operation = %ctx.operation().id,
            source = %e.source,
            reason = %e.reason,
            path = %e.path,
            "policy failed: {}",
            e.message
        );
    }
    if let Some(r) = ctx.inspector.as_deref_mut() {
        r.failed(&e, &ctx.state);
    }
    ctx.state.ctx.last_error = Some(LastError {
        source: e.source.clone(),
        reason: e.reason.clone(),
        message: e.message.clone(),
        scope: e.scope.clone(),
        section: e.section.clone(),
        path: e.path.clone(),
        policy_id: e.policy_id.clone(),
    });
    let mut headers = crate::expr::context::Headers::default();
    headers.set("Content-Type", "application/json; charset=utf-8".into());
    for (k, v) in &e.headers {
        headers.append(k, v.clone());
    }
    let body =
        serde_json::json!({"statusCode": e.status, "message": public_message(&e)}).to_string();
    ctx.response_body = None;
    ctx.state.ctx.response = Some(CtxResponse {
        status: e.status,
        reason: String::new(),
        message: crate::expr::context::Message {
            headers,
            body: Some(Bytes::from(body)),
        },
    });
    if e.section == Section::OnError.name() || ctx.state.preflight {
        return finalize(ctx);
    }
    ctx.state.section = Section::OnError;
    let snap = ctx.snapshot.clone();
    match run_section(ctx, &snap, upstream, Section::OnError, true).await {
        Ok(_) => finalize(ctx),
        Err(e2) => {
            if let Some(r) = ctx.inspector.as_deref_mut() {
                r.failed(&e2, &ctx.state);
            }
            // A failure inside on-error: the default response for it.
            crate::policy::builtin::llm::settle(&mut ctx.state);
            counting::settle(&mut ctx.state);
            tracing::warn!(reason = %e2.reason, path = %e2.path, "on-error failed: {}", e2.message);
            let body = serde_json::json!({"statusCode": e2.status, "message": public_message(&e2)});
            super::error::json_response(
                StatusCode::from_u16(e2.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body.to_string(),
            )
        }
    }
}

/// A CORS preflight: OPTIONS with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(parts: &http::request::Parts) -> bool {
    parts.method == http::Method::OPTIONS
        && parts.headers.contains_key(header::ORIGIN)
        && parts
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

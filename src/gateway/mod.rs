//! The gateway (data plane): listeners, matching, the subscription check,
//! the pipeline and the upstream client.
//!
//! Owns: accepting client connections (HTTP/1.1 and HTTP/2 on one port),
//! draining them on shutdown, and serving each request against the one
//! snapshot it loads at its start (DESIGN.md §6).
//!
//! **Invariant:** the gateway never touches the store. It reads only the
//! current [`Snapshot`] through [`SnapshotHandle`], holds no lock across an
//! `.await`, and parses nothing from configuration per request.

pub mod access;
pub mod analytics;
pub mod backends;
pub mod callout;
pub mod error;
pub mod https;
pub mod identity;
pub mod inspector;
pub mod oidc;
pub mod otlp;
pub mod pipeline;
pub mod pool_gauge;
pub mod proxy;
pub mod tls;
pub mod trace_context;
pub mod via_proxy;

use crate::config::Settings;
use crate::policy::builtin::{Section, State};
use crate::policy::cache::Cache;
use crate::policy::counters::Counters;
use crate::shutdown::Shutdown;
use crate::snapshot::{self, KeyScope, Snapshot, SnapshotHandle};
use bytes::Bytes;
use error::GatewayError;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use pipeline::RequestCtx;
use proxy::Upstream;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Error type of streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type used on both sides of the gateway.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// An empty body.
pub fn empty_body() -> Body {
    Empty::<Bytes>::new().map_err(|e| match e {}).boxed_unsync()
}

/// The path APIM's health probes use.
pub const STATUS_PATH: &str = "/status-0123456789abcdef";

/// How long a client may take to send a request's headers: the default
/// of `[gateway] header_read_timeout`.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of all gateway connections.
pub struct Gateway {
    snapshot: Arc<SnapshotHandle>,
    upstream: Upstream,
    region: String,
    deployment: crate::expr::context::Deployment,
    /// Where access records go (`None`: `access_log` is off).
    access: Option<crate::telemetry::access::AccessLog>,
    /// `[telemetry] access_log_query`.
    access_query: bool,
    /// `[telemetry] request_id_header`.
    request_id_header: http::HeaderName,
    stats: Arc<crate::telemetry::RequestStats>,
    /// Rate-limit, quota and concurrency counters: owned by the gateway,
    /// not the snapshot, so counts survive configuration changes.
    counters: Arc<Counters>,
    /// Custom metrics and loggers: owned by the gateway, like `counters`.
    telemetry: Arc<crate::telemetry::Telemetry>,
    /// The response and value cache: owned by the gateway, like `counters`.
    cache: Arc<Cache>,
    /// Per-minute traffic aggregates (`None`: `[analytics] enabled = false`):
    /// owned by the gateway, like `counters`.
    analytics: Option<Arc<crate::analytics::Recorder>>,
    /// OTLP export of spans (`None`: `[telemetry] otlp_endpoint` unset).
    otlp: Option<Arc<crate::telemetry::otlp::Exporter>>,
    /// The API inspector's finished traces: owned by the gateway, like
    /// `counters`; read by `GET /mgmt/traces/{id}`.
    traces: Arc<crate::telemetry::inspector::TraceRing>,
    /// The client connection builder of both listeners, with the
    /// `[gateway]` header, timeout and HTTP/2 limits.
    conn: Arc<auto::Builder<TokioExecutor>>,
    /// `[gateway] header_read_timeout`: also bounds the wait for a plain
    /// connection's first bytes.
    header_read_timeout: Duration,
}

/// The HTTP/1.1 + HTTP/2 connection builder of the gateway's listeners:
/// request line and headers capped at `max_header_bytes` and `max_headers`
/// (431), headers due within `header_read_timeout` (slowloris), HTTP/2
/// streams, header lists and early resets (rapid reset) bounded.
pub fn client_builder(g: &crate::config::Gateway) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's floor for its read buffer is 8 KiB (config validation keeps
    // the key at or above it).
    let max_header_bytes = g.max_header_bytes.max(8192);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(g.header_read_timeout)
        .max_headers(g.max_headers)
        .max_buf_size(max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(g.max_concurrent_streams)
        .max_pending_accept_reset_streams(g.max_pending_reset_streams)
        .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// HTTP/2's connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits until a plain connection has sent enough to tell HTTP/1.1 from
/// HTTP/2 (the connection builder would wait for that forever), for at
/// most `limit`. False: the client sent nothing in time, or closed.
async fn first_bytes(stream: &tokio::net::TcpStream, limit: Duration) -> bool {
    let wait = async {
        let mut buf = [0u8; 24];
        loop {
            let n = match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            if n >= H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] {
                return true;
            }
            // Part of the preface: let the rest arrive.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(limit, wait).await.unwrap_or(false)
}

/// Whether a request path has a `.` or `..` segment, also when spelled
/// with `%2e` or hidden behind an encoded `/` or `\` (`..%2f`): such a
/// path could leave its API's path or its backend's base path.
pub fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|raw| {
        let decoded = percent_encoding::percent_decode_str(raw).collect::<Vec<u8>>();
        decoded
            .split(|b| *b == b'/' || *b == b'\\')
            .any(|part| part == b"." || part == b"..")
    })
}

impl Gateway {
    /// A gateway serving `snapshot`, counting answered requests in `stats`.
    pub fn new(
        settings: &Settings,
        snapshot: Arc<SnapshotHandle>,
        stats: Arc<crate::telemetry::RequestStats>,
    ) -> Gateway {
        let redis = redis_for(settings);
        let telemetry = Arc::new(crate::telemetry::Telemetry::new(
            settings.node.data_dir.clone(),
        ));
        Gateway {
            snapshot,
            upstream: Upstream::counted(
                &settings.gateway,
                telemetry.prometheus.connections.clone(),
            )
            .with_identity(&settings.identity),
            region: settings.node.region.clone(),
            deployment: crate::expr::context::Deployment {
                region: settings.node.region.clone(),
                service_name: settings.node.service_name.clone(),
                gateway_id: settings
                    .cluster
                    .gateway_id
                    .clone()
                    .unwrap_or_else(|| "managed".into()),
            },
            access: access_log_for(settings),
            access_query: settings.telemetry.access_log_query,
            request_id_header: http::HeaderName::try_from(
                settings.telemetry.request_id_header.as_str(),
            )
            .unwrap_or(http::HeaderName::from_static("x-request-id")),
            stats,
            counters: Arc::new(counters_for(redis.clone())),
            telemetry,
            cache: Arc::new(cache_for(settings, redis)),
            analytics: settings.analytics.enabled.then(|| {
                Arc::new(crate::analytics::Recorder::new(
                    &settings.node.region,
                    settings.analytics.max_keys_per_minute,
                ))
            }),
            otlp: crate::telemetry::otlp::Exporter::start(
                &settings.telemetry,
                &settings.node.region,
                settings.cluster.gateway_id.as_deref().unwrap_or("managed"),
            ),
            traces: Arc::new(crate::telemetry::inspector::TraceRing::new(
                settings.telemetry.trace_ring_size,
            )),
            conn: Arc::new(client_builder(&settings.gateway)),
            header_read_timeout: settings.gateway.header_read_timeout,
        }
    }

    /// The client connection builder of the gateway's listeners.
    pub fn connection_builder(&self) -> Arc<auto::Builder<TokioExecutor>> {
        self.conn.clone()
    }

    /// The gateway's traffic aggregates (`None`: analytics is off).
    pub fn analytics(&self) -> Option<Arc<crate::analytics::Recorder>> {
        self.analytics.clone()
    }

    /// The OTLP exporter, when `[telemetry] otlp_endpoint` is set.
    pub fn otlp(&self) -> Option<Arc<crate::telemetry::otlp::Exporter>> {
        self.otlp.clone()
    }

    /// The gateway keeping its traces in `ring` (shared with the
    /// management API, which serves them).
    pub fn with_traces(mut self, ring: Arc<crate::telemetry::inspector::TraceRing>) -> Gateway {
        self.traces = ring;
        self
    }

    /// The API inspector's trace ring.
    pub fn traces(&self) -> Arc<crate::telemetry::inspector::TraceRing> {
        self.traces.clone()
    }

    /// Backends with runtime state and whether their breaker is open (metrics).
    pub fn breaker_states(&self) -> Vec<(String, bool)> {
        self.upstream.backends.breaker_states(Instant::now())
    }

    /// The gateway's custom metrics and loggers.
    pub fn telemetry(&self) -> Arc<crate::telemetry::Telemetry> {
        self.telemetry.clone()
    }

    /// Serves plain-HTTP connections from `listener` until `shutdown`, then
    /// stops accepting and waits up to `grace` for in-flight requests.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: Shutdown,
        grace: Duration,
    ) {
        let builder = self.conn.clone();
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let (stream, client) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "gateway accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.wait() => break,
            };
            let _ = stream.set_nodelay(true);
            let gw = self.clone();
            let service = service_fn(move |req| {
                let gw = gw.clone();
                async move { Ok::<_, Infallible>(gw.handle(req, client, "http").await) }
            });
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let limit = self.header_read_timeout;
            tokio::spawn(async move {
                // A client that sends nothing is let go after the header
                // read timeout (hyper waits for the first bytes forever).
                if !first_bytes(&stream, limit).await {
                    return;
                }
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                if let Err(e) = watcher.watch(conn.into_owned()).await {
                    tracing::debug!(error = %e, "client connection ended with an error");
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?grace, "in-flight gateway requests did not finish in time");
        }
        // Loggers write what they hold before the process stops.
        self.telemetry.loggers.close(grace).await;
        if let Some(otlp) = &self.otlp {
            otlp.flush(grace).await;
        }
    }

    /// Serves one request.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
        scheme: &'static str,
    ) -> Response<Body> {
        let started = Instant::now();
        if req.uri().path() == STATUS_PATH && matches!(*req.method(), Method::GET | Method::HEAD) {
            let snap = self.snapshot.load();
            let status = if snap.region_disabled(&self.region) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            let mut resp = Response::new(empty_body());
            *resp.status_mut() = status;
            return resp;
        }
        let snapshot = self.snapshot.load();
        self.telemetry.loggers.sync(&snapshot.loggers);
        let mut hop = trace_context::Hop::of(req.headers(), &self.request_id_header);
        let mut span = otlp::begin(self.otlp.as_ref(), &mut hop, &req, client, scheme);
        let request_bytes = content_length(req.headers());
        let access = self
            .access
            .as_ref()
            .map(|_| access::start(&req, client, &hop, self.access_query, &self.deployment));
        let req = access::count_in(req, access.as_ref());
        let refused_on = access.as_ref().map(|_| snapshot.clone());
        let analytics_of = self
            .analytics
            .as_ref()
            .map(|_| (req.uri().clone(), req.method().clone()));
        let (mut resp, mut ctx, rejected) = match admit(
            snapshot,
            req,
            client,
            scheme,
            &self.deployment,
            &self.counters,
            &self.telemetry,
            &self.cache,
            (&hop, &self.request_id_header),
        ) {
            Ok(mut ctx) => {
                ctx.span = span.take();
                inspector::begin(&mut ctx, &self.traces);
                let mut resp = pipeline::run(&mut ctx, &self.upstream).await;
                inspector::end(&mut ctx, &mut resp, &self.traces);
                (resp, Some(ctx), None)
            }
            Err(err) => (err.into_response(), None, Some(err)),
        };
        self.stats.record(resp.status().as_u16());
        hop.to_client(resp.headers_mut(), &self.request_id_header);
        if let (Some(rec), Some((uri, method))) = (&self.analytics, &analytics_of) {
            let snap = rejected.as_ref().map(|_| self.snapshot.load());
            let refused = rejected.as_ref().zip(snap.as_deref());
            let refused = refused.map(|(e, s)| (e, s, uri, method));
            analytics::record(rec, ctx.as_ref(), refused, &resp, started, request_bytes);
        }
        if let Some(s) = span.or_else(|| ctx.as_mut().and_then(|c| c.span.take())) {
            otlp::finish(s, &resp, ctx.as_ref(), rejected.as_ref(), &self.deployment);
        }
        let flow = self.telemetry.prometheus.observe_flow(
            &observed(ctx.as_ref(), &resp, started, request_bytes),
            !response_length_known(&resp),
        );
        let resp = resp.map(|b| crate::telemetry::flow::metered(b, flow).boxed_unsync());
        match (access, &self.access) {
            (Some(a), Some(log)) => {
                let refused = rejected.as_ref().zip(refused_on.as_deref());
                a.finish(log, started, resp, ctx.as_ref(), refused)
            }
            _ => resp,
        }
    }
}

/// Where access records go: `None` when `access_log` is off; the file
/// (under `data_dir` when relative) when `access_log_file` is set and can
/// be opened, else log events.
fn access_log_for(settings: &Settings) -> Option<crate::telemetry::access::AccessLog> {
    use crate::telemetry::access::AccessLog;
    let t = &settings.telemetry;
    if !t.access_log {
        return None;
    }
    let Some(file) = &t.access_log_file else {
        return Some(AccessLog::Events);
    };
    let path = settings.node.data_dir.join(file);
    match AccessLog::file(&path) {
        Ok(log) => Some(log),
        Err(e) => {
            tracing::error!(
                path = %path.display(),
                error = %e,
                "access log file cannot be opened; access events go to the log"
            );
            Some(AccessLog::Events)
        }
    }
}

/// A request's `Content-Length` (0 when absent or invalid).
fn content_length(headers: &http::HeaderMap) -> u64 {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Whether the response body's length is known at header time (exact
/// size or `Content-Length`); otherwise its bytes are counted as they flow.
fn response_length_known(resp: &Response<Body>) -> bool {
    use http_body::Body as _;
    resp.body().size_hint().exact().is_some()
        || resp.headers().contains_key(http::header::CONTENT_LENGTH)
}

/// What the metrics record of one answered request: configuration ids
/// (never the path), status, durations, and the sizes known at header time.
fn observed<'a>(
    ctx: Option<&'a RequestCtx>,
    resp: &Response<Body>,
    started: Instant,
    request_bytes: u64,
) -> crate::telemetry::prometheus::Observed<'a> {
    use http_body::Body as _;
    let response_bytes = resp
        .body()
        .size_hint()
        .exact()
        .unwrap_or_else(|| content_length(resp.headers()));
    crate::telemetry::prometheus::Observed {
        api: ctx.map_or("", |c| c.api().id.as_ref()),
        operation: ctx.map_or("", |c| c.operation().id.as_ref()),
        product: ctx
            .and_then(|c| c.product.map(|p| c.snapshot.products[p].id.as_ref()))
            .unwrap_or(""),
        status: resp.status().as_u16(),
        total: started.elapsed(),
        backend: ctx.map(|c| c.backend_time).filter(|d| !d.is_zero()),
        request_bytes,
        response_bytes,
    }
}

/// The gateway's Redis connection when `[redis] url` is set (a URL the
/// client refuses was already refused by the configuration's validation;
/// should it still fail here, counting and caching stay in-process and say
/// so loudly).
fn redis_for(settings: &Settings) -> Option<crate::redis::Redis> {
    match crate::redis::Redis::from_config(&settings.redis) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(
                "{e}; rate limits and quotas are counted per node, caching is per node"
            );
            None
        }
    }
}

/// The gateway's counters: shared through Redis when it is configured.
fn counters_for(redis: Option<crate::redis::Redis>) -> Counters {
    match redis {
        Some(r) => Counters::shared(r),
        None => Counters::local(),
    }
}

/// The gateway's cache: the internal tier, and Redis as the external tier
/// when it is configured (`caching-type` picks one per policy).
fn cache_for(settings: &Settings, redis: Option<crate::redis::Redis>) -> Cache {
    let cache = Cache::new(settings.cache.internal_max_bytes);
    match redis {
        Some(r) => cache.with_redis(r),
        None => cache,
    }
}

/// Matches the API and operation and runs the subscription check: the
/// built-in steps before `inbound`. Builds the `context` policies see.
// The runtime state the gateway owns (counters, telemetry, cache) is
// handed over piece by piece.
#[allow(clippy::too_many_arguments)]
fn admit(
    snapshot: Arc<Snapshot>,
    req: Request<Body>,
    client: SocketAddr,
    scheme: &'static str,
    deployment: &crate::expr::context::Deployment,
    counters: &Arc<Counters>,
    telemetry: &Arc<crate::telemetry::Telemetry>,
    cache: &Arc<Cache>,
    (hop, id_header): (&trace_context::Hop, &http::HeaderName),
) -> Result<RequestCtx, GatewayError> {
    let (parts, body) = req.into_parts();
    // No tunnels: CONNECT matches no operation (hyper would otherwise
    // turn a 2xx answer into a raw tunnel to the client).
    if parts.method == Method::CONNECT {
        return Err(GatewayError::not_found());
    }
    if has_dot_segment(parts.uri.path()) {
        return Err(GatewayError::dot_segment());
    }
    let m = snapshot
        .match_api(parts.uri.path())
        .ok_or_else(GatewayError::not_found)?;
    let api = m.api;
    let api_index = m.index;
    let allowed = match scheme {
        "https" => api.https,
        _ => api.http,
    };
    if !allowed {
        return Err(GatewayError::not_found());
    }
    let rest = m.rest.to_string();
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let query = parts.uri.query();
    let found = api.table.find(parts.method.as_str(), &segments, query);
    // A CORS preflight for a path with no OPTIONS operation is answered by
    // the cors policy, without a subscription key (APIM §3.7).
    // A defined OPTIONS operation takes the request itself; a `*` one does not.
    let preflight = pipeline::is_preflight(&parts)
        && found.is_none_or(|op| api.operations[op].method.as_ref() != "OPTIONS");
    let operation = match found {
        Some(op) if !preflight => op,
        None if !preflight => return Err(GatewayError::not_found()),
        _ => {
            let wanted = parts
                .headers
                .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("GET");
            api.table
                .find(wanted, &segments, query)
                .ok_or_else(GatewayError::not_found)?
        }
    };

    // The key: header first; the query parameter only when the header is absent.
    let key = match parts.headers.get(&api.key_header) {
        Some(v) => Some(v.to_str().unwrap_or("").to_string()),
        None => snapshot::routes::query_value(query, &api.key_query).map(percent_decode),
    };
    let (product, subscription, user) = match key {
        _ if preflight => (None, None, None),
        Some(key) => {
            let entry = snapshot.key(&key).ok_or_else(GatewayError::invalid_key)?;
            if !snapshot.scope_covers(entry.scope, api_index) {
                return Err(GatewayError::invalid_key());
            }
            let product = match entry.scope {
                KeyScope::Product(p) => Some(p),
                _ => None,
            };
            let sub = crate::expr::context::SubscriptionInfo {
                id: entry.subscription_id.to_string(),
                name: entry.display_name.to_string(),
                key: key.clone(),
                ..Default::default()
            };
            (product, Some(sub), entry.user)
        }
        None => {
            if let Some(open) = api.open_product {
                (Some(open), None, None)
            } else if !api.subscription_required {
                (None, None, None)
            } else {
                return Err(GatewayError::missing_key());
            }
        }
    };

    let host = parts.headers.get(http::header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
    });
    let mut ctx = crate::expr::Ctx::default();
    let host_text = host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let original = format!(
        "{scheme}://{host_text}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    ctx.request.original_url = crate::expr::context::Url::parse(&original).unwrap_or_default();
    ctx.request.method = parts.method.as_str().to_string();
    ctx.request.ip_address = client.ip().to_string();
    let peer_cert = parts
        .extensions
        .get::<Arc<crate::model::PeerCert>>()
        .cloned();
    ctx.request.certificate = peer_cert.as_ref().map(|p| {
        Arc::new(
            crate::policy::builtin::validate_client_certificate::request_certificate(
                p,
                &snapshot.client_trust,
            ),
        )
    });
    for (k, v) in &parts.headers {
        ctx.request.message.headers.append(
            k.as_str(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        );
    }
    // The backend gets the request id and this hop's trace context.
    let headers = &mut ctx.request.message.headers;
    headers.set(
        id_header.as_str(),
        String::from_utf8_lossy(hop.request_id.as_bytes()).into_owned(),
    );
    if !trace_context::continues_trace(&parts.headers) {
        headers.remove(trace_context::TRACESTATE.as_str());
    }
    headers.set(
        trace_context::TRACEPARENT.as_str(),
        String::from_utf8_lossy(hop.traceparent.as_bytes()).into_owned(),
    );
    let op = &api.operations[operation];
    ctx.request.matched_parameters = api
        .table
        .template(operation)
        .captures(&segments, query)
        .into_iter()
        .map(|(k, v)| (k, percent_decode(v)))
        .collect();
    ctx.api = Some(api.info.clone());
    ctx.operation = Some(op.info.clone());
    ctx.product = product.map(|p| snapshot.products[p].info.clone());
    ctx.user = user.map(|u| {
        let ue = &snapshot.users[u];
        crate::expr::context::UserInfo {
            id: ue.id.to_string(),
            email: ue.email.to_string(),
            first_name: ue.first_name.to_string(),
            last_name: ue.last_name.to_string(),
            groups: ue.groups.clone(),
            ..Default::default()
        }
    });
    let subscription_id = subscription.as_ref().map(|s| s.id.clone());
    ctx.subscription = subscription;
    ctx.deployment = deployment.clone();
    ctx.request_id = hop.guid;
    let backend_base = ctx.api.as_ref().and_then(|a| a.service_url.clone());
    ctx.request.url = ctx.request.original_url.clone();
    let mut state = State {
        ctx,
        section: Section::Inbound,
        limits: crate::expr::Limits::default(),
        backend_base,
        suffix: rest,
        backends: snapshot.backend_urls.clone(),
        responses: op.responses.clone(),
        cors: None,
        preflight,
        counters: counters.clone(),
        pending: Default::default(),
        backend_id: None,
        proxy: None,
        client_cert: None,
        telemetry: telemetry.clone(),
        llm: Default::default(),
        cache: cache.clone(),
        cached: Default::default(),
        trace_log: None,
        peer_cert,
    };
    state.update_url();
    Ok(RequestCtx {
        snapshot: snapshot.clone(),
        api: api_index,
        operation,
        product,
        subscription: subscription_id,
        client,
        scheme,
        host,
        body: Some(body),
        response_body: None,
        backend_time: Duration::ZERO,
        call_trace: callout::CallTrace::new(hop, id_header),
        state,
        span: None,
        inspector: None,
    })
}

/// Decodes `%XX` escapes and `+` in a query value (invalid escapes stay).
fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::{has_dot_segment, percent_decode};

    #[test]
    fn dot_segments_are_found_however_spelled() {
        for bad in [
            "/a/../b",
            "/a/./b",
            "/a/..",
            "/a/%2e%2e/b",
            "/a/%2E%2e/b",
            "/a/.%2e/b",
            "/a/..%2fb",
            "/a/..%2Fb",
            "/a/..%5cb",
            "/a/x%2f..%2fb",
            "/..",
        ] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for ok in [
            "/a/b",
            "/a/...",
            "/a/.b",
            "/a/b..",
            "/a/%2e%2ex",
            "/",
            "",
            "/a//b",
        ] {
            assert!(!has_dot_segment(ok), "{ok}");
        }
    }

    #[test]
    fn decodes_query_values() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("abc%2"), "abc%2");
        assert_eq!(percent_decode("%41%4a"), "AJ");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

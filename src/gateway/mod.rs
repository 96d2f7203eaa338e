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

pub mod error;
pub mod pipeline;
pub mod proxy;

use crate::config::Settings;
use crate::shutdown::Shutdown;
use crate::snapshot::{self, KeyScope, Snapshot, SnapshotHandle};
use crate::telemetry::ACCESS_TARGET;
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

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of all gateway connections.
pub struct Gateway {
    snapshot: Arc<SnapshotHandle>,
    upstream: Upstream,
    region: String,
    access_log: bool,
}

impl Gateway {
    pub fn new(settings: &Settings, snapshot: Arc<SnapshotHandle>) -> Gateway {
        Gateway {
            snapshot,
            upstream: Upstream::new(&settings.gateway),
            region: settings.node.region.clone(),
            access_log: settings.telemetry.access_log,
        }
    }

    /// Serves plain-HTTP connections from `listener` until `shutdown`, then
    /// stops accepting and waits up to `grace` for in-flight requests.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: Shutdown,
        grace: Duration,
    ) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // A client gets this long to send its request headers (slowloris guard).
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
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
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let conn = graceful.watch(conn.into_owned());
            tokio::spawn(async move {
                if let Err(e) = conn.await {
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
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let (resp, ctx, rejected) = match admit(snapshot, req, client, scheme) {
            Ok(mut ctx) => {
                let resp = pipeline::run(&mut ctx, &self.upstream).await;
                (resp, Some(ctx), None)
            }
            Err(err) => (err.into_response(), None, Some(err.reason)),
        };
        if self.access_log {
            let (api, operation, subscription, reason) = match &ctx {
                Some(c) => (
                    c.api().id.as_ref(),
                    c.operation().id.as_ref(),
                    c.subscription.as_deref().unwrap_or(""),
                    c.last_error.as_ref().map_or("", |e| e.reason),
                ),
                None => ("", "", "", rejected.unwrap_or("")),
            };
            tracing::info!(
                target: ACCESS_TARGET,
                client = %client.ip(),
                method = %method,
                path = %path,
                status = resp.status().as_u16(),
                duration_us = started.elapsed().as_micros() as u64,
                api,
                operation,
                subscription,
                reason,
                "request"
            );
        }
        resp
    }
}

/// Matches the API and operation and runs the subscription check: the
/// built-in steps before `inbound`.
fn admit(
    snapshot: Arc<Snapshot>,
    req: Request<Incoming>,
    client: SocketAddr,
    scheme: &'static str,
) -> Result<RequestCtx, GatewayError> {
    let (parts, body) = req.into_parts();
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
    let operation = api
        .table
        .find(parts.method.as_str(), &segments, parts.uri.query())
        .ok_or_else(GatewayError::not_found)?;

    // The key: header first; the query parameter only when the header is absent.
    let key = match parts.headers.get(&api.key_header) {
        Some(v) => Some(v.to_str().unwrap_or("").to_string()),
        None => {
            snapshot::routes::query_value(parts.uri.query(), &api.key_query).map(percent_decode)
        }
    };
    let (product, subscription) = match key {
        Some(key) => {
            let entry = snapshot.key(&key).ok_or_else(GatewayError::invalid_key)?;
            if !snapshot.scope_covers(entry.scope, api_index) {
                return Err(GatewayError::invalid_key());
            }
            let product = match entry.scope {
                KeyScope::Product(p) => Some(p),
                _ => None,
            };
            (product, Some(entry.subscription_id.to_string()))
        }
        None => {
            if let Some(open) = api.open_product {
                (Some(open), None)
            } else if !api.subscription_required {
                (None, None)
            } else {
                return Err(GatewayError::missing_key());
            }
        }
    };
    Ok(RequestCtx {
        snapshot: snapshot.clone(),
        api: api_index,
        operation,
        product,
        subscription,
        client,
        scheme,
        request: parts,
        body: Some(body.map_err(Into::into).boxed_unsync()),
        rest,
        backend_url: None,
        last_error: None,
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
    use super::percent_decode;

    #[test]
    fn decodes_query_values() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("abc%2"), "abc%2");
        assert_eq!(percent_decode("%41%4a"), "AJ");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

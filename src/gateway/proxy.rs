//! The upstream side: one pooled HTTP client for every backend.
//!
//! Owns: keep-alive connection pooling (HTTP/1.1, and HTTP/2 where TLS
//! negotiates it), connect and response timeouts, hop-by-hop header
//! removal in both directions, the `X-Forwarded-*` / `Forwarded` headers,
//! and streaming bodies both ways without buffering them.
//!
//! Naming: *client* is whoever called the gateway, *backend* the upstream.

use super::error::GatewayError;
use super::Body;
use crate::config::Gateway as GatewayConfig;
use http::header::{self, HeaderMap, HeaderName};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<super::pool_gauge::Counting<HttpConnector>>;

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including any named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("proxy-connection");
}

/// The shared upstream client.
pub struct Upstream {
    client: Client<Connector, Body>,
    response_timeout: Duration,
    /// `validate-jwt`'s discovered keys by `openid-config` URL.
    pub oidc: super::oidc::OidcCache,
    /// Circuit breakers and pool cursors by backend id.
    pub backends: super::backends::Registry,
    /// `authentication-managed-identity`'s token source and cache.
    pub identity: super::identity::Identity,
    /// Permits for `send-one-way-request`s in flight (bounded).
    pub one_way: Arc<tokio::sync::Semaphore>,
    /// Clients with a client certificate or relaxed server checks.
    pub tls: Arc<super::tls::Clients>,
}

impl Upstream {
    pub fn new(cfg: &GatewayConfig) -> Upstream {
        Upstream::counted(cfg, Arc::default())
    }

    /// The client, counting its open connections into `gauge`.
    pub fn counted(
        cfg: &GatewayConfig,
        gauge: Arc<crate::telemetry::flow::Connections>,
    ) -> Upstream {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(super::pool_gauge::Counting::new(http, gauge.clone()));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(cfg.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Upstream {
            client,
            response_timeout: cfg.backend_timeout,
            oidc: Default::default(),
            backends: Default::default(),
            identity: Default::default(),
            one_way: Arc::new(tokio::sync::Semaphore::new(
                super::callout::MAX_ONE_WAY_IN_FLIGHT,
            )),
            tls: Arc::new(
                super::tls::Clients::new(cfg.connect_timeout, cfg.pool_max_idle_per_host)
                    .counting(gauge),
            ),
        }
    }

    /// The default wait for a backend's response head.
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// A handle on the same connection pool for a spawned task (without
    /// the `validate-jwt` key cache).
    pub fn detached(&self) -> Upstream {
        Upstream {
            client: self.client.clone(),
            response_timeout: self.response_timeout,
            oidc: Default::default(),
            one_way: self.one_way.clone(),
            backends: Default::default(),
            identity: Default::default(),
            tls: self.tls.clone(),
        }
    }

    /// Sets the `[identity]` token source.
    pub fn with_identity(mut self, cfg: &crate::config::Identity) -> Upstream {
        self.identity = super::identity::Identity::new(cfg);
        self
    }

    /// Sends a prepared request (absolute URI, hop-by-hop headers gone)
    /// and returns the response with its body still streaming. `timeout`
    /// bounds the wait for the response head (default: `backend_timeout`).
    pub async fn send(
        &self,
        req: Request<Body>,
        timeout: Option<Duration>,
        api: &str,
    ) -> Result<Response<Body>, GatewayError> {
        self.send_on(&self.client, req, timeout, api).await
    }

    /// [`Upstream::send`] with the TLS `tls` asks for (a client
    /// certificate, relaxed server checks).
    pub async fn send_tls(
        &self,
        tls: &super::tls::TlsChoice,
        req: Request<Body>,
        timeout: Option<Duration>,
        api: &str,
    ) -> Result<Response<Body>, GatewayError> {
        if tls.is_default() {
            return self.send(req, timeout, api).await;
        }
        match self.tls.get(tls) {
            Ok(client) => self.send_on(&client, req, timeout, api).await,
            Err(e) => {
                tracing::warn!(api, error = %e, "backend TLS client could not be built");
                Err(GatewayError::backend_unreachable())
            }
        }
    }

    async fn send_on(
        &self,
        client: &Client<Connector, Body>,
        req: Request<Body>,
        timeout: Option<Duration>,
        api: &str,
    ) -> Result<Response<Body>, GatewayError> {
        let wait = timeout.unwrap_or(self.response_timeout);
        let resp = match tokio::time::timeout(wait, client.request(req)).await {
            Err(_) => return Err(GatewayError::backend_timeout()),
            Ok(Err(e)) if client_body_failed(&e) => {
                // The client's own body broke (bad chunked encoding, the
                // client went away): its fault, not the backend's.
                tracing::debug!(api, error = %error_chain(&e), "the request body failed");
                return Err(GatewayError::client_body());
            }
            Ok(Err(e)) => {
                tracing::warn!(api, error = %error_chain(&e), "backend request failed");
                return Err(GatewayError::backend_unreachable());
            }
            Ok(Ok(resp)) => resp,
        };
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(
            parts,
            body.map_err(Into::into).boxed_unsync(),
        ))
    }
}

/// Whether an upstream error is the request body's stream failing (hyper
/// reports it as a "user" error with the body's error as its cause).
fn client_body_failed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_user())
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// An error and its causes on one line, for logs.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }
}

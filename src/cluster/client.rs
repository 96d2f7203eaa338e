//! HTTP calls from a secondary to its primary: the configuration poll and
//! the heartbeat, with the gateway token, timeouts and capped reads. An
//! `https` primary's certificate is verified (against `[cluster] ca_cert`
//! when set, else the public web roots) before anything, the token
//! included, is sent.

use crate::error::Secret;
use crate::model::{Heartbeat, SCHEMA_VERSION, TOKEN_SCHEME};
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Largest compressed export read from the primary.
pub const MAX_DOWNLOAD: usize = 256 * 1024 * 1024;

/// Time allowed to connect to the primary.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Time allowed for an answer beyond the long-poll wait.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a poll brought.
pub enum Fetched {
    /// The revision asked about is still current.
    NotModified,
    /// A new configuration (gzip export) at `revision`.
    Config { revision: u64, export: Bytes },
}

/// Why a call to the primary failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No answer: connection refused, reset, timed out.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The primary refused the gateway token (401); its reason.
    #[error("the primary refused the gateway token: {0}")]
    Refused(String),
    /// The primary's TLS certificate is not trusted (nothing was sent).
    #[error("its TLS certificate is not trusted ({0})")]
    Untrusted(String),
    /// Any other answer that is not what the protocol expects.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// The secondary's connection to its primary.
pub struct PrimaryClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The primary's management URL, no trailing slash.
    pub base: String,
    token: Secret,
}

impl PrimaryClient {
    pub fn new(base: &str, token: Secret) -> PrimaryClient {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(Self::connector());
        Self::from_connector(base, token, https)
    }

    /// A client that trusts only the CA certificates in `roots` (a
    /// secondary's `[cluster] ca_cert`), or the public web roots when
    /// `None`.
    pub fn with_roots(
        base: &str,
        token: Secret,
        roots: Option<rustls::RootCertStore>,
    ) -> Result<PrimaryClient, String> {
        let Some(roots) = roots else {
            return Ok(Self::new(base, token));
        };
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(Self::connector());
        Ok(Self::from_connector(base, token, https))
    }

    fn connector() -> HttpConnector {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        http
    }

    fn from_connector(
        base: &str,
        token: Secret,
        https: hyper_rustls::HttpsConnector<HttpConnector>,
    ) -> PrimaryClient {
        PrimaryClient {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .build(https),
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, CallError> {
        Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(
                header::AUTHORIZATION,
                format!("{TOKEN_SCHEME} {}", self.token.expose()),
            )
            .header(
                header::USER_AGENT,
                format!("turnpike/{}", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|e| CallError::Protocol(format!("cannot build the request: {e}")))
    }

    /// Sends `req`, reads at most `max` bytes of the answer, all within
    /// `timeout`.
    async fn call(
        &self,
        req: Request<Full<Bytes>>,
        timeout: Duration,
        max: usize,
    ) -> Result<(http::response::Parts, Bytes), CallError> {
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                if untrusted(&e) {
                    CallError::Untrusted(describe(&e))
                } else {
                    CallError::Unreachable(describe(&e))
                }
            })?;
            let (parts, body) = resp.into_parts();
            let mut body = body;
            let mut buf = bytes::BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| CallError::Unreachable(e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > max {
                        return Err(CallError::Protocol(format!(
                            "the answer is larger than {max} bytes"
                        )));
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok((parts, buf.freeze()))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| CallError::Unreachable(format!("no answer within {timeout:?}")))?
    }

    /// `GET /cluster/v1/config`: `known` is the revision in service (sent
    /// as `If-None-Match`), `wait` how long the primary may hold the poll.
    pub async fn fetch(&self, known: Option<u64>, wait: Duration) -> Result<Fetched, CallError> {
        let mut path = format!("/cluster/v1/config?schemaVersion={SCHEMA_VERSION}");
        if !wait.is_zero() && known.is_some() {
            path.push_str(&format!("&wait={}ms", wait.as_millis()));
        }
        let mut req = self.request(Method::GET, &path, Bytes::new())?;
        req.headers_mut().insert(
            header::ACCEPT_ENCODING,
            http::HeaderValue::from_static("gzip"),
        );
        if let Some(rev) = known {
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{rev}\"")) {
                req.headers_mut().insert(header::IF_NONE_MATCH, v);
            }
        }
        let (parts, body) = self.call(req, wait + ANSWER_TIMEOUT, MAX_DOWNLOAD).await?;
        match parts.status {
            StatusCode::NOT_MODIFIED => Ok(Fetched::NotModified),
            StatusCode::OK => {
                let revision = parts
                    .headers
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim_start_matches("W/").trim_matches('"').parse().ok())
                    .ok_or_else(|| {
                        CallError::Protocol("no revision ETag on the configuration".into())
                    })?;
                let gzip = parts
                    .headers
                    .get(header::CONTENT_ENCODING)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
                let export = if gzip {
                    body
                } else {
                    Bytes::from(crate::model::export::gzip(&body))
                };
                Ok(Fetched::Config { revision, export })
            }
            status => Err(refusal(status, &body)),
        }
    }

    /// `POST /cluster/v1/heartbeat`; returns the primary's revision.
    pub async fn heartbeat(&self, beat: &Heartbeat) -> Result<u64, CallError> {
        let body = serde_json::to_vec(beat).unwrap_or_default();
        let mut req = self.request(Method::POST, "/cluster/v1/heartbeat", Bytes::from(body))?;
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let (parts, body) = self.call(req, ANSWER_TIMEOUT, 64 * 1024).await?;
        if parts.status != StatusCode::OK {
            return Err(refusal(parts.status, &body));
        }
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("revision")?.as_u64())
            .ok_or_else(|| CallError::Protocol("the heartbeat answer has no revision".into()))
    }
}

/// One management call with the admin key (used by `turnpike cluster
/// join`): returns the status and the JSON body (`Null` when empty).
/// `roots`: trust only these CAs (`--ca-cert`), else the web roots.
pub async fn admin_call(
    base: &str,
    admin_key: &str,
    method: Method,
    path: &str,
    body: serde_json::Value,
    roots: Option<rustls::RootCertStore>,
) -> Result<(StatusCode, serde_json::Value), CallError> {
    let client =
        PrimaryClient::with_roots(base, Secret::new(""), roots).map_err(CallError::Protocol)?;
    let req = Request::builder()
        .method(method)
        .uri(format!("{}{path}", client.base))
        .header(header::AUTHORIZATION, format!("Bearer {admin_key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| CallError::Protocol(format!("cannot build the request: {e}")))?;
    let (parts, bytes) = client.call(req, ANSWER_TIMEOUT, 1024 * 1024).await?;
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((parts.status, json))
}

/// The error a non-success answer means; 401 carries the primary's reason.
fn refusal(status: StatusCode, body: &[u8]) -> CallError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    if status == StatusCode::UNAUTHORIZED {
        CallError::Refused(message)
    } else {
        CallError::Protocol(format!("{status}: {message}"))
    }
}

/// Whether `e` (or a cause) is rustls refusing the peer's certificate.
/// (An `io::Error` is entered through `get_ref`: its `source` skips the
/// error it wraps.)
fn untrusted(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(rustls::Error::InvalidCertificate(_)) = e.downcast_ref::<rustls::Error>() {
        return true;
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return untrusted(inner);
    }
    e.source().is_some_and(untrusted)
}

/// A client error with its causes ("client error (Connect): tcp connect
/// error: Connection refused").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_is_found_through_wrapped_io_errors() {
        let bad = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // hyper-rustls wraps tokio-rustls' io::Error in another io::Error.
        let wrapped =
            std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, bad));
        assert!(untrusted(&wrapped));
        let refused =
            std::io::Error::other(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!untrusted(&refused));
        let other = std::io::Error::other(rustls::Error::DecryptError);
        assert!(!untrusted(&other));
    }
}

//! Requests through an HTTP proxy (`<proxy>`): a connector that dials the
//! proxy instead of the backend. `http://` backends get absolute-form
//! requests over the proxy connection (with `Proxy-Authorization`);
//! `https://` backends get a `CONNECT host:port` tunnel, then TLS to the
//! backend inside it. One client per call, no pooling through proxies.
//! The proxy's password never reaches logs or error messages.

use super::error::GatewayError;
use super::Body;
use crate::policy::builtin::proxy::ProxyTarget;
use base64::Engine as _;
use http::header::{HeaderValue, PROXY_AUTHORIZATION};
use http::{Request, Response, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest `CONNECT` response head read from a proxy.
const MAX_CONNECT_HEAD: usize = 16 << 10;

/// `Basic base64(user:password)` when the proxy has credentials.
fn authorization(p: &ProxyTarget) -> Option<HeaderValue> {
    let user = p.username.as_deref()?;
    let pass = p.password.as_deref().unwrap_or("");
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut v = HeaderValue::from_str(&format!("Basic {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

#[derive(Clone)]
struct ProxyConnector {
    host: String,
    port: u16,
    auth: Option<HeaderValue>,
}

/// The connection to the proxy; `absolute` tells hyper to write
/// absolute-form request targets (plain HTTP through the proxy).
pub struct ProxyStream {
    io: TokioIo<TcpStream>,
    absolute: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        Connected::new().proxy(self.absolute)
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<ProxyStream>> + Send>>;

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = io::Error;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> ConnectFuture {
        let me = self.clone();
        Box::pin(async move {
            let host = me.host.trim_start_matches('[').trim_end_matches(']');
            let mut tcp = TcpStream::connect((host, me.port)).await?;
            tcp.set_nodelay(true)?;
            if dst.scheme_str() != Some("https") {
                return Ok(ProxyStream {
                    io: TokioIo::new(tcp),
                    absolute: true,
                });
            }
            let target = format!(
                "{}:{}",
                dst.host().unwrap_or_default(),
                dst.port_u16().unwrap_or(443)
            );
            let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
            if let Some(a) = me.auth.as_ref().and_then(|a| a.to_str().ok()) {
                head.push_str(&format!("Proxy-Authorization: {a}\r\n"));
            }
            head.push_str("\r\n");
            tcp.write_all(head.as_bytes()).await?;
            // Byte by byte, so nothing of the tunnel is read past the head.
            let mut got = Vec::with_capacity(256);
            while !got.ends_with(b"\r\n\r\n") {
                if got.len() >= MAX_CONNECT_HEAD {
                    return Err(io::Error::other("proxy CONNECT response head too large"));
                }
                let b = tcp.read_u8().await?;
                got.push(b);
            }
            let status = std::str::from_utf8(&got)
                .ok()
                .and_then(|t| t.split_whitespace().nth(1))
                .unwrap_or("");
            if status != "200" {
                return Err(io::Error::other(format!(
                    "proxy refused CONNECT to {target}: status {status}"
                )));
            }
            Ok(ProxyStream {
                io: TokioIo::new(tcp),
                absolute: false,
            })
        })
    }
}

/// Sends a prepared request (absolute URI, hop-by-hop headers gone)
/// through `proxy`; the caller bounds the time.
pub async fn send(
    proxy: &ProxyTarget,
    mut req: Request<Body>,
    api: &str,
) -> Result<Response<Body>, GatewayError> {
    let auth = authorization(proxy);
    if req.uri().scheme_str() != Some("https") {
        if let Some(a) = &auth {
            req.headers_mut().insert(PROXY_AUTHORIZATION, a.clone());
        }
    }
    let connector = ProxyConnector {
        host: proxy.url.host.clone(),
        port: proxy.url.port,
        auth,
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    let client: Client<_, Body> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(https);
    match client.request(req).await {
        Ok(resp) => {
            use http_body_util::BodyExt;
            let (mut parts, body) = resp.into_parts();
            super::proxy::strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(
                parts,
                body.map_err(Into::into).boxed_unsync(),
            ))
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut cur = std::error::Error::source(&e);
            while let Some(s) = cur {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                cur = s.source();
            }
            tracing::warn!(api, proxy = %proxy.url.host, error = %msg, "request through proxy failed");
            Err(GatewayError::backend_unreachable())
        }
    }
}

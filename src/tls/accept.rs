//! The TLS accept loop shared by the gateway's HTTPS, management and
//! portal listeners ([`accept_loop`]), and the management and portal
//! listeners' service on it, TLS or plain ([`serve`]): accepts TCP,
//! answers a plain-HTTP request on a TLS port with a short 400 (instead
//! of a handshake failure the client cannot read), runs the TLS handshake
//! bounded by [`HANDSHAKE_TIMEOUT`] (failures are logged at debug and
//! never stop the listener), then serves HTTP/1.1 or HTTP/2 (by ALPN)
//! with an axum `Router`, bounding how long a client may take to send
//! headers and its first request. Each request carries the connection's
//! [`Transport`] and `ConnectInfo<SocketAddr>` as extensions.

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Time a client gets to send its first byte and complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Drives `conn` (a connection being served) to its end, unless no request
/// has arrived on it (`seen` still false) within `limit`: then it is
/// dropped, closing the connection, and `None` is returned. hyper's
/// connection builder would otherwise wait unbounded, after the TLS
/// handshake, for the bytes that tell HTTP/1.1 from HTTP/2.
pub async fn drive_unless_idle<F, E>(
    conn: F,
    seen: &AtomicBool,
    limit: Duration,
) -> Option<Result<(), E>>
where
    F: Future<Output = Result<(), E>>,
{
    tokio::pin!(conn);
    tokio::select! {
        r = &mut conn => Some(r),
        _ = tokio::time::sleep(limit) => {
            if !seen.load(Ordering::Relaxed) {
                return None;
            }
            Some(conn.await)
        }
    }
}

/// How a request reached a listener: the peer's address and whether the
/// connection is TLS. A request extension on the management and portal
/// listeners served by [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// What a plain-HTTP request to a TLS port gets.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\n\
Content-Length: 60\r\n\r\n\
This port speaks HTTPS only: send the request to https://.\r\n";

/// Whether the first byte of a connection opens a TLS record (a
/// handshake, content type 22).
fn opens_tls(first: u8) -> bool {
    first == 0x16
}

/// The HTTP/1.1 + HTTP/2 (by ALPN) connection builder of the management
/// and portal listeners: a request's headers are due within
/// `header_read_timeout`.
fn http_builder(header_read_timeout: Duration) -> Arc<auto::Builder<TokioExecutor>> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    Arc::new(builder)
}

/// The accept loop of a TLS listener (shared by the gateway's HTTPS,
/// management and portal listeners): accepts until `shutdown` completes,
/// runs `connection` for each accepted stream on its own task (with a
/// watcher that lets shutdown drain it), then waits up to `grace` for
/// those in flight. `name` is the listener's name in logs.
pub async fn accept_loop<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    connection: F,
) where
    F: Fn(TcpStream, SocketAddr, Watcher) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, peer, graceful.watcher()));
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(listener = name, grace = ?grace, "in-flight requests did not finish in time");
    }
}

/// Runs a TLS handshake on `stream` with `accept`, bounded by
/// [`HANDSHAKE_TIMEOUT`] (first byte included). A plain-HTTP request gets
/// a 400 saying to use https. `None` when there is no TLS stream to
/// serve; why is logged at debug (a failed handshake never stops the
/// listener).
pub async fn handshake_with<T, E, Fut>(
    name: &'static str,
    peer: SocketAddr,
    mut stream: TcpStream,
    accept: impl FnOnce(TcpStream) -> Fut,
) -> Option<T>
where
    E: std::fmt::Display,
    Fut: Future<Output = Result<T, E>>,
{
    let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        match refuse_plain_http(&mut stream).await {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        }
        accept(stream).await.map(Some).map_err(|e| e.to_string())
    })
    .await;
    match outcome {
        Ok(Ok(Some(tls))) => return Some(tls),
        Ok(Ok(None)) => tracing::debug!(listener = name, %peer, "refused a plain-HTTP request"),
        Ok(Err(e)) => tracing::debug!(listener = name, %peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(listener = name, %peer, "TLS handshake timed out"),
    }
    None
}

/// Serves `router` on `listener` until `shutdown` completes, then drains
/// in-flight requests for up to `grace`: over TLS when `acceptor` is set,
/// plain HTTP otherwise. Either way a client gets `header_read_timeout`
/// to send a request's headers, and as long (after the handshake) to
/// start its first request, so idle or slow clients cannot hold
/// connections open. `name` is the listener's name in logs
/// (`management`, `portal`).
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    router: axum::Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let builder = http_builder(header_read_timeout);
    accept_loop(
        name,
        listener,
        shutdown,
        grace,
        move |stream, peer, watcher| {
            let acceptor = acceptor.clone();
            let builder = builder.clone();
            let router = router.clone();
            async move {
                let Some(acceptor) = acceptor else {
                    let transport = Transport { peer, tls: false };
                    serve_connection(
                        name,
                        stream,
                        transport,
                        &builder,
                        router,
                        watcher,
                        header_read_timeout,
                    )
                    .await;
                    return;
                };
                let Some(tls) = handshake_with(name, peer, stream, |s| acceptor.accept(s)).await
                else {
                    return;
                };
                let transport = Transport { peer, tls: true };
                serve_connection(
                    name,
                    tls,
                    transport,
                    &builder,
                    router,
                    watcher,
                    header_read_timeout,
                )
                .await;
            }
        },
    )
    .await
}

/// Serves one accepted connection (`io`, TLS or plain) with `router` until
/// it ends, or until `first_request` passes with no request.
async fn serve_connection<I>(
    name: &'static str,
    io: I,
    transport: Transport,
    builder: &auto::Builder<TokioExecutor>,
    router: axum::Router,
    watcher: Watcher,
    first_request: Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let seen = Arc::new(AtomicBool::new(false));
    let seen_in_service = seen.clone();
    let peer = transport.peer;
    let service = service_fn(move |mut req: hyper::Request<Incoming>| {
        seen_in_service.store(true, Ordering::Relaxed);
        req.extensions_mut().insert(transport);
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        // A `Router` is always ready: no `poll_ready` needed.
        tower_service::Service::call(&mut router, req)
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let conn = watcher.watch(conn.into_owned());
    match drive_unless_idle(conn, &seen, first_request).await {
        None => tracing::debug!(listener = name, "client sent no request in time; closed"),
        Some(Err(e)) => {
            tracing::debug!(listener = name, error = %e, "connection ended with an error")
        }
        Some(Ok(())) => {}
    }
}

/// Looks at a connection's first byte: `Ok(true)` when it opens a TLS
/// handshake; a plain-HTTP request gets a 400 saying to use https and
/// `Ok(false)`.
pub async fn refuse_plain_http(stream: &mut TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed before the handshake",
        ));
    }
    if !opens_tls(first[0]) {
        if first[0].is_ascii_uppercase() {
            stream.write_all(PLAIN_HTTP_ANSWER).await?;
            let _ = stream.shutdown().await;
        }
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_answer_is_well_formed() {
        let text = std::str::from_utf8(PLAIN_HTTP_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
        assert!(opens_tls(0x16));
        assert!(!opens_tls(b'G'));
    }
}

//! The gateway's HTTPS listener: accepts TCP, runs the TLS handshake
//! (bounded by [`HANDSHAKE_TIMEOUT`]; failures are logged at debug and
//! never stop the listener), then serves HTTP/1.1 or HTTP/2 (by ALPN)
//! with the same service as the plain listener, `scheme` = `https`. A
//! client certificate presented in the handshake rides in each request's
//! extensions as an `Arc<PeerCert>`.

use super::{Gateway, HEADER_READ_TIMEOUT};
use crate::model::PeerCert;
use crate::shutdown::Shutdown;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Time a client gets to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Gateway {
    /// Serves HTTPS on `listener` until `shutdown` fires, then drains
    /// in-flight requests for up to `grace`.
    pub async fn serve_https(
        self: Arc<Self>,
        listener: TcpListener,
        acceptor: TlsAcceptor,
        mut shutdown: Shutdown,
        grace: Duration,
    ) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let builder = Arc::new(builder);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let (stream, client) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "gateway https accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.wait() => break,
            };
            let _ = stream.set_nodelay(true);
            let gw = self.clone();
            let acceptor = acceptor.clone();
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let tls =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%client, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%client, "TLS handshake timed out");
                            return;
                        }
                    };
                let peer = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(PeerCert::from_chain)
                    .map(Arc::new);
                let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let gw = gw.clone();
                    if let Some(peer) = &peer {
                        req.extensions_mut().insert(peer.clone());
                    }
                    async move { Ok::<_, Infallible>(gw.handle(req, client, "https").await) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                let conn = watcher.watch(conn.into_owned());
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
            tracing::warn!(grace = ?grace, "in-flight gateway https requests did not finish in time");
        }
    }
}

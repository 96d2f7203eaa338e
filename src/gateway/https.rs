//! The gateway's HTTPS listener: accepts TCP, runs the TLS handshake
//! with [`SniAcceptor`] (certificate by SNI from the custom hostnames of
//! the snapshot in service, client certificate asked for per hostname;
//! ClientHello and handshake together bounded by
//! [`accept::HANDSHAKE_TIMEOUT`]; failures are logged at debug and never
//! stop the listener; a plain-HTTP request gets a 400 saying to use
//! https), on the accept loop it shares with the other TLS listeners
//! ([`accept::accept_loop`]), then
//! serves HTTP/1.1 or HTTP/2 (by ALPN) with the same service and connection limits (`[gateway]`
//! `max_header_bytes`, `max_headers`, `header_read_timeout`, HTTP/2
//! settings) as the plain listener, `scheme` = `https`. A client that
//! completes the handshake and then sends no request within
//! `header_read_timeout` is dropped (the connection builder would wait
//! unbounded for the bytes that tell HTTP/1.1 from HTTP/2; later requests
//! on a kept-alive HTTP/1.1 connection are bounded by hyper's header
//! timer). A
//! client certificate presented in the handshake rides in each request's
//! extensions as an `Arc<PeerCert>`.

use super::Gateway;
use crate::model::PeerCert;
use crate::shutdown::Shutdown;
use crate::tls::accept;
use crate::tls::sni::SniAcceptor;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The listener's name in logs.
const NAME: &str = "gateway-https";

impl Gateway {
    /// Serves HTTPS on `listener` until `shutdown` fires, then drains
    /// in-flight requests for up to `grace`.
    pub async fn serve_https(
        self: Arc<Self>,
        listener: TcpListener,
        acceptor: Arc<SniAcceptor>,
        mut shutdown: Shutdown,
        grace: Duration,
    ) {
        let builder = self.connection_builder();
        let idle_limit = self.header_read_timeout;
        let shutdown = async move { shutdown.wait().await };
        accept::accept_loop(NAME, listener, shutdown, grace, move |stream, client, watcher| {
            let gw = self.clone();
            let acceptor = acceptor.clone();
            let builder = builder.clone();
            async move {
                let Some(tls) =
                    accept::handshake_with(NAME, client, stream, |s| acceptor.accept(s)).await
                else {
                    return;
                };
                let peer = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(PeerCert::from_chain)
                    .map(Arc::new);
                let seen = Arc::new(AtomicBool::new(false));
                let seen_in_service = seen.clone();
                let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let gw = gw.clone();
                    seen_in_service.store(true, Ordering::Relaxed);
                    if let Some(peer) = &peer {
                        req.extensions_mut().insert(peer.clone());
                    }
                    async move { Ok::<_, Infallible>(gw.handle(req, client, "https").await) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                let conn = watcher.watch(conn.into_owned());
                match accept::drive_unless_idle(conn, &seen, idle_limit).await {
                    None => tracing::debug!("client sent no request in time; closed"),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "client connection ended with an error")
                    }
                    Some(Ok(())) => {}
                }
            }
        })
        .await
    }
}

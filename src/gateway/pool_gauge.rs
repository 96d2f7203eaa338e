//! Counting the upstream pool's connections: a connector wrapper that
//! tags every connection it opens with a guard of
//! [`Connections`](crate::telemetry::flow::Connections) under the
//! backend's `host:port`, so `GET /metrics` shows how many are open (in
//! use or idle in the pool); the count drops when hyper closes the
//! connection (idle timeout, error, shutdown).

use crate::telemetry::flow::{ConnGuard, Connections};
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Wraps connector `C`, counting what it opens.
#[derive(Clone)]
pub struct Counting<C> {
    inner: C,
    gauge: Arc<Connections>,
}

impl<C> Counting<C> {
    pub fn new(inner: C, gauge: Arc<Connections>) -> Counting<C> {
        Counting { inner, gauge }
    }
}

/// `host:port` of `uri` (the scheme's port when none is given).
fn host_port(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    format!("{host}:{port}")
}

impl<C> tower_service::Service<Uri> for Counting<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
{
    type Response = Counted<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let label = host_port(&uri);
        let gauge = self.gauge.clone();
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(Counted {
                io,
                _guard: gauge.open(&label),
            })
        })
    }
}

/// A connection counted open until dropped.
pub struct Counted<T> {
    io: T,
    _guard: ConnGuard,
}

impl<T: Connection> Connection for Counted<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl<T: Read + Unpin> Read for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_host_and_port() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(host_port(&u("http://b.example/x?y")), "b.example:80");
        assert_eq!(host_port(&u("https://b.example/x")), "b.example:443");
        assert_eq!(host_port(&u("http://127.0.0.1:8081/")), "127.0.0.1:8081");
    }
}

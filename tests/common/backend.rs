//! Small programmable backends for gateway tests.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).map_err(|e| match e {}).boxed_unsync()
}

/// A body of `n` bytes produced 64 KiB at a time.
pub fn generated(n: usize) -> Body {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let chunks = (0..n.div_ceil(chunk.len())).map(move |i| {
        let len = chunk.len().min(n - i * chunk.len());
        Ok::<_, std::io::Error>(Frame::data(chunk.slice(..len)))
    });
    StreamBody::new(futures_util::stream::iter(chunks)).boxed_unsync()
}

/// Serves `handler` on 127.0.0.1:0 until the test ends.
pub async fn spawn<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let h = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let h = h.clone();
                    async move { Ok::<_, Infallible>(h(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Counts the request body's bytes without keeping them; answers the count.
pub async fn count_body(req: Request<Incoming>) -> Response<Body> {
    let mut body = req.into_body();
    let mut n = 0usize;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => n += f.data_ref().map_or(0, |d| d.len()),
            Err(_) => break,
        }
    }
    Response::new(full(format!("{{\"received\":{n}}}")))
}

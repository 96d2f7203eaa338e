//! The one body wrapper that counts the data bytes a body yields as it
//! streams and hands the count to an [`AtEnd`] when the body is dropped
//! (fully sent, or the peer went away).
//!
//! Owns: [`Tally`] and the [`AtEnd`] contract. The access log's byte
//! counts and record (`access::CountIn`/`CountOut`) and the late metrics
//! (`flow::Metered`) are `Tally`s with their own end action.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// What happens with the count once the body is dropped.
pub trait AtEnd {
    /// Called once, with the data bytes the body yielded.
    fn end(self, bytes: u64);

    /// Called for every data frame (default: nothing): for counts others
    /// must see while the body still streams.
    fn frame(&mut self, _bytes: u64) {}
}

/// A body that counts its data bytes and calls `at_end` when dropped.
pub struct Tally<B, E: AtEnd> {
    inner: B,
    bytes: u64,
    at_end: Option<E>,
}

impl<B, E: AtEnd> Tally<B, E> {
    pub fn new(inner: B, at_end: E) -> Tally<B, E> {
        Tally {
            inner,
            bytes: 0,
            at_end: Some(at_end),
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin, E: AtEnd + Unpin> Body for Tally<B, E> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &polled {
            if let Some(d) = f.data_ref() {
                let n = d.len() as u64;
                self.bytes += n;
                if let Some(e) = self.at_end.as_mut() {
                    e.frame(n);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B, E: AtEnd> Drop for Tally<B, E> {
    fn drop(&mut self) {
        if let Some(e) = self.at_end.take() {
            e.end(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};
    use std::sync::{Arc, Mutex};

    struct Seen(Arc<Mutex<Vec<u64>>>);
    impl AtEnd for Seen {
        fn end(self, bytes: u64) {
            self.0.lock().unwrap().push(bytes);
        }
        fn frame(&mut self, bytes: u64) {
            self.0.lock().unwrap().push(1000 + bytes);
        }
    }

    #[tokio::test]
    async fn counts_frames_and_ends_once_on_drop() {
        let seen = Arc::new(Mutex::new(vec![]));
        let chunks =
            ["abc", "de"].map(|s| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(s))));
        let body = Tally::new(
            StreamBody::new(futures_util::stream::iter(chunks)),
            Seen(seen.clone()),
        );
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(&got[..], b"abcde");
        assert_eq!(*seen.lock().unwrap(), vec![1003, 1002, 5]);
    }

    #[tokio::test]
    async fn a_body_dropped_early_reports_what_it_sent() {
        let seen = Arc::new(Mutex::new(vec![]));
        let chunks =
            ["abc", "de"].map(|s| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(s))));
        let mut body = Tally::new(
            StreamBody::new(futures_util::stream::iter(chunks)),
            Seen(seen.clone()),
        );
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert_eq!(*seen.lock().unwrap(), vec![1003, 3]);
    }
}

//! Metrics measured while bodies and connections live, after the
//! response head was recorded.
//!
//! Owns: [`Metered`], the response body wrapper that, when the body ends
//! or the client goes away, records the client duration (response head
//! to body end) and, for a body whose length was unknown at head time,
//! the bytes that flowed, into the request's series; and
//! [`Connections`], the open upstream connections per backend
//! `host:port` (a guard per connection, decremented when it closes).
//!
//! Counting is relaxed atomics on cells shared with the series; nothing
//! here locks on the hot path.

use super::prometheus::{Family, Histogram};
use super::tally::{AtEnd, Tally};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Where a response's late measurements go: cells of its series.
#[derive(Debug)]
pub struct FlowSink {
    pub(super) client: Arc<Histogram>,
    /// Set when the body's length was unknown at head time.
    pub(super) bytes: Option<Arc<AtomicU64>>,
}

/// A response body that records, when dropped, the time since the
/// response head and (when asked) the bytes it sent.
pub type Metered<B> = Tally<B, Observe>;

/// [`Metered`]'s end action.
pub struct Observe {
    started: Instant,
    sink: Option<FlowSink>,
}

impl AtEnd for Observe {
    fn end(self, bytes: u64) {
        if let Some(s) = self.sink {
            s.client.observe(self.started.elapsed());
            if let Some(b) = s.bytes {
                b.fetch_add(bytes, Relaxed);
            }
        }
    }
}

/// Wraps `inner`; `sink` is `None` when the series was not recorded (past
/// the family's cap).
pub fn metered<B>(inner: B, sink: Option<FlowSink>) -> Metered<B> {
    Tally::new(
        inner,
        Observe {
            started: Instant::now(),
            sink,
        },
    )
}

/// One upstream `host:port`'s connections.
#[derive(Debug, Default)]
pub struct ConnCell {
    pub(super) open: Arc<AtomicU64>,
    pub(super) opened: AtomicU64,
}

/// Upstream connections by `host:port` (bounded like every family).
#[derive(Debug, Default)]
pub struct Connections {
    pub(super) family: Family<ConnCell>,
}

/// Held by one open upstream connection; counts it closed when dropped.
#[derive(Debug)]
pub struct ConnGuard(Option<Arc<AtomicU64>>);

impl Connections {
    /// Counts a connection to `host_port` opened; the guard counts it
    /// closed.
    pub fn open(&self, host_port: &str) -> ConnGuard {
        let mut held = None;
        self.family.with(&[host_port], |c| {
            c.opened.fetch_add(1, Relaxed);
            c.open.fetch_add(1, Relaxed);
            held = Some(c.open.clone());
        });
        ConnGuard(held)
    }

    /// `(host:port, open, opened)` for every host seen, sorted.
    pub fn read(&self) -> Vec<(String, u64, u64)> {
        self.family
            .entries()
            .iter()
            .map(|e| {
                (
                    e.labels[0].to_string(),
                    e.cell.open.load(Relaxed),
                    e.cell.opened.load(Relaxed),
                )
            })
            .collect()
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(open) = self.0.take() {
            open.fetch_sub(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_connections_open_and_closed() {
        let c = Connections::default();
        let a = c.open("b:80");
        let b = c.open("b:80");
        let d = c.open("c:443");
        assert_eq!(
            c.read(),
            vec![("b:80".into(), 2, 2), ("c:443".into(), 1, 1)]
        );
        drop(a);
        drop(d);
        assert_eq!(
            c.read(),
            vec![("b:80".into(), 1, 2), ("c:443".into(), 0, 1)]
        );
        drop(b);
        assert_eq!(c.read()[0], ("b:80".into(), 0, 2));
    }
}

//! The custom-metrics registry: what `emit-metric`, `trace` and the
//! `llm-emit-token-metric` / `azure-openai-emit-token-metric` policies
//! record, kept in process until an exporter reads it.
//!
//! Owns: named series (namespace, name, sorted dimensions) each holding a
//! count and a sum of the recorded values. Lock-light: `SHARDS` std
//! mutexes chosen by the series' hash, each held for one map operation and
//! never across an `.await`. Cardinality is bounded: past `MAX_SERIES`
//! series, new series are dropped (and counted; a warning at most once a
//! minute); existing ones keep counting.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const SHARDS: usize = 16;

/// Most series the registry holds.
pub const MAX_SERIES: usize = 10_000;

/// Seconds between two warnings about dropped series.
const WARN_EVERY_SECS: u64 = 60;

/// One series' identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub namespace: String,
    pub name: String,
    /// `(name, value)` sorted by name.
    pub dimensions: Vec<(String, String)>,
}

/// One series as read by [`Registry::snapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub key: SeriesKey,
    /// How many values were recorded.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
}

/// The registry. One per gateway.
#[derive(Debug)]
pub struct Registry {
    shards: Vec<Mutex<HashMap<SeriesKey, (u64, f64)>>>,
    series: AtomicUsize,
    dropped: AtomicU64,
    last_warn: AtomicU64,
    max_series: usize,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::with_limit(MAX_SERIES)
    }
}

impl Registry {
    /// A registry holding at most `max_series` series.
    pub fn with_limit(max_series: usize) -> Registry {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            series: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            last_warn: AtomicU64::new(0),
            max_series,
        }
    }

    /// Adds `value` to the series (creating it while under the cap).
    pub fn record(
        &self,
        namespace: &str,
        name: &str,
        mut dimensions: Vec<(String, String)>,
        value: f64,
    ) {
        dimensions.sort();
        let key = SeriesKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
            dimensions,
        };
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let shard = &self.shards[(h.finish() as usize) % SHARDS];
        let mut map = match shard.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(s) = map.get_mut(&key) {
            s.0 += 1;
            s.1 += value;
            return;
        }
        if self.series.fetch_add(1, Relaxed) >= self.max_series {
            self.series.fetch_sub(1, Relaxed);
            drop(map);
            self.dropped.fetch_add(1, Relaxed);
            self.warn_dropped();
            return;
        }
        map.insert(key, (1, value));
    }

    fn warn_dropped(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_warn.load(Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_SECS
            && self
                .last_warn
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(
                max_series = self.max_series,
                dropped = self.dropped.load(Relaxed),
                "custom metrics: too many series; values of new series are dropped"
            );
        }
    }

    /// Every series, sorted by key.
    pub fn snapshot(&self) -> Vec<Series> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let map = match shard.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            out.extend(map.iter().map(|(k, (count, sum))| Series {
                key: k.clone(),
                count: *count,
                sum: *sum,
            }));
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The series `namespace`/`name` whose dimensions include every pair of
    /// `dims` (tests and diagnostics), summed: `(count, sum)`.
    pub fn total(&self, namespace: &str, name: &str, dims: &[(&str, &str)]) -> (u64, f64) {
        self.snapshot()
            .into_iter()
            .filter(|s| s.key.namespace == namespace && s.key.name == name)
            .filter(|s| {
                dims.iter()
                    .all(|(n, v)| s.key.dimensions.iter().any(|(dn, dv)| dn == n && dv == v))
            })
            .fold((0, 0.0), |(c, v), s| (c + s.count, v + s.sum))
    }

    /// Values dropped because the series cap was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sums_per_series() {
        let r = Registry::default();
        r.record(
            "ns",
            "m",
            vec![("b".into(), "2".into()), ("a".into(), "1".into())],
            2.5,
        );
        r.record(
            "ns",
            "m",
            vec![("a".into(), "1".into()), ("b".into(), "2".into())],
            1.0,
        );
        r.record("ns", "m", vec![("a".into(), "x".into())], 1.0);
        let s = r.snapshot();
        assert_eq!(s.len(), 2);
        assert_eq!(r.total("ns", "m", &[("a", "1")]), (2, 3.5));
        assert_eq!(r.total("ns", "m", &[]), (3, 4.5));
    }

    #[test]
    fn cardinality_is_capped() {
        let r = Registry::with_limit(3);
        for i in 0..10 {
            r.record("ns", "m", vec![("i".into(), i.to_string())], 1.0);
        }
        r.record("ns", "m", vec![("i".into(), "0".into())], 1.0);
        assert_eq!(r.snapshot().len(), 3);
        assert_eq!(r.dropped(), 7);
        assert_eq!(r.total("ns", "m", &[("i", "0")]), (2, 2.0));
    }
}

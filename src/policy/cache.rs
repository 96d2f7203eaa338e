//! The gateway's cache: what `cache-lookup` / `cache-store` keep (whole
//! responses) and what `cache-lookup-value` / `cache-store-value` /
//! `cache-remove-value` keep (values of `context.Variables`).
//!
//! [`Cache`] has an internal tier, a [`moka`] cache bounded by bytes (each
//! entry weighs its key, headers and body) with a time to live per entry,
//! and a slot for an external tier ([`External`], a Redis-compatible store)
//! that the internal tier stands in for when none is configured. The
//! `caching-type` of a policy picks the tier ([`Cache::tier`]):
//! `internal` → internal; `prefer-external` → external when configured,
//! else internal; `external` → external, and without one the operation is
//! skipped (a lookup misses, a store stores nothing): APIM never fails a
//! request because a cache is unavailable.
//!
//! The internal tier is synchronous (moka's `sync::Cache`: lock-free reads,
//! nothing held across an `.await`), so policies call it from
//! `Step::apply`. The external tier (Redis, `[redis] url`; the byte form,
//! the async operations and the Redis store are in `cache_external`)
//! answers over the network: the pipeline plans a policy whose tier is
//! external synchronously, awaits its lookup, value store or removal, and
//! finishes it synchronously (`caching::plan` / `run` / `finish`);
//! `cache-store` stores responses there in the background.
//!
//! The gateway owns one `Cache` (like `Counters`), so entries survive
//! configuration changes; they are lost when the process restarts.

use crate::expr::value::json_deep_clone;
use crate::expr::Value;
use bytes::Bytes;
use moka::sync::Cache as Moka;
use moka::Expiry;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The largest entry (key, headers and body) the cache keeps; larger
/// responses and values are not cached.
pub const MAX_ENTRY_BYTES: usize = 4 << 20;

/// The default capacity of the internal tier (`[cache] internal_max_bytes`).
pub const DEFAULT_INTERNAL_MAX_BYTES: u64 = 64 << 20;

/// The longest time to live an entry may have (a year); longer durations
/// are shortened to it.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A policy's `caching-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CachingType {
    #[default]
    PreferExternal,
    External,
    Internal,
}

impl CachingType {
    pub fn parse(s: &str) -> Option<CachingType> {
        match s.trim() {
            "prefer-external" => Some(CachingType::PreferExternal),
            "external" => Some(CachingType::External),
            "internal" => Some(CachingType::Internal),
            _ => None,
        }
    }
}

/// Which store an operation goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Internal,
    External,
}

/// A cached response.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedResponse {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// What an entry holds.
#[derive(Debug, Clone)]
pub enum Cached {
    Response(CachedResponse),
    Value(Value),
}

/// One entry: its content, time to live and when it was stored.
#[derive(Debug)]
pub struct Entry {
    pub content: Cached,
    pub ttl: Duration,
    pub stored: Instant,
    weight: u32,
}

impl Entry {
    /// The time left before the entry expires.
    pub fn remaining(&self) -> Duration {
        self.ttl.saturating_sub(self.stored.elapsed())
    }
}

/// A boxed future of an external store's answer.
pub type ExternalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An external cache (Redis-compatible): bytes under string keys with a
/// time to live. Failures answer `None` / do nothing: a cache that cannot
/// be reached never fails a request.
pub trait External: Send + Sync + std::fmt::Debug {
    fn get<'a>(&'a self, key: &'a str) -> ExternalFuture<'a, Option<Bytes>>;
    fn set<'a>(&'a self, key: &'a str, value: Bytes, ttl: Duration) -> ExternalFuture<'a, ()>;
    fn del<'a>(&'a self, key: &'a str) -> ExternalFuture<'a, ()>;
}

struct PerEntry;

impl Expiry<String, Arc<Entry>> for PerEntry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Arc<Entry>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The gateway's cache. One per gateway process.
pub struct Cache {
    internal: Moka<String, Arc<Entry>>,
    /// The external tier, when one is configured.
    pub external: Option<Arc<dyn External>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("entries", &self.internal.entry_count())
            .field("external", &self.external.is_some())
            .finish()
    }
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(DEFAULT_INTERNAL_MAX_BYTES)
    }
}

impl Cache {
    /// An internal cache of at most `max_bytes`, no external tier.
    pub fn new(max_bytes: u64) -> Cache {
        let internal = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &String, v: &Arc<Entry>| v.weight)
            .expire_after(PerEntry)
            .build();
        Cache {
            internal,
            external: None,
        }
    }

    /// The store `caching-type` selects, or `None` when it names a store
    /// that is not configured (`external` without one).
    pub fn tier(&self, ty: CachingType) -> Option<Tier> {
        match (ty, self.external.is_some()) {
            (CachingType::Internal, _) | (CachingType::PreferExternal, false) => {
                Some(Tier::Internal)
            }
            (_, true) => Some(Tier::External),
            (CachingType::External, false) => None,
        }
    }

    /// The live entry under `key` in the internal tier.
    pub fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let e = self.internal.get(key)?;
        // moka's expiry is checked lazily on its own clock; be exact.
        if e.stored.elapsed() >= e.ttl {
            return None;
        }
        Some(e)
    }

    /// Stores `content` under `key` for `ttl` in the internal tier.
    /// Returns false (and stores nothing) when the entry is too large or
    /// the time to live is zero.
    pub fn put(&self, key: &str, content: Cached, ttl: Duration) -> bool {
        if ttl.is_zero() {
            return false;
        }
        let size = key.len() + weight_of(&content);
        if size > MAX_ENTRY_BYTES {
            return false;
        }
        let content = match content {
            Cached::Value(v) => Cached::Value(detach(&v)),
            r => r,
        };
        let entry = Entry {
            content,
            ttl: ttl.min(MAX_TTL),
            stored: Instant::now(),
            weight: u32::try_from(size).unwrap_or(u32::MAX),
        };
        self.internal.insert(key.to_string(), Arc::new(entry));
        true
    }

    /// Removes `key` from the internal tier.
    pub fn remove(&self, key: &str) {
        self.internal.invalidate(key);
    }

    /// The value under `key`, detached from the stored one (a cached JSON
    /// object changed by one request does not change the entry).
    pub fn get_value(&self, key: &str) -> Option<Value> {
        match &self.get(key)?.content {
            Cached::Value(v) => Some(detach(v)),
            Cached::Response(_) => None,
        }
    }

    /// How many entries the internal tier holds (tests, diagnostics).
    pub fn len(&self) -> u64 {
        self.internal.run_pending_tasks();
        self.internal.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What an entry weighs, besides its key (a fixed overhead plus its bytes).
fn weight_of(c: &Cached) -> usize {
    64 + match c {
        Cached::Response(r) => {
            r.body.len()
                + r.reason.len()
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 16)
                    .sum::<usize>()
        }
        Cached::Value(Value::Str(s)) => s.len(),
        Cached::Value(v) => v.to_display().len(),
    }
}

/// A copy of `v` that shares nothing mutable with it: JSON tokens are
/// deep-cloned; collections and other reference values become their text.
fn detach(v: &Value) -> Value {
    match v {
        Value::Json(j) => Value::Json(json_deep_clone(j)),
        Value::List(..)
        | Value::Dict(_)
        | Value::Bytes(_)
        | Value::Pair(_)
        | Value::JProperty(..) => Value::Str(v.to_display().into()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(body: &str) -> Cached {
        Cached::Response(CachedResponse {
            status: 200,
            reason: "OK".into(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Bytes::from(body.to_string()),
        })
    }

    #[test]
    fn stores_and_expires() {
        let c = Cache::new(1 << 20);
        assert!(c.put("k", resp("hello"), Duration::from_millis(50)));
        let e = c.get("k").unwrap();
        assert!(matches!(&e.content, Cached::Response(r) if r.body == "hello"));
        std::thread::sleep(Duration::from_millis(80));
        assert!(c.get("k").is_none());
        assert!(!c.put("z", resp("x"), Duration::ZERO));
    }

    #[test]
    fn refuses_entries_over_the_cap_and_evicts_by_bytes() {
        let c = Cache::new(64 << 20);
        let big = "x".repeat(MAX_ENTRY_BYTES + 1);
        assert!(!c.put("big", resp(&big), Duration::from_secs(60)));
        assert!(c.get("big").is_none());
        // A 100 KiB cache holds only a few 40 KiB entries.
        let small = Cache::new(100 << 10);
        let body = "y".repeat(40 << 10);
        for i in 0..10 {
            small.put(&format!("k{i}"), resp(&body), Duration::from_secs(60));
        }
        assert!(small.len() <= 2, "{} entries", small.len());
    }

    #[test]
    fn tiers_follow_caching_type() {
        let c = Cache::new(1 << 20);
        assert_eq!(c.tier(CachingType::Internal), Some(Tier::Internal));
        assert_eq!(c.tier(CachingType::PreferExternal), Some(Tier::Internal));
        assert_eq!(c.tier(CachingType::External), None);
        assert_eq!(
            CachingType::parse("prefer-external"),
            Some(CachingType::PreferExternal)
        );
        assert_eq!(CachingType::parse("redis"), None);
        #[derive(Debug)]
        struct Nowhere;
        impl External for Nowhere {
            fn get<'a>(&'a self, _: &'a str) -> ExternalFuture<'a, Option<Bytes>> {
                Box::pin(async { None })
            }
            fn set<'a>(&'a self, _: &'a str, _: Bytes, _: Duration) -> ExternalFuture<'a, ()> {
                Box::pin(async {})
            }
            fn del<'a>(&'a self, _: &'a str) -> ExternalFuture<'a, ()> {
                Box::pin(async {})
            }
        }
        let mut c = Cache::new(1 << 20);
        c.external = Some(Arc::new(Nowhere));
        assert_eq!(c.tier(CachingType::Internal), Some(Tier::Internal));
        assert_eq!(c.tier(CachingType::PreferExternal), Some(Tier::External));
        assert_eq!(c.tier(CachingType::External), Some(Tier::External));
    }

    #[test]
    fn values_are_detached() {
        let c = Cache::new(1 << 20);
        c.put("n", Cached::Value(Value::Int(7)), Duration::from_secs(5));
        assert!(matches!(c.get_value("n"), Some(Value::Int(7))));
        c.remove("n");
        assert!(c.get_value("n").is_none());
    }
}

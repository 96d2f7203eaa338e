//! The external tier of the gateway's [`Cache`]: the byte form entries
//! take in it, the asynchronous operations the pipeline awaits on it, and
//! [`RedisCache`], the [`External`] store over the gateway's Redis
//! connection (`crate::redis`, `[redis] url`).
//!
//! **Byte form** (version 1): a version byte, the time the entry was
//! stored (Unix milliseconds, u64) and its time to live (milliseconds,
//! u64), a kind byte, then the content, every integer big-endian and every
//! string or body length-prefixed (u32). A response is its status (u16),
//! reason, header count (u32) and name/value pairs, and body. A value is a
//! tag byte and its data: null, bool, int, float, char, string, `DateTime`,
//! `DateTimeOffset`, `TimeSpan`, `Guid`, or JSON (its compact text); other
//! values (lists, dictionaries, byte arrays, ...) are stored as their text,
//! as the internal tier detaches them. Bytes of another version, of an
//! unknown kind, truncated, with trailing bytes, or past their time to live
//! decode to `None`: a miss, never a panic. The stored time gives a hit
//! its time left (for `downstream-caching-type`); Redis expires the key
//! itself (`SET ... PX`).
//!
//! **Failures**: Redis down, slow (beyond `[redis] timeout`) or answering
//! an error makes a lookup a miss and a store or removal a no-op;
//! `crate::redis` records and logs it and recovers in the background.
//!
//! Keys: `[redis] key_prefix` + `cache:` + the policy's key
//! (`response|...` or `value|...`).

use super::cache::{
    Cache, Cached, CachedResponse, External, ExternalFuture, MAX_ENTRY_BYTES, MAX_TTL,
};
use crate::expr::time::{DateTime, Kind, TimeSpan};
use crate::expr::value::{json_to_serde, JNode};
use crate::expr::Value;
use crate::redis::Redis;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The byte form's version.
const VERSION: u8 = 1;
const KIND_RESPONSE: u8 = b'R';
const KIND_VALUE: u8 = b'V';

const T_NULL: u8 = 0;
const T_BOOL: u8 = 1;
const T_INT: u8 = 2;
const T_FLOAT: u8 = 3;
const T_CHAR: u8 = 4;
const T_STR: u8 = 5;
const T_DATETIME: u8 = 6;
const T_DATETIMEOFFSET: u8 = 7;
const T_TIMESPAN: u8 = 8;
const T_GUID: u8 = 9;
const T_JSON: u8 = 10;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn put_u32(out: &mut Vec<u8>, n: usize) -> Option<()> {
    out.extend_from_slice(&u32::try_from(n).ok()?.to_be_bytes());
    Some(())
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> Option<()> {
    put_u32(out, b.len())?;
    out.extend_from_slice(b);
    Some(())
}

/// The byte form of `content` stored at `stored_ms` for `ttl`; `None` when
/// it is larger than the cache keeps ([`MAX_ENTRY_BYTES`]).
pub fn encode(content: &Cached, ttl: Duration, stored_ms: u64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.push(VERSION);
    out.extend_from_slice(&stored_ms.to_be_bytes());
    out.extend_from_slice(&ms(ttl.min(MAX_TTL)).to_be_bytes());
    match content {
        Cached::Response(r) => {
            out.reserve(r.body.len() + 64);
            out.push(KIND_RESPONSE);
            out.extend_from_slice(&r.status.to_be_bytes());
            put_bytes(&mut out, r.reason.as_bytes())?;
            put_u32(&mut out, r.headers.len())?;
            for (k, v) in &r.headers {
                put_bytes(&mut out, k.as_bytes())?;
                put_bytes(&mut out, v.as_bytes())?;
            }
            put_bytes(&mut out, &r.body)?;
        }
        Cached::Value(v) => {
            out.push(KIND_VALUE);
            encode_value(&mut out, v)?;
        }
    }
    (out.len() <= MAX_ENTRY_BYTES).then_some(out)
}

fn encode_value(out: &mut Vec<u8>, v: &Value) -> Option<()> {
    match v {
        Value::Null => out.push(T_NULL),
        Value::Bool(b) => {
            out.push(T_BOOL);
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            out.push(T_INT);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::Float(f) => {
            out.push(T_FLOAT);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Char(c) => {
            out.push(T_CHAR);
            out.extend_from_slice(&u32::from(*c).to_be_bytes());
        }
        Value::Str(s) => {
            out.push(T_STR);
            put_bytes(out, s.as_bytes())?;
        }
        Value::DateTime(d) => {
            out.push(T_DATETIME);
            put_datetime(out, d);
        }
        Value::DateTimeOffset(d, offset) => {
            out.push(T_DATETIMEOFFSET);
            put_datetime(out, d);
            out.extend_from_slice(&offset.to_be_bytes());
        }
        Value::TimeSpan(t) => {
            out.push(T_TIMESPAN);
            out.extend_from_slice(&t.0.to_be_bytes());
        }
        Value::Guid(g) => {
            out.push(T_GUID);
            out.extend_from_slice(&g.to_be_bytes());
        }
        Value::Json(j) => {
            out.push(T_JSON);
            let text = serde_json::to_vec(&json_to_serde(j)).ok()?;
            put_bytes(out, &text)?;
        }
        other => {
            out.push(T_STR);
            put_bytes(out, other.to_display().as_bytes())?;
        }
    }
    Some(())
}

fn put_datetime(out: &mut Vec<u8>, d: &DateTime) {
    out.extend_from_slice(&d.ticks.to_be_bytes());
    out.push(match d.kind {
        Kind::Unspecified => 0,
        Kind::Utc => 1,
        Kind::Local => 2,
    });
}

/// A bounds-checked reader over the byte form.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_be_bytes)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }

    fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_string)
    }

    fn datetime(&mut self) -> Option<DateTime> {
        let ticks = self.i64()?;
        let kind = match self.u8()? {
            0 => Kind::Unspecified,
            1 => Kind::Utc,
            2 => Kind::Local,
            _ => return None,
        };
        Some(DateTime { ticks, kind })
    }
}

/// The entry in `bytes` and its time left at `now_ms`; `None` when the
/// bytes are not a live entry of this version.
pub fn decode(bytes: &[u8], now_ms: u64) -> Option<(Cached, Duration)> {
    let mut r = Reader { b: bytes };
    if r.u8()? != VERSION {
        return None;
    }
    let stored = r.u64()?;
    let ttl = r.u64()?;
    // A clock behind the storing node's counts as no time elapsed.
    let left = ttl.checked_sub(now_ms.saturating_sub(stored))?;
    if left == 0 {
        return None;
    }
    let content = match r.u8()? {
        KIND_RESPONSE => {
            let status = r.u16()?;
            let reason = r.string()?;
            let n = usize::try_from(r.u32()?).ok()?;
            // Each header takes at least 8 bytes: a count beyond that is corrupt.
            if n > r.b.len() / 8 {
                return None;
            }
            let mut headers = Vec::with_capacity(n);
            for _ in 0..n {
                headers.push((r.string()?, r.string()?));
            }
            let body = Bytes::copy_from_slice(r.bytes()?);
            Cached::Response(CachedResponse {
                status,
                reason,
                headers,
                body,
            })
        }
        KIND_VALUE => Cached::Value(decode_value(&mut r)?),
        _ => return None,
    };
    if !r.b.is_empty() {
        return None;
    }
    Some((content, Duration::from_millis(left)))
}

fn decode_value(r: &mut Reader<'_>) -> Option<Value> {
    Some(match r.u8()? {
        T_NULL => Value::Null,
        T_BOOL => match r.u8()? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return None,
        },
        T_INT => Value::Int(r.i64()?),
        T_FLOAT => Value::Float(f64::from_bits(r.u64()?)),
        T_CHAR => Value::Char(char::from_u32(r.u32()?)?),
        T_STR => Value::Str(r.string()?.into()),
        T_DATETIME => Value::DateTime(r.datetime()?),
        T_DATETIMEOFFSET => {
            let d = r.datetime()?;
            let offset = i32::from_be_bytes(r.array()?);
            Value::DateTimeOffset(d, offset)
        }
        T_TIMESPAN => Value::TimeSpan(TimeSpan(r.i64()?)),
        T_GUID => Value::Guid(u128::from_be_bytes(r.array()?)),
        T_JSON => {
            let v: serde_json::Value = serde_json::from_slice(r.bytes()?).ok()?;
            Value::json(JNode::from_serde(&v))
        }
        _ => return None,
    })
}

/// The Redis key of a cache key (before `[redis] key_prefix`).
fn redis_key(key: &str) -> String {
    let mut k = String::with_capacity(6 + key.len());
    k.push_str("cache:");
    k.push_str(key);
    k
}

/// The external tier over the gateway's Redis connection.
#[derive(Debug, Clone)]
pub struct RedisCache {
    redis: Redis,
}

impl RedisCache {
    pub fn new(redis: Redis) -> RedisCache {
        RedisCache { redis }
    }
}

impl External for RedisCache {
    fn get<'a>(&'a self, key: &'a str) -> ExternalFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            // A failure was recorded and logged by `crate::redis`: a miss.
            match self.redis.get_bytes(&redis_key(key)).await {
                Ok(v) => v.map(Bytes::from),
                Err(_) => None,
            }
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: Bytes, ttl: Duration) -> ExternalFuture<'a, ()> {
        Box::pin(async move {
            let _ = self.redis.set_bytes(&redis_key(key), &value, ttl).await;
        })
    }

    fn del<'a>(&'a self, key: &'a str) -> ExternalFuture<'a, ()> {
        Box::pin(async move {
            let _ = self.redis.del(&redis_key(key)).await;
        })
    }
}

impl Cache {
    /// `cache` with `redis` as its external tier.
    pub fn with_redis(mut self, redis: Redis) -> Cache {
        self.external = Some(Arc::new(RedisCache::new(redis)));
        self
    }

    /// The live entry under `key` in the external tier and its time left;
    /// `None` on a miss, without an external tier, or when it fails.
    pub async fn fetch(&self, key: &str) -> Option<(Cached, Duration)> {
        let ext = self.external.as_ref()?;
        let bytes = ext.get(key).await?;
        decode(&bytes, now_ms())
    }

    /// The byte form to store under `key` in the external tier, or `None`
    /// when nothing is stored (a zero time to live, too large).
    pub fn external_entry(key: &str, content: &Cached, ttl: Duration) -> Option<Bytes> {
        if ttl.is_zero() {
            return None;
        }
        let bytes = encode(content, ttl, now_ms())?;
        (bytes.len() + key.len() <= MAX_ENTRY_BYTES).then(|| Bytes::from(bytes))
    }

    /// Stores the byte form under `key` in the external tier for `ttl`.
    pub async fn store(&self, key: &str, bytes: Bytes, ttl: Duration) {
        if let Some(ext) = &self.external {
            ext.set(key, bytes, ttl.min(MAX_TTL)).await;
        }
    }

    /// Stores `content` in the external tier in the background (the
    /// response is not held back for it). False when nothing is stored: no
    /// external tier, no runtime, a zero time to live, too large.
    pub fn store_later(&self, key: &str, content: &Cached, ttl: Duration) -> bool {
        let Some(ext) = self.external.clone() else {
            return false;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let Some(bytes) = Cache::external_entry(key, content, ttl) else {
            return false;
        };
        let key = key.to_string();
        rt.spawn(async move { ext.set(&key, bytes, ttl.min(MAX_TTL)).await });
        true
    }

    /// Removes `key` from the external tier.
    pub async fn delete(&self, key: &str) {
        if let Some(ext) = &self.external {
            ext.del(key).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp() -> Cached {
        Cached::Response(CachedResponse {
            status: 203,
            reason: "Non-Authoritative".into(),
            headers: vec![
                ("content-type".into(), "text/plain; charset=utf-8".into()),
                ("x-é".into(), "ünï".into()),
            ],
            body: Bytes::from_static(b"hello\0world"),
        })
    }

    fn round(v: Value) -> Value {
        let b = encode(&Cached::Value(v), Duration::from_secs(5), 1_000).unwrap();
        match decode(&b, 1_000).unwrap().0 {
            Cached::Value(v) => v,
            Cached::Response(_) => panic!("a response"),
        }
    }

    #[test]
    fn responses_round_trip_with_their_time_left() {
        let b = encode(&resp(), Duration::from_secs(60), 10_000).unwrap();
        assert_eq!(b[0], VERSION);
        let (c, left) = decode(&b, 25_000).unwrap();
        assert_eq!(left, Duration::from_secs(45));
        match (c, resp()) {
            (Cached::Response(a), Cached::Response(b)) => assert_eq!(a, b),
            _ => panic!("not a response"),
        }
        // Past its time to live: a miss.
        assert!(decode(&b, 70_000).is_none());
        // A reader whose clock is behind: the whole time to live.
        assert_eq!(decode(&b, 5_000).unwrap().1, Duration::from_secs(60));
    }

    #[test]
    fn values_round_trip_by_kind() {
        assert!(matches!(round(Value::Null), Value::Null));
        assert!(matches!(round(Value::Bool(true)), Value::Bool(true)));
        assert!(matches!(round(Value::Int(-42)), Value::Int(-42)));
        assert!(matches!(round(Value::Float(2.5)), Value::Float(f) if f == 2.5));
        assert!(matches!(round(Value::Char('ß')), Value::Char('ß')));
        assert!(matches!(round(Value::str("héllo")), Value::Str(s) if &*s == "héllo"));
        let d = DateTime {
            ticks: 638_000_000_000_000_000,
            kind: Kind::Utc,
        };
        assert!(matches!(round(Value::DateTime(d)), Value::DateTime(x) if x == d));
        assert!(
            matches!(round(Value::DateTimeOffset(d, -120)), Value::DateTimeOffset(x, -120) if x == d)
        );
        assert!(matches!(
            round(Value::TimeSpan(TimeSpan(12_345))),
            Value::TimeSpan(TimeSpan(12_345))
        ));
        assert!(matches!(round(Value::Guid(u128::MAX - 7)), Value::Guid(g) if g == u128::MAX - 7));
        let j = Value::json(JNode::from_serde(
            &serde_json::json!({"b": [1, "x"], "a": null}),
        ));
        match round(j) {
            Value::Json(j) => assert_eq!(
                serde_json::to_string(&json_to_serde(&j)).unwrap(),
                r#"{"b":[1,"x"],"a":null}"#
            ),
            other => panic!("{other:?}"),
        }
        // A list is kept as its text, as the internal tier does.
        let l = Value::new_list(vec![Value::Int(1)]);
        let text = l.to_display();
        assert!(matches!(round(l), Value::Str(s) if *s == *text));
    }

    #[test]
    fn corrupt_and_unknown_bytes_are_misses() {
        let good = encode(&resp(), Duration::from_secs(60), 0).unwrap();
        assert!(decode(&good, 0).is_some());
        // Every truncation, and trailing bytes.
        for n in 0..good.len() {
            assert!(decode(&good[..n], 0).is_none(), "truncated at {n}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(decode(&long, 0).is_none());
        // Another version, another kind, a bad value tag.
        let mut v2 = good.clone();
        v2[0] = 2;
        assert!(decode(&v2, 0).is_none());
        let mut kind = good.clone();
        kind[17] = b'X';
        assert!(decode(&kind, 0).is_none());
        let mut tag = encode(&Cached::Value(Value::Int(1)), Duration::from_secs(9), 0).unwrap();
        tag[18] = 200;
        assert!(decode(&tag, 0).is_none());
        // A huge header count does not allocate or panic.
        let mut count = good.clone();
        let at = 1 + 16 + 1 + 2 + 4 + "Non-Authoritative".len();
        count[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&count, 0).is_none());
        // Noise.
        for seed in 0u32..200 {
            let noise: Vec<u8> = (0..(seed % 64))
                .map(|i| (seed.wrapping_mul(2_654_435_761).wrapping_add(i * 97) >> 7) as u8)
                .collect();
            let _ = decode(&noise, 0);
        }
        assert!(decode(b"", 0).is_none());
        assert!(decode(b"not a cache entry", 0).is_none());
    }

    #[test]
    fn oversized_and_zero_ttl_entries_are_not_stored() {
        let big = Cached::Response(CachedResponse {
            status: 200,
            reason: String::new(),
            headers: Vec::new(),
            body: Bytes::from(vec![b'x'; MAX_ENTRY_BYTES]),
        });
        assert!(Cache::external_entry("k", &big, Duration::from_secs(5)).is_none());
        assert!(Cache::external_entry("k", &resp(), Duration::ZERO).is_none());
        assert!(Cache::external_entry("k", &resp(), Duration::from_secs(5)).is_some());
        // Without an external tier nothing is stored.
        assert!(!Cache::new(1 << 20).store_later("k", &resp(), Duration::from_secs(5)));
    }
}

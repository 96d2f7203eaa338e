//! The Redis client the gateway shares state through (`[redis] url`).
//!
//! Owns: the one multiplexed connection (the `redis` crate's
//! `ConnectionManager`, created lazily so start-up never waits for Redis),
//! a per-call timeout (`[redis] timeout`), the key prefix
//! (`[redis] key_prefix`), and the health state: when a call fails on the
//! network or times out, Redis is marked **down**, an error is logged (and
//! repeated at most every 30 s while it stays down), and callers are told
//! at once ([`Error::Down`]) so they fall back to local work instead of
//! waiting; a background task probes with `PING` every second and marks it
//! up again (logged) when it answers.
//!
//! Users: the shared counters (`policy::counters`) run Lua scripts through
//! [`Redis::script`]; [`Redis::get_bytes`], [`Redis::set_bytes`] and
//! [`Redis::del`] are the byte helpers an external cache uses. Every key
//! given to this module is prefixed here. The URL (which may hold a
//! password) is never logged; logs name only `host:port`.
//!
//! Imports nothing of the crate but `config` and `error`.

use crate::config;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often an outage is logged again while it lasts.
const LOG_EVERY: Duration = Duration::from_secs(30);
/// How often a down Redis is probed.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Why a Redis call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis is known to be unreachable; nothing was sent.
    #[error("redis is unreachable")]
    Down,
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
}

/// A handle on the shared Redis connection; cheap to clone.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    timeout: Duration,
    prefix: String,
    /// `host:port[/db]` for logs (no credentials).
    addr: String,
    up: AtomicBool,
    probing: AtomicBool,
    /// Milliseconds since `epoch` of the last outage log (0: never).
    logged: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("addr", &self.inner.addr)
            .field("up", &self.is_up())
            .finish()
    }
}

/// `host:port[/db]` of a `redis://` URL, without user and password.
pub fn redacted(url: &str) -> String {
    let rest = url.strip_prefix("redis://").unwrap_or(url);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('?').next().unwrap_or("").to_string()
}

impl Redis {
    /// A client for `[redis]`, or `None` when no URL is configured. Must be
    /// called inside the Tokio runtime; connects lazily and probes once in
    /// the background, so a Redis that is down at start-up is logged, not
    /// fatal.
    pub fn from_config(cfg: &config::Redis) -> Result<Option<Redis>, String> {
        let Some(url) = &cfg.url else {
            return Ok(None);
        };
        let addr = redacted(url.expose());
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return Err(format!("redis ({addr}): needs the async runtime"));
        };
        let client =
            ::redis::Client::open(url.expose()).map_err(|e| format!("redis.url ({addr}): {e}"))?;
        let mcfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.timeout))
            .set_response_timeout(Some(cfg.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, mcfg)
            .map_err(|e| format!("redis ({addr}): {e}"))?;
        let r = Redis {
            inner: Arc::new(Inner {
                conn,
                timeout: cfg.timeout,
                prefix: cfg.key_prefix.clone(),
                addr,
                up: AtomicBool::new(true),
                probing: AtomicBool::new(false),
                logged: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
        };
        let probe = r.clone();
        rt.spawn(async move {
            match probe.ping().await {
                Ok(()) => {
                    tracing::info!(redis = %probe.inner.addr, "redis connected: rate limits, quotas and the external cache are shared")
                }
                Err(Error::Down) => {}
                Err(e) => probe.failed(&e),
            }
        });
        Ok(Some(r))
    }

    /// Whether calls currently go to Redis.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    /// `prefix + key`.
    pub fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.inner.prefix.len() + key.len());
        k.push_str(&self.inner.prefix);
        k.push_str(key);
        k
    }

    /// Runs `cmd` with the timeout, recording failures in the health state.
    async fn run<T: ::redis::FromRedisValue>(&self, cmd: &::redis::Cmd) -> Result<T, Error> {
        if !self.is_up() {
            return Err(Error::Down);
        }
        let mut conn = self.inner.conn.clone();
        let r = tokio::time::timeout(self.inner.timeout, cmd.query_async::<T>(&mut conn)).await;
        self.settle(r)
    }

    fn settle<T>(
        &self,
        r: Result<Result<T, ::redis::RedisError>, tokio::time::error::Elapsed>,
    ) -> Result<T, Error> {
        let e = match r {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => Error::Redis(e),
            Err(_) => Error::Timeout(self.inner.timeout),
        };
        self.failed(&e);
        Err(e)
    }

    /// Evaluates a Lua script (`EVALSHA`, loading it on `NOSCRIPT`) on
    /// `keys` (prefixed here) and `args`.
    pub async fn script<T: ::redis::FromRedisValue>(
        &self,
        script: &::redis::Script,
        keys: &[String],
        args: &[i64],
    ) -> Result<T, Error> {
        if !self.is_up() {
            return Err(Error::Down);
        }
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(self.key(k));
        }
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.inner.conn.clone();
        let r = tokio::time::timeout(self.inner.timeout, inv.invoke_async::<T>(&mut conn)).await;
        self.settle(r)
    }

    /// `GET prefix+key` as bytes.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(self.key(key));
        self.run(&cmd).await
    }

    /// `SET prefix+key value PX ttl` (a zero `ttl` keeps it 1 ms).
    pub async fn set_bytes(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), Error> {
        let mut cmd = ::redis::cmd("SET");
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        cmd.arg(self.key(key)).arg(value).arg("PX").arg(ms);
        self.run::<()>(&cmd).await
    }

    /// `DEL prefix+key`; true if something was removed.
    pub async fn del(&self, key: &str) -> Result<bool, Error> {
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(self.key(key));
        self.run::<i64>(&cmd).await.map(|n| n > 0)
    }

    /// `PING`, bypassing the health state.
    async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.inner.conn.clone();
        let cmd = ::redis::cmd("PING");
        match tokio::time::timeout(self.inner.timeout, cmd.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::Redis(e)),
            Err(_) => Err(Error::Timeout(self.inner.timeout)),
        }
    }

    /// Records a failed call: a reply error (the server answered) is
    /// logged; a network failure or timeout marks Redis down and starts the
    /// probe. Logged loudly, at most every 30 s.
    pub fn failed(&self, e: &Error) {
        let network = match e {
            Error::Down => return,
            Error::Timeout(_) => true,
            Error::Redis(r) => {
                r.is_io_error()
                    || r.is_timeout()
                    || r.is_connection_dropped()
                    || r.is_connection_refusal()
                    || r.is_unrecoverable_error()
            }
        };
        if !network {
            if self.should_log() {
                tracing::error!(redis = %self.inner.addr, error = %e, "redis call failed; counted locally (or a cache miss) for this call");
            }
            return;
        }
        let was_up = self.inner.up.swap(false, Ordering::Relaxed);
        if was_up || self.should_log() {
            if was_up {
                self.mark_logged();
            }
            tracing::error!(
                redis = %self.inner.addr,
                error = %e,
                "REDIS UNREACHABLE: rate limits and quotas are counted per node and the external cache misses until it answers again"
            );
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            if !self.inner.probing.swap(true, Ordering::AcqRel) {
                let me = self.clone();
                rt.spawn(async move { me.probe().await });
            }
        }
    }

    async fn probe(self) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            match self.ping().await {
                Ok(()) => {
                    self.inner.probing.store(false, Ordering::Release);
                    self.inner.up.store(true, Ordering::Relaxed);
                    tracing::warn!(redis = %self.inner.addr, "redis reachable again: rate limits, quotas and the external cache are shared again");
                    return;
                }
                Err(e) => {
                    if self.should_log() {
                        tracing::error!(
                            redis = %self.inner.addr,
                            error = %e,
                            "REDIS STILL UNREACHABLE: rate limits and quotas are counted per node, the external cache misses"
                        );
                    }
                }
            }
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn mark_logged(&self) {
        self.inner.logged.store(self.now_ms(), Ordering::Relaxed);
    }

    /// True at most once per `LOG_EVERY` (claims the slot).
    fn should_log(&self) -> bool {
        let now = self.now_ms();
        let last = self.inner.logged.load(Ordering::Relaxed);
        let every = LOG_EVERY.as_millis() as u64;
        (last == 0 || now.saturating_sub(last) >= every)
            && self
                .inner
                .logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redacted("redis://127.0.0.1:6379/2"), "127.0.0.1:6379/2");
        assert_eq!(redacted("redis://:s3cret@h:1"), "h:1");
        assert_eq!(redacted("redis://u:p@ss@h:1/0?x=1"), "h:1/0");
    }
}

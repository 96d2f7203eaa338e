//! Counters for `rate-limit`, `quota` and `limit-concurrency` (and their
//! `-by-key` forms): in-process ([`Counters::Local`], the default) or
//! shared by every gateway using one Redis ([`Counters::Redis`], when
//! `[redis] url` is set; see `counters/shared.rs`).
//!
//! The local store is sharded: `SHARDS` `std::sync::Mutex<HashMap>`s,
//! chosen by the key's hash, each held only for one map operation (never
//! across an `.await`). Three kinds of entry:
//!
//! - **sliding log** (rate limits): the hits of the last `renewal-period` as
//!   `(instant, count)` pairs; a check prunes what has left the window, so
//!   counts and `Retry-After` are exact to a thousandth of the period (hits
//!   that close together share an entry, so a log holds at most about 1000
//!   entries; refused hits are not logged).
//! - **fixed window** (quotas): calls and bytes in the current window,
//!   windows aligned to an anchor (`first-period-start`, or the first use).
//! - **gauge** (concurrency): in-flight count, decremented by [`Permit`]'s
//!   drop and removed at zero.
//!
//! Expired entries are reclaimed on access: each shard sweeps itself at
//! most once per `SWEEP_EVERY` when it is touched, so memory follows the
//! set of keys seen in the last window without a background task.
//!
//! The gateway creates one `Counters` and hands it to every request's
//! `State`, so counts survive configuration changes (snapshot swaps).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SHARDS: usize = 32;
const SWEEP_EVERY: Duration = Duration::from_secs(5);

mod shared;
pub use shared::{parse_quota_reply, parse_rate_reply, QuotaCheck, RateCheck, Shared};

/// The counter store. One per gateway process.
#[derive(Debug)]
pub enum Counters {
    Local(Local),
    /// Rate limits and quotas in Redis (one script call per check), with
    /// the in-process store counting whenever Redis cannot answer;
    /// concurrency stays in-process.
    Redis(Shared),
}

impl Default for Counters {
    fn default() -> Self {
        Counters::Local(Local::new())
    }
}

/// What a rate-limit check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Allowed; `remaining` calls are left in the window after this one.
    Allowed { remaining: u64 },
    /// Refused; a slot frees in `retry_after`.
    Refused { retry_after: Duration },
}

/// Quota limits of one counter (either may be absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    pub calls: Option<u64>,
    /// Bytes (the policy's `bandwidth` is in KB).
    pub bytes: Option<u64>,
}

/// How a quota's windows are laid out (seconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Window length; 0 means one window for ever.
    pub period: f64,
    /// Where windows start; `None`: at the counter's first use.
    pub anchor: Option<f64>,
}

/// What a quota check decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quota {
    Allowed,
    /// Out of calls (`bandwidth` false) or bytes; the window renews in
    /// `renews_in` (`None` for a lifetime quota).
    Refused {
        bandwidth: bool,
        renews_in: Option<Duration>,
    },
}

impl Counters {
    pub fn local() -> Counters {
        Counters::default()
    }

    /// Counters shared through `redis`.
    pub fn shared(redis: crate::redis::Redis) -> Counters {
        Counters::Redis(Shared::new(redis))
    }

    /// Whether checks go to Redis (and so must be awaited: the pipeline
    /// runs the counting policies through [`Counters::rate_all`] and
    /// [`Counters::quota_all`] then).
    pub fn is_shared(&self) -> bool {
        matches!(self, Counters::Redis(_))
    }

    /// Checks every rate limit of one policy in one round trip; when all
    /// allow and `record` is set, records each check's `add`. `Allowed`
    /// carries what was left before this call (as [`Counters::rate`]).
    pub async fn rate_all(&self, checks: &[RateCheck], record: bool) -> Vec<Rate> {
        match self {
            Counters::Local(l) => l.rate_all(checks, record, Instant::now()),
            Counters::Redis(s) => s.rate_all(checks, record).await,
        }
    }

    /// Checks every quota of one policy in one round trip; when all allow,
    /// records the calls of the checks marked `record`.
    pub async fn quota_all(&self, checks: &[QuotaCheck]) -> Vec<Quota> {
        match self {
            Counters::Local(l) => l.quota_all(checks, unix_now()),
            Counters::Redis(s) => s.quota_all(checks).await,
        }
    }

    /// The synchronous checks below count in process, also for
    /// [`Counters::Redis`] (where the pipeline awaits [`Counters::rate_all`]
    /// and [`Counters::quota_all`] instead); `rate_add` and `quota_add` on
    /// `Redis` send the increment to Redis in a spawned task.
    ///
    /// Sliding window of `period`: allows `add` more hits if the window
    /// holds at most `limit - add`; records them when `record` is set.
    /// `add` 0 only checks that the window is not over its limit (a key
    /// this request has already counted).
    pub fn rate(&self, key: &str, limit: u64, period: Duration, add: u64, record: bool) -> Rate {
        match self {
            Counters::Local(l) => l.rate(key, limit, period, add, record, Instant::now()),
            Counters::Redis(s) => s
                .local
                .rate(key, limit, period, add, record, Instant::now()),
        }
    }

    /// Records `add` hits in a sliding window (after the response).
    pub fn rate_add(&self, key: &str, period: Duration, add: u64) {
        match self {
            Counters::Local(l) => l.rate_add(key, period, add, Instant::now()),
            Counters::Redis(s) => s.rate_add(key, period, add),
        }
    }

    /// Checks a fixed-window quota, adding `calls`/`bytes` when `record`.
    pub fn quota(
        &self,
        key: &str,
        limits: QuotaLimits,
        window: Window,
        calls: u64,
        bytes: u64,
        record: bool,
    ) -> Quota {
        match self {
            Counters::Local(l) => l.quota(key, limits, window, calls, bytes, record, unix_now()),
            Counters::Redis(s) => {
                s.local
                    .quota(key, limits, window, calls, bytes, record, unix_now())
            }
        }
    }

    /// Adds to a fixed-window quota counter (after the response).
    pub fn quota_add(&self, key: &str, window: Window, calls: u64, bytes: u64) {
        match self {
            Counters::Redis(s) => s.quota_add(key, window, calls, bytes),
            Counters::Local(l) => {
                l.quota(
                    key,
                    QuotaLimits {
                        calls: None,
                        bytes: None,
                    },
                    window,
                    calls,
                    bytes,
                    true,
                    unix_now(),
                );
            }
        }
    }

    /// Takes one of `max` concurrent slots of `key`, or `None` when full.
    pub fn acquire(self: &Arc<Self>, key: &str, max: u64) -> Option<Permit> {
        let ok = match &**self {
            Counters::Local(l) => l.acquire(key, max),
            Counters::Redis(s) => s.local.acquire(key, max),
        };
        ok.then(|| Permit {
            counters: self.clone(),
            key: key.to_string(),
        })
    }

    fn release(&self, key: &str) {
        match self {
            Counters::Local(l) => l.release(key),
            Counters::Redis(s) => s.local.release(key),
        }
    }

    /// How many counters are held (tests, diagnostics).
    pub fn len(&self) -> usize {
        match self {
            Counters::Local(l) => l.len(),
            Counters::Redis(s) => s.local.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A held concurrency slot; dropping it gives the slot back, however the
/// request ends.
#[derive(Debug)]
pub struct Permit {
    counters: Arc<Counters>,
    key: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.counters.release(&self.key);
    }
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Debug)]
enum Entry {
    Log {
        hits: VecDeque<(Instant, u64)>,
        total: u64,
        period: Duration,
    },
    Fixed {
        start: f64,
        period: f64,
        calls: u64,
        bytes: u64,
    },
    Gauge(u64),
}

/// Drops the hits older than `period`.
fn prune(hits: &mut VecDeque<(Instant, u64)>, total: &mut u64, period: Duration, now: Instant) {
    while let Some(&(t, n)) = hits.front() {
        if now.saturating_duration_since(t) >= period {
            hits.pop_front();
            *total -= n;
        } else {
            break;
        }
    }
}

/// Logs `add` hits at `now`. Hits less than `period / 1000` after the
/// newest one join it, so a key's log holds at most about 1000 entries
/// (a hit may leave the window up to a thousandth of a period early).
fn push(
    hits: &mut VecDeque<(Instant, u64)>,
    total: &mut u64,
    period: Duration,
    now: Instant,
    add: u64,
) {
    match hits.back_mut() {
        Some((t, n)) if now.saturating_duration_since(*t) < period / 1000 => *n += add,
        _ => hits.push_back((now, add)),
    }
    *total += add;
}

impl Entry {
    fn expired(&mut self, now: Instant, unix: f64) -> bool {
        match self {
            Entry::Log {
                hits,
                total,
                period,
            } => {
                prune(hits, total, *period, now);
                hits.is_empty()
            }
            Entry::Fixed { start, period, .. } => *period > 0.0 && unix >= *start + *period,
            Entry::Gauge(n) => *n == 0,
        }
    }
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<String, Entry>,
    swept: Option<Instant>,
}

/// The in-process store.
#[derive(Debug)]
pub struct Local {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for Local {
    fn default() -> Self {
        Local::new()
    }
}

impl Local {
    pub fn new() -> Local {
        Local {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    fn shard(&self, key: &str, now: Instant) -> MutexGuard<'_, Shard> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let i = (h.finish() as usize) % self.shards.len();
        // A panic while holding a shard leaves counts usable.
        let mut g = self.shards[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if g.swept
            .is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_EVERY)
        {
            g.swept = Some(now);
            let unix = unix_now();
            g.map.retain(|_, e| !e.expired(now, unix));
        }
        g
    }

    /// Removes every expired entry now (tests; normally done on access).
    pub fn sweep_at(&self, now: Instant, unix: f64) {
        for s in self.shards.iter() {
            let mut g = s.lock().unwrap_or_else(|p| p.into_inner());
            g.swept = Some(now);
            g.map.retain(|_, e| !e.expired(now, unix));
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).map.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn rate(
        &self,
        key: &str,
        limit: u64,
        period: Duration,
        add: u64,
        record: bool,
        now: Instant,
    ) -> Rate {
        let mut g = self.shard(key, now);
        // Look up before inserting: the hot path allocates no key.
        if !matches!(g.map.get(key), Some(Entry::Log { .. })) {
            g.map.insert(
                key.to_string(),
                Entry::Log {
                    hits: VecDeque::new(),
                    total: 0,
                    period,
                },
            );
        }
        let Some(Entry::Log {
            hits,
            total,
            period: p,
        }) = g.map.get_mut(key)
        else {
            return Rate::Allowed { remaining: limit };
        };
        // The longest period using the key decides how long hits are kept.
        *p = (*p).max(period);
        prune(hits, total, *p, now);
        let in_window = |t: Instant| now.saturating_duration_since(t) < period;
        // One period per key (the usual case): the running total is exact.
        let count: u64 = if *p == period {
            *total
        } else {
            hits.iter()
                .filter(|(t, _)| in_window(*t))
                .map(|(_, n)| *n)
                .sum()
        };
        if count + add > limit {
            // A slot frees when enough of the oldest hits leave the window.
            let mut need = (count + add).saturating_sub(limit);
            let mut wait = period;
            for (t, n) in hits.iter().filter(|(t, _)| in_window(*t)) {
                if need <= *n {
                    wait = period.saturating_sub(now.saturating_duration_since(*t));
                    break;
                }
                need -= n;
            }
            return Rate::Refused { retry_after: wait };
        }
        if record && add > 0 {
            push(hits, total, period, now, add);
        }
        let used = count + if record { add } else { 0 };
        Rate::Allowed {
            remaining: limit.saturating_sub(used),
        }
    }

    pub fn rate_add(&self, key: &str, period: Duration, add: u64, now: Instant) {
        if add == 0 {
            return;
        }
        let mut g = self.shard(key, now);
        let e = g.map.entry(key.to_string()).or_insert_with(|| Entry::Log {
            hits: VecDeque::new(),
            total: 0,
            period,
        });
        if let Entry::Log {
            hits,
            total,
            period: p,
        } = e
        {
            *p = (*p).max(period);
            push(hits, total, period, now, add);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn quota(
        &self,
        key: &str,
        limits: QuotaLimits,
        window: Window,
        calls: u64,
        bytes: u64,
        record: bool,
        unix: f64,
    ) -> Quota {
        let first_start = match window.anchor {
            Some(a) if window.period > 0.0 => {
                a + ((unix - a) / window.period).floor() * window.period
            }
            Some(a) => a,
            None => unix,
        };
        let mut g = self.shard(key, Instant::now());
        if !matches!(g.map.get(key), Some(Entry::Fixed { .. })) {
            g.map.insert(
                key.to_string(),
                Entry::Fixed {
                    start: first_start,
                    period: window.period,
                    calls: 0,
                    bytes: 0,
                },
            );
        }
        let Some(Entry::Fixed {
            start,
            period,
            calls: c,
            bytes: b,
        }) = g.map.get_mut(key)
        else {
            return Quota::Allowed;
        };
        *period = window.period;
        if *period > 0.0 && unix >= *start + *period {
            *start += ((unix - *start) / *period).floor() * *period;
            *c = 0;
            *b = 0;
        }
        let renews_in =
            (*period > 0.0).then(|| Duration::from_secs_f64((*start + *period - unix).max(0.0)));
        if limits.calls.is_some_and(|l| *c + calls > l) {
            return Quota::Refused {
                bandwidth: false,
                renews_in,
            };
        }
        if limits.bytes.is_some_and(|l| *b >= l) {
            return Quota::Refused {
                bandwidth: true,
                renews_in,
            };
        }
        if record {
            *c += calls;
            *b += bytes;
        }
        Quota::Allowed
    }

    /// [`Counters::rate_all`] in process: every check, then the records
    /// when all allow.
    pub fn rate_all(&self, checks: &[RateCheck], record: bool, now: Instant) -> Vec<Rate> {
        let out: Vec<Rate> = checks
            .iter()
            .map(|c| self.rate(&c.key, c.limit, c.period, c.add, false, now))
            .collect();
        if record && out.iter().all(|r| matches!(r, Rate::Allowed { .. })) {
            for c in checks {
                self.rate_add(&c.key, c.period, c.add, now);
            }
        }
        out
    }

    /// [`Counters::quota_all`] in process.
    pub fn quota_all(&self, checks: &[QuotaCheck], unix: f64) -> Vec<Quota> {
        let out: Vec<Quota> = checks
            .iter()
            .map(|c| self.quota(&c.key, c.limits, c.window, c.calls, 0, false, unix))
            .collect();
        if out.iter().all(|q| *q == Quota::Allowed) {
            let none = QuotaLimits {
                calls: None,
                bytes: None,
            };
            for c in checks.iter().filter(|c| c.record) {
                self.quota(&c.key, none, c.window, c.calls, 0, true, unix);
            }
        }
        out
    }

    pub fn acquire(&self, key: &str, max: u64) -> bool {
        let mut g = self.shard(key, Instant::now());
        let e = g.map.entry(key.to_string()).or_insert(Entry::Gauge(0));
        match e {
            Entry::Gauge(n) if *n < max => {
                *n += 1;
                true
            }
            Entry::Gauge(_) => false,
            other => {
                *other = Entry::Gauge(1);
                max >= 1
            }
        }
    }

    fn release(&self, key: &str) {
        let mut g = self.shard(key, Instant::now());
        if let Some(Entry::Gauge(n)) = g.map.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                g.map.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn sliding_log_refuses_past_the_limit_and_slides() {
        let l = Local::new();
        let t0 = Instant::now();
        for i in 0..3 {
            let r = l.rate("k", 3, 10 * S, 1, true, t0 + i * S);
            assert_eq!(
                r,
                Rate::Allowed {
                    remaining: 2 - i as u64
                }
            );
        }
        // The oldest hit (t0) leaves the window at t0 + 10 s.
        assert_eq!(
            l.rate("k", 3, 10 * S, 1, true, t0 + 4 * S),
            Rate::Refused { retry_after: 6 * S }
        );
        // Refused hits are not recorded: at t0 + 10 s one slot is free.
        assert_eq!(
            l.rate("k", 3, 10 * S, 1, true, t0 + 10 * S),
            Rate::Allowed { remaining: 0 }
        );
        assert!(matches!(
            l.rate("k", 3, 10 * S, 1, true, t0 + 10 * S),
            Rate::Refused { .. }
        ));
        // Other keys are counted apart.
        assert_eq!(
            l.rate("other", 3, 10 * S, 1, true, t0),
            Rate::Allowed { remaining: 2 }
        );
    }

    #[test]
    fn close_hits_share_a_log_entry() {
        let l = Local::new();
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        for i in 0..1000 {
            assert!(matches!(
                l.rate("k", 1000, 100 * S, 1, true, t0 + i * ms / 100),
                Rate::Allowed { .. }
            ));
        }
        let g = l.shards.iter().find_map(|s| {
            let g = s.lock().unwrap();
            match g.map.get("k") {
                Some(Entry::Log { hits, total, .. }) => Some((hits.len(), *total)),
                _ => None,
            }
        });
        assert_eq!(g, Some((1, 1000)));
        assert_eq!(
            l.rate("k", 1000, 100 * S, 1, true, t0 + S),
            Rate::Refused {
                retry_after: 99 * S
            }
        );
    }

    #[test]
    fn increment_count_and_deferred_adds() {
        let l = Local::new();
        let t0 = Instant::now();
        assert_eq!(
            l.rate("k", 5, 10 * S, 3, true, t0),
            Rate::Allowed { remaining: 2 }
        );
        // A check without recording, then the add after the response.
        assert_eq!(
            l.rate("k", 5, 10 * S, 2, false, t0 + S),
            Rate::Allowed { remaining: 2 }
        );
        l.rate_add("k", 10 * S, 2, t0 + S);
        // 5 used: a request of 1 waits until the first 3 leave (t0 + 10 s).
        assert_eq!(
            l.rate("k", 5, 10 * S, 1, true, t0 + 2 * S),
            Rate::Refused { retry_after: 8 * S }
        );
    }

    #[test]
    fn fixed_windows_align_to_the_anchor_and_reset() {
        let l = Local::new();
        let limits = QuotaLimits {
            calls: Some(2),
            bytes: None,
        };
        let w = Window {
            period: 100.0,
            anchor: Some(0.0),
        };
        assert_eq!(l.quota("q", limits, w, 1, 0, true, 1050.0), Quota::Allowed);
        assert_eq!(l.quota("q", limits, w, 1, 0, true, 1060.0), Quota::Allowed);
        assert_eq!(
            l.quota("q", limits, w, 1, 0, true, 1070.0),
            Quota::Refused {
                bandwidth: false,
                renews_in: Some(Duration::from_secs(30))
            }
        );
        // The next window starts at 1100.
        assert_eq!(l.quota("q", limits, w, 1, 0, true, 1100.0), Quota::Allowed);
        // Bandwidth: refused once the bytes reach the limit.
        let b = QuotaLimits {
            calls: None,
            bytes: Some(1000),
        };
        assert_eq!(l.quota("b", b, w, 1, 1500, true, 10.0), Quota::Allowed);
        assert!(matches!(
            l.quota("b", b, w, 1, 10, true, 20.0),
            Quota::Refused {
                bandwidth: true,
                ..
            }
        ));
        // Without an anchor, windows start at first use.
        let fu = Window {
            period: 100.0,
            anchor: None,
        };
        assert_eq!(l.quota("f", limits, fu, 1, 0, true, 1050.0), Quota::Allowed);
        assert_eq!(l.quota("f", limits, fu, 1, 0, true, 1051.0), Quota::Allowed);
        assert_eq!(
            l.quota("f", limits, fu, 1, 0, true, 1140.0),
            Quota::Refused {
                bandwidth: false,
                renews_in: Some(Duration::from_secs(10))
            }
        );
    }

    #[test]
    fn expired_entries_are_reclaimed() {
        let l = Local::new();
        let t0 = Instant::now();
        for i in 0..100 {
            l.rate(&format!("k{i}"), 5, S, 1, true, t0);
        }
        assert_eq!(l.len(), 100);
        l.sweep_at(t0 + S / 2, unix_now());
        assert_eq!(l.len(), 100);
        l.sweep_at(t0 + 2 * S, unix_now());
        assert_eq!(l.len(), 0);
        let w = Window {
            period: 10.0,
            anchor: Some(0.0),
        };
        let none = QuotaLimits {
            calls: None,
            bytes: None,
        };
        l.quota("q", none, w, 1, 0, true, unix_now());
        l.sweep_at(Instant::now(), unix_now() + 20.0);
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn permits_are_released_on_drop() {
        let c = Arc::new(Counters::local());
        let a = c.acquire("k", 2);
        let b = c.acquire("k", 2);
        assert!(a.is_some() && b.is_some());
        assert!(c.acquire("k", 2).is_none());
        drop(a);
        let again = c.acquire("k", 2);
        assert!(again.is_some());
        drop((b, again));
        assert!(c.is_empty());
    }
}

//! Backend runtime: circuit breakers and pool selection.
//!
//! Owns: the gateway's `Registry` of per-backend runtime state (breaker
//! failure windows and trips, a pool's round-robin cursor), keyed by
//! backend id and reset when the backend's definition changes; picking the
//! member of a pool (lowest priority number first, weighted round-robin
//! among the group's members whose breaker is closed); refusing a request
//! to an open breaker with 503 and `Retry-After`; and the credentials a
//! backend adds to the outgoing request.
//!
//! **Invariants:** the registry is sharded and each shard is locked for
//! one map operation; a backend's breaker mutex is held for a few
//! arithmetic steps; nothing is locked across an await.

// `PolicyError` travels only on the failure path.
#![allow(clippy::result_large_err)]

use crate::expr::context::{Url, COMPONENT};
use crate::policy::builtin::PolicyError;
use crate::snapshot::backends::{BackendDef, Backends, BreakerRule, Kind, Member};
use http::HeaderMap;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
/// Buckets a breaker rule's interval is divided into.
const BUCKETS: u32 = 20;

/// Per-backend runtime state, owned by the gateway.
#[derive(Default)]
pub struct Registry {
    shards: [Mutex<HashMap<String, Arc<Runtime>>>; SHARDS],
}

/// One backend's runtime state.
pub struct Runtime {
    fingerprint: u64,
    breaker: Mutex<Breaker>,
    cursor: AtomicU64,
}

#[derive(Default)]
struct Breaker {
    open_until: Option<Instant>,
    /// Per rule: `(bucket start, requests, failures)`, oldest first.
    windows: Vec<VecDeque<(Instant, u32, u32)>>,
}

/// What happened to one backend call.
pub enum Outcome<'a> {
    /// A response: its status and `Retry-After` when it sent one.
    Status(u16, Option<Duration>),
    /// No response; the gateway's reason (`BackendConnectionFailure`, `Timeout`).
    Error(&'a str),
}

impl Registry {
    /// The runtime of `def`, fresh when the definition changed.
    pub fn runtime(&self, def: &BackendDef) -> Arc<Runtime> {
        let shard = &self.shards[shard_of(&def.id)];
        let mut map = match shard.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        match map.get(&def.id) {
            Some(rt) if rt.fingerprint == def.fingerprint => rt.clone(),
            _ => {
                let rt = Arc::new(Runtime {
                    fingerprint: def.fingerprint,
                    breaker: Mutex::default(),
                    cursor: AtomicU64::new(0),
                });
                map.insert(def.id.clone(), rt.clone());
                rt
            }
        }
    }
}

impl Registry {
    /// Every backend with runtime state (used since its definition last
    /// changed) and whether its breaker is open now, sorted by id. Reads
    /// only: an expired trip reads as closed.
    pub fn breaker_states(&self, now: Instant) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let map = match shard.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            for (id, rt) in map.iter() {
                let open = rt.breaker().open_until.is_some_and(|u| u > now);
                out.push((id.clone(), open));
            }
        }
        out.sort();
        out
    }
}

fn shard_of(id: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

impl Runtime {
    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        match self.breaker.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        }
    }

    /// How long the breaker stays open, or `None` when it is closed (an
    /// expired trip closes it, with a fresh window).
    pub fn open_for(&self, now: Instant) -> Option<Duration> {
        let mut b = self.breaker();
        match b.open_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                b.open_until = None;
                b.windows.iter_mut().for_each(VecDeque::clear);
                None
            }
            None => None,
        }
    }

    /// Counts one call against `rules`; trips the breaker when a rule's
    /// condition is met. Returns whether it tripped.
    pub fn record(&self, rules: &[BreakerRule], outcome: Outcome<'_>, now: Instant) -> bool {
        if rules.is_empty() {
            return false;
        }
        let mut b = self.breaker();
        if b.open_until.is_some_and(|u| u > now) {
            return false;
        }
        if b.windows.len() != rules.len() {
            b.windows = vec![VecDeque::new(); rules.len()];
        }
        let mut trip: Option<Duration> = None;
        for (rule, window) in rules.iter().zip(b.windows.iter_mut()) {
            let (failed, retry_after) = match &outcome {
                Outcome::Status(s, ra) => (rule.status_fails(*s), *ra),
                Outcome::Error(reason) => (rule.error_fails(reason), None),
            };
            let width = (rule.interval / BUCKETS).max(Duration::from_millis(1));
            while window
                .front()
                .is_some_and(|(start, _, _)| now.duration_since(*start) >= rule.interval)
            {
                window.pop_front();
            }
            match window.back_mut() {
                Some((start, total, fails)) if now.duration_since(*start) < width => {
                    *total += 1;
                    *fails += u32::from(failed);
                }
                _ => window.push_back((now, 1, u32::from(failed))),
            }
            if !failed {
                continue;
            }
            let (total, fails) = window.iter().fold((0u64, 0u64), |(t, f), w| {
                (t + u64::from(w.1), f + u64::from(w.2))
            });
            let by_count = rule.count.is_some_and(|c| fails >= u64::from(c));
            let by_share = rule.percentage.is_some_and(|p| {
                // With a count too, the count is the least number of
                // failures the percentage needs.
                fails * 100 >= u64::from(p) * total && fails >= u64::from(rule.count.unwrap_or(1))
            });
            if by_count || by_share {
                let d = match retry_after {
                    Some(ra) if rule.accept_retry_after => ra,
                    _ => rule.trip,
                };
                trip = Some(trip.map_or(d, |t| t.max(d)));
            }
        }
        if let Some(d) = trip {
            b.open_until = Some(now + d);
            b.windows.iter_mut().for_each(VecDeque::clear);
            true
        } else {
            false
        }
    }
}

/// The single backend a request goes to.
pub struct Selected {
    pub def: Arc<BackendDef>,
    pub runtime: Arc<Runtime>,
}

impl Selected {
    /// Adds the backend's credentials: headers and `Authorization` replace
    /// what policies left, query parameters are appended to `url`.
    pub fn apply(&self, url: &mut String, headers: &mut HeaderMap) {
        let Kind::Single(s) = &self.def.kind else {
            return;
        };
        for (name, _) in &s.headers {
            headers.remove(name);
        }
        for (name, value) in &s.headers {
            headers.append(name.clone(), value.clone());
        }
        if let Some(a) = &s.authorization {
            headers.insert(http::header::AUTHORIZATION, a.clone());
        }
        for (k, v) in &s.query {
            url.push(if url.contains('?') { '&' } else { '?' });
            let enc = |t: &str| percent_encoding::utf8_percent_encode(t, COMPONENT).to_string();
            url.push_str(&enc(k));
            url.push('=');
            url.push_str(&enc(v));
        }
    }

    /// Counts the call's outcome against the breaker rules.
    pub fn record(&self, outcome: Outcome<'_>) {
        if let Kind::Single(s) = &self.def.kind {
            if self.runtime.record(&s.breaker, outcome, Instant::now()) {
                tracing::warn!(backend = %self.def.id, "circuit breaker tripped");
            }
        }
    }
}

/// The 503 a request gets while its backend's breaker is open (or a pool
/// has no member with a closed breaker).
fn unavailable(id: &str, wait: Duration) -> PolicyError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut e = PolicyError::new(
        503,
        "BackendUnavailable",
        format!("Backend '{id}' is unavailable: its circuit breaker is open."),
    );
    e.headers
        .push(("Retry-After".into(), secs.max(1).to_string()));
    e
}

/// Resolves the backend `id` chose by `set-backend-service backend-id` to
/// the single backend this request goes to, and the base URL to use
/// (`Some` for a pool's member). Errors: 503 while open.
pub fn select(
    registry: &Registry,
    defs: &Backends,
    id: &str,
) -> Result<Option<(Selected, Option<Url>)>, PolicyError> {
    let Some(def) = defs.get(id) else {
        return Ok(None);
    };
    let now = Instant::now();
    match &def.kind {
        Kind::Single(_) => {
            let runtime = registry.runtime(def);
            if let Some(wait) = runtime.open_for(now) {
                return Err(unavailable(id, wait));
            }
            Ok(Some((
                Selected {
                    def: def.clone(),
                    runtime,
                },
                None,
            )))
        }
        Kind::Pool(members) => {
            let pool_rt = registry.runtime(def);
            let mut soonest: Option<Duration> = None;
            let mut i = 0;
            while i < members.len() {
                let prio = members[i].priority;
                let group_end = members[i..]
                    .iter()
                    .position(|m| m.priority != prio)
                    .map_or(members.len(), |p| i + p);
                let mut healthy: Vec<(&Member, Arc<BackendDef>, Arc<Runtime>)> = Vec::new();
                for m in &members[i..group_end] {
                    let Some(mdef) = defs.get(&m.id) else {
                        continue;
                    };
                    let rt = registry.runtime(mdef);
                    match rt.open_for(now) {
                        Some(w) => soonest = Some(soonest.map_or(w, |s| s.min(w))),
                        None => healthy.push((m, mdef.clone(), rt)),
                    }
                }
                if !healthy.is_empty() {
                    let total: u64 = healthy.iter().map(|h| u64::from(h.0.weight)).sum();
                    let mut n = pool_rt.cursor.fetch_add(1, Ordering::Relaxed) % total.max(1);
                    let pick = healthy.into_iter().find(|h| {
                        let w = u64::from(h.0.weight);
                        if n < w {
                            true
                        } else {
                            n -= w;
                            false
                        }
                    });
                    if let Some((_, mdef, runtime)) = pick {
                        let url = mdef.url.clone();
                        return Ok(Some((Selected { def: mdef, runtime }, url)));
                    }
                }
                i = group_end;
            }
            Err(unavailable(id, soonest.unwrap_or(Duration::from_secs(1))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(count: u32, trip: u64) -> BreakerRule {
        BreakerRule {
            name: "r".into(),
            count: Some(count),
            percentage: None,
            interval: Duration::from_secs(60),
            ranges: vec![(500, 599)],
            error_reasons: vec![],
            trip: Duration::from_secs(trip),
            accept_retry_after: true,
        }
    }

    fn rt() -> Runtime {
        Runtime {
            fingerprint: 0,
            breaker: Mutex::default(),
            cursor: AtomicU64::new(0),
        }
    }

    #[test]
    fn trips_after_count_failures_and_closes_after_trip() {
        let rules = [rule(3, 10)];
        let r = rt();
        let t0 = Instant::now();
        assert!(!r.record(&rules, Outcome::Status(500, None), t0));
        assert!(!r.record(&rules, Outcome::Status(200, None), t0));
        assert!(!r.record(&rules, Outcome::Error("Timeout"), t0));
        assert!(r.open_for(t0).is_none());
        assert!(r.record(&rules, Outcome::Status(503, None), t0));
        assert_eq!(r.open_for(t0), Some(Duration::from_secs(10)));
        let later = t0 + Duration::from_secs(11);
        assert!(r.open_for(later).is_none());
        // A fresh window after closing.
        assert!(!r.record(&rules, Outcome::Status(500, None), later));
    }

    #[test]
    fn failures_outside_the_interval_do_not_count() {
        let rules = [rule(2, 10)];
        let r = rt();
        let t0 = Instant::now();
        assert!(!r.record(&rules, Outcome::Status(500, None), t0));
        let t1 = t0 + Duration::from_secs(61);
        assert!(!r.record(&rules, Outcome::Status(500, None), t1));
        assert!(r.record(&rules, Outcome::Status(500, None), t1));
    }

    #[test]
    fn retry_after_sets_the_trip_when_accepted_and_percentage_rules() {
        let rules = [rule(1, 10)];
        let r = rt();
        let t0 = Instant::now();
        assert!(r.record(
            &rules,
            Outcome::Status(503, Some(Duration::from_secs(3))),
            t0
        ));
        assert_eq!(r.open_for(t0), Some(Duration::from_secs(3)));
        let mut p = rule(2, 10);
        p.count = None;
        p.percentage = Some(50);
        let rules = [p];
        let r = rt();
        assert!(!r.record(&rules, Outcome::Status(200, None), t0));
        assert!(!r.record(&rules, Outcome::Status(200, None), t0));
        assert!(!r.record(&rules, Outcome::Status(500, None), t0));
        assert!(r.record(&rules, Outcome::Status(500, None), t0));
    }
}

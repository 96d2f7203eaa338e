//! `<quota>` (per subscription, with `<api>` / `<operation>` quotas) and
//! `<quota-by-key>` (per `counter-key` value): fixed windows of
//! `renewal-period` seconds (0: one window for ever) counting calls and/or
//! bandwidth (KB of request and response bodies: the buffered body, else
//! `Content-Length`). Out of quota: 403 "Out of call volume quota. Quota
//! will be replenished in hh:mm:ss." (or "Out of bandwidth quota. ...")
//! with `Retry-After`. Sections: inbound.
//!
//! `quota-by-key` windows start at `first-period-start` (default
//! 0001-01-01T00:00:00Z); `quota` windows at the subscription's creation
//! date when the context knows it, else at the counter's first use.
//! Calls are counted when the policy runs unless `increment-condition` is
//! given or bandwidth is limited; then after the response.

use super::counting::{ceil_secs, matched_names, whole, Deferred};
use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::expr::time::{DateTime, TICKS_PER_SECOND, UNIX_EPOCH_TICKS};
use crate::policy::counters::{Quota as Decision, QuotaCheck, QuotaLimits, Window};
use crate::policy::xml::Element;
use std::time::Duration;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound];

/// `hh:mm:ss` as .NET prints a `TimeSpan` (`d.hh:mm:ss` past a day).
pub fn timespan(d: Duration) -> String {
    let s = ceil_secs(d);
    let (days, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}.{h:02}:{m:02}:{sec:02}")
    } else {
        format!("{h:02}:{m:02}:{sec:02}")
    }
}

fn exceeded(bandwidth: bool, renews_in: Option<Duration>) -> PolicyError {
    let what = if bandwidth {
        "Out of bandwidth quota."
    } else {
        "Out of call volume quota."
    };
    let message = match renews_in {
        Some(d) => format!("{what} Quota will be replenished in {}.", timespan(d)),
        None => what.to_string(),
    };
    let mut e = PolicyError::new(403, "QuotaExceeded", message);
    if let Some(d) = renews_in {
        e.headers
            .push(("Retry-After".into(), ceil_secs(d).to_string()));
    }
    e
}

fn int(cx: &mut Compiler, e: &Element, name: &str) -> Option<u64> {
    let n = cx.number(e, name)?;
    if n < 0.0 || n.fract() != 0.0 {
        let at = e.attr(name).map_or(e.span.start, |a| a.value_span.start);
        cx.error(at, format!("'{name}' must be a non-negative whole number"));
        return None;
    }
    Some(n as u64)
}

fn limits(calls: Option<u64>, kb: Option<u64>) -> QuotaLimits {
    QuotaLimits {
        calls,
        bytes: kb.map(|k| k.saturating_mul(1024)),
    }
}

/// A counter key, its limits and its windows.
pub type Counter = (String, QuotaLimits, Window);

/// The counters of one quota policy for one request, evaluated from the
/// state before a shared (awaited) check.
#[derive(Debug)]
pub struct QuotaPlan {
    pub counters: Vec<Counter>,
    pub calls: u64,
    pub defer: bool,
    /// The check as the counters take it.
    pub checks: Vec<QuotaCheck>,
}

impl QuotaPlan {
    fn new(st: &State, counters: Vec<Counter>, calls: u64, defer: bool) -> QuotaPlan {
        let checks = counters
            .iter()
            .map(|(key, l, w)| QuotaCheck {
                key: key.clone(),
                limits: *l,
                window: *w,
                calls: if st.pending.counted.contains(key) {
                    0
                } else {
                    calls
                },
                // Bandwidth is known only after the response.
                record: !(defer || l.bytes.is_some()),
            })
            .collect();
        QuotaPlan {
            counters,
            calls,
            defer,
            checks,
        }
    }
}

/// Checks each counter, then counts the call in every one (now, or after
/// the response when `defer`). A key is counted once per request. With
/// `shared`, the decisions come from shared counters, which already
/// counted what is not deferred.
fn check(
    st: &mut State,
    counters: &[Counter],
    calls: u64,
    defer: bool,
    condition: Option<&Val>,
    shared: Option<&[Decision]>,
) -> Result<Outcome, PolicyError> {
    for (i, (key, l, w)) in counters.iter().enumerate() {
        let add = if st.pending.counted.contains(key) {
            0
        } else {
            calls
        };
        let decided = match shared {
            Some(d) => d.get(i).copied().unwrap_or(Decision::Allowed),
            None => st.counters.quota(key, *l, *w, add, 0, false),
        };
        if let Decision::Refused {
            bandwidth,
            renews_in,
        } = decided
        {
            let api = st.ctx.api.as_ref().map_or("", |a| a.id.as_str());
            st.telemetry.prometheus.rejected(api, "quota");
            return Err(exceeded(bandwidth, renews_in));
        }
    }
    for (key, l, w) in counters {
        if !st.pending.first_time(key) {
            continue;
        }
        if defer || l.bytes.is_some() {
            st.pending.deferred.push(Deferred::Quota {
                key: key.clone(),
                window: *w,
                calls,
                condition: condition.cloned(),
            });
        } else if shared.is_none() {
            st.counters.quota_add(key, *w, calls, 0);
        }
    }
    Ok(Outcome::Continue)
}

/// `<quota-by-key>`.
#[derive(Debug)]
pub struct QuotaByKey {
    calls: Option<u64>,
    kb: Option<u64>,
    period: Option<Val>,
    key: Val,
    condition: Option<Val>,
    count: Option<Val>,
    /// Seconds since the Unix epoch.
    first_period_start: f64,
}

impl QuotaByKey {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<QuotaByKey> {
        let calls = int(cx, e, "calls");
        let kb = int(cx, e, "bandwidth");
        if calls.is_none() && kb.is_none() {
            cx.error(
                e.span.start,
                "<quota-by-key> needs calls or bandwidth".into(),
            );
        }
        let Some(key) = cx.attr(e, "counter-key") else {
            cx.error(e.span.start, "<quota-by-key> needs counter-key".into());
            return None;
        };
        let first_period_start = match cx.literal(e, "first-period-start") {
            None => (0 - UNIX_EPOCH_TICKS) as f64 / TICKS_PER_SECOND as f64,
            Some(t) => match DateTime::parse(&t) {
                Some((d, _)) => (d.ticks - UNIX_EPOCH_TICKS) as f64 / TICKS_PER_SECOND as f64,
                None => {
                    cx.error(
                        e.span.start,
                        format!("first-period-start '{t}' is not a date and time"),
                    );
                    return None;
                }
            },
        };
        Some(QuotaByKey {
            calls,
            kb,
            period: cx.attr(e, "renewal-period"),
            key,
            condition: cx.attr(e, "increment-condition"),
            count: cx.attr(e, "increment-count"),
            first_period_start,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let (counter, count) = self.counter(st)?;
        check(
            st,
            std::slice::from_ref(&counter),
            count,
            self.condition.is_some(),
            self.condition.as_ref(),
            None,
        )
    }

    /// What to ask shared counters (see `counting::plan`).
    pub fn plan(&self, st: &State) -> Result<QuotaPlan, PolicyError> {
        let (counter, count) = self.counter(st)?;
        Ok(QuotaPlan::new(
            st,
            vec![counter],
            count,
            self.condition.is_some(),
        ))
    }

    /// Applies what shared counters decided (and counted).
    pub fn finish(
        &self,
        st: &mut State,
        plan: &QuotaPlan,
        decided: &[Decision],
    ) -> Result<Outcome, PolicyError> {
        check(
            st,
            &plan.counters,
            plan.calls,
            plan.defer,
            self.condition.as_ref(),
            Some(decided),
        )
    }

    /// The counter and the calls this request adds.
    fn counter(&self, st: &State) -> Result<(Counter, u64), PolicyError> {
        let period = match &self.period {
            Some(p) => whole(p, st, "renewal-period")?,
            None => 0,
        };
        let count = match &self.count {
            Some(c) => whole(c, st, "increment-count")?,
            None => 1,
        };
        let key = format!("quota-by-key\0{}", self.key.text(st)?);
        let window = Window {
            period: period as f64,
            anchor: Some(self.first_period_start),
        };
        Ok(((key, limits(self.calls, self.kb), window), count))
    }
}

/// One `<api>` or `<operation>` quota of `<quota>`.
#[derive(Debug)]
struct Scoped {
    name: Option<String>,
    id: Option<String>,
    calls: Option<u64>,
    kb: Option<u64>,
    operations: Vec<Scoped>,
}

impl Scoped {
    fn parse(cx: &mut Compiler, e: &Element, what: &str) -> Scoped {
        let s = Scoped {
            name: cx.literal(e, "name"),
            id: cx.literal(e, "id"),
            calls: int(cx, e, "calls"),
            kb: int(cx, e, "bandwidth"),
            operations: Vec::new(),
        };
        if s.name.is_none() && s.id.is_none() {
            cx.error(e.span.start, format!("<{what}> needs name or id"));
        }
        s
    }

    fn matches(&self, id: &str, name: &str) -> bool {
        self.id.as_deref().is_some_and(|i| i == id)
            || self.name.as_deref().is_some_and(|n| n == name)
    }

    fn limited(&self) -> bool {
        self.calls.is_some() || self.kb.is_some()
    }
}

/// `<quota>`.
#[derive(Debug)]
pub struct Quota {
    calls: Option<u64>,
    kb: Option<u64>,
    period: u64,
    apis: Vec<Scoped>,
}

impl Quota {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<Quota> {
        let calls = int(cx, e, "calls");
        let kb = int(cx, e, "bandwidth");
        let period = int(cx, e, "renewal-period").unwrap_or(0);
        let mut apis = Vec::new();
        for a in e.elements().filter(|c| c.name == "api") {
            let mut s = Scoped::parse(cx, a, "api");
            for o in a.elements().filter(|c| c.name == "operation") {
                s.operations.push(Scoped::parse(cx, o, "operation"));
            }
            apis.push(s);
        }
        if calls.is_none() && kb.is_none() && apis.is_empty() {
            cx.error(e.span.start, "<quota> needs calls or bandwidth".into());
        }
        Some(Quota {
            calls,
            kb,
            period,
            apis,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let counters = self.counters(st);
        check(st, &counters, 1, false, None, None)
    }

    /// What to ask shared counters; `None`: nothing to count.
    pub fn plan(&self, st: &State) -> Option<QuotaPlan> {
        let counters = self.counters(st);
        (!counters.is_empty()).then(|| QuotaPlan::new(st, counters, 1, false))
    }

    /// Applies what shared counters decided (and counted).
    pub fn finish(
        &self,
        st: &mut State,
        plan: &QuotaPlan,
        decided: &[Decision],
    ) -> Result<Outcome, PolicyError> {
        check(st, &plan.counters, 1, false, None, Some(decided))
    }

    /// The subscription's counters this request hits.
    fn counters(&self, st: &State) -> Vec<Counter> {
        // Without a subscription there is nothing to count.
        let Some(sub) = st.ctx.subscription.as_ref() else {
            return Vec::new();
        };
        let sid = sub.id.clone();
        let anchor = sub
            .created
            .map(|d| (d.ticks - UNIX_EPOCH_TICKS) as f64 / TICKS_PER_SECOND as f64);
        let window = Window {
            period: self.period as f64,
            anchor,
        };
        let mut counters = Vec::new();
        if self.calls.is_some() || self.kb.is_some() {
            counters.push((format!("quota\0{sid}"), limits(self.calls, self.kb), window));
        }
        let ((api_id, api_name), (op_id, op_name)) = matched_names(st);
        for a in self.apis.iter().filter(|a| a.matches(&api_id, &api_name)) {
            if a.limited() {
                counters.push((
                    format!("quota\0{sid}\0api\0{api_id}"),
                    limits(a.calls, a.kb),
                    window,
                ));
            }
            for o in a.operations.iter().filter(|o| o.matches(&op_id, &op_name)) {
                if o.limited() {
                    counters.push((
                        format!("quota\0{sid}\0op\0{api_id}\0{op_id}"),
                        limits(o.calls, o.kb),
                        window,
                    ));
                }
            }
        }
        counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans_print_as_dotnet() {
        assert_eq!(timespan(Duration::from_secs(5)), "00:00:05");
        assert_eq!(timespan(Duration::from_millis(3_661_200)), "01:01:02");
        assert_eq!(timespan(Duration::from_secs(90_061)), "1.01:01:01");
    }

    #[test]
    fn quota_message_and_retry_after() {
        let e = exceeded(false, Some(Duration::from_secs(75)));
        assert_eq!(e.status, 403);
        assert_eq!(
            e.message,
            "Out of call volume quota. Quota will be replenished in 00:01:15."
        );
        assert_eq!(e.headers, vec![("Retry-After".into(), "75".into())]);
        assert!(exceeded(true, None)
            .message
            .starts_with("Out of bandwidth quota."));
    }
}

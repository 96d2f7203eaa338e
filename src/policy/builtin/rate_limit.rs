//! `<rate-limit>` (per subscription, with `<api>` / `<operation>` limits)
//! and `<rate-limit-by-key>` (per `counter-key` value): sliding windows of
//! `renewal-period` seconds kept as exact sliding logs in
//! [`Counters`](crate::policy::counters::Counters). Past the limit: 429
//! "Rate limit is exceeded. Try again in N seconds." with `Retry-After`
//! (or `retry-after-header-name`). Sections: inbound.
//!
//! The limit is checked when the policy runs. Without
//! `increment-condition` (and `increment-after-response="false"`) the call
//! is counted at once; otherwise the increment is deferred to the end of
//! the request and `increment-condition` is evaluated on the final
//! `context` (`context.Response.StatusCode`). A counter key is counted once
//! per request even if several policies hit it.

use super::counting::{ceil_secs, matched_names, whole, Deferred, Reporting};
use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::policy::counters::{Rate, RateCheck};
use crate::policy::xml::Element;
use std::time::Duration;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound];

fn exceeded(retry: u64) -> PolicyError {
    PolicyError::new(
        429,
        "RateLimitExceeded",
        format!("Rate limit is exceeded. Try again in {retry} seconds."),
    )
}

/// `<rate-limit-by-key>`.
#[derive(Debug)]
pub struct RateLimitByKey {
    calls: Val,
    period: Val,
    key: Val,
    condition: Option<Val>,
    count: Option<Val>,
    after_response: bool,
    report: Reporting,
}

impl RateLimitByKey {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<RateLimitByKey> {
        let (Some(calls), Some(period), Some(key)) = (
            cx.attr(e, "calls"),
            cx.attr(e, "renewal-period"),
            cx.attr(e, "counter-key"),
        ) else {
            cx.error(
                e.span.start,
                "<rate-limit-by-key> needs calls, renewal-period and counter-key".into(),
            );
            return None;
        };
        let condition = cx.attr(e, "increment-condition");
        let after_response = cx.flag(e, "increment-after-response", false);
        Some(RateLimitByKey {
            calls,
            period,
            key,
            count: cx.attr(e, "increment-count"),
            after_response: after_response || condition.is_some(),
            condition,
            report: Reporting::parse(cx, e),
        })
    }

    /// The counter and the hits this call adds.
    fn limit(&self, st: &State) -> Result<(Limit, u64), PolicyError> {
        let calls = whole(&self.calls, st, "calls")?;
        let period = whole(&self.period, st, "renewal-period")?;
        let count = match &self.count {
            Some(c) => whole(c, st, "increment-count")?,
            None => 1,
        };
        let key = format!("rate-limit-by-key\0{}", self.key.text(st)?);
        let period = Duration::from_secs(period.max(1));
        Ok(((key, calls, period), count))
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let (limit, count) = self.limit(st)?;
        check(
            st,
            &self.report,
            std::slice::from_ref(&limit),
            count,
            self.after_response,
            self.condition.as_ref(),
            None,
        )
    }

    /// What to ask shared counters (see `counting::plan`).
    pub fn plan(&self, st: &State) -> Result<RatePlan, PolicyError> {
        let (limit, count) = self.limit(st)?;
        Ok(RatePlan::new(st, vec![limit], count, !self.after_response))
    }

    /// Applies what shared counters decided (and recorded).
    pub fn finish(
        &self,
        st: &mut State,
        plan: &RatePlan,
        decided: &[Rate],
    ) -> Result<Outcome, PolicyError> {
        check(
            st,
            &self.report,
            &plan.limits,
            plan.count,
            self.after_response,
            self.condition.as_ref(),
            Some(decided),
        )
    }
}

/// A counter key, its call limit and its renewal period.
pub type Limit = (String, u64, Duration);

/// The counters of one rate-limit policy for one request, evaluated from
/// the state before a shared (awaited) check.
#[derive(Debug)]
pub struct RatePlan {
    pub limits: Vec<Limit>,
    pub count: u64,
    /// The check as the counters take it (hits 0 for a key this request
    /// already counted).
    pub checks: Vec<RateCheck>,
    /// Record the hits with the check (not deferred).
    pub record: bool,
}

impl RatePlan {
    fn new(st: &State, limits: Vec<Limit>, count: u64, record: bool) -> RatePlan {
        let checks = limits
            .iter()
            .map(|(key, calls, period)| RateCheck {
                key: key.clone(),
                limit: *calls,
                period: *period,
                add: if st.pending.counted.contains(key) {
                    0
                } else {
                    count
                },
            })
            .collect();
        RatePlan {
            limits,
            count,
            checks,
            record,
        }
    }
}

/// Checks every `(key, calls, period)`; counts the call in each (now, or
/// after the response when `defer`) only if all allow it. With `shared`,
/// the decisions come from shared counters, which already recorded them.
fn check(
    st: &mut State,
    report: &Reporting,
    limits: &[Limit],
    count: u64,
    defer: bool,
    condition: Option<&Val>,
    shared: Option<&[Rate]>,
) -> Result<Outcome, PolicyError> {
    let mut remaining = u64::MAX;
    let mut total = 0;
    let mut refused: Option<(Duration, u64)> = None;
    for (i, (key, calls, period)) in limits.iter().enumerate() {
        let first = !st.pending.counted.contains(key);
        // A key this request already counted is only checked.
        let add = if first { count } else { 0 };
        let decided = match shared {
            Some(d) => d
                .get(i)
                .copied()
                .unwrap_or(Rate::Allowed { remaining: *calls }),
            None => st.counters.rate(key, *calls, *period, add, false),
        };
        match decided {
            Rate::Allowed { remaining: r } => {
                let r = r.saturating_sub(add);
                if r < remaining {
                    remaining = r;
                    total = *calls;
                }
            }
            Rate::Refused { retry_after } => {
                if refused.is_none_or(|(d, _)| retry_after > d) {
                    refused = Some((retry_after, *calls));
                }
            }
        }
    }
    if let Some((retry, calls)) = refused {
        let secs = ceil_secs(retry);
        let api = st.ctx.api.as_ref().map_or("", |a| a.id.as_str());
        st.telemetry.prometheus.rejected(api, "rate-limit");
        let err = report.refused(st, exceeded(secs), Some(secs), Some(calls))?;
        return Err(err);
    }
    for (key, _, period) in limits {
        if !st.pending.first_time(key) {
            continue;
        }
        if defer {
            st.pending.deferred.push(Deferred::Rate {
                key: key.clone(),
                period: *period,
                count,
                condition: condition.cloned(),
            });
        } else if shared.is_none() {
            st.counters.rate_add(key, *period, count);
        }
    }
    if !limits.is_empty() {
        report.allowed(st, remaining, total)?;
    }
    Ok(Outcome::Continue)
}

/// One `<api>` or `<operation>` limit of `<rate-limit>`.
#[derive(Debug)]
struct Scoped {
    name: Option<String>,
    id: Option<String>,
    calls: Option<u64>,
    period: Option<u64>,
    operations: Vec<Scoped>,
}

impl Scoped {
    fn matches(&self, id: &str, name: &str) -> bool {
        self.id.as_deref().is_some_and(|i| i == id)
            || self.name.as_deref().is_some_and(|n| n == name)
    }
}

/// `<rate-limit>`.
#[derive(Debug)]
pub struct RateLimit {
    calls: Option<u64>,
    period: Option<u64>,
    apis: Vec<Scoped>,
    report: Reporting,
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

fn scoped(cx: &mut Compiler, e: &Element, what: &str) -> Scoped {
    let s = Scoped {
        name: cx.literal(e, "name"),
        id: cx.literal(e, "id"),
        calls: int(cx, e, "calls"),
        period: int(cx, e, "renewal-period"),
        operations: Vec::new(),
    };
    if s.name.is_none() && s.id.is_none() {
        cx.error(e.span.start, format!("<{what}> needs name or id"));
    }
    if s.calls.is_some() != s.period.is_some() {
        cx.error(
            e.span.start,
            format!("<{what}> needs both calls and renewal-period"),
        );
    }
    s
}

impl RateLimit {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<RateLimit> {
        let calls = int(cx, e, "calls");
        let period = int(cx, e, "renewal-period");
        if calls.is_some() != period.is_some() {
            cx.error(
                e.span.start,
                "<rate-limit> needs both calls and renewal-period".into(),
            );
        }
        let mut apis = Vec::new();
        for a in e.elements().filter(|c| c.name == "api") {
            let mut s = scoped(cx, a, "api");
            for o in a.elements().filter(|c| c.name == "operation") {
                s.operations.push(scoped(cx, o, "operation"));
            }
            apis.push(s);
        }
        Some(RateLimit {
            calls,
            period,
            apis,
            report: Reporting::parse(cx, e),
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let limits = self.limits(st);
        check(st, &self.report, &limits, 1, false, None, None)
    }

    /// What to ask shared counters; `None`: nothing to count.
    pub fn plan(&self, st: &State) -> Option<RatePlan> {
        let limits = self.limits(st);
        (!limits.is_empty()).then(|| RatePlan::new(st, limits, 1, true))
    }

    /// Applies what shared counters decided (and recorded).
    pub fn finish(
        &self,
        st: &mut State,
        plan: &RatePlan,
        decided: &[Rate],
    ) -> Result<Outcome, PolicyError> {
        check(
            st,
            &self.report,
            &plan.limits,
            1,
            false,
            None,
            Some(decided),
        )
    }

    /// The subscription's counters this request hits.
    fn limits(&self, st: &State) -> Vec<Limit> {
        // Without a subscription there is nothing to count (apim.md §3.1).
        let Some(sid) = st.ctx.subscription.as_ref().map(|s| s.id.clone()) else {
            return Vec::new();
        };
        let mut limits = Vec::new();
        let secs = |p: u64| Duration::from_secs(p.max(1));
        if let (Some(c), Some(p)) = (self.calls, self.period) {
            limits.push((format!("rate-limit\0{sid}"), c, secs(p)));
        }
        let ((api_id, api_name), (op_id, op_name)) = matched_names(st);
        for a in self.apis.iter().filter(|a| a.matches(&api_id, &api_name)) {
            if let (Some(c), Some(p)) = (a.calls, a.period) {
                limits.push((format!("rate-limit\0{sid}\0api\0{api_id}"), c, secs(p)));
            }
            for o in a.operations.iter().filter(|o| o.matches(&op_id, &op_name)) {
                if let (Some(c), Some(p)) = (o.calls, o.period) {
                    limits.push((
                        format!("rate-limit\0{sid}\0op\0{api_id}\0{op_id}"),
                        c,
                        secs(p),
                    ));
                }
            }
        }
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::super::{run_plain, test_doc, test_state, Section};
    use crate::expr::context::SubscriptionInfo;

    #[test]
    fn by_key_refuses_past_calls_with_retry_after() {
        let doc = test_doc(
            r#"<policies><inbound><rate-limit-by-key calls="2" renewal-period="60" counter-key="@(context.Request.IpAddress)" remaining-calls-variable-name="left" /></inbound></policies>"#,
        )
        .unwrap();
        let steps = doc.section(Section::Inbound).unwrap();
        let counters = std::sync::Arc::new(crate::policy::counters::Counters::local());
        for left in [1, 0] {
            let mut st = test_state(Section::Inbound);
            st.counters = counters.clone();
            run_plain(steps, &mut st).unwrap();
            assert!(matches!(st.ctx.variables["left"], crate::expr::Value::Int(n) if n == left));
        }
        let mut st = test_state(Section::Inbound);
        st.counters = counters.clone();
        let e = run_plain(steps, &mut st).unwrap_err();
        assert_eq!(e.status, 429);
        assert!(e
            .message
            .starts_with("Rate limit is exceeded. Try again in "));
        assert_eq!(e.headers[0].0, "Retry-After");
        let secs: u64 = e.headers[0].1.parse().unwrap();
        assert!((59..=60).contains(&secs), "{secs}");
    }

    #[test]
    fn a_key_is_counted_once_per_request() {
        let doc = test_doc(
            r#"<policies><inbound><rate-limit-by-key calls="2" renewal-period="60" counter-key="same" /><rate-limit-by-key calls="2" renewal-period="60" counter-key="same" /></inbound></policies>"#,
        )
        .unwrap();
        let steps = doc.section(Section::Inbound).unwrap();
        let counters = std::sync::Arc::new(crate::policy::counters::Counters::local());
        for _ in 0..2 {
            let mut st = test_state(Section::Inbound);
            st.counters = counters.clone();
            run_plain(steps, &mut st).unwrap();
        }
        let mut st = test_state(Section::Inbound);
        st.counters = counters;
        assert_eq!(run_plain(steps, &mut st).unwrap_err().status, 429);
    }

    #[test]
    fn rate_limit_needs_a_subscription() {
        let doc = test_doc(
            r#"<policies><inbound><rate-limit calls="1" renewal-period="60" /></inbound></policies>"#,
        )
        .unwrap();
        let steps = doc.section(Section::Inbound).unwrap();
        let counters = std::sync::Arc::new(crate::policy::counters::Counters::local());
        for _ in 0..3 {
            let mut st = test_state(Section::Inbound);
            st.counters = counters.clone();
            run_plain(steps, &mut st).unwrap();
        }
        let mut st = test_state(Section::Inbound);
        st.counters = counters.clone();
        st.ctx.subscription = Some(SubscriptionInfo {
            id: "s1".into(),
            ..Default::default()
        });
        run_plain(steps, &mut st).unwrap();
        let mut st2 = test_state(Section::Inbound);
        st2.counters = counters;
        st2.ctx.subscription = st.ctx.subscription.clone();
        assert_eq!(run_plain(steps, &mut st2).unwrap_err().status, 429);
    }
}

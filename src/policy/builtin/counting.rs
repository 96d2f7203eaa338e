//! What the counting policies (`rate-limit*`, `quota*`) share: attribute
//! helpers, the response headers they add, and the increments they defer
//! until the response is known (`increment-condition` reads
//! `context.Response`). The pipeline calls [`settle`] once per request,
//! before the response is written, whatever the outcome.
//!
//! With shared (Redis) counters a check must be awaited, so the pipeline
//! runs a counting policy in three steps: [`plan`] evaluates its keys and
//! limits from the state, [`decide`] awaits the counters (one round trip),
//! and [`finish`] applies the decision to the state exactly as the
//! in-process path does (headers, variables, 429/403, deferred work).

use super::quota::QuotaPlan;
use super::rate_limit::RatePlan;
use super::{Compiler, Outcome, Policy, PolicyError, State, Step, Val};
use crate::expr::Value;
use crate::policy::counters::{Counters, Quota, Rate, Window};
use crate::policy::xml::Element;
use std::time::Duration;

/// One request's pending counting work.
#[derive(Debug, Default)]
pub struct Pending {
    /// Counter keys this request has already counted: a key is incremented
    /// once per request even if several policies hit it.
    pub counted: Vec<String>,
    /// Increments waiting for the response.
    pub deferred: Vec<Deferred>,
    /// Headers for the final response (`remaining-calls-header-name`, ...).
    pub headers: Vec<(String, String)>,
}

impl Pending {
    /// Marks `key` counted for this request; false if it already was.
    pub fn first_time(&mut self, key: &str) -> bool {
        if self.counted.iter().any(|k| k == key) {
            return false;
        }
        self.counted.push(key.to_string());
        true
    }
}

/// An increment decided after the response.
#[derive(Debug)]
pub enum Deferred {
    Rate {
        key: String,
        period: Duration,
        count: u64,
        condition: Option<Val>,
    },
    Quota {
        key: String,
        window: Window,
        calls: u64,
        condition: Option<Val>,
    },
}

/// A counting policy's check, evaluated from the state.
#[derive(Debug)]
pub enum Plan {
    Rate(RatePlan),
    Quota(QuotaPlan),
}

/// What the counters decided for a [`Plan`].
#[derive(Debug)]
pub enum Decided {
    Rate(Vec<Rate>),
    Quota(Vec<Quota>),
}

/// The check a counting policy (`rate-limit*`, `quota*`) makes for this
/// request; `None` for other policies and when there is nothing to count.
pub fn plan(step: &Step, st: &State) -> Result<Option<Plan>, PolicyError> {
    let r = match &step.policy {
        Policy::RateLimit(p) => Ok(p.plan(st).map(Plan::Rate)),
        Policy::RateLimitByKey(p) => p.plan(st).map(|p| Some(Plan::Rate(p))),
        Policy::Quota(p) => Ok(p.plan(st).map(Plan::Quota)),
        Policy::QuotaByKey(p) => p.plan(st).map(|p| Some(Plan::Quota(p))),
        _ => Ok(None),
    };
    r.map_err(|e| step.locate(e))
}

/// Asks the counters (one round trip with Redis).
pub async fn decide(counters: &Counters, plan: &Plan) -> Decided {
    match plan {
        Plan::Rate(p) => Decided::Rate(counters.rate_all(&p.checks, p.record).await),
        Plan::Quota(p) => Decided::Quota(counters.quota_all(&p.checks).await),
    }
}

/// Applies the decision to the state, as the policy's `apply` would.
pub fn finish(
    step: &Step,
    st: &mut State,
    plan: &Plan,
    decided: &Decided,
) -> Result<Outcome, PolicyError> {
    let r = match (&step.policy, plan, decided) {
        (Policy::RateLimit(p), Plan::Rate(pl), Decided::Rate(d)) => p.finish(st, pl, d),
        (Policy::RateLimitByKey(p), Plan::Rate(pl), Decided::Rate(d)) => p.finish(st, pl, d),
        (Policy::Quota(p), Plan::Quota(pl), Decided::Quota(d)) => p.finish(st, pl, d),
        (Policy::QuotaByKey(p), Plan::Quota(pl), Decided::Quota(d)) => p.finish(st, pl, d),
        _ => Ok(Outcome::Continue),
    };
    r.map_err(|e| step.locate(e))
}

impl Step {
    /// Names the policy, its path and id in an error (as `apply` does).
    pub fn locate(&self, mut e: PolicyError) -> PolicyError {
        if e.source.is_empty() {
            e.source = self.name.to_string();
        }
        e.path = self.path.to_string();
        e.policy_id = self.id.as_deref().unwrap_or("").to_string();
        e
    }
}

/// Runs the deferred increments (conditions evaluated on the final
/// `context`) and adds the pending headers to the response.
pub fn settle(st: &mut State) {
    let pending = std::mem::take(&mut st.pending);
    for d in &pending.deferred {
        let condition = match d {
            Deferred::Rate { condition, .. } | Deferred::Quota { condition, .. } => condition,
        };
        let go = match condition {
            None => true,
            Some(c) => match c.truth(st) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(reason = %e.reason, "increment-condition failed: {}", e.message);
                    false
                }
            },
        };
        if !go {
            continue;
        }
        match d {
            Deferred::Rate {
                key, period, count, ..
            } => st.counters.rate_add(key, *period, *count),
            Deferred::Quota {
                key, window, calls, ..
            } => {
                let bytes = exchanged_bytes(st);
                st.counters.quota_add(key, *window, *calls, bytes);
            }
        }
    }
    if !pending.headers.is_empty() {
        if let Some(r) = st.ctx.response.as_mut() {
            for (k, v) in &pending.headers {
                r.message.headers.set(k, v.clone());
            }
        }
    }
}

/// Bytes of the request and response bodies as far as they are known: the
/// buffered body, else `Content-Length`.
pub fn exchanged_bytes(st: &State) -> u64 {
    fn size(m: &crate::expr::context::Message) -> u64 {
        match &m.body {
            Some(b) => b.len() as u64,
            None => m
                .headers
                .joined("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        }
    }
    size(&st.ctx.request.message) + st.ctx.response.as_ref().map_or(0, |r| size(&r.message))
}

/// Header and variable names a counting policy reports through.
#[derive(Debug, Default)]
pub struct Reporting {
    pub retry_after_header: Option<Val>,
    pub retry_after_variable: Option<Val>,
    pub remaining_header: Option<Val>,
    pub remaining_variable: Option<Val>,
    pub total_header: Option<Val>,
}

impl Reporting {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Reporting {
        Reporting {
            retry_after_header: cx.attr(e, "retry-after-header-name"),
            retry_after_variable: cx.attr(e, "retry-after-variable-name"),
            remaining_header: cx.attr(e, "remaining-calls-header-name"),
            remaining_variable: cx.attr(e, "remaining-calls-variable-name"),
            total_header: cx.attr(e, "total-calls-header-name"),
        }
    }

    fn name(v: &Option<Val>, st: &State) -> Result<Option<String>, PolicyError> {
        match v {
            None => Ok(None),
            Some(v) => {
                let t = v.text(st)?;
                let t = t.trim();
                Ok((!t.is_empty()).then(|| t.to_string()))
            }
        }
    }

    /// An allowed call: the remaining/total headers and variables.
    pub fn allowed(&self, st: &mut State, remaining: u64, total: u64) -> Result<(), PolicyError> {
        if let Some(n) = Self::name(&self.remaining_variable, st)? {
            st.ctx.variables.insert(n, Value::Int(clamp(remaining)));
        }
        if let Some(n) = Self::name(&self.remaining_header, st)? {
            st.pending.headers.push((n, remaining.to_string()));
        }
        if let Some(n) = Self::name(&self.total_header, st)? {
            st.pending.headers.push((n, total.to_string()));
        }
        Ok(())
    }

    /// A refused call: the error with `Retry-After` (or the configured
    /// header) and the remaining/total headers; the variables set.
    pub fn refused(
        &self,
        st: &mut State,
        mut err: PolicyError,
        retry_after: Option<u64>,
        total: Option<u64>,
    ) -> Result<PolicyError, PolicyError> {
        if let Some(secs) = retry_after {
            let header =
                Self::name(&self.retry_after_header, st)?.unwrap_or_else(|| "Retry-After".into());
            err.headers.push((header, secs.to_string()));
            if let Some(n) = Self::name(&self.retry_after_variable, st)? {
                st.ctx.variables.insert(n, Value::Int(clamp(secs)));
            }
        }
        if let Some(n) = Self::name(&self.remaining_variable, st)? {
            st.ctx.variables.insert(n, Value::Int(0));
        }
        if let Some(n) = Self::name(&self.remaining_header, st)? {
            err.headers.push((n, "0".into()));
        }
        if let (Some(n), Some(t)) = (Self::name(&self.total_header, st)?, total) {
            err.headers.push((n, t.to_string()));
        }
        Ok(err)
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A non-negative whole number from a value (`calls`, `increment-count`).
pub fn whole(v: &Val, st: &State, what: &str) -> Result<u64, PolicyError> {
    let value = v.eval(st)?;
    let n = match &value {
        Value::Int(i) => Some(*i),
        Value::Str(s) => s.trim().parse::<i64>().ok(),
        other => other.to_display().trim().parse::<i64>().ok(),
    };
    match n {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(PolicyError::new(
            500,
            "ExpressionValueEvaluationFailure",
            format!(
                "{what} must be a non-negative whole number, not '{}'.",
                value.to_display()
            ),
        )),
    }
}

/// Seconds, rounded up, at least 1.
pub fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

/// The matched API's and operation's (id, name), for `<api>` and
/// `<operation>` children of the per-subscription limits.
pub fn matched_names(st: &State) -> ((String, String), (String, String)) {
    let api = st
        .ctx
        .api
        .as_ref()
        .map(|a| (a.id.clone(), a.name.clone()))
        .unwrap_or_default();
    let op = st
        .ctx
        .operation
        .as_ref()
        .map(|o| (o.id.clone(), o.name.clone()))
        .unwrap_or_default();
    (api, op)
}

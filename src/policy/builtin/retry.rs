//! `<retry condition count interval max-interval delta first-fast-retry>`:
//! runs its policies once, then again while `condition` (evaluated after
//! each run) holds and fewer than `count` retries were made. The wait
//! before retry n (1-based), per APIM:
//! - `interval` only: fixed, `interval`;
//! - with `delta`: linear, `interval + (n-1)·delta`;
//! - with `delta` and `max-interval`: exponential,
//!   `interval + (2^n − 1)·random(0.8·delta, 1.2·delta)`, at most
//!   `max-interval`;
//! - `first-fast-retry="true"`: the first retry is immediate.
//!
//! The gateway runs it (the waits are `tokio::time::sleep`, no lock held);
//! a `forward-request` inside makes the gateway buffer the request body
//! first so it can be sent again. An error inside the policies ends the
//! retry and goes to `on-error`. Sections: all.

use super::{Compiler, Policy, PolicyError, Section, State, Step, Val};
use crate::expr::Value;
use crate::policy::xml::Element;
use std::time::Duration;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

/// APIM's bounds for `count`.
const MAX_COUNT: u64 = 50;

#[derive(Debug)]
pub struct Retry {
    condition: Val,
    count: Val,
    interval: Val,
    max_interval: Option<Val>,
    delta: Option<Val>,
    first_fast_retry: Option<Val>,
    pub steps: Vec<Step>,
    /// Whether a `forward-request` is inside (the body must be buffered).
    pub forwards: bool,
}

/// The evaluated attributes of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub count: u64,
    pub interval: f64,
    pub max_interval: Option<f64>,
    pub delta: Option<f64>,
    pub first_fast_retry: bool,
}

fn has_forward(steps: &[Step]) -> bool {
    steps.iter().any(|s| match &s.policy {
        Policy::ForwardRequest(_) => true,
        Policy::Choose(c) => {
            c.whens.iter().any(|(_, b)| has_forward(b))
                || c.otherwise.as_deref().is_some_and(has_forward)
        }
        Policy::LimitConcurrency(l) => has_forward(&l.steps),
        Policy::Retry(r) => r.forwards,
        Policy::Wait(w) => has_forward(&w.steps),
        _ => false,
    })
}

impl Retry {
    pub fn parse(cx: &mut Compiler, e: &Element, section: Section, path: &str) -> Option<Retry> {
        let need = |cx: &mut Compiler, name: &str| {
            let v = cx.attr(e, name);
            if v.is_none() {
                cx.error(e.span.start, format!("<retry> needs {name}"));
            }
            v
        };
        let condition = need(cx, "condition");
        let count = need(cx, "count");
        let interval = need(cx, "interval");
        let (Some(condition), Some(count), Some(interval)) = (condition, count, interval) else {
            return None;
        };
        let r = Retry {
            condition,
            count,
            interval,
            max_interval: cx.attr(e, "max-interval"),
            delta: cx.attr(e, "delta"),
            first_fast_retry: cx.attr(e, "first-fast-retry"),
            steps: cx.steps(e, section, path),
            forwards: false,
        };
        // Literal attributes are checked now.
        if r.all_literal() {
            let literal = |v: &Val| match v {
                Val::Lit(t) => Ok(Value::Str(t.clone())),
                Val::Expr(_) => Ok(Value::Null),
            };
            if let Err(err) = r.plan_with(&literal) {
                cx.error(e.span.start, err.message);
                return None;
            }
        }
        let forwards = has_forward(&r.steps);
        Some(Retry { forwards, ..r })
    }

    fn all_literal(&self) -> bool {
        [
            Some(&self.count),
            Some(&self.interval),
            self.max_interval.as_ref(),
            self.delta.as_ref(),
            self.first_fast_retry.as_ref(),
        ]
        .into_iter()
        .flatten()
        .all(|v| matches!(v, Val::Lit(_)))
    }

    /// Evaluates the attributes (once, before the first run).
    pub fn plan(&self, st: &State) -> Result<Plan, PolicyError> {
        self.plan_with(&|v: &Val| v.eval(st))
    }

    fn plan_with(
        &self,
        eval: &dyn Fn(&Val) -> Result<Value, PolicyError>,
    ) -> Result<Plan, PolicyError> {
        let bad = |m: String| PolicyError::new(500, "ExpressionValueEvaluationFailure", m);
        let num = |v: &Val, what: &str, min: f64| -> Result<f64, PolicyError> {
            let t = eval(v)?.to_display();
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= min)
                .ok_or_else(|| {
                    bad(format!(
                        "retry {what} must be a number of at least {min}, not '{t}'"
                    ))
                })
        };
        let count = num(&self.count, "count", 1.0)?;
        if count > MAX_COUNT as f64 || count.fract() != 0.0 {
            return Err(bad(format!(
                "retry count must be a whole number from 1 to {MAX_COUNT}"
            )));
        }
        Ok(Plan {
            count: count as u64,
            interval: num(&self.interval, "interval", 0.0)?,
            max_interval: match &self.max_interval {
                Some(v) => Some(num(v, "max-interval", 0.0)?),
                None => None,
            },
            delta: match &self.delta {
                Some(v) => Some(num(v, "delta", 0.0)?),
                None => None,
            },
            first_fast_retry: match &self.first_fast_retry {
                Some(v) => match eval(v)? {
                    Value::Bool(b) => b,
                    other => match other.to_display().trim().to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        t => {
                            return Err(bad(format!(
                                "retry first-fast-retry must be true or false, not '{t}'"
                            )))
                        }
                    },
                },
                None => false,
            },
        })
    }

    /// Whether to run the policies again (evaluated after each run).
    pub fn again(&self, st: &State) -> Result<bool, PolicyError> {
        self.condition.truth(st)
    }
}

impl Plan {
    /// The wait before retry `n` (1-based); `jitter` is in [0, 1).
    pub fn delay(&self, n: u64, jitter: f64) -> Duration {
        if n == 1 && self.first_fast_retry {
            return Duration::ZERO;
        }
        let secs = match (self.delta, self.max_interval) {
            (None, _) => self.interval,
            (Some(d), None) => self.interval + (n.saturating_sub(1)) as f64 * d,
            (Some(d), Some(max)) => {
                let factor = 2f64.powi(n.min(62) as i32) - 1.0;
                let d = d * (0.8 + 0.4 * jitter);
                (self.interval + factor * d).min(max)
            }
        };
        Duration::from_secs_f64(secs.clamp(0.0, 86_400.0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::Plan;
    use std::time::Duration;

    #[test]
    fn backoff_follows_apim() {
        let fixed = Plan {
            count: 3,
            interval: 2.0,
            max_interval: None,
            delta: None,
            first_fast_retry: false,
        };
        assert_eq!(fixed.delay(1, 0.5), Duration::from_secs(2));
        assert_eq!(fixed.delay(3, 0.5), Duration::from_secs(2));
        let linear = Plan {
            delta: Some(1.0),
            ..fixed
        };
        assert_eq!(linear.delay(1, 0.5), Duration::from_secs(2));
        assert_eq!(linear.delay(3, 0.5), Duration::from_secs(4));
        let exp = Plan {
            delta: Some(1.0),
            max_interval: Some(10.0),
            ..fixed
        };
        // interval + (2^n - 1)·delta at the middle of the jitter range.
        assert_eq!(exp.delay(1, 0.5), Duration::from_secs(3));
        assert_eq!(exp.delay(2, 0.5), Duration::from_secs(5));
        assert_eq!(exp.delay(5, 0.5), Duration::from_secs(10), "capped");
        let fast = Plan {
            first_fast_retry: true,
            ..fixed
        };
        assert_eq!(fast.delay(1, 0.5), Duration::ZERO);
        assert_eq!(fast.delay(2, 0.5), Duration::from_secs(2));
    }

    #[test]
    fn parses_and_checks_attributes() {
        let doc = test_doc(r#"<policies><backend><retry condition="@(context.Response.StatusCode == 503)" count="3" interval="0"><forward-request /></retry></backend></policies>"#).unwrap();
        let Policy::Retry(r) = &doc.section(Section::Backend).unwrap()[0].policy else {
            panic!()
        };
        assert!(r.forwards);
        assert_eq!(r.plan(&test_state(Section::Backend)).unwrap().count, 3);
        for bad in [
            r#"count="0" interval="1""#,
            r#"count="51" interval="1""#,
            r#"count="2" interval="-1""#,
            r#"count="2" interval="1" first-fast-retry="maybe""#,
        ] {
            let xml = format!(
                r#"<policies><inbound><retry condition="true" {bad}><set-variable name="a" value="1" /></retry></inbound></policies>"#
            );
            assert!(test_doc(&xml).is_err(), "{bad}");
        }
        assert!(test_doc(
            r#"<policies><inbound><retry count="2" interval="1" /></inbound></policies>"#
        )
        .is_err());
    }
}

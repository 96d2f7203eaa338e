//! `<limit-concurrency key max-count>`: at most `max-count` requests run
//! the contained policies at once per `key` value; one more is refused at
//! once with 429. The contained policies (`forward-request` included) run
//! inside the limit: the gateway holds a [`Permit`] while it runs them and
//! the permit is given back when they finish, fail, or the request is
//! dropped. Sections: all.

use super::{Compiler, PolicyError, Section, State, Step, Val};
use crate::policy::counters::Permit;
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

#[derive(Debug)]
pub struct LimitConcurrency {
    key: Val,
    max: u64,
    pub steps: Vec<Step>,
}

impl LimitConcurrency {
    pub fn parse(
        cx: &mut Compiler,
        e: &Element,
        section: Section,
        path: &str,
    ) -> Option<LimitConcurrency> {
        let Some(key) = cx.attr(e, "key") else {
            cx.error(e.span.start, "<limit-concurrency> needs key".into());
            return None;
        };
        let max = match cx.number(e, "max-count") {
            Some(n) if n >= 1.0 && n.fract() == 0.0 => n as u64,
            Some(_) => {
                cx.error(
                    e.span.start,
                    "max-count must be a whole number of at least 1".into(),
                );
                return None;
            }
            None => {
                cx.error(e.span.start, "<limit-concurrency> needs max-count".into());
                return None;
            }
        };
        let steps = cx.steps(e, section, path);
        Some(LimitConcurrency { key, max, steps })
    }

    /// Takes a slot, or refuses with 429.
    pub fn enter(&self, st: &State) -> Result<Permit, PolicyError> {
        let key = format!("limit-concurrency\0{}", self.key.text(st)?);
        st.counters.acquire(&key, self.max).ok_or_else(|| {
            PolicyError::new(
                429,
                "ConcurrencyLimitExceeded",
                "Too many concurrent requests. Try again later.",
            )
        })
    }
}

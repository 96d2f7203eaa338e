//! `<check-header name failed-check-httpcode failed-check-error-message
//! ignore-case><value/>*</check-header>`: refuses requests whose header is
//! missing (`HeaderNotFound`) or has none of the listed values
//! (`HeaderValueNotAllowed`). Sections: inbound.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound];

#[derive(Debug)]
pub struct CheckHeader {
    name: String,
    status: u16,
    message: String,
    ignore_case: bool,
    values: Vec<Val>,
}

impl CheckHeader {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<CheckHeader> {
        let name = cx.literal(e, "name")?;
        let status = match cx
            .literal(e, "failed-check-httpcode")
            .map(|s| s.trim().parse::<u16>())
        {
            Some(Ok(c @ 100..=599)) => c,
            None => 401,
            Some(_) => {
                cx.error(e.span.start, "failed-check-httpcode must be 100-599".into());
                return None;
            }
        };
        let message = cx
            .literal(e, "failed-check-error-message")
            .unwrap_or_default();
        let ignore_case = cx.flag(e, "ignore-case", false);
        let values = cx.values(e);
        Some(CheckHeader {
            name,
            status,
            message,
            ignore_case,
            values,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let present: Vec<String> = st
            .ctx
            .request
            .message
            .headers
            .get_all(&self.name)
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .collect();
        if present.is_empty() {
            return Err(PolicyError::new(
                self.status,
                "HeaderNotFound",
                self.message.clone(),
            ));
        }
        if self.values.is_empty() {
            return Ok(Outcome::Continue);
        }
        let mut allowed = Vec::new();
        for v in &self.values {
            allowed.push(v.text(st)?);
        }
        let ok = present.iter().any(|p| {
            allowed.iter().any(|a| {
                // Constant-time: the header often carries a shared secret.
                if self.ignore_case {
                    crate::error::ct_eq_str(&a.to_ascii_lowercase(), &p.to_ascii_lowercase())
                } else {
                    crate::error::ct_eq_str(a, p)
                }
            })
        });
        if ok {
            Ok(Outcome::Continue)
        } else {
            Err(PolicyError::new(
                self.status,
                "HeaderValueNotAllowed",
                self.message.clone(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn missing_and_unlisted_values_are_refused() {
        let doc = test_doc(r#"<policies><inbound><check-header name="X-Tenant" failed-check-httpcode="403" failed-check-error-message="tenant?" ignore-case="true"><value>blue</value><value>green</value></check-header></inbound></policies>"#).unwrap();
        let steps = doc.section(Section::Inbound).unwrap();
        let mut st = test_state(Section::Inbound);
        let e = run_plain(steps, &mut st).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str(), e.message.as_str()),
            (403, "HeaderNotFound", "tenant?")
        );
        st.ctx
            .request
            .message
            .headers
            .append("x-tenant", "red".into());
        assert_eq!(
            run_plain(steps, &mut st).unwrap_err().reason,
            "HeaderValueNotAllowed"
        );
        st.ctx
            .request
            .message
            .headers
            .set("X-Tenant", "GREEN".into());
        assert!(run_plain(steps, &mut st).is_ok());
    }
}

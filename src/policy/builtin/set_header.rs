//! `<set-header name exists-action><value/>*</set-header>`: request headers
//! in inbound/backend, response headers in outbound/on-error.
//! `exists-action`: `override` (default), `skip`, `append`, `delete`.
//! Several values are joined with commas, except for headers that cannot
//! be comma-joined (`Set-Cookie`, ...), which repeat. Sections: all.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

/// Headers emitted as repeated lines rather than one comma list.
const NO_COMMA: &[&str] = &[
    "user-agent",
    "www-authenticate",
    "proxy-authenticate",
    "cookie",
    "set-cookie",
    "warning",
    "date",
    "expires",
    "if-modified-since",
    "if-unmodified-since",
    "last-modified",
    "retry-after",
];

/// Headers the gateway manages itself.
const PROTECTED: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "transfer-encoding",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Override,
    Skip,
    Append,
    Delete,
}

pub fn action(cx: &mut Compiler, e: &Element) -> Action {
    match cx.literal(e, "exists-action").as_deref().map(str::trim) {
        None | Some("override") => Action::Override,
        Some("skip") => Action::Skip,
        Some("append") => Action::Append,
        Some("delete") => Action::Delete,
        Some(other) => {
            let at = e
                .attr("exists-action")
                .map(|a| a.value_span.start)
                .unwrap_or(e.span.start);
            cx.error(
                at,
                format!("exists-action must be override, skip, append or delete, not '{other}'"),
            );
            Action::Override
        }
    }
}

/// Whether `name` is a valid HTTP field name (RFC 9110 token).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` can be sent as a field value.
pub fn valid_value(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

#[derive(Debug)]
pub struct SetHeader {
    name: Val,
    action: Action,
    values: Vec<Val>,
}

impl SetHeader {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<SetHeader> {
        let name = cx.attr(e, "name")?;
        let action = action(cx, e);
        let values = cx.values(e);
        Some(SetHeader {
            name,
            action,
            values,
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let Some((name, values)) = self.evaluate(st)? else {
            return Ok(Outcome::Continue);
        };
        self.write(&name, values, &mut st.message_mut().headers);
        Ok(Outcome::Continue)
    }

    /// Applies to other headers than the current message's (the request a
    /// `send-request` builds); expressions still see `st`.
    pub fn apply_to(
        &self,
        st: &State,
        headers: &mut crate::expr::context::Headers,
    ) -> Result<(), PolicyError> {
        if let Some((name, values)) = self.evaluate(st)? {
            self.write(&name, values, headers);
        }
        Ok(())
    }

    /// The checked name and values; `None` for a header the gateway manages.
    fn evaluate(&self, st: &State) -> Result<Option<(String, Vec<String>)>, PolicyError> {
        let name = self.name.text(st)?;
        if !valid_name(&name) {
            return Err(PolicyError::new(
                500,
                "InvalidHeaderName",
                format!("'{name}' is not a valid header name"),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if PROTECTED.contains(&lower.as_str()) {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(self.values.len());
        for v in &self.values {
            let text = v.text(st)?;
            if !valid_value(&text) {
                return Err(PolicyError::new(
                    500,
                    "InvalidHeaderValue",
                    format!("the value for header '{name}' contains a line break"),
                ));
            }
            values.push(text);
        }
        Ok(Some((name, values)))
    }

    fn write(&self, name: &str, values: Vec<String>, headers: &mut crate::expr::context::Headers) {
        let lower = name.to_ascii_lowercase();
        let exists = headers.contains(name);
        match self.action {
            Action::Delete => {
                headers.remove(name);
                return;
            }
            Action::Skip if exists => return,
            Action::Override | Action::Skip => headers.remove(name),
            Action::Append => {}
        }
        if values.is_empty() {
            if self.action != Action::Append {
                headers.append(name, String::new());
            }
        } else if NO_COMMA.contains(&lower.as_str()) {
            for v in values {
                headers.append(name, v);
            }
        } else {
            headers.append(name, values.join(","));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn run(xml: &str, st: &mut State) {
        let doc = test_doc(xml).unwrap();
        run_plain(doc.section(st.section).unwrap(), st).unwrap();
    }

    #[test]
    fn actions() {
        let mut st = test_state(Section::Inbound);
        st.ctx.request.message.headers.append("X-A", "1".into());
        run(
            r#"<policies><inbound>
            <set-header name="X-A" exists-action="skip"><value>2</value></set-header>
            <set-header name="X-B" exists-action="override"><value>b1</value><value>b2</value></set-header>
            <set-header name="X-A" exists-action="append"><value>3</value></set-header>
            <set-header name="Set-Cookie"><value>a=1</value><value>b=2</value></set-header>
            <set-header name="@(&quot;X-&quot; + &quot;Gone&quot;)" exists-action="delete" />
        </inbound></policies>"#,
            &mut st,
        );
        let h = &st.ctx.request.message.headers;
        assert_eq!(h.get_all("x-a"), vec!["1", "3"]);
        assert_eq!(h.get_all("x-b"), vec!["b1,b2"]);
        assert_eq!(h.get_all("set-cookie"), vec!["a=1", "b=2"]);
    }

    #[test]
    fn outbound_acts_on_the_response_and_bad_values_fail() {
        let mut st = test_state(Section::Outbound);
        st.response_mut();
        run(
            r#"<policies><outbound><set-header name="X-R" exists-action="override"><value>@(context.Response.StatusCode.ToString())</value></set-header></outbound></policies>"#,
            &mut st,
        );
        assert_eq!(
            st.ctx.response.unwrap().message.headers.get_all("x-r"),
            vec!["200"]
        );
        let doc = test_doc(r#"<policies><inbound><set-header name="X" exists-action="override"><value>@("a\r\nb")</value></set-header></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        let e = run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap_err();
        assert_eq!(e.reason, "InvalidHeaderValue");
    }
}

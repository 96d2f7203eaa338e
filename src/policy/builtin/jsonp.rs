//! `<jsonp callback-parameter-name>`: wraps the response body in the
//! callback the request names (`?cb=fn` → `fn(body)`), as
//! `application/javascript`. Sections: outbound.

use super::{Compiler, Outcome, PolicyError, Section, State};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Outbound];

#[derive(Debug)]
pub struct Jsonp {
    param: String,
}

impl Jsonp {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<Jsonp> {
        let param = cx.literal(e, "callback-parameter-name")?;
        Some(Jsonp { param })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let Some(cb) = st
            .ctx
            .request
            .original_url
            .query_values(&self.param)
            .first()
            .map(|s| s.to_string())
        else {
            return Ok(Outcome::Continue);
        };
        let valid = !cb.is_empty()
            && cb.len() <= 128
            && cb
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_$.".contains(c))
            && !cb.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(PolicyError::new(
                400,
                "CallbackParameterInvalid",
                format!("'{cb}' is not a valid JSONP callback name"),
            ));
        }
        let msg = &mut st.response_mut().message;
        let body = msg.body.clone().unwrap_or_default();
        let mut out = Vec::with_capacity(body.len() + cb.len() + 2);
        out.extend_from_slice(cb.as_bytes());
        out.push(b'(');
        out.extend_from_slice(&body);
        out.push(b')');
        msg.body = Some(bytes::Bytes::from(out));
        msg.headers
            .set("Content-Type", "application/javascript".into());
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::expr::context::Url;

    #[test]
    fn wraps_in_the_callback() {
        let doc = test_doc(
            r#"<policies><outbound><jsonp callback-parameter-name="cb" /></outbound></policies>"#,
        )
        .unwrap();
        let steps = doc.section(Section::Outbound).unwrap();
        let mut st = test_state(Section::Outbound);
        st.ctx.request.original_url = Url::parse("http://h/x?cb=handle").unwrap();
        st.response_mut().message.body = Some(bytes::Bytes::from_static(b"{\"a\":1}"));
        run_plain(steps, &mut st).unwrap();
        assert_eq!(
            st.ctx.response.as_ref().unwrap().message.body.as_deref(),
            Some(&b"handle({\"a\":1})"[..])
        );
        st.ctx.request.original_url = Url::parse("http://h/x?cb=alert(1)").unwrap();
        assert_eq!(
            run_plain(steps, &mut st).unwrap_err().reason,
            "CallbackParameterInvalid"
        );
    }
}

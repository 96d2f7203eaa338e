//! `<find-and-replace from to>`: replaces text in the body of the current
//! direction. Sections: all.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

#[derive(Debug)]
pub struct FindAndReplace {
    from: Val,
    to: Val,
}

impl FindAndReplace {
    pub fn parse(cx: &mut Compiler, e: &Element, section: Section) -> Option<FindAndReplace> {
        let from = cx.attr(e, "from")?;
        let to = cx.attr(e, "to")?;
        cx.note_body(section);
        Some(FindAndReplace { from, to })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let from = self.from.text(st)?;
        let to = self.to.text(st)?;
        if from.is_empty() {
            return Ok(Outcome::Continue);
        }
        let msg = st.message_mut();
        if let Some(body) = &msg.body {
            let text = String::from_utf8_lossy(body).replace(&from, &to);
            msg.body = Some(bytes::Bytes::from(text));
        }
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn replaces_in_the_body() {
        let doc = test_doc(r#"<policies><outbound><find-and-replace from="internal.host" to="@(&quot;api.example&quot;)" /></outbound></policies>"#).unwrap();
        let mut st = test_state(Section::Outbound);
        st.response_mut().message.body = Some(bytes::Bytes::from_static(
            b"see http://internal.host/x and internal.host",
        ));
        run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap();
        assert_eq!(
            st.ctx.response.unwrap().message.body.as_deref(),
            Some(&b"see http://api.example/x and api.example"[..])
        );
        assert!(doc.reads_response_body);
    }
}

//! `<set-variable name value>`: stores a value in `context.Variables`
//! (literal text is a string; an expression keeps its type). Sections: all.

use super::{Compiler, Outcome, PolicyError, Section, State, Val};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

#[derive(Debug)]
pub struct SetVariable {
    name: String,
    value: Val,
}

impl SetVariable {
    pub fn parse(cx: &mut Compiler, e: &Element) -> Option<SetVariable> {
        let name = cx.literal(e, "name")?;
        let value = cx.attr(e, "value")?;
        Some(SetVariable { name, value })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        let v = self.value.eval(st)?;
        st.ctx.variables.insert(self.name.clone(), v);
        Ok(Outcome::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn stores_typed_values() {
        let doc = test_doc(r#"<policies><inbound><set-variable name="n" value="@(6 * 7)" /><set-variable name="s" value="text" /></inbound></policies>"#).unwrap();
        let mut st = test_state(Section::Inbound);
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert!(matches!(st.ctx.variables["n"], Value::Int(42)));
        assert!(matches!(&st.ctx.variables["s"], Value::Str(s) if &**s == "text"));
    }
}

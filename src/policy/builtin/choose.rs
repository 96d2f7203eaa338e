//! `<choose>`: the first `<when condition>` that holds runs, else
//! `<otherwise>`. Sections: all.

use super::{Compiler, PolicyError, Section, State, Step, Val};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &Section::ALL;

#[derive(Debug)]
pub struct Choose {
    pub whens: Vec<(Val, Vec<Step>)>,
    pub otherwise: Option<Vec<Step>>,
    path: String,
}

impl Choose {
    pub fn parse(cx: &mut Compiler, e: &Element, section: Section, path: &str) -> Option<Choose> {
        let mut whens = Vec::new();
        let mut otherwise = None;
        for (i, child) in e.elements().enumerate() {
            match child.name.as_str() {
                "when" => {
                    let Some(cond) = cx.attr(child, "condition") else {
                        cx.error(child.span.start, "<when> needs a condition".into());
                        continue;
                    };
                    let n = e
                        .elements()
                        .take(i + 1)
                        .filter(|c| c.name == "when")
                        .count();
                    let steps = cx.steps(child, section, &format!("{path}/when[{n}]"));
                    whens.push((cond, steps));
                }
                "otherwise" => {
                    otherwise = Some(cx.steps(child, section, &format!("{path}/otherwise[1]")));
                }
                other => cx.error(
                    child.span.start,
                    format!("<choose> cannot contain <{other}>"),
                ),
            }
        }
        Some(Choose {
            whens,
            otherwise,
            path: path.to_string(),
        })
    }

    /// The branch to run, if any.
    pub fn select(&self, st: &State) -> Result<Option<&[Step]>, PolicyError> {
        for (i, (cond, steps)) in self.whens.iter().enumerate() {
            let holds = cond.truth(st).map_err(|mut e| {
                e.source = "choose".into();
                e.path = format!("{}/when[{}]", self.path, i + 1);
                e
            })?;
            if holds {
                return Ok(Some(steps));
            }
        }
        Ok(self.otherwise.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn first_true_branch_wins() {
        let doc = test_doc(
            r#"<policies><inbound><choose>
                <when condition="@(context.Variables.ContainsKey(&quot;a&quot;))"><set-variable name="r" value="a" /></when>
                <when condition="true"><set-variable name="r" value="t" /></when>
                <otherwise><set-variable name="r" value="o" /></otherwise>
            </choose></inbound></policies>"#,
        )
        .unwrap();
        let mut st = test_state(Section::Inbound);
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(st.ctx.variables["r"].to_display(), "t");
        st.ctx.variables.insert("a".into(), Value::Int(1));
        run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap();
        assert_eq!(st.ctx.variables["r"].to_display(), "a");
    }

    #[test]
    fn a_condition_that_is_not_a_bool_fails_with_its_path() {
        let doc = test_doc(
            r#"<policies><inbound><choose><when condition="@(1)" /></choose></inbound></policies>"#,
        )
        .unwrap();
        let mut st = test_state(Section::Inbound);
        let e = run_plain(doc.section(Section::Inbound).unwrap(), &mut st).unwrap_err();
        assert_eq!(
            (e.source.as_str(), e.path.as_str()),
            ("choose", "choose[1]/when[1]")
        );
        assert_eq!(e.reason, "ExpressionValueEvaluationFailure");
    }
}

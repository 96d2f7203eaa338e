//! Checks the policies of a document against the catalogue: unknown
//! elements (with the nearest known name as a hint), unknown and missing
//! attributes, values of the wrong type, expressions where an attribute
//! takes none, and children an element does not allow. Every problem is
//! reported with its `line:col`.
//!
//! `{{named values}}` are resolved only when the snapshot compiles; a value
//! holding one is not type-checked here.

use super::catalog::POLICIES;
use super::catalog_types::{Content, Element as Spec, Ty};
use super::xml::{Element, Node};
use super::{line_col, Diagnostic};

/// The policy called `name`.
pub fn policy(name: &str) -> Option<&'static Spec> {
    POLICIES.iter().find(|p| p.name == name)
}

/// Levenshtein distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

fn hint<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    known
        .map(|k| (distance(name, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

/// Checks the policies in one section (or in `when`, `retry`, ...).
pub fn policies(xml: &str, parent: &Element, out: &mut Vec<Diagnostic>) {
    let mut bases = 0;
    for child in parent.elements() {
        if child.name == "base" {
            bases += 1;
            if bases == 2 {
                out.push(at(
                    xml,
                    child.span.start,
                    "<base /> may appear at most once in a section".into(),
                ));
            }
            check(xml, child, &BASE, out);
            continue;
        }
        match policy(&child.name) {
            Some(spec) => check(xml, child, spec, out),
            None => out.push(at(
                xml,
                child.span.start,
                format!(
                    "unknown policy <{}>{}",
                    child.name,
                    hint(&child.name, POLICIES.iter().map(|p| p.name).chain(["base"]))
                ),
            )),
        }
    }
}

static BASE: Spec = Spec {
    name: "base",
    attrs: &[],
    content: Content::Empty,
    mixed: false,
};

fn at(xml: &str, offset: usize, message: String) -> Diagnostic {
    let (line, col) = line_col(xml, offset);
    Diagnostic { line, col, message }
}

fn is_expression(v: &str) -> bool {
    let v = v.trim_start();
    v.starts_with("@(") || v.starts_with("@{")
}

fn check(xml: &str, e: &Element, spec: &Spec, out: &mut Vec<Diagnostic>) {
    for a in &e.attrs {
        // xmlns declarations and the universal `id` are always fine.
        if a.name.starts_with("xmlns") || a.name == "id" {
            continue;
        }
        let Some(attr) = spec.attr(&a.name) else {
            out.push(at(
                xml,
                a.name_span.start,
                format!(
                    "<{}> has no attribute '{}'{}",
                    e.name,
                    a.name,
                    hint(&a.name, spec.attrs.iter().map(|x| x.name))
                ),
            ));
            continue;
        };
        let value = a.value.trim();
        if is_expression(value) {
            if !attr.expr {
                out.push(at(
                    xml,
                    a.value_span.start,
                    format!(
                        "attribute '{}' of <{}> does not take a policy expression",
                        a.name, e.name
                    ),
                ));
            }
            continue;
        }
        if value.contains("{{") {
            continue;
        }
        let ok = match attr.ty {
            Ty::Str => true,
            Ty::Bool => matches!(value.to_ascii_lowercase().as_str(), "true" | "false"),
            Ty::Int => value.parse::<i64>().is_ok(),
            Ty::UInt => value.parse::<u64>().is_ok(),
            Ty::Num => value.parse::<f64>().is_ok(),
            Ty::Enum(values) => values.iter().any(|v| v.eq_ignore_ascii_case(value)),
        };
        if !ok {
            let expected = match attr.ty {
                Ty::Bool => "true or false".to_string(),
                Ty::Int => "an integer".to_string(),
                Ty::UInt => "a non-negative integer".to_string(),
                Ty::Num => "a number".to_string(),
                Ty::Enum(values) => format!("one of {}", values.join(", ")),
                Ty::Str => String::new(),
            };
            out.push(at(
                xml,
                a.value_span.start,
                format!(
                    "attribute '{}' of <{}> must be {expected}, not {:?}",
                    a.name, e.name, a.value
                ),
            ));
        }
    }
    for attr in spec.attrs.iter().filter(|x| x.required) {
        if e.attr(attr.name).is_none() {
            out.push(at(
                xml,
                e.span.start,
                format!("<{}> needs the attribute '{}'", e.name, attr.name),
            ));
        }
    }
    match spec.content {
        Content::Policies => policies(xml, e, out),
        Content::Any => {}
        Content::Empty | Content::Text => {
            if let (Content::Empty, Some(c)) = (spec.content, e.elements().next()) {
                out.push(at(
                    xml,
                    c.span.start,
                    format!("<{}> takes no child elements, found <{}>", e.name, c.name),
                ));
            }
            if let (Content::Text, Some(c)) = (spec.content, e.elements().next()) {
                out.push(at(
                    xml,
                    c.span.start,
                    format!("<{}> takes text, not <{}>", e.name, c.name),
                ));
            }
        }
        Content::Elements(children) => {
            for c in e.elements() {
                match children.iter().find(|k| k.element.name == c.name) {
                    // A policy nested in another (set-header in
                    // return-response, set-url in send-request) is checked
                    // as that policy.
                    Some(k) => check(xml, c, policy(&c.name).unwrap_or(k.element), out),
                    None => out.push(at(
                        xml,
                        c.span.start,
                        format!(
                            "<{}> cannot contain <{}>{}",
                            e.name,
                            c.name,
                            hint(&c.name, children.iter().map(|k| k.element.name))
                        ),
                    )),
                }
            }
            for k in children {
                let n = e.elements().filter(|c| c.name == k.element.name).count() as u32;
                if n < k.min {
                    out.push(at(
                        xml,
                        e.span.start,
                        format!("<{}> needs a <{}> element", e.name, k.element.name),
                    ));
                }
                if k.max.is_some_and(|max| n > max) {
                    out.push(at(
                        xml,
                        e.span.start,
                        format!(
                            "<{}> allows at most {} <{}>",
                            e.name,
                            k.max.unwrap_or(0),
                            k.element.name
                        ),
                    ));
                }
            }
        }
    }
    // Text where only elements belong.
    if matches!(
        spec.content,
        Content::Empty | Content::Elements(_) | Content::Policies
    ) && !spec.mixed
    {
        for n in &e.children {
            if let Node::Text(t, span) = n {
                if !t.trim().is_empty() {
                    out.push(at(xml, span.start, format!("<{}> takes no text", e.name)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(doc: &str) -> Vec<String> {
        let root = super::super::xml::parse(doc).unwrap();
        let mut out = Vec::new();
        for section in root.elements() {
            policies(doc, section, &mut out);
        }
        out.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn valid_documents_have_no_problems() {
        let doc = r#"<policies><inbound><base /><set-header name="x" exists-action="override"><value>@(context.RequestId)</value></set-header>
<choose><when condition="@(true)"><rate-limit calls="5" renewal-period="60" /></when><otherwise><set-status code="200" reason="OK" /></otherwise></choose>
<set-variable name="v" value="{{named}}" /></inbound><backend><forward-request timeout="30" /></backend></policies>"#;
        assert_eq!(problems(doc), Vec::<String>::new());
    }

    #[test]
    fn each_kind_of_problem_is_reported_with_its_position() {
        let doc = "<policies><inbound>\n<set-hedaer name=\"x\" />\n<set-header nme=\"x\" exists-action=\"sometimes\" />\n<rate-limit calls=\"@(5)\" renewal-period=\"soon\" />\n<choose><when /><sometimes /></choose>\n<base /><base />\n</inbound></policies>";
        let p = problems(doc);
        let expect = [
            "2:1: unknown policy <set-hedaer> (did you mean 'set-header'?)",
            "3:13: <set-header> has no attribute 'nme' (did you mean 'name'?)",
            "3:36: attribute 'exists-action' of <set-header> must be one of",
            "3:1: <set-header> needs the attribute 'name'",
            "4:20: attribute 'calls' of <rate-limit> does not take a policy expression",
            "4:42: attribute 'renewal-period' of <rate-limit> must be an integer",
            "5:9: <when> needs the attribute 'condition'",
            "5:17: <choose> cannot contain <sometimes>",
            "6:9: <base /> may appear at most once",
        ];
        for e in expect {
            assert!(
                p.iter().any(|x| x.starts_with(e)),
                "missing {e:?} in {p:#?}"
            );
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }
}

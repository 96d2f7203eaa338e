//! `<xml-to-json kind apply consider-accept-header>`: converts an XML body
//! to JSON, `javascript-friendly` (default: text-only elements become
//! strings, repeated elements arrays, attributes `@name`, mixed text
//! `#text`) or `direct` (every element an object, attributes and text
//! kept apart). `consider-accept-header` (default true) converts only
//! when the client's `Accept` asks for JSON. Sections: inbound, outbound,
//! on-error.

use super::{Compiler, Outcome, PolicyError, Section, State};
use crate::policy::xml::Element;
use quick_xml::events::Event;
use serde_json::{Map, Value as J};

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound, Section::Outbound, Section::OnError];

#[derive(Debug)]
pub struct XmlToJson {
    direct: bool,
    only_xml: bool,
    consider_accept: bool,
}

impl XmlToJson {
    pub fn parse(cx: &mut Compiler, e: &Element, section: Section) -> Option<XmlToJson> {
        let direct = match cx.literal(e, "kind").as_deref().map(str::trim) {
            None | Some("javascript-friendly") => false,
            Some("direct") => true,
            Some(other) => {
                cx.error(
                    e.span.start,
                    format!("kind must be javascript-friendly or direct, not '{other}'"),
                );
                return None;
            }
        };
        let only_xml = match cx.literal(e, "apply").as_deref().map(str::trim) {
            None | Some("always") => false,
            Some("content-type-xml") => true,
            Some(other) => {
                cx.error(
                    e.span.start,
                    format!("apply must be always or content-type-xml, not '{other}'"),
                );
                return None;
            }
        };
        cx.note_body(section);
        Some(XmlToJson {
            direct,
            only_xml,
            consider_accept: cx.flag(e, "consider-accept-header", true),
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        if self.consider_accept && !st.client_accepts("json") {
            return Ok(Outcome::Continue);
        }
        let msg = st.message_mut();
        let ct = msg
            .headers
            .joined("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if self.only_xml && !ct.contains("xml") {
            return Ok(Outcome::Continue);
        }
        let Some(body) = &msg.body else {
            return Ok(Outcome::Continue);
        };
        let text = String::from_utf8_lossy(body).into_owned();
        let json = convert(&text, self.direct).map_err(|m| {
            PolicyError::new(
                500,
                "XmlToJsonConversionFailure",
                format!("the body is not XML: {m}"),
            )
        })?;
        msg.body = Some(bytes::Bytes::from(json.to_string()));
        msg.headers.set("Content-Type", "application/json".into());
        Ok(Outcome::Continue)
    }
}

/// How deep a converted body's elements may nest.
const MAX_DEPTH: usize = 256;

struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

fn convert(xml: &str, direct: bool) -> Result<J, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let open = |e: &quick_xml::events::BytesStart| -> Result<Node, String> {
        let mut attrs = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let v = a.unescape_value().map_err(|e| e.to_string())?;
            attrs.push((
                String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                v.into_owned(),
            ));
        }
        Ok(Node {
            name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            attrs,
            children: Vec::new(),
            text: String::new(),
        })
    };
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) => {
                // The conversion below recurses: bound the depth a
                // client's body can ask for.
                if stack.len() >= MAX_DEPTH {
                    return Err(format!(
                        "elements are nested too deep (more than {MAX_DEPTH} levels)"
                    ));
                }
                stack.push(open(&e)?)
            }
            Event::Empty(e) => {
                let n = open(&e)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Event::End(_) => {
                let n = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Event::Text(t) => {
                if let Some(p) = stack.last_mut() {
                    let s = t.decode().map_err(|e| e.to_string())?;
                    p.text
                        .push_str(&quick_xml::escape::unescape(&s).map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some(p) = stack.last_mut() {
                    p.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(p) = stack.last_mut() {
                    let name = String::from_utf8_lossy(&r).into_owned();
                    let entity = format!("&{name};");
                    let decoded =
                        quick_xml::escape::unescape(&entity).map_err(|e| e.to_string())?;
                    p.text.push_str(&decoded);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("unclosed element".into());
    }
    let root = root.ok_or("no root element")?;
    let mut m = Map::new();
    m.insert(
        root.name.clone(),
        if direct {
            direct_node(&root)
        } else {
            friendly(&root)
        },
    );
    Ok(J::Object(m))
}

fn friendly(n: &Node) -> J {
    let text = n.text.trim();
    if n.children.is_empty() && n.attrs.is_empty() {
        return if text.is_empty() {
            J::Null
        } else {
            J::String(text.to_string())
        };
    }
    object(n, friendly)
}

fn direct_node(n: &Node) -> J {
    object(n, direct_node)
}

/// An element as an object: `@attributes`, children by name (repeated ones
/// as arrays, each converted by `child`), and `#text`.
fn object(n: &Node, child: fn(&Node) -> J) -> J {
    let mut m = Map::new();
    for (k, v) in &n.attrs {
        m.insert(format!("@{k}"), J::String(v.clone()));
    }
    for c in &n.children {
        let v = child(c);
        match m.get_mut(&c.name) {
            Some(J::Array(a)) => a.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = J::Array(vec![first, v]);
            }
            None => {
                m.insert(c.name.clone(), v);
            }
        }
    }
    let text = n.text.trim();
    if !text.is_empty() {
        m.insert("#text".into(), J::String(text.to_string()));
    }
    J::Object(m)
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn javascript_friendly() {
        let doc = test_doc(r#"<policies><outbound><xml-to-json kind="javascript-friendly" apply="always" consider-accept-header="false" /></outbound></policies>"#).unwrap();
        let mut st = test_state(Section::Outbound);
        st.response_mut().message.body = Some(bytes::Bytes::from_static(br#"<?xml version="1.0"?><order id="7"><item>a</item><item>b &amp; c</item><note/></order>"#));
        run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap();
        let r = st.ctx.response.unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(r.message.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"order": {"@id": "7", "item": ["a", "b & c"], "note": null}})
        );
        assert_eq!(
            r.message.headers.get_all("content-type"),
            vec!["application/json"]
        );
    }

    #[test]
    fn deep_bodies_fail_without_exhausting_the_stack() {
        let doc = test_doc(r#"<policies><outbound><xml-to-json kind="direct" apply="always" consider-accept-header="false" /></outbound></policies>"#).unwrap();
        let mut st = test_state(Section::Outbound);
        let deep = format!("{}{}", "<a>".repeat(500_000), "</a>".repeat(500_000));
        st.response_mut().message.body = Some(bytes::Bytes::from(deep));
        let e = run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap_err();
        assert_eq!(e.reason, "XmlToJsonConversionFailure");
        assert!(e.message.contains("too deep"), "{}", e.message);
        // 256 levels still convert.
        let ok = format!("{}{}", "<a>".repeat(256), "</a>".repeat(256));
        st.response_mut().message.body = Some(bytes::Bytes::from(ok));
        run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap();
    }

    #[test]
    fn malformed_xml_fails() {
        let doc = test_doc(r#"<policies><outbound><xml-to-json kind="direct" apply="always" consider-accept-header="false" /></outbound></policies>"#).unwrap();
        let mut st = test_state(Section::Outbound);
        st.response_mut().message.body = Some(bytes::Bytes::from_static(b"<a><b></a>"));
        let e = run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap_err();
        assert_eq!(e.reason, "XmlToJsonConversionFailure");
    }
}

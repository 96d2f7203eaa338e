//! `<json-to-xml apply consider-accept-header>`: converts a JSON body to
//! XML under a `<Document>` root (objects → elements, arrays → repeated
//! elements). `apply="content-type-json"` converts only JSON bodies;
//! `consider-accept-header` (default true) converts only when the client's
//! `Accept` asks for XML. Sections: inbound, outbound, on-error.

use super::set_body::is_json;
use super::{Compiler, Outcome, PolicyError, Section, State};
use crate::policy::xml::Element;

/// The sections this policy may appear in.
pub const SECTIONS: &[Section] = &[Section::Inbound, Section::Outbound, Section::OnError];

#[derive(Debug)]
pub struct JsonToXml {
    only_json: bool,
    consider_accept: bool,
}

impl JsonToXml {
    pub fn parse(cx: &mut Compiler, e: &Element, section: Section) -> Option<JsonToXml> {
        let only_json = match cx.literal(e, "apply").as_deref().map(str::trim) {
            None | Some("always") => false,
            Some("content-type-json") => true,
            Some(other) => {
                cx.error(
                    e.span.start,
                    format!("apply must be always or content-type-json, not '{other}'"),
                );
                return None;
            }
        };
        cx.note_body(section);
        Some(JsonToXml {
            only_json,
            consider_accept: cx.flag(e, "consider-accept-header", true),
        })
    }

    pub fn apply(&self, st: &mut State) -> Result<Outcome, PolicyError> {
        if self.consider_accept && !st.client_accepts("xml") {
            return Ok(Outcome::Continue);
        }
        let msg = st.message_mut();
        let ct = msg.headers.joined("content-type").unwrap_or_default();
        if self.only_json && !is_json(&ct) {
            return Ok(Outcome::Continue);
        }
        let Some(body) = &msg.body else {
            return Ok(Outcome::Continue);
        };
        let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            PolicyError::new(
                500,
                "JsonToXmlConversionFailure",
                format!("the body is not JSON: {e}"),
            )
        })?;
        let mut out = String::from("<Document>");
        match &json {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    element(&mut out, k, v);
                }
            }
            other => element(&mut out, "Array", other),
        }
        out.push_str("</Document>");
        msg.body = Some(bytes::Bytes::from(out));
        msg.headers.set("Content-Type", "application/xml".into());
        Ok(Outcome::Continue)
    }
}

/// An XML name for a JSON key (`XmlConvert.EncodeName` style).
fn xml_name(k: &str) -> String {
    let mut out = String::new();
    for (i, c) in k.chars().enumerate() {
        let ok = c.is_alphabetic()
            || c == '_'
            || (i > 0 && (c.is_ascii_digit() || c == '-' || c == '.'));
        if ok {
            out.push(c);
        } else {
            out.push_str(&format!("_x{:04X}_", c as u32));
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn element(out: &mut String, name: &str, v: &serde_json::Value) {
    let n = xml_name(name);
    match v {
        serde_json::Value::Array(items) => {
            for i in items {
                element(out, name, i);
            }
        }
        serde_json::Value::Object(m) => {
            out.push_str(&format!("<{n}>"));
            for (k, v) in m {
                element(out, k, v);
            }
            out.push_str(&format!("</{n}>"));
        }
        serde_json::Value::Null => out.push_str(&format!("<{n} />")),
        serde_json::Value::String(s) => out.push_str(&format!("<{n}>{}</{n}>", escape(s))),
        other => out.push_str(&format!("<{n}>{other}</{n}>")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn converts_when_xml_is_accepted() {
        let doc = test_doc(r#"<policies><outbound><json-to-xml apply="always" consider-accept-header="false" /></outbound></policies>"#).unwrap();
        let mut st = test_state(Section::Outbound);
        st.response_mut().message.body = Some(bytes::Bytes::from_static(
            br#"{"a":1,"b":[{"c":"x<y"},null],"1st":true}"#,
        ));
        run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap();
        let r = st.ctx.response.unwrap();
        assert_eq!(
            std::str::from_utf8(r.message.body.as_deref().unwrap()).unwrap(),
            "<Document><a>1</a><b><c>x&lt;y</c></b><b /><_x0031_st>true</_x0031_st></Document>"
        );
        assert_eq!(
            r.message.headers.get_all("content-type"),
            vec!["application/xml"]
        );

        let doc =
            test_doc(r#"<policies><outbound><json-to-xml apply="always" /></outbound></policies>"#)
                .unwrap();
        let mut st = test_state(Section::Outbound);
        st.response_mut().message.body = Some(bytes::Bytes::from_static(b"{}"));
        run_plain(doc.section(Section::Outbound).unwrap(), &mut st).unwrap();
        assert_eq!(
            st.ctx.response.unwrap().message.body.as_deref(),
            Some(&b"{}"[..]),
            "no Accept: xml, no conversion"
        );
    }
}

//! Policy XML → a positioned element tree.
//!
//! Every element, attribute and text keeps its byte span in the original
//! document (so diagnostics say `line:col`), and values are taken from the
//! original text, not the masked copy the XML parser reads: an expression
//! written raw (`@(a && b < c)`, APIM's rawxml) comes back exactly as
//! written, and an escaped one (`@(a &amp;&amp; b)`) comes back unescaped.

use super::rawxml::mask_expressions;
use super::{line_col, Diagnostic};
use crate::expr::Span;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// How deep elements may nest in a policy document (APIM's documents
/// nest a dozen levels at most).
pub const MAX_DEPTH: usize = 100;

/// An attribute: name, value (entities decoded), and where the value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub name: String,
    pub value: String,
    /// The name's span.
    pub name_span: Span,
    /// The raw value's span (between the quotes).
    pub value_span: Span,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    /// Text (entities decoded, CDATA included) and its raw span.
    Text(String, Span),
}

/// An element and its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
    /// The start tag's span.
    pub span: Span,
}

impl Element {
    /// The attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// Child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(..) => None,
        })
    }

    /// The concatenated text children, trimmed.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t, _) = n {
                s.push_str(t);
            }
        }
        s.trim().to_string()
    }
}

/// Decodes the XML entities in `raw`; a `&` that starts no entity (a raw
/// `&&` in an expression) stays as it is.
pub fn decode_entities(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let entity = rest[1..]
            .find(';')
            .filter(|&j| j <= 10)
            .map(|j| &rest[1..1 + j]);
        let decoded = entity.and_then(|e| match e {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => {
                let n = if let Some(h) = e.strip_prefix("#x").or_else(|| e.strip_prefix("#X")) {
                    u32::from_str_radix(h, 16).ok()
                } else {
                    e.strip_prefix('#').and_then(|d| d.parse().ok())
                };
                n.and_then(char::from_u32)
            }
        });
        match (entity, decoded) {
            (Some(e), Some(c)) => {
                out.push(c);
                rest = &rest[e.len() + 2..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn diag(xml: &str, offset: usize, message: String) -> Diagnostic {
    let (line, col) = line_col(xml, offset);
    Diagnostic { line, col, message }
}

/// Parses a whole document into its root element.
pub fn parse(xml: &str) -> Result<Element, Diagnostic> {
    // The XML reader skips a byte-order mark and counts positions without
    // it; parse what follows it and shift every offset back.
    let shift = if xml.starts_with('\u{feff}') { 3 } else { 0 };
    let src = &xml[shift..];
    let masked = mask_expressions(src);
    let base = masked.as_ptr() as usize;
    let mut reader = Reader::from_str(&masked);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    // Consecutive text and entity events make one text node.
    let mut text: Option<Span> = None;

    let flush_text = |text: &mut Option<Span>, stack: &mut Vec<Element>| {
        if let (Some(span), Some(parent)) = (text.take(), stack.last_mut()) {
            let value = decode_entities(&xml[span.start..span.end]);
            parent.children.push(Node::Text(value, span));
        }
    };

    loop {
        let start = reader.buffer_position() as usize + shift;
        let event = reader.read_event().map_err(|e| {
            diag(
                xml,
                reader.error_position() as usize + shift,
                format!("malformed XML: {e}"),
            )
        })?;
        let end = reader.buffer_position() as usize + shift;
        match event {
            Event::Text(_) | Event::GeneralRef(_) => {
                if stack.is_empty() {
                    // Only white space (and a byte-order mark) may stand outside the root.
                    if !xml[start..end]
                        .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                        .is_empty()
                    {
                        return Err(diag(xml, start, "text outside the root element".into()));
                    }
                    continue;
                }
                text = Some(match text {
                    Some(s) => Span::new(s.start, end),
                    None => Span::new(start, end),
                });
            }
            Event::CData(c) => {
                flush_text(&mut text, &mut stack);
                if let Some(parent) = stack.last_mut() {
                    let value = String::from_utf8_lossy(&c).into_owned();
                    parent
                        .children
                        .push(Node::Text(value, Span::new(start, end)));
                }
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                flush_text(&mut text, &mut stack);
                let element = element(xml, base, shift, e, Span::new(start, end))?;
                if stack.is_empty() && root.is_some() {
                    return Err(diag(xml, start, "more than one root element".into()));
                }
                if matches!(event, Event::Start(_)) {
                    if stack.len() >= MAX_DEPTH {
                        // Compiling and dropping the tree recurse: a
                        // deeper document could exhaust the stack.
                        return Err(diag(
                            xml,
                            start,
                            format!("elements are nested too deep (more than {MAX_DEPTH} levels)"),
                        ));
                    }
                    stack.push(element);
                } else {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(element)),
                        None => root = Some(element),
                    }
                }
            }
            Event::End(_) => {
                flush_text(&mut text, &mut stack);
                if let Some(done) = stack.pop() {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(done)),
                        None => root = Some(done),
                    }
                }
            }
            Event::Eof => break,
            // Entity declarations (billion laughs, external entities) are
            // never expanded: a DOCTYPE is refused outright.
            Event::DocType(_) => {
                return Err(diag(
                    xml,
                    start,
                    "a DOCTYPE declaration is not allowed in a policy document".into(),
                ))
            }
            // Comments, the XML declaration, processing instructions.
            _ => flush_text(&mut text, &mut stack),
        }
    }
    if !stack.is_empty() {
        return Err(diag(
            xml,
            xml.len(),
            "unexpected end of document: an element is not closed".into(),
        ));
    }
    root.ok_or_else(|| diag(xml, 0, "empty document".into()))
}

fn element(
    xml: &str,
    base: usize,
    shift: usize,
    e: &BytesStart<'_>,
    span: Span,
) -> Result<Element, Diagnostic> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs: Vec<Attr> = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| {
            diag(
                xml,
                span.start,
                format!("malformed attribute in <{name}>: {err}"),
            )
        })?;
        let attr_name = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        // Values borrow from the masked copy; the same offsets in the
        // original hold what the user wrote.
        let v_start = (a.value.as_ptr() as usize)
            .wrapping_sub(base)
            .wrapping_add(shift);
        let v_end = v_start + a.value.len();
        let n_start = (a.key.as_ref().as_ptr() as usize)
            .wrapping_sub(base)
            .wrapping_add(shift);
        let (value_span, name_span) = if v_end <= xml.len() && n_start <= xml.len() {
            (
                Span::new(v_start, v_end),
                Span::new(n_start, n_start + attr_name.len()),
            )
        } else {
            (span, span)
        };
        if attrs.iter().any(|x| x.name == attr_name) {
            return Err(diag(
                xml,
                name_span.start,
                format!("attribute '{attr_name}' appears twice"),
            ));
        }
        let raw = xml.get(value_span.start..value_span.end).unwrap_or("");
        attrs.push(Attr {
            name: attr_name,
            value: decode_entities(raw),
            name_span,
            value_span,
        });
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_escaped_expressions_come_back_as_written() {
        let doc = "<policies>\n  <inbound>\n    <set-header name=\"x\" exists-action=\"override\">\n      <value>@(a &amp;&amp; b)</value>\n    </set-header>\n    <choose><when condition=\"@(context.Variables[\"n\"] < 3 && true)\" /></choose>\n  </inbound>\n</policies>";
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "policies");
        let inbound = root.elements().next().unwrap();
        let mut items = inbound.elements();
        let set_header = items.next().unwrap();
        assert_eq!(set_header.attr("exists-action").unwrap().value, "override");
        assert_eq!(set_header.elements().next().unwrap().text(), "@(a && b)");
        let when = items.next().unwrap().elements().next().unwrap();
        let cond = when.attr("condition").unwrap();
        assert_eq!(cond.value, "@(context.Variables[\"n\"] < 3 && true)");
        assert_eq!(line_col(doc, cond.name_span.start), (6, 19));
        assert_eq!(&doc[cond.value_span.start..cond.value_span.end], cond.value);
        assert_eq!(line_col(doc, set_header.span.start), (3, 5));
    }

    #[test]
    fn entities_decode_leniently() {
        assert_eq!(
            decode_entities("a &lt;b&gt; &#65;&#x42; && &unknown; &"),
            "a <b> AB && &unknown; &"
        );
    }

    #[test]
    fn malformed_documents_are_located() {
        let e = parse("<policies>\n<inbound>\n</outbound>").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a x='1' x='2'/>").is_err());
        assert!(parse("<a>").is_err());
        assert!(parse("text<a/>").is_err());
    }

    #[test]
    fn cdata_and_comments() {
        let root = parse("<a><!-- c --><![CDATA[<raw> & ]]></a>").unwrap();
        assert_eq!(root.text(), "<raw> &");
    }
}

#[cfg(test)]
mod bom {
    use super::*;

    #[test]
    fn doctype_declarations_are_refused() {
        let e = parse("<!DOCTYPE p [<!ENTITY x \"y\">]><p>&x;</p>").unwrap_err();
        assert!(e.message.contains("DOCTYPE"), "{}", e.message);
    }

    #[test]
    fn deep_documents_are_refused_at_the_limit() {
        let at = |depth: usize| format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        assert!(parse(&at(MAX_DEPTH)).is_ok());
        let e = parse(&at(MAX_DEPTH + 1)).unwrap_err();
        assert!(e.message.contains("too deep"), "{}", e.message);
        let e = parse(&at(1_000_000)).unwrap_err();
        assert!(e.message.contains("too deep"), "{}", e.message);
    }

    #[test]
    fn a_byte_order_mark_shifts_nothing() {
        let doc = "\u{feff}<!-- c -->\n<a x=\"1\">t&amp;u</a>";
        let root = parse(doc).unwrap();
        let x = root.attr("x").unwrap();
        assert_eq!(&doc[x.value_span.start..x.value_span.end], "1");
        let Node::Text(t, span) = &root.children[0] else {
            panic!()
        };
        assert_eq!(t, "t&u");
        assert_eq!(&doc[span.start..span.end], "t&amp;u");
        assert_eq!(&doc[root.span.start..root.span.end], "<a x=\"1\">");
    }
}

//! `System.Xml.Linq` for policy expressions: `XDocument`, `XElement`,
//! `XAttribute`, `XName` and `XNamespace` — parsing (`Parse`, and
//! `IMessageBody.As<XDocument>()`), navigation (`Root`, `Elements`,
//! `Element`, `Descendants`, `Ancestors`, `Attribute(s)`, `Parent`),
//! `Value`, the explicit casts (`(string)element`, `(int)attribute`, ...)
//! and `ToString()` formatted as .NET's `XmlWriter` formats it.
//!
//! A parsed document is an immutable arena ([`Tree`]) behind an `Arc`;
//! elements and attributes are (tree, index) handles, so `Parent`,
//! equality and sharing cost nothing. Walks are iterative: nesting depth
//! cannot exhaust the stack. Malformed XML is an `XmlException`.

use super::{arg, list_of, opt_str};
use crate::expr::eval::{EResult, EvalError, Interp};
use crate::expr::time::DateTime;
use crate::expr::value::{parse_guid, Value};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::sync::Arc;

/// The namespace bound to the `xml` prefix.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of `xmlns:p` declarations.
pub const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// Instance members of the XML types.
pub const INSTANCE: &[&str] = &[
    "Root",
    "Name",
    "LocalName",
    "NamespaceName",
    "Namespace",
    "GetName",
    "Value",
    "Elements",
    "Element",
    "Descendants",
    "DescendantsAndSelf",
    "Ancestors",
    "AncestorsAndSelf",
    "Attribute",
    "Attributes",
    "HasElements",
    "HasAttributes",
    "IsEmpty",
    "IsNamespaceDeclaration",
    "Parent",
    "Document",
];

const XDOCUMENT: &[&str] = &["Parse"];
const XELEMENT: &[&str] = &["Parse"];
const XNAME: &[&str] = &["Get"];
const XNAMESPACE: &[&str] = &["Get", "None", "Xml", "Xmlns"];

/// The static members of an XML type.
pub fn statics(ty: &str) -> Option<&'static [&'static str]> {
    match ty {
        "XDocument" => Some(XDOCUMENT),
        "XElement" => Some(XELEMENT),
        "XName" => Some(XNAME),
        "XNamespace" => Some(XNAMESPACE),
        "XAttribute" | "XNode" => Some(&[]),
        _ => None,
    }
}

// === the tree ===

/// A qualified name: namespace URI, local name, and the prefix it was
/// written with (for `ToString()`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct QName {
    ns: String,
    local: String,
    prefix: String,
}

impl QName {
    fn qualified(&self) -> String {
        if self.prefix.is_empty() {
            self.local.clone()
        } else {
            format!("{}:{}", self.prefix, self.local)
        }
    }

    fn is_namespace_declaration(&self) -> bool {
        self.ns == XMLNS_NS || (self.ns.is_empty() && self.local == "xmlns")
    }
}

#[derive(Debug)]
struct Attr {
    name: QName,
    value: String,
}

#[derive(Debug)]
struct Elem {
    name: QName,
    attrs: Vec<Attr>,
    children: Vec<usize>,
    /// Written `<a/>` (`IsEmpty`), not `<a></a>`.
    self_closing: bool,
}

#[derive(Debug)]
enum Kind {
    Element(Elem),
    Text(String),
    CData(String),
    Comment(String),
    Pi(String, String),
}

#[derive(Debug)]
struct Node {
    parent: Option<usize>,
    kind: Kind,
}

/// A parsed document: nodes in document order.
#[derive(Debug)]
pub struct Tree {
    nodes: Vec<Node>,
    /// Document-level nodes: the root element and comments or processing
    /// instructions around it.
    top: Vec<usize>,
    root: usize,
    /// Parsed as an `XDocument` (elements have a `Document`).
    document: bool,
}

impl Tree {
    fn elem(&self, id: usize) -> Option<&Elem> {
        match self.nodes.get(id).map(|n| &n.kind) {
            Some(Kind::Element(e)) => Some(e),
            _ => None,
        }
    }

    fn children(&self, id: usize) -> &[usize] {
        self.elem(id).map(|e| e.children.as_slice()).unwrap_or(&[])
    }

    /// Child elements of `id`, in order.
    fn child_elements(&self, id: usize) -> impl Iterator<Item = usize> + '_ {
        self.children(id)
            .iter()
            .copied()
            .filter(|c| self.elem(*c).is_some())
    }

    /// Element descendants of `id` in document order (not `id` itself).
    fn descendants(&self, id: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.child_elements(id).collect();
        stack.reverse();
        while let Some(n) = stack.pop() {
            out.push(n);
            let before = stack.len();
            stack.extend(self.child_elements(n));
            stack[before..].reverse();
        }
        out
    }

    /// The concatenated text (and CDATA) under `id`.
    fn value(&self, id: usize) -> String {
        let mut out = String::new();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            match self.nodes.get(n).map(|n| &n.kind) {
                Some(Kind::Text(t) | Kind::CData(t)) => out.push_str(t),
                Some(Kind::Element(e)) => stack.extend(e.children.iter().rev()),
                _ => {}
            }
        }
        out
    }

    fn parent(&self, id: usize) -> Option<usize> {
        self.nodes.get(id).and_then(|n| n.parent)
    }
}

/// An `XName`: namespace URI and local name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XName {
    pub ns: String,
    pub local: String,
}

impl XName {
    /// `XName.Get(expandedName)`: `{namespace}local` or `local`.
    pub fn parse(s: &str) -> EResult<XName> {
        let invalid = || EvalError::argument(format!("The '{s}' name is invalid."));
        let name = match s.strip_prefix('{') {
            Some(rest) => {
                let (ns, local) = rest.split_once('}').ok_or_else(invalid)?;
                XName {
                    ns: ns.to_string(),
                    local: local.to_string(),
                }
            }
            None => XName {
                ns: String::new(),
                local: s.to_string(),
            },
        };
        if name.local.is_empty() || name.local.contains(['{', '}', ' ', '<', '>', '&']) {
            return Err(invalid());
        }
        Ok(name)
    }

    fn matches(&self, q: &QName) -> bool {
        self.local == q.local && self.ns == q.ns
    }
}

impl std::fmt::Display for XName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ns.is_empty() {
            f.write_str(&self.local)
        } else {
            write!(f, "{{{}}}{}", self.ns, self.local)
        }
    }
}

/// An XML object handed to expressions.
#[derive(Debug, Clone)]
pub enum Xml {
    Document(Arc<Tree>),
    Element(Arc<Tree>, usize),
    /// An attribute: its element and its index there.
    Attribute(Arc<Tree>, usize, usize),
    Name(XName),
    Namespace(String),
}

impl Xml {
    pub fn type_name(&self) -> &'static str {
        match self {
            Xml::Document(_) => "XDocument",
            Xml::Element(..) => "XElement",
            Xml::Attribute(..) => "XAttribute",
            Xml::Name(_) => "XName",
            Xml::Namespace(_) => "XNamespace",
        }
    }

    /// `ToString()`.
    pub fn to_display(&self) -> String {
        match self {
            Xml::Document(t) => write_document(t, true, DISPLAY_CAP),
            Xml::Element(t, id) => write_element(t, *id, true, DISPLAY_CAP),
            Xml::Attribute(t, e, i) => attr_of(t, *e, *i)
                .map(|a| {
                    let mut s = a.name.qualified();
                    s.push_str("=\"");
                    escape_attr(&mut s, &a.value);
                    s.push('"');
                    s
                })
                .unwrap_or_default(),
            Xml::Name(n) => n.to_string(),
            Xml::Namespace(ns) => ns.clone(),
        }
    }

    /// `x is T` for the XML class hierarchy.
    pub fn is_a(&self, ty: &str) -> bool {
        match self {
            Xml::Document(_) => matches!(ty, "XDocument" | "XContainer" | "XNode" | "XObject"),
            Xml::Element(..) => matches!(ty, "XElement" | "XContainer" | "XNode" | "XObject"),
            Xml::Attribute(..) => matches!(ty, "XAttribute" | "XObject"),
            Xml::Name(_) => ty == "XName",
            Xml::Namespace(_) => ty == "XNamespace",
        }
    }

    /// Reference equality for nodes, value equality for names.
    pub fn same(&self, other: &Xml) -> bool {
        match (self, other) {
            (Xml::Document(a), Xml::Document(b)) => Arc::ptr_eq(a, b),
            (Xml::Element(a, x), Xml::Element(b, y)) => Arc::ptr_eq(a, b) && x == y,
            (Xml::Attribute(a, e1, i1), Xml::Attribute(b, e2, i2)) => {
                Arc::ptr_eq(a, b) && e1 == e2 && i1 == i2
            }
            (Xml::Name(a), Xml::Name(b)) => a == b,
            (Xml::Namespace(a), Xml::Namespace(b)) => a == b,
            _ => false,
        }
    }
}

fn attr_of(t: &Tree, e: usize, i: usize) -> Option<&Attr> {
    t.elem(e).and_then(|el| el.attrs.get(i))
}

fn xml_value(x: Xml) -> Value {
    Value::Native(Arc::new(super::Native::Xml(x)))
}

/// The XML object in a value, if any.
pub fn of(v: &Value) -> Option<&Xml> {
    match v {
        Value::Native(n) => match &**n {
            super::Native::Xml(x) => Some(x),
            _ => None,
        },
        _ => None,
    }
}

/// A name argument: an `XName`, or a string converted as C# does
/// implicitly (`"local"` or `"{namespace}local"`). `null` gives `None`.
fn name_arg(v: &Value) -> EResult<Option<XName>> {
    if let Some(Xml::Name(n)) = of(v) {
        return Ok(Some(n.clone()));
    }
    match opt_str(v)? {
        None => Ok(None),
        Some(s) => XName::parse(&s).map(Some),
    }
}

/// `XNamespace == XName.Get("...")` and `element.Name == "local"`.
pub fn equals_str(x: &Xml, s: &str) -> bool {
    match x {
        Xml::Name(n) => XName::parse(s).is_ok_and(|p| p == *n),
        Xml::Namespace(ns) => ns == s,
        _ => false,
    }
}

/// `ns + "local"`: an `XNamespace` plus a local name is an `XName`.
pub fn namespace_plus(a: &Value, b: &Value) -> EResult<Option<Value>> {
    let Some(Xml::Namespace(ns)) = of(a) else {
        return Ok(None);
    };
    let Some(local) = opt_str(b)? else {
        return Err(EvalError::new(
            "ArgumentNullException",
            "Value cannot be null. (Parameter 'localName')",
        ));
    };
    let name = XName::parse(&local)?;
    if !name.ns.is_empty() {
        return Err(EvalError::argument(format!(
            "The '{local}' name is invalid."
        )));
    }
    Ok(Some(xml_value(Xml::Name(XName {
        ns: ns.clone(),
        local: name.local,
    }))))
}

/// What `XName n = "..."` and `XNamespace ns = "..."` do with a string.
pub fn implicit(ty: &str, v: &Value) -> EResult<Option<Value>> {
    let Value::Str(s) = v else {
        return Ok(None);
    };
    Ok(match ty {
        "XName" => Some(xml_value(Xml::Name(XName::parse(s)?))),
        "XNamespace" => Some(xml_value(Xml::Namespace(s.to_string()))),
        _ => None,
    })
}

// === parsing ===

fn xml_error(message: impl Into<String>) -> EvalError {
    EvalError::new("XmlException", message)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// 1-based line and position of a byte offset (as `XmlException` says).
fn line_pos(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

fn normalize_eol(s: &str) -> String {
    if s.contains('\r') {
        s.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        s.to_string()
    }
}

struct Open {
    id: usize,
    offset: usize,
    preserve: bool,
    /// Length of [`Parser::bindings`] before this element's declarations.
    mark: usize,
}

struct Parser<'s> {
    src: &'s str,
    nodes: Vec<Node>,
    top: Vec<usize>,
    open: Vec<Open>,
    /// Namespace declarations in force, outermost first: (prefix, uri).
    bindings: Vec<(String, String)>,
    root: Option<usize>,
    text: String,
    text_at: Option<usize>,
    preserve_whitespace: bool,
}

impl<'s> Parser<'s> {
    fn error_at(&self, message: &str, offset: usize) -> EvalError {
        let (l, p) = line_pos(self.src, offset);
        xml_error(format!("{message} Line {l}, position {p}."))
    }

    fn add(&mut self, kind: Kind) -> usize {
        let parent = self.open.last().map(|o| o.id);
        let id = self.nodes.len();
        self.nodes.push(Node { parent, kind });
        match parent.and_then(|p| self.nodes.get_mut(p)) {
            Some(Node {
                kind: Kind::Element(e),
                ..
            }) => e.children.push(id),
            _ => self.top.push(id),
        }
        id
    }

    /// Ends a run of text: white space alone is dropped (unless preserved),
    /// other text outside the root element is an error.
    fn flush_text(&mut self) -> EResult<()> {
        let Some(at) = self.text_at.take() else {
            return Ok(());
        };
        let text = std::mem::take(&mut self.text);
        let blank = text.chars().all(is_xml_space);
        match self.open.last() {
            None if blank => {}
            None => return Err(self.error_at("Data at the root level is invalid.", at)),
            Some(o) if blank && !o.preserve && !self.preserve_whitespace => {}
            Some(_) => {
                self.add(Kind::Text(text));
            }
        }
        Ok(())
    }

    fn push_text(&mut self, s: &str, offset: usize) {
        if self.text_at.is_none() {
            self.text_at = Some(offset);
        }
        self.text.push_str(s);
    }

    fn lookup(&self, prefix: &str) -> Option<String> {
        if prefix == "xml" {
            return Some(XML_NS.to_string());
        }
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.clone())
            .or_else(|| prefix.is_empty().then(String::new))
    }

    fn resolve(&self, qname: &str, is_attr: bool, offset: usize) -> EResult<QName> {
        let (prefix, local) = qname.split_once(':').unwrap_or(("", qname));
        if local.is_empty() || local.contains(':') {
            return Err(self.error_at(&format!("Name '{qname}' is not valid."), offset));
        }
        if is_attr && prefix.is_empty() {
            // Unprefixed attributes are in no namespace; `xmlns` declares one.
            let ns = String::new();
            return Ok(QName {
                ns,
                local: local.to_string(),
                prefix: String::new(),
            });
        }
        if is_attr && prefix == "xmlns" {
            return Ok(QName {
                ns: XMLNS_NS.to_string(),
                local: local.to_string(),
                prefix: prefix.to_string(),
            });
        }
        let ns = self.lookup(prefix).ok_or_else(|| {
            self.error_at(&format!("'{prefix}' is an undeclared prefix."), offset)
        })?;
        Ok(QName {
            ns,
            local: local.to_string(),
            prefix: prefix.to_string(),
        })
    }

    fn attr_value(&self, raw: &[u8], offset: usize) -> EResult<String> {
        let raw = String::from_utf8_lossy(raw);
        // Attribute-value normalisation: literal white space becomes spaces.
        let normalized: String = raw
            .replace("\r\n", " ")
            .chars()
            .map(|c| {
                if matches!(c, '\t' | '\n' | '\r') {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        quick_xml::escape::unescape(&normalized)
            .map(|c| c.into_owned())
            .map_err(|e| self.escape_error(&e, offset))
    }

    fn escape_error(&self, e: &quick_xml::escape::EscapeError, offset: usize) -> EvalError {
        use quick_xml::escape::EscapeError as E;
        let message = match e {
            E::UnrecognizedEntity(_, name) => format!("Reference to undeclared entity '{name}'."),
            E::UnterminatedEntity(_) => "An error occurred while parsing EntityName.".into(),
            E::InvalidCharRef(_) => "Invalid character reference.".into(),
        };
        self.error_at(&message, offset)
    }

    fn start(&mut self, e: &BytesStart<'_>, offset: usize, empty: bool) -> EResult<()> {
        self.flush_text()?;
        if self.open.is_empty() && self.root.is_some() {
            return Err(self.error_at("There are multiple root elements.", offset + 1));
        }
        let mut raw: Vec<(String, String)> = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| self.error_at(&format!("{err}."), offset))?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let value = self.attr_value(&a.value, offset)?;
            raw.push((key, value));
        }
        let mark = self.bindings.len();
        for (k, v) in &raw {
            if k == "xmlns" {
                self.bindings.push((String::new(), v.clone()));
            } else if let Some(p) = k.strip_prefix("xmlns:") {
                if v.is_empty() {
                    return Err(
                        self.error_at("Cannot use a prefix with an empty namespace.", offset)
                    );
                }
                self.bindings.push((p.to_string(), v.clone()));
            }
        }
        let qname = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let name = self.resolve(&qname, false, offset + 1)?;
        let mut attrs: Vec<Attr> = Vec::with_capacity(raw.len());
        let mut preserve = self.open.last().is_some_and(|o| o.preserve);
        for (k, value) in raw {
            let an = self.resolve(&k, true, offset)?;
            if an.ns == XML_NS && an.local == "space" {
                preserve = value == "preserve";
            }
            if attrs
                .iter()
                .any(|a| a.name.ns == an.ns && a.name.local == an.local)
            {
                return Err(self.error_at(&format!("'{k}' is a duplicate attribute name."), offset));
            }
            attrs.push(Attr { name: an, value });
        }
        let id = self.add(Kind::Element(Elem {
            name,
            attrs,
            children: Vec::new(),
            self_closing: empty,
        }));
        if self.open.is_empty() {
            self.root = Some(id);
        }
        if empty {
            self.bindings.truncate(mark);
        } else {
            self.open.push(Open {
                id,
                offset,
                preserve,
                mark,
            });
        }
        Ok(())
    }

    fn quick_error(&self, e: quick_xml::Error, offset: usize) -> EvalError {
        use quick_xml::errors::{Error as Q, IllFormedError as I};
        match e {
            Q::IllFormed(I::MismatchedEndTag { expected, found }) => {
                let (l, p) = self
                    .open
                    .last()
                    .map(|o| line_pos(self.src, o.offset + 1))
                    .unwrap_or((1, 1));
                self.error_at(
                    &format!(
                        "The '{expected}' start tag on line {l} position {p} does not match the end tag of '{found}'."
                    ),
                    offset + 2,
                )
            }
            Q::IllFormed(I::UnmatchedEndTag(_)) => self.error_at("Unexpected end tag.", offset + 2),
            Q::Escape(e) => self.escape_error(&e, offset),
            other => {
                let text = other.to_string();
                let mut chars = text.chars();
                let first = chars.next().map(|c| c.to_ascii_uppercase());
                let message: String = first.into_iter().chain(chars).collect();
                self.error_at(&format!("{message}."), offset)
            }
        }
    }
}

/// Parses a document (`XDocument.Parse`, `XElement.Parse`).
pub fn parse(text: &str, document: bool, preserve_whitespace: bool) -> EResult<Tree> {
    let src = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser {
        src,
        nodes: Vec::new(),
        top: Vec::new(),
        open: Vec::new(),
        bindings: Vec::new(),
        root: None,
        text: String::new(),
        text_at: None,
        preserve_whitespace,
    };
    let mut reader = Reader::from_str(src);
    {
        let c = reader.config_mut();
        c.check_end_names = true;
        c.check_comments = true;
    }
    loop {
        let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                let pos = usize::try_from(reader.error_position()).unwrap_or(at);
                return Err(p.quick_error(e, pos));
            }
        };
        match event {
            Event::Start(e) => p.start(&e, at, false)?,
            Event::Empty(e) => p.start(&e, at, true)?,
            Event::End(_) => {
                p.flush_text()?;
                if let Some(o) = p.open.pop() {
                    p.bindings.truncate(o.mark);
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|e| xml_error(e.to_string()))?;
                p.push_text(&s, at);
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| xml_error(e.to_string()))?;
                let c = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .ok()
                        .flatten()
                        .filter(|c| *c != '\0')
                        .ok_or_else(|| p.error_at("Invalid character reference.", at))?
                } else {
                    match &*name {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(p.error_at(
                                &format!("Reference to undeclared entity '{other}'."),
                                at + 1,
                            ))
                        }
                    }
                };
                p.push_text(c.encode_utf8(&mut [0; 4]), at);
            }
            Event::CData(c) => {
                p.flush_text()?;
                let s = c.decode().map_err(|e| xml_error(e.to_string()))?;
                if p.open.is_empty() {
                    return Err(p.error_at("Data at the root level is invalid.", at));
                }
                p.add(Kind::CData(normalize_eol(&s)));
            }
            Event::Comment(c) => {
                p.flush_text()?;
                let s = c.decode().map_err(|e| xml_error(e.to_string()))?;
                p.add(Kind::Comment(normalize_eol(&s)));
            }
            Event::PI(pi) => {
                p.flush_text()?;
                let target = String::from_utf8_lossy(pi.target()).into_owned();
                let data = String::from_utf8_lossy(pi.content())
                    .trim_start_matches(is_xml_space)
                    .to_string();
                p.add(Kind::Pi(target, data));
            }
            Event::Decl(_) => {
                if at != 0 {
                    return Err(p.error_at(
                        "Unexpected XML declaration. The XML declaration must be the first node in the document, and no whitespace characters are allowed to appear before it.",
                        at + 2,
                    ));
                }
            }
            Event::DocType(_) => p.flush_text()?,
            Event::Eof => {
                p.flush_text()?;
                if !p.open.is_empty() {
                    let names: Vec<String> = p
                        .open
                        .iter()
                        .rev()
                        .filter_map(|o| p.nodes.get(o.id))
                        .filter_map(|n| match &n.kind {
                            Kind::Element(e) => Some(e.name.qualified()),
                            _ => None,
                        })
                        .collect();
                    return Err(p.error_at(
                        &format!(
                            "Unexpected end of file has occurred. The following elements are not closed: {}.",
                            names.join(", ")
                        ),
                        src.len(),
                    ));
                }
                break;
            }
        }
    }
    let root = p
        .root
        .ok_or_else(|| xml_error("Root element is missing."))?;
    Ok(Tree {
        nodes: p.nodes,
        top: p.top,
        root,
        document,
    })
}

/// `XDocument.Parse` / `XElement.Parse` / `As<XDocument>()` as a value,
/// charged to the evaluation.
pub fn parse_value(it: &mut Interp, text: &str, ty: &str, preserve: bool) -> EResult<Value> {
    it.charge(text.len())?;
    let document = ty == "XDocument";
    let tree = parse(text, document, preserve)?;
    it.charge(tree.nodes.len() * 64)?;
    let tree = Arc::new(tree);
    Ok(xml_value(if document {
        Xml::Document(tree)
    } else {
        let root = tree.root;
        Xml::Element(tree, root)
    }))
}

// === writing ===

fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c => out.push(c),
        }
    }
}

/// An `XmlWriter` with .NET's indentation rules: two spaces a level, a new
/// line before each element, comment and end tag unless text has been
/// written in that element (mixed content is left as it is).
struct Writer {
    out: String,
    /// Writing stops once `out` is longer: indentation makes the text grow
    /// with the square of the depth, so a small deep document could
    /// otherwise expand to gigabytes before any limit is checked.
    cap: usize,
    indent: bool,
    level: usize,
    mixed: bool,
    mixed_stack: Vec<bool>,
    /// Where the last text ended (`out.len()` just after it).
    text_end: usize,
    /// Where the current element's content began.
    content_start: usize,
    /// Namespace declarations in force in the output: (prefix, uri).
    bindings: Vec<(String, String)>,
    /// Length of `bindings` when each open element started.
    marks: Vec<usize>,
}

enum Step {
    Open(usize),
    Close(usize),
}

impl Writer {
    fn new(indent: bool, cap: usize) -> Writer {
        Writer {
            out: String::new(),
            cap,
            indent,
            level: 0,
            mixed: false,
            mixed_stack: Vec::new(),
            text_end: 0,
            content_start: usize::MAX,
            bindings: Vec::new(),
            marks: Vec::new(),
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
        for _ in 0..self.level {
            self.out.push_str("  ");
        }
    }

    fn maybe_indent(&mut self) {
        if self.indent && !self.mixed && self.text_end != self.out.len() {
            self.newline();
        }
    }

    fn bound(&self, prefix: &str) -> String {
        if prefix == "xml" {
            return XML_NS.to_string();
        }
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.clone())
            .unwrap_or_default()
    }

    fn start(&mut self, e: &Elem) {
        self.maybe_indent();
        self.level += 1;
        self.mixed_stack.push(self.mixed);
        self.out.push('<');
        self.out.push_str(&e.name.qualified());
        self.marks.push(self.bindings.len());
        for a in &e.attrs {
            self.out.push(' ');
            self.out.push_str(&a.name.qualified());
            self.out.push_str("=\"");
            escape_attr(&mut self.out, &a.value);
            self.out.push('"');
            if a.name.ns == XMLNS_NS {
                self.bindings.push((a.name.local.clone(), a.value.clone()));
            } else if a.name.ns.is_empty() && a.name.local == "xmlns" {
                self.bindings.push((String::new(), a.value.clone()));
            }
        }
        // Declarations an element needs but only an ancestor outside what
        // is being written had: declared here, after the attributes.
        let mut needed: Vec<(String, String)> = vec![(e.name.prefix.clone(), e.name.ns.clone())];
        for a in &e.attrs {
            if !a.name.prefix.is_empty() && a.name.prefix != "xmlns" {
                needed.push((a.name.prefix.clone(), a.name.ns.clone()));
            }
        }
        for (prefix, ns) in needed {
            if self.bound(&prefix) == ns {
                continue;
            }
            if prefix.is_empty() {
                self.out.push_str(" xmlns=\"");
            } else {
                self.out.push_str(" xmlns:");
                self.out.push_str(&prefix);
                self.out.push_str("=\"");
            }
            escape_attr(&mut self.out, &ns);
            self.out.push('"');
            self.bindings.push((prefix, ns));
        }
    }

    fn start_content(&mut self) {
        self.out.push('>');
        self.content_start = self.out.len();
        self.mixed = if self.level == 1 {
            false
        } else {
            self.mixed_stack.last().copied().unwrap_or(false)
        };
    }

    fn end_empty(&mut self) {
        self.level = self.level.saturating_sub(1);
        self.out.push_str(" />");
        self.mixed = self.mixed_stack.pop().unwrap_or(false);
        let mark = self.marks.pop().unwrap_or(0);
        self.bindings.truncate(mark);
    }

    fn end_full(&mut self, e: &Elem) {
        self.level = self.level.saturating_sub(1);
        if self.indent
            && !self.mixed
            && self.content_start != self.out.len()
            && self.text_end != self.out.len()
        {
            self.newline();
        }
        self.mixed = self.mixed_stack.pop().unwrap_or(false);
        self.out.push_str("</");
        self.out.push_str(&e.name.qualified());
        self.out.push('>');
        let mark = self.marks.pop().unwrap_or(0);
        self.bindings.truncate(mark);
    }

    fn text(&mut self, s: &str) {
        self.mixed = true;
        escape_text(&mut self.out, s);
        self.text_end = self.out.len();
        self.content_start = usize::MAX;
    }

    fn cdata(&mut self, s: &str) {
        self.mixed = true;
        self.out.push_str("<![CDATA[");
        self.out.push_str(&s.replace("]]>", "]]]]><![CDATA[>"));
        self.out.push_str("]]>");
        self.text_end = self.out.len();
    }

    fn comment(&mut self, s: &str) {
        self.maybe_indent();
        self.out.push_str("<!--");
        self.out.push_str(s);
        self.out.push_str("-->");
    }

    fn pi(&mut self, target: &str, data: &str) {
        self.maybe_indent();
        self.out.push_str("<?");
        self.out.push_str(target);
        if !data.is_empty() {
            self.out.push(' ');
            self.out.push_str(data);
        }
        self.out.push_str("?>");
    }

    /// Writes the node `id` and everything under it.
    fn node(&mut self, t: &Tree, id: usize) {
        let mut steps = vec![Step::Open(id)];
        while let Some(step) = steps.pop() {
            if self.out.len() > self.cap {
                return;
            }
            match step {
                Step::Open(n) => match t.nodes.get(n).map(|n| &n.kind) {
                    Some(Kind::Element(e)) => {
                        self.start(e);
                        self.start_content();
                        if e.children.is_empty() {
                            if e.self_closing {
                                self.out.pop();
                                self.end_empty();
                            } else {
                                // `<a></a>`: .NET writes the empty string content.
                                self.text("");
                                self.end_full(e);
                            }
                        } else {
                            steps.push(Step::Close(n));
                            steps.extend(e.children.iter().rev().map(|c| Step::Open(*c)));
                        }
                    }
                    Some(Kind::Text(s)) => self.text(s),
                    Some(Kind::CData(s)) => self.cdata(s),
                    Some(Kind::Comment(s)) => self.comment(s),
                    Some(Kind::Pi(a, b)) => self.pi(a, b),
                    None => {}
                },
                Step::Close(n) => {
                    if let Some(e) = t.elem(n) {
                        self.end_full(e);
                    }
                }
            }
        }
    }
}

/// The most [`Xml::to_display`] writes (the text of an element used as a
/// string, where no [`Interp`] is at hand): the default allocation limit,
/// past every string the default limits let through.
const DISPLAY_CAP: usize = 64 << 20;

/// `XElement.ToString()` (`indent`: not `SaveOptions.DisableFormatting`).
/// Stops soon after `cap` bytes: a result longer than `cap` is cut short,
/// so callers refuse any result over it.
fn write_element(t: &Tree, id: usize, indent: bool, cap: usize) -> String {
    let mut w = Writer::new(indent, cap);
    w.node(t, id);
    w.out
}

/// `XDocument.ToString()`: the document's nodes, without the declaration.
/// Bounded by `cap` as [`write_element`] is.
fn write_document(t: &Tree, indent: bool, cap: usize) -> String {
    let mut w = Writer::new(indent, cap);
    for n in &t.top {
        if w.out.len() > cap {
            break;
        }
        w.node(t, *n);
    }
    w.out
}

// === members ===

fn element(t: &Arc<Tree>, id: usize) -> Value {
    xml_value(Xml::Element(t.clone(), id))
}

fn elements(it: &mut Interp, t: &Arc<Tree>, ids: Vec<usize>) -> EResult<Value> {
    it.charge(ids.len() * 16)?;
    Ok(list_of(ids.into_iter().map(|i| element(t, i)).collect()))
}

fn filter_named(t: &Tree, ids: Vec<usize>, name: Option<&XName>) -> Vec<usize> {
    match name {
        None => ids,
        Some(n) => ids
            .into_iter()
            .filter(|i| t.elem(*i).is_some_and(|e| n.matches(&e.name)))
            .collect(),
    }
}

fn missing(x: &Xml, name: &str) -> EvalError {
    EvalError::invalid_op(format!("{} has no member '{name}'", x.type_name()))
}

/// Properties.
pub fn get(_it: &mut Interp, x: &Xml, name: &str) -> EResult<Value> {
    Ok(match (x, name) {
        (Xml::Document(t), "Root") => element(t, t.root),
        (Xml::Document(_), "Parent" | "Document") => match name {
            "Document" => xml_value(x.clone()),
            _ => Value::Null,
        },
        (Xml::Element(t, id), _) => {
            let e = t.elem(*id).ok_or_else(|| missing(x, name))?;
            match name {
                "Name" => xml_value(Xml::Name(XName {
                    ns: e.name.ns.clone(),
                    local: e.name.local.clone(),
                })),
                "Value" => Value::str(t.value(*id)),
                "HasElements" => Value::Bool(t.child_elements(*id).next().is_some()),
                "HasAttributes" => Value::Bool(!e.attrs.is_empty()),
                "IsEmpty" => Value::Bool(e.children.is_empty() && e.self_closing),
                "Parent" => t.parent(*id).map(|p| element(t, p)).unwrap_or_default(),
                "Document" => {
                    if t.document {
                        xml_value(Xml::Document(t.clone()))
                    } else {
                        Value::Null
                    }
                }
                _ => return Err(missing(x, name)),
            }
        }
        (Xml::Attribute(t, e, i), _) => {
            let a = attr_of(t, *e, *i).ok_or_else(|| missing(x, name))?;
            match name {
                "Name" => xml_value(Xml::Name(XName {
                    ns: a.name.ns.clone(),
                    local: a.name.local.clone(),
                })),
                "Value" => Value::str(a.value.as_str()),
                "Parent" => element(t, *e),
                "IsNamespaceDeclaration" => Value::Bool(a.name.is_namespace_declaration()),
                _ => return Err(missing(x, name)),
            }
        }
        (Xml::Name(n), "LocalName") => Value::str(n.local.as_str()),
        (Xml::Name(n), "NamespaceName") => Value::str(n.ns.as_str()),
        (Xml::Name(n), "Namespace") => xml_value(Xml::Namespace(n.ns.clone())),
        (Xml::Namespace(ns), "NamespaceName") => Value::str(ns.as_str()),
        _ => return Err(missing(x, name)),
    })
}

fn save_options_indent(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Enum(_, m)) => *m != "DisableFormatting",
        Some(Value::Int(i)) => i & 1 == 0,
        _ => true,
    }
}

/// Methods.
pub fn call(it: &mut Interp, x: &Xml, name: &str, args: &[Value]) -> EResult<Value> {
    let a0 = arg(args, 0);
    match (x, name) {
        (Xml::Document(t), "ToString") => {
            let s = write_document(t, save_options_indent(args.first()), it.max_string());
            it.string(s)
        }
        (Xml::Element(t, id), "ToString") => {
            let s = write_element(t, *id, save_options_indent(args.first()), it.max_string());
            it.string(s)
        }
        (Xml::Document(t), "Elements" | "Element" | "Descendants") => {
            let root = t.root;
            let ids = match name {
                "Descendants" => {
                    let mut all = vec![root];
                    all.extend(t.descendants(root));
                    all
                }
                _ => vec![root],
            };
            sequence(it, t, name, ids, args)
        }
        (Xml::Element(t, id), "Elements" | "Element") => {
            let ids = t.child_elements(*id).collect();
            sequence(it, t, name, ids, args)
        }
        (Xml::Element(t, id), "Descendants" | "DescendantsAndSelf") => {
            let mut ids = Vec::new();
            if name == "DescendantsAndSelf" {
                ids.push(*id);
            }
            ids.extend(t.descendants(*id));
            sequence(it, t, name, ids, args)
        }
        (Xml::Element(t, id), "Ancestors" | "AncestorsAndSelf") => {
            let mut ids = Vec::new();
            if name == "AncestorsAndSelf" {
                ids.push(*id);
            }
            let mut p = t.parent(*id);
            while let Some(n) = p {
                ids.push(n);
                p = t.parent(n);
            }
            sequence(it, t, name, ids, args)
        }
        (Xml::Element(t, id), "Attribute" | "Attributes") => {
            let e = t.elem(*id).ok_or_else(|| missing(x, name))?;
            let want = if args.is_empty() {
                None
            } else {
                match name_arg(a0)? {
                    Some(n) => Some(n),
                    None if name == "Attribute" => return Ok(Value::Null),
                    None => return Ok(list_of(Vec::new())),
                }
            };
            let found: Vec<Value> = e
                .attrs
                .iter()
                .enumerate()
                .filter(|(_, a)| want.as_ref().is_none_or(|n| n.matches(&a.name)))
                .map(|(i, _)| xml_value(Xml::Attribute(t.clone(), *id, i)))
                .collect();
            if name == "Attribute" {
                Ok(found.into_iter().next().unwrap_or_default())
            } else {
                it.charge(found.len() * 16)?;
                Ok(list_of(found))
            }
        }
        (Xml::Namespace(ns), "GetName") => {
            let local = super::req_str(a0, "localName")?;
            Ok(xml_value(Xml::Name(XName {
                ns: ns.clone(),
                local,
            })))
        }
        (_, "ToString") => it.string(x.to_display()),
        _ => Err(EvalError::invalid_op(format!(
            "{} has no method '{name}'",
            x.type_name()
        ))),
    }
}

/// `Elements(name)`-style results: filtered by an optional name; `Element`
/// gives the first or `null`.
fn sequence(
    it: &mut Interp,
    t: &Arc<Tree>,
    method: &str,
    ids: Vec<usize>,
    args: &[Value],
) -> EResult<Value> {
    let want = match args.first() {
        None => None,
        Some(v) => match name_arg(v)? {
            Some(n) => Some(n),
            // A null name matches nothing.
            None if method == "Element" => return Ok(Value::Null),
            None => return Ok(list_of(Vec::new())),
        },
    };
    if method == "Element" && want.is_none() {
        return Err(EvalError::argument("Element(name) needs a name"));
    }
    let ids = filter_named(t, ids, want.as_ref());
    if method == "Element" {
        return Ok(ids.first().map(|i| element(t, *i)).unwrap_or_default());
    }
    elements(it, t, ids)
}

/// `Type.Member` for the XML types.
pub fn static_get(ty: &str, name: &str) -> EResult<Value> {
    match (ty, name) {
        ("XNamespace", "None") => Ok(xml_value(Xml::Namespace(String::new()))),
        ("XNamespace", "Xml") => Ok(xml_value(Xml::Namespace(XML_NS.into()))),
        ("XNamespace", "Xmlns") => Ok(xml_value(Xml::Namespace(XMLNS_NS.into()))),
        _ => Err(EvalError::invalid_op(format!(
            "'{ty}' has no static property '{name}'"
        ))),
    }
}

/// `Type.Method(args)` for the XML types.
pub fn call_static(it: &mut Interp, ty: &str, name: &str, args: &[Value]) -> EResult<Value> {
    let a0 = arg(args, 0);
    match (ty, name) {
        ("XDocument" | "XElement", "Parse") => {
            let text = opt_str(a0)?.ok_or_else(|| {
                EvalError::new(
                    "ArgumentNullException",
                    "Value cannot be null. (Parameter 'text')",
                )
            })?;
            let preserve = matches!(args.get(1), Some(Value::Enum(_, "PreserveWhitespace")))
                || matches!(args.get(1), Some(Value::Int(i)) if i & 1 == 1);
            parse_value(it, &text, ty, preserve)
        }
        ("XName", "Get") => {
            let first = super::req_str(a0, "expandedName")?;
            let name = match args.get(1) {
                None => XName::parse(&first)?,
                Some(ns) => {
                    let local = XName::parse(&first)?;
                    XName {
                        ns: opt_str(ns)?.unwrap_or_default(),
                        local: local.local,
                    }
                }
            };
            Ok(xml_value(Xml::Name(name)))
        }
        ("XNamespace", "Get") => {
            let ns = super::req_str(a0, "namespaceName")?;
            Ok(xml_value(Xml::Namespace(ns)))
        }
        _ => Err(EvalError::invalid_op(format!(
            "'{ty}' has no static method '{name}'"
        ))),
    }
}

fn xml_bool(s: &str) -> Option<bool> {
    match s.trim_matches(is_xml_space) {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn xml_double(s: &str) -> Option<f64> {
    match s.trim_matches(is_xml_space) {
        "INF" => Some(f64::INFINITY),
        "-INF" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        t if t.is_empty() || t.contains(['i', 'I', 'n', 'N', '_']) => None,
        t => t.parse().ok(),
    }
}

/// The explicit conversions of `XElement` and `XAttribute`
/// (`(string)e`, `(int)e`, `(bool)e`, `(double)e`, `(DateTime)e`, ...),
/// which read `Value` as `XmlConvert` does. `None`: not such a cast.
pub fn cast(x: &Xml, to: &str) -> EResult<Option<Value>> {
    const CONVERTIBLE: &[&str] = &[
        "String", "Int32", "Int64", "Int16", "UInt32", "UInt64", "Byte", "Double", "Single",
        "Decimal", "Boolean", "DateTime", "Guid",
    ];
    if !CONVERTIBLE.contains(&to) {
        return Ok(None);
    }
    let text = match x {
        Xml::Element(t, id) => t.value(*id),
        Xml::Attribute(t, e, i) => attr_of(t, *e, *i)
            .map(|a| a.value.clone())
            .unwrap_or_default(),
        Xml::Name(n) if to == "String" => return Ok(Some(Value::str(n.to_string()))),
        Xml::Namespace(ns) if to == "String" => return Ok(Some(Value::str(ns.as_str()))),
        _ => return Ok(None),
    };
    let bad =
        |what: &str| EvalError::format(format!("The string '{text}' is not a valid {what} value."));
    let trimmed = text.trim_matches(is_xml_space);
    Ok(Some(match to {
        "String" => Value::str(text.as_str()),
        "Int32" | "Int64" | "Int16" | "UInt32" | "UInt64" | "Byte" => {
            let n: i64 = trimmed.parse().map_err(|_| bad(to))?;
            let fits = match to {
                "Int32" => i32::try_from(n).is_ok(),
                "Int16" => i16::try_from(n).is_ok(),
                "Byte" => u8::try_from(n).is_ok(),
                "UInt32" => u32::try_from(n).is_ok(),
                "UInt64" => n >= 0,
                _ => true,
            };
            if !fits {
                return Err(EvalError::new(
                    "OverflowException",
                    format!("Value was either too large or too small for an {to}."),
                ));
            }
            Value::Int(n)
        }
        "Double" | "Single" | "Decimal" => Value::Float(xml_double(&text).ok_or_else(|| bad(to))?),
        "Boolean" => Value::Bool(xml_bool(&text).ok_or_else(|| bad("Boolean"))?),
        "DateTime" => Value::DateTime(
            DateTime::parse(trimmed)
                .map(|(d, _)| d)
                .ok_or_else(|| bad("AllXsd"))?,
        ),
        "Guid" => Value::Guid(
            parse_guid(trimmed).ok_or_else(|| EvalError::format("Unrecognized Guid format."))?,
        ),
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(src: &str) -> (Arc<Tree>, usize) {
        let t = Arc::new(parse(src, true, false).unwrap());
        let r = t.root;
        (t, r)
    }

    #[test]
    fn parses_names_namespaces_and_text() {
        let (t, r) = root(
            "<?xml version=\"1.0\"?>\n<p:a xmlns:p=\"urn:p\" xmlns=\"urn:d\" x=\"1\">\n  <b>x &amp; y<![CDATA[<z>]]></b>\n  <p:c/>\n</p:a>",
        );
        let e = t.elem(r).unwrap();
        assert_eq!((e.name.ns.as_str(), e.name.local.as_str()), ("urn:p", "a"));
        assert_eq!(e.attrs.len(), 3);
        let kids: Vec<usize> = t.child_elements(r).collect();
        assert_eq!(kids.len(), 2);
        let b = t.elem(kids[0]).unwrap();
        assert_eq!(b.name.ns, "urn:d");
        assert_eq!(t.value(kids[0]), "x & y<z>");
        assert_eq!(t.value(r), "x & y<z>");
        assert_eq!(t.descendants(r), kids);
    }

    #[test]
    fn malformed_documents_are_xml_exceptions() {
        for (src, want) in [
            ("", "Root element is missing."),
            ("   ", "Root element is missing."),
            (
                "<a>",
                "Unexpected end of file has occurred. The following elements are not closed: a.",
            ),
            (
                "<a></b>",
                "The 'a' start tag on line 1 position 2 does not match the end tag of 'b'.",
            ),
            ("<a/><b/>", "There are multiple root elements."),
            ("text", "Data at the root level is invalid."),
            ("<a>&nope;</a>", "Reference to undeclared entity 'nope'."),
            ("<p:a/>", "'p' is an undeclared prefix."),
            ("<a x='1' x='2'/>", ""),
            (" <?xml version='1.0'?><a/>", "Unexpected XML declaration."),
        ] {
            let e = parse(src, true, false).unwrap_err();
            assert_eq!(e.kind, "XmlException", "{src}");
            assert!(e.message.starts_with(want), "{src}: {}", e.message);
        }
    }

    #[test]
    fn writes_as_xml_writer_indents() {
        let (t, r) = root("<a x=\"1 &lt; 2\"><b>t</b><c/><d></d><e>m<f>n</f></e><!--k--></a>");
        assert_eq!(
            write_element(&t, r, true, usize::MAX),
            "<a x=\"1 &lt; 2\">\n  <b>t</b>\n  <c />\n  <d></d>\n  <e>m<f>n</f></e>\n  <!--k-->\n</a>"
        );
        assert_eq!(
            write_element(&t, r, false, usize::MAX),
            "<a x=\"1 &lt; 2\"><b>t</b><c /><d></d><e>m<f>n</f></e><!--k--></a>"
        );
        // A sub-element takes the declarations it needs along.
        let (t, r) = root("<r xmlns=\"urn:d\" xmlns:p=\"urn:p\"><p:a p:k=\"v\"><b/></p:a></r>");
        let a = t.child_elements(r).next().unwrap();
        assert_eq!(
            write_element(&t, a, true, usize::MAX),
            "<p:a p:k=\"v\" xmlns:p=\"urn:p\">\n  <b xmlns=\"urn:d\" />\n</p:a>"
        );
    }

    #[test]
    fn white_space_and_deep_nesting() {
        let (t, r) = root("<a>\n  <b> x </b>\n  <c xml:space=\"preserve\"> </c>\n</a>");
        let kids: Vec<usize> = t.child_elements(r).collect();
        assert_eq!(t.children(r).len(), 2);
        assert_eq!(t.value(kids[0]), " x ");
        assert_eq!(t.value(kids[1]), " ");
        let t = parse("<a>\n <b/>\n</a>", true, true).unwrap();
        assert_eq!(t.children(t.root).len(), 3);
        let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        let t = parse(&deep, true, false).unwrap();
        assert_eq!(t.descendants(t.root).len(), 99_999);
        assert_eq!(
            write_element(&t, t.root, false, usize::MAX).len(),
            deep.len()
        );
    }
}

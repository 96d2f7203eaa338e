//! The shape of the policy catalogue (`catalog.rs`): which elements exist,
//! their attributes (required or not, value type, whether a policy
//! expression may stand in for the value) and what they may contain.
//!
//! `catalog.rs` was generated once from the APIM policy XSDs by
//! `tools/gen-policy-catalog.py` and is owned as code; the test
//! `catalog_matches_the_schemas` re-reads the XSDs (where `../shared` is
//! present) so the table and the published schemas cannot drift apart
//! unnoticed.

/// An attribute's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bool,
    Int,
    UInt,
    Num,
    Enum(&'static [&'static str]),
}

/// One attribute of an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub name: &'static str,
    pub required: bool,
    pub ty: Ty,
    /// Whether `@(...)` / `@{...}` may give the value.
    pub expr: bool,
}

/// What an element may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Nothing.
    Empty,
    /// Text (possibly an expression).
    Text,
    /// Policies (as a section does): `choose/when`, `retry`, ...
    Policies,
    /// Text and any elements, unchecked (`set-body`'s liquid templates).
    Any,
    /// These child elements.
    Elements(&'static [Child]),
}

/// A child element and how often it may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    pub min: u32,
    pub max: Option<u32>,
    pub element: &'static Element,
}

/// An element of a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element {
    pub name: &'static str,
    pub attrs: &'static [Attr],
    pub content: Content,
    /// Text may stand beside the child elements (XSD `mixed="true"`).
    pub mixed: bool,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&'static Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

//! The policy-expression language: the subset of C# that APIM allows in
//! `@(...)` and `@{...}`.
//!
//! Owns: the lexer ([`lexer`]), the syntax tree ([`ast`]) and the Pratt
//! parser ([`parser`]). Binding names to the allowed .NET surface and
//! evaluating compiled trees build on these.
//!
//! Knows nothing of HTTP, sled or policies: it is fuzzed and benchmarked
//! alone.

pub mod ast;
pub mod lexer;
pub mod parser;

/// A byte range in the source text (the policy document, for positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

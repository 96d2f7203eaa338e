//! The policy-expression language: the subset of C# that APIM allows in
//! `@(...)` and `@{...}`.
//!
//! Owns: the lexer ([`lexer`]), the syntax tree ([`ast`]), the Pratt
//! parser ([`parser`]), the binder that checks every name against the
//! allowed .NET surface ([`bind`]), the runtime values ([`value`],
//! [`time`]), the `context` object model ([`context`]), the library of
//! allowed types ([`lib`]) and the evaluator with its limits ([`eval`]).
//!
//! [`compile`] is the one entry point policies use: parse + bind once when
//! configuration changes; [`Compiled::eval`] runs per request.
//!
//! Knows nothing of HTTP, sled or policies: it is fuzzed and benchmarked
//! alone.

pub mod ast;
pub mod bind;
pub mod context;
pub mod eval;
pub mod lexer;
pub mod lib;
pub mod parser;
pub mod time;
pub mod value;

pub use context::Ctx;
pub use eval::{EvalError, Limits};
pub use value::Value;

/// A parsed and bound expression, ready to run any number of times.
#[derive(Debug, Clone)]
pub struct Compiled {
    code: parser::Code,
    pub facts: bind::Facts,
}

/// A compile-time problem: message and where (offsets in the source the
/// expression was taken from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    pub span: Span,
}

/// Parses and binds `@(...)` / `@{...}` code; `base` is its offset in the
/// enclosing document. Every binding problem is reported.
pub fn compile(text: &str, base: usize) -> Result<Compiled, Vec<CompileError>> {
    let code = parser::parse_code(text, base).map_err(|e| {
        vec![CompileError {
            message: e.message,
            span: e.span,
        }]
    })?;
    let facts = bind::bind(&code).map_err(|errs| {
        errs.into_iter()
            .map(|e| CompileError {
                message: e.message,
                span: e.span,
            })
            .collect::<Vec<_>>()
    })?;
    Ok(Compiled { code, facts })
}

impl Compiled {
    /// Runs the expression against a context.
    pub fn eval(&self, ctx: &Ctx, limits: Limits) -> Result<Value, EvalError> {
        eval::run(&self.code, ctx, limits)
    }
}

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

#[cfg(test)]
mod tests;

//! The expression front end: the lexer, the parser (as an expression and
//! as a statement block) and `compile` (parse + bind), on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use turnpike::expr;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let _ = expr::lexer::lex(src, 0);
    // The inside of `@(...)` as an expression, of `@{...}` as statements.
    let inner = src.get(2..src.len().saturating_sub(1)).unwrap_or("");
    if src.starts_with("@(") {
        let _ = expr::parser::parse_expr(inner, 2);
    } else if src.starts_with("@{") {
        let _ = expr::parser::parse_stmts(inner, 2);
    } else {
        let _ = expr::parser::parse_expr(src, 0);
        let _ = expr::parser::parse_stmts(src, 0);
    }
    if let Err(errors) = expr::compile(src, 3) {
        for e in errors {
            // Spans point into the source (offset by `base`).
            assert!(e.span.start <= e.span.end, "{e:?}");
            assert!(e.span.end <= src.len() + 3 + 1, "{e:?} past the end");
        }
    }
});

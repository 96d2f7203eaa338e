//! The parser: tokens → [`Expr`] / [`Stmt`] trees, by Pratt parsing with one
//! binding-power table ([`infix_bp`]).
//!
//! C#'s two classic ambiguities are settled as C# settles them:
//! - `a < b` vs `F<T>(x)`: after a name, `<` opens type arguments only if a
//!   type list and `>` parse and the next token is one of
//!   `( ) ] } : ; , . ? == != | ^ & && || =>` (C# spec §6.2.5).
//! - `(T)x` vs `(a)`: a parenthesised type is a cast when the type is a
//!   predefined one (`(int)-1`) or the next token starts an operand that
//!   cannot continue a binary expression (a name, a literal, `(`, `!`, `~`).

use super::ast::*;
use super::lexer::{self, InterpPiece, Tok, Token};
use super::Span;

/// A syntax error: what was expected and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub span: Span,
}

impl From<lexer::LexError> for ParseError {
    fn from(e: lexer::LexError) -> Self {
        ParseError {
            message: e.message,
            span: e.span,
        }
    }
}

/// A policy expression: `@(expr)` or `@{ statements }`.
#[derive(Debug, Clone, PartialEq)]
pub enum Code {
    Expr(Expr),
    Block(Vec<Stmt>),
}

/// Deepest nesting accepted: guards the stack (2 MiB threads, debug
/// frames included) against hostile input; real expressions nest far less.
const MAX_DEPTH: usize = 64;

/// Parses a policy expression (`@(...)` or `@{...}`); `base` is the offset
/// of `text` in the document, for spans.
pub fn parse_code(text: &str, base: usize) -> Result<Code, ParseError> {
    let Some(rest) = text.strip_prefix('@') else {
        return Err(ParseError {
            message: "a policy expression starts with @( or @{".into(),
            span: Span::new(base, base + 1),
        });
    };
    let mut p = Parser::new(lexer::lex(rest, base + 1)?);
    let code = if p.is("(") {
        p.bump();
        let e = p.expr()?;
        p.expect_punct(")")?;
        Code::Expr(e)
    } else if p.is("{") {
        Code::Block(p.block()?)
    } else {
        return Err(p.error_here("a policy expression starts with @( or @{"));
    };
    p.expect_eof()?;
    Ok(code)
}

/// Parses one whole expression.
pub fn parse_expr(src: &str, base: usize) -> Result<Expr, ParseError> {
    let mut p = Parser::new(lexer::lex(src, base)?);
    let e = p.expr()?;
    p.expect_eof()?;
    Ok(e)
}

/// Parses a sequence of statements (the inside of a block).
pub fn parse_stmts(src: &str, base: usize) -> Result<Vec<Stmt>, ParseError> {
    let mut p = Parser::new(lexer::lex(src, base)?);
    let mut out = Vec::new();
    while !matches!(p.peek(), Tok::Eof) {
        out.push(p.stmt()?);
    }
    Ok(out)
}

/// C#'s predefined type keywords.
const PREDEFINED: [&str; 16] = [
    "bool", "byte", "char", "decimal", "double", "float", "int", "long", "object", "sbyte",
    "short", "string", "uint", "ulong", "ushort", "dynamic",
];

/// Words that can never be a plain name.
const RESERVED: [&str; 21] = [
    "if", "else", "foreach", "for", "while", "do", "return", "break", "continue", "throw", "try",
    "catch", "finally", "new", "var", "in", "is", "as", "typeof", "default", "switch",
];

/// (left, right) binding power of an infix operator; higher binds tighter.
fn infix_bp(op: &str) -> Option<(u8, u8)> {
    Some(match op {
        "=" | "+=" | "-=" | "*=" | "/=" | "%=" | "&=" | "|=" | "^=" | "<<=" | ">>=" | "??=" => {
            (2, 1)
        }
        "?" => (4, 3),
        "??" => (6, 5),
        "||" => (7, 8),
        "&&" => (9, 10),
        "|" => (11, 12),
        "^" => (13, 14),
        "&" => (15, 16),
        "==" | "!=" => (17, 18),
        "<" | ">" | "<=" | ">=" | "is" | "as" => (19, 20),
        "<<" | ">>" => (21, 22),
        "+" | "-" => (23, 24),
        "*" | "/" | "%" => (25, 26),
        _ => return None,
    })
}

/// Binding power of prefix operators' operands.
const PREFIX_BP: u8 = 27;

fn is_assign(op: &str) -> bool {
    infix_bp(op) == Some((2, 1))
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn new(toks: Vec<Token>) -> Parser {
        Parser {
            toks,
            pos: 0,
            depth: 0,
        }
    }

    // --- token helpers ---

    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].tok
    }

    fn span(&self) -> Span {
        self.toks[self.pos.min(self.toks.len() - 1)].span
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            self.span().start
        } else {
            self.toks[self.pos - 1].span.end
        }
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos.min(self.toks.len() - 1)].clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    fn is_at(&self, k: usize, p: &str) -> bool {
        matches!(self.peek_at(k), Tok::Punct(q) if *q == p)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == w)
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.is(p) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn error_here(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            span: self.span(),
        }
    }

    fn expect_punct(&mut self, p: &str) -> Result<Token, ParseError> {
        if self.is(p) {
            Ok(self.bump())
        } else {
            Err(self.error_here(format!("expected '{p}' but found {}", self.peek())))
        }
    }

    fn expect_eof(&mut self) -> Result<(), ParseError> {
        if matches!(self.peek(), Tok::Eof) {
            Ok(())
        } else {
            Err(self.error_here(format!(
                "unexpected {} after the end of the expression",
                self.peek()
            )))
        }
    }

    fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Ident(s) if !RESERVED.contains(&s.as_str()) => {
                self.bump();
                Ok(s)
            }
            other => Err(self.error_here(format!("expected {what} but found {other}"))),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here("expression nested too deeply"));
        }
        Ok(())
    }

    // --- types ---

    /// Parses a type; `None` (position unchanged) when there is none here.
    fn try_type(&mut self) -> Option<TypeRef> {
        let save = self.pos;
        let r = self.type_ref();
        if r.is_none() {
            self.pos = save;
        }
        r
    }

    fn type_ref(&mut self) -> Option<TypeRef> {
        let start = self.span().start;
        let Tok::Ident(first) = self.peek().clone() else {
            return None;
        };
        if RESERVED.contains(&first.as_str()) && first != "var" {
            return None;
        }
        self.bump();
        let mut name = first;
        while self.is(".") && matches!(self.peek_at(1), Tok::Ident(_)) {
            self.bump();
            if let Tok::Ident(n) = self.bump().tok {
                name.push('.');
                name.push_str(&n);
            }
        }
        let mut args = Vec::new();
        if self.is("<") {
            self.bump();
            loop {
                args.push(self.type_ref()?);
                if self.eat(",") {
                    continue;
                }
                if self.eat(">") {
                    break;
                }
                return None;
            }
        }
        let mut nullable = false;
        if self.is("?") && matches!(self.peek_at(1), Tok::Punct(")" | "," | ">" | "]" | "[")) {
            self.bump();
            nullable = true;
        }
        let mut array_rank = 0;
        while self.is("[") && self.is_at(1, "]") {
            self.bump();
            self.bump();
            array_rank += 1;
        }
        Some(TypeRef {
            name,
            args,
            array_rank,
            nullable,
            span: Span::new(start, self.prev_end()),
        })
    }

    /// At `<` after a name: type arguments, if C#'s disambiguation rule
    /// says so; otherwise nothing is consumed.
    fn try_type_args(&mut self) -> Vec<TypeRef> {
        if !self.is("<") {
            return Vec::new();
        }
        let save = self.pos;
        self.bump();
        let mut args = Vec::new();
        let ok = loop {
            match self.type_ref() {
                Some(t) => args.push(t),
                None => break false,
            }
            if self.eat(",") {
                continue;
            }
            break self.eat(">");
        };
        let follows = matches!(
            self.peek(),
            Tok::Punct(
                "(" | ")"
                    | "]"
                    | "}"
                    | ":"
                    | ";"
                    | ","
                    | "."
                    | "?"
                    | "=="
                    | "!="
                    | "|"
                    | "^"
                    | "&"
                    | "&&"
                    | "||"
                    | "=>"
                    | "?."
            ) | Tok::Eof
        );
        if ok && follows {
            args
        } else {
            self.pos = save;
            Vec::new()
        }
    }

    // --- expressions ---

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.expr_bp(0)
    }

    /// The current infix operator and how many tokens it spans (`>>` is two
    /// adjacent `>` tokens).
    fn infix_op(&self) -> Option<(&'static str, usize)> {
        match self.peek() {
            Tok::Punct(">") => {
                let here = self.span();
                let next = self.toks.get(self.pos + 1);
                match next {
                    Some(Token {
                        tok: Tok::Punct(">"),
                        span,
                    }) if span.start == here.end => Some((">>", 2)),
                    Some(Token {
                        tok: Tok::Punct(">="),
                        span,
                    }) if span.start == here.end => Some((">>=", 2)),
                    _ => Some((">", 1)),
                }
            }
            Tok::Punct(p) if infix_bp(p).is_some() => Some((p, 1)),
            Tok::Ident(w) if w == "is" => Some(("is", 1)),
            Tok::Ident(w) if w == "as" => Some(("as", 1)),
            _ => None,
        }
    }

    fn expr_bp(&mut self, min_bp: u8) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut lhs = self.prefix()?;
        while let Some((op, width)) = self.infix_op() {
            let Some((l_bp, r_bp)) = infix_bp(op) else {
                break;
            };
            if l_bp < min_bp {
                break;
            }
            for _ in 0..width {
                self.bump();
            }
            let start = lhs.span.start;
            lhs = match op {
                "?" => {
                    let then = self.expr_bp(0)?;
                    self.expect_punct(":")?;
                    let otherwise = self.expr_bp(r_bp)?;
                    let span = Span::new(start, otherwise.span.end);
                    Expr {
                        kind: ExprKind::Conditional {
                            cond: Box::new(lhs),
                            then: Box::new(then),
                            otherwise: Box::new(otherwise),
                        },
                        span,
                    }
                }
                "is" => self.is_tail(lhs)?,
                "as" => {
                    let ty = self
                        .type_ref()
                        .ok_or_else(|| self.error_here("expected a type after 'as'"))?;
                    let span = Span::new(start, ty.span.end);
                    Expr {
                        kind: ExprKind::As {
                            expr: Box::new(lhs),
                            ty,
                        },
                        span,
                    }
                }
                _ if is_assign(op) => {
                    let value = self.expr_bp(r_bp)?;
                    let span = Span::new(start, value.span.end);
                    Expr {
                        kind: ExprKind::Assign {
                            op,
                            target: Box::new(lhs),
                            value: Box::new(value),
                        },
                        span,
                    }
                }
                _ => {
                    let right = self.expr_bp(r_bp)?;
                    let span = Span::new(start, right.span.end);
                    Expr {
                        kind: ExprKind::Binary {
                            op,
                            left: Box::new(lhs),
                            right: Box::new(right),
                        },
                        span,
                    }
                }
            };
        }
        self.depth -= 1;
        Ok(lhs)
    }

    /// After `is`: `null`, `not null`, a type, a type with a binding.
    fn is_tail(&mut self, lhs: Expr) -> Result<Expr, ParseError> {
        let start = lhs.span.start;
        let not = self.eat_word("not");
        let (ty, binding) = if self.eat_word("null") {
            (None, None)
        } else {
            let ty = self
                .type_ref()
                .ok_or_else(|| self.error_here("expected a type or null after 'is'"))?;
            let binding = match self.peek() {
                Tok::Ident(n) if !RESERVED.contains(&n.as_str()) && n != "and" && n != "or" => {
                    let n = n.clone();
                    self.bump();
                    Some(n)
                }
                _ => None,
            };
            (Some(ty), binding)
        };
        Ok(Expr {
            kind: ExprKind::Is {
                expr: Box::new(lhs),
                ty,
                binding,
                not,
            },
            span: Span::new(start, self.prev_end()),
        })
    }

    fn prefix(&mut self) -> Result<Expr, ParseError> {
        let start = self.span().start;
        if let Tok::Punct(op @ ("-" | "+" | "!" | "~" | "++" | "--")) = *self.peek() {
            self.bump();
            let e = self.expr_bp(PREFIX_BP)?;
            let span = Span::new(start, e.span.end);
            return Ok(Expr {
                kind: ExprKind::Unary {
                    op,
                    expr: Box::new(e),
                },
                span,
            });
        }
        let primary = self.primary()?;
        if matches!(primary.kind, ExprKind::Lambda { .. }) {
            return Ok(primary);
        }
        self.postfix(primary)
    }

    fn postfix(&mut self, mut e: Expr) -> Result<Expr, ParseError> {
        let start = e.span.start;
        loop {
            let kind = if self.is(".") || self.is("?.") {
                let null_conditional = self.bump().tok == Tok::Punct("?.");
                let name = self.ident("a member name")?;
                let type_args = self.try_type_args();
                ExprKind::Member {
                    target: Box::new(e),
                    name,
                    type_args,
                    null_conditional,
                }
            } else if self.is("(") {
                let args = self.args(")")?;
                ExprKind::Call {
                    callee: Box::new(e),
                    args,
                }
            } else if self.is("[") || self.is("?[") {
                let null_conditional = self.bump().tok == Tok::Punct("?[");
                let mut args = vec![self.expr()?];
                while self.eat(",") {
                    args.push(self.expr()?);
                }
                self.expect_punct("]")?;
                ExprKind::Index {
                    target: Box::new(e),
                    args,
                    null_conditional,
                }
            } else if let Tok::Punct(op @ ("++" | "--")) = *self.peek() {
                self.bump();
                ExprKind::Postfix {
                    op,
                    expr: Box::new(e),
                }
            } else if self.is("!")
                && matches!(
                    self.peek_at(1),
                    Tok::Punct("." | "?." | ")" | ";" | "," | "[")
                )
            {
                // The null-forgiving operator changes nothing at run time.
                self.bump();
                continue;
            } else {
                return Ok(e);
            };
            e = Expr {
                kind,
                span: Span::new(start, self.prev_end()),
            };
        }
    }

    /// `( args )` at `(` (or `[`-less variants); handles `out var x`, `ref x`.
    fn args(&mut self, close: &str) -> Result<Vec<Arg>, ParseError> {
        self.bump();
        let mut args = Vec::new();
        if self.eat(close) {
            return Ok(args);
        }
        loop {
            let arg_start = self.span().start;
            let name = match self.peek() {
                Tok::Ident(n) if self.is_at(1, ":") => {
                    let n = n.clone();
                    self.bump();
                    self.bump();
                    Some(n)
                }
                _ => None,
            };
            let mut arg = if self.eat_word("out") {
                if self.is_word("var")
                    || (matches!(self.peek(), Tok::Ident(_))
                        && matches!(self.peek_at(1), Tok::Ident(_) | Tok::Punct("<")))
                {
                    let ty = self.var_or_type()?;
                    let name = self.ident("a variable name")?;
                    let span = Span::new(arg_start, self.prev_end());
                    Arg {
                        name: None,
                        mode: ArgMode::Out,
                        expr: Expr {
                            kind: ExprKind::Name(name.clone(), vec![]),
                            span,
                        },
                        decl: Some((ty, name)),
                    }
                } else {
                    Arg {
                        name: None,
                        mode: ArgMode::Out,
                        expr: self.expr()?,
                        decl: None,
                    }
                }
            } else if self.eat_word("ref") {
                Arg {
                    name: None,
                    mode: ArgMode::Ref,
                    expr: self.expr()?,
                    decl: None,
                }
            } else {
                Arg {
                    name: None,
                    mode: ArgMode::Value,
                    expr: self.expr()?,
                    decl: None,
                }
            };
            arg.name = name;
            args.push(arg);
            if self.eat(",") {
                continue;
            }
            self.expect_punct(close)?;
            return Ok(args);
        }
    }

    fn literal(&mut self, lit: Literal) -> Expr {
        let span = self.bump().span;
        Expr {
            kind: ExprKind::Lit(lit),
            span,
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let start = self.span().start;
        match self.peek().clone() {
            Tok::Int(v, k) => Ok(self.literal(Literal::Int(v, k))),
            Tok::Real(v, k) => Ok(self.literal(Literal::Real(v, k))),
            Tok::Str(s) => Ok(self.literal(Literal::Str(s))),
            Tok::Char(c) => Ok(self.literal(Literal::Char(c))),
            Tok::Interp(pieces) => {
                let span = self.bump().span;
                let mut parts = Vec::new();
                for piece in pieces {
                    parts.push(match piece {
                        InterpPiece::Text(t) => InterpPart::Text(t),
                        InterpPiece::Hole {
                            src,
                            offset,
                            align,
                            format,
                        } => {
                            let mut sub = Parser::new(lexer::lex(&src, offset)?);
                            sub.depth = self.depth;
                            let expr = sub.expr()?;
                            sub.expect_eof()?;
                            InterpPart::Hole {
                                expr,
                                align,
                                format,
                            }
                        }
                    });
                }
                Ok(Expr {
                    kind: ExprKind::Interp(parts),
                    span,
                })
            }
            Tok::Punct("(") => self.paren(),
            Tok::Ident(w) => match w.as_str() {
                "true" => Ok(self.literal(Literal::Bool(true))),
                "false" => Ok(self.literal(Literal::Bool(false))),
                "null" => Ok(self.literal(Literal::Null)),
                "new" => self.new_expr(),
                "typeof" => {
                    self.bump();
                    self.expect_punct("(")?;
                    let ty = self
                        .type_ref()
                        .ok_or_else(|| self.error_here("expected a type"))?;
                    self.expect_punct(")")?;
                    Ok(Expr {
                        kind: ExprKind::Typeof(ty),
                        span: Span::new(start, self.prev_end()),
                    })
                }
                "default" => {
                    self.bump();
                    let ty = if self.eat("(") {
                        let t = self
                            .type_ref()
                            .ok_or_else(|| self.error_here("expected a type"))?;
                        self.expect_punct(")")?;
                        Some(t)
                    } else {
                        None
                    };
                    Ok(Expr {
                        kind: ExprKind::Default(ty),
                        span: Span::new(start, self.prev_end()),
                    })
                }
                _ if self.is_at(1, "=>") => {
                    let name = self.ident("a parameter name")?;
                    self.lambda_body(start, vec![(None, name)])
                }
                _ if RESERVED.contains(&w.as_str()) => {
                    Err(self.error_here(format!("'{w}' cannot start an expression")))
                }
                _ => {
                    self.bump();
                    let type_args = self.try_type_args();
                    Ok(Expr {
                        kind: ExprKind::Name(w, type_args),
                        span: Span::new(start, self.prev_end()),
                    })
                }
            },
            other => Err(self.error_here(format!("expected an expression but found {other}"))),
        }
    }

    /// At `(`: a lambda's parameter list, a cast, or a parenthesised expression.
    fn paren(&mut self) -> Result<Expr, ParseError> {
        let start = self.span().start;
        if self.lambda_ahead() {
            self.bump();
            let mut params = Vec::new();
            if !self.eat(")") {
                loop {
                    let untyped = matches!(self.peek(), Tok::Ident(_))
                        && matches!(self.peek_at(1), Tok::Punct("," | ")"));
                    let ty = if untyped {
                        None
                    } else {
                        Some(
                            self.type_ref()
                                .ok_or_else(|| self.error_here("expected a parameter"))?,
                        )
                    };
                    let name = self.ident("a parameter name")?;
                    params.push((ty, name));
                    if self.eat(",") {
                        continue;
                    }
                    self.expect_punct(")")?;
                    break;
                }
            }
            return self.lambda_body(start, params);
        }
        // A cast?
        let save = self.pos;
        self.bump();
        if let Some(ty) = self.try_type() {
            if self.eat(")") {
                let predefined = ty.args.is_empty() && PREDEFINED.contains(&ty.name.as_str());
                let operand_follows = match self.peek() {
                    Tok::Ident(w) => !matches!(w.as_str(), "is" | "as" | "in"),
                    Tok::Int(..) | Tok::Real(..) | Tok::Str(_) | Tok::Char(_) | Tok::Interp(_) => {
                        true
                    }
                    Tok::Punct("(" | "!" | "~") => true,
                    Tok::Punct("-" | "+" | "++" | "--") => predefined,
                    _ => false,
                };
                if operand_follows {
                    let e = self.expr_bp(PREFIX_BP)?;
                    let span = Span::new(start, e.span.end);
                    return Ok(Expr {
                        kind: ExprKind::Cast {
                            ty,
                            expr: Box::new(e),
                        },
                        span,
                    });
                }
            }
        }
        self.pos = save;
        self.bump();
        let inner = self.expr()?;
        self.expect_punct(")")?;
        Ok(Expr {
            kind: inner.kind,
            span: Span::new(start, self.prev_end()),
        })
    }

    /// Whether the `(` here opens a lambda's parameters: its matching `)`
    /// is followed by `=>`.
    fn lambda_ahead(&self) -> bool {
        let mut depth = 0usize;
        let mut i = self.pos;
        while i < self.toks.len() {
            match &self.toks[i].tok {
                Tok::Punct("(") => depth += 1,
                Tok::Punct(")") => {
                    depth -= 1;
                    if depth == 0 {
                        return matches!(
                            self.toks.get(i + 1).map(|t| &t.tok),
                            Some(Tok::Punct("=>"))
                        );
                    }
                }
                Tok::Eof => return false,
                _ => {}
            }
            i += 1;
        }
        false
    }

    fn lambda_body(
        &mut self,
        start: usize,
        params: Vec<(Option<TypeRef>, String)>,
    ) -> Result<Expr, ParseError> {
        self.expect_punct("=>")?;
        let body = if self.is("{") {
            LambdaBody::Block(self.block()?)
        } else {
            LambdaBody::Expr(Box::new(self.expr_bp(1)?))
        };
        Ok(Expr {
            kind: ExprKind::Lambda { params, body },
            span: Span::new(start, self.prev_end()),
        })
    }

    fn new_expr(&mut self) -> Result<Expr, ParseError> {
        let start = self.bump().span.start;
        // new[] { ... }
        if self.is("[") && self.is_at(1, "]") {
            self.bump();
            self.bump();
            let items = self.brace_items()?;
            return Ok(Expr {
                kind: ExprKind::NewArray {
                    ty: None,
                    size: None,
                    items: Some(items),
                },
                span: Span::new(start, self.prev_end()),
            });
        }
        // new { A = 1, B }
        if self.is("{") {
            self.bump();
            let mut members = Vec::new();
            while !self.is("}") {
                let e = self.expr()?;
                let member = match e.kind {
                    ExprKind::Assign {
                        op: "=",
                        target,
                        value,
                    } => match target.kind {
                        ExprKind::Name(n, _) => (n, *value),
                        _ => {
                            return Err(ParseError {
                                message: "expected a member name".into(),
                                span: target.span,
                            })
                        }
                    },
                    ExprKind::Name(ref n, _) => (n.clone(), e.clone()),
                    ExprKind::Member { ref name, .. } => (name.clone(), e.clone()),
                    _ => {
                        return Err(ParseError {
                            message: "anonymous type members need a name".into(),
                            span: e.span,
                        })
                    }
                };
                members.push(member);
                if !self.eat(",") {
                    break;
                }
            }
            self.expect_punct("}")?;
            return Ok(Expr {
                kind: ExprKind::Anonymous(members),
                span: Span::new(start, self.prev_end()),
            });
        }
        let ty = self
            .type_ref()
            .ok_or_else(|| self.error_here("expected a type after 'new'"))?;
        if ty.array_rank > 0 {
            let mut elem = ty;
            elem.array_rank -= 1;
            let items = self.brace_items()?;
            return Ok(Expr {
                kind: ExprKind::NewArray {
                    ty: Some(elem),
                    size: None,
                    items: Some(items),
                },
                span: Span::new(start, self.prev_end()),
            });
        }
        if self.eat("[") {
            let size = self.expr()?;
            self.expect_punct("]")?;
            let items = if self.is("{") {
                Some(self.brace_items()?)
            } else {
                None
            };
            return Ok(Expr {
                kind: ExprKind::NewArray {
                    ty: Some(ty),
                    size: Some(Box::new(size)),
                    items,
                },
                span: Span::new(start, self.prev_end()),
            });
        }
        let args = if self.is("(") {
            self.args(")")?
        } else {
            Vec::new()
        };
        let init = if self.is("{") {
            Some(self.initializer()?)
        } else {
            None
        };
        if args.is_empty() && init.is_none() && !self.toks[self.pos - 1].tok.eq(&Tok::Punct(")")) {
            return Err(self.error_here(format!("expected '(' or '{{' after 'new {}'", ty.name)));
        }
        Ok(Expr {
            kind: ExprKind::New { ty, args, init },
            span: Span::new(start, self.prev_end()),
        })
    }

    /// `{ e, e, ... }` (an element may itself be `{ k, v }`).
    fn brace_items(&mut self) -> Result<Vec<Expr>, ParseError> {
        self.expect_punct("{")?;
        let mut items = Vec::new();
        while !self.is("}") {
            items.push(self.brace_item()?);
            if !self.eat(",") {
                break;
            }
        }
        self.expect_punct("}")?;
        Ok(items)
    }

    fn brace_item(&mut self) -> Result<Expr, ParseError> {
        if self.is("{") {
            let start = self.span().start;
            let items = self.brace_items()?;
            Ok(Expr {
                kind: ExprKind::NewArray {
                    ty: None,
                    size: None,
                    items: Some(items),
                },
                span: Span::new(start, self.prev_end()),
            })
        } else {
            self.expr()
        }
    }

    fn initializer(&mut self) -> Result<Initializer, ParseError> {
        let object = (matches!(self.peek_at(1), Tok::Ident(_)) && self.is_at(2, "="))
            || (self.is_at(1, "[") && {
                // { [key] = value }
                let mut i = self.pos + 2;
                let mut depth = 1;
                while i < self.toks.len() && depth > 0 {
                    match self.toks[i].tok {
                        Tok::Punct("[") => depth += 1,
                        Tok::Punct("]") => depth -= 1,
                        Tok::Eof => break,
                        _ => {}
                    }
                    i += 1;
                }
                matches!(self.toks.get(i).map(|t| &t.tok), Some(Tok::Punct("=")))
            });
        if !object {
            return Ok(Initializer::Collection(self.brace_items()?));
        }
        self.expect_punct("{")?;
        let mut items = Vec::new();
        while !self.is("}") {
            let target = if self.eat("[") {
                let mut keys = vec![self.expr()?];
                while self.eat(",") {
                    keys.push(self.expr()?);
                }
                self.expect_punct("]")?;
                MemberTarget::Index(keys)
            } else {
                MemberTarget::Name(self.ident("a member name")?)
            };
            self.expect_punct("=")?;
            let value = if self.is("{") {
                self.brace_item()?
            } else {
                self.expr()?
            };
            items.push((target, value));
            if !self.eat(",") {
                break;
            }
        }
        self.expect_punct("}")?;
        Ok(Initializer::Object(items))
    }

    // --- statements ---

    /// `var` (→ `None`) or a type.
    fn var_or_type(&mut self) -> Result<Option<TypeRef>, ParseError> {
        if self.eat_word("var") {
            return Ok(None);
        }
        match self.type_ref() {
            Some(t) => Ok(Some(t)),
            None => Err(self.error_here("expected a type or 'var'")),
        }
    }

    fn block(&mut self) -> Result<Vec<Stmt>, ParseError> {
        self.expect_punct("{")?;
        self.enter()?;
        let mut out = Vec::new();
        while !self.is("}") {
            if matches!(self.peek(), Tok::Eof) {
                return Err(self.error_here("expected '}' to close the block"));
            }
            out.push(self.stmt()?);
        }
        self.bump();
        self.depth -= 1;
        Ok(out)
    }

    /// A local declaration starts here: `var x`, `T x`, `T<U> x`, `T[] x`.
    fn declaration_ahead(&mut self) -> Option<Option<TypeRef>> {
        if self.is_word("var") && matches!(self.peek_at(1), Tok::Ident(_)) {
            self.bump();
            return Some(None);
        }
        let save = self.pos;
        if let Some(ty) = self.try_type() {
            if let Tok::Ident(n) = self.peek() {
                if !RESERVED.contains(&n.as_str())
                    && matches!(self.peek_at(1), Tok::Punct("=" | ";" | ","))
                {
                    return Some(Some(ty));
                }
            }
        }
        self.pos = save;
        None
    }

    fn stmt(&mut self) -> Result<Stmt, ParseError> {
        let start = self.span().start;
        let kind = self.stmt_kind()?;
        Ok(Stmt {
            kind,
            span: Span::new(start, self.prev_end()),
        })
    }

    fn paren_expr(&mut self) -> Result<Expr, ParseError> {
        self.expect_punct("(")?;
        let e = self.expr()?;
        self.expect_punct(")")?;
        Ok(e)
    }

    fn stmt_kind(&mut self) -> Result<StmtKind, ParseError> {
        if self.is("{") {
            return Ok(StmtKind::Block(self.block()?));
        }
        if self.eat(";") {
            return Ok(StmtKind::Empty);
        }
        let word = match self.peek() {
            Tok::Ident(w) => w.clone(),
            _ => String::new(),
        };
        match word.as_str() {
            "if" => {
                self.bump();
                let cond = self.paren_expr()?;
                let then = Box::new(self.stmt()?);
                let otherwise = if self.eat_word("else") {
                    Some(Box::new(self.stmt()?))
                } else {
                    None
                };
                return Ok(StmtKind::If {
                    cond,
                    then,
                    otherwise,
                });
            }
            "while" => {
                self.bump();
                let cond = self.paren_expr()?;
                return Ok(StmtKind::While {
                    cond,
                    body: Box::new(self.stmt()?),
                });
            }
            "foreach" => {
                self.bump();
                self.expect_punct("(")?;
                let ty = self.var_or_type()?;
                let name = self.ident("a variable name")?;
                if !self.eat_word("in") {
                    return Err(self.error_here("expected 'in'"));
                }
                let iter = self.expr()?;
                self.expect_punct(")")?;
                return Ok(StmtKind::Foreach {
                    ty,
                    name,
                    iter,
                    body: Box::new(self.stmt()?),
                });
            }
            "for" => {
                self.bump();
                self.expect_punct("(")?;
                let mut init = Vec::new();
                if !self.is(";") {
                    let s = self.span().start;
                    let kind = match self.declaration_ahead() {
                        Some(ty) => self.local_rest(ty)?,
                        None => StmtKind::Expr(self.expr()?),
                    };
                    init.push(Stmt {
                        kind,
                        span: Span::new(s, self.prev_end()),
                    });
                }
                self.expect_punct(";")?;
                let cond = if self.is(";") {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.expect_punct(";")?;
                let mut step = Vec::new();
                while !self.is(")") {
                    step.push(self.expr()?);
                    if !self.eat(",") {
                        break;
                    }
                }
                self.expect_punct(")")?;
                return Ok(StmtKind::For {
                    init,
                    cond,
                    step,
                    body: Box::new(self.stmt()?),
                });
            }
            "return" => {
                self.bump();
                let e = if self.is(";") {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.expect_punct(";")?;
                return Ok(StmtKind::Return(e));
            }
            "break" | "continue" => {
                self.bump();
                self.expect_punct(";")?;
                return Ok(if word == "break" {
                    StmtKind::Break
                } else {
                    StmtKind::Continue
                });
            }
            "throw" => {
                self.bump();
                let e = if self.is(";") {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.expect_punct(";")?;
                return Ok(StmtKind::Throw(e));
            }
            "const" => {
                self.bump();
                let Some(Some(ty)) = self.declaration_ahead() else {
                    return Err(self.error_here("expected a typed constant declaration"));
                };
                let kind = self.local_rest(Some(ty))?;
                self.expect_punct(";")?;
                return Ok(kind);
            }
            "unchecked" | "checked" if self.is_at(1, "{") => {
                // Integer arithmetic wraps unless `checked`; evaluation
                // decides, the tree keeps the block.
                self.bump();
                return Ok(StmtKind::Block(self.block()?));
            }
            "using" if self.is_at(1, "(") => {
                self.bump();
                self.bump();
                let s = self.span().start;
                let kind = match self.declaration_ahead() {
                    Some(ty) => self.local_rest(ty)?,
                    None => StmtKind::Expr(self.expr()?),
                };
                let resource = Box::new(Stmt {
                    kind,
                    span: Span::new(s, self.prev_end()),
                });
                self.expect_punct(")")?;
                return Ok(StmtKind::Using {
                    resource,
                    body: Box::new(self.stmt()?),
                });
            }
            "static" => {
                self.bump();
                return match self.local_function_ahead() {
                    Some(ret) => self.local_function(ret),
                    None => Err(self.error_here("expected a local function after 'static'")),
                };
            }
            "try" => {
                self.bump();
                let body = self.block()?;
                let mut catches = Vec::new();
                while self.eat_word("catch") {
                    let (ty, name) = if self.eat("(") {
                        let ty = self
                            .type_ref()
                            .ok_or_else(|| self.error_here("expected an exception type"))?;
                        let name = if matches!(self.peek(), Tok::Ident(_)) {
                            Some(self.ident("a name")?)
                        } else {
                            None
                        };
                        self.expect_punct(")")?;
                        (Some(ty), name)
                    } else {
                        (None, None)
                    };
                    catches.push((ty, name, self.block()?));
                }
                let finally = if self.eat_word("finally") {
                    Some(self.block()?)
                } else {
                    None
                };
                if catches.is_empty() && finally.is_none() {
                    return Err(self.error_here("expected 'catch' or 'finally'"));
                }
                return Ok(StmtKind::Try {
                    body,
                    catches,
                    finally,
                });
            }
            _ => {}
        }
        if let Some(ret) = self.local_function_ahead() {
            return self.local_function(ret);
        }
        if let Some(ty) = self.declaration_ahead() {
            let kind = self.local_rest(ty)?;
            self.expect_punct(";")?;
            return Ok(kind);
        }
        let e = self.expr()?;
        self.expect_punct(";")?;
        Ok(StmtKind::Expr(e))
    }

    /// A local function starts here: `T Name(` ... `)` followed by `{` or
    /// `=>`. Returns its return type (`None` for `void`), having consumed it.
    fn local_function_ahead(&mut self) -> Option<Option<TypeRef>> {
        let save = self.pos;
        let ty = self.try_type()?;
        let is_fn = matches!(self.peek(), Tok::Ident(n) if !RESERVED.contains(&n.as_str()))
            && self.is_at(1, "(")
            && {
                let mut depth = 0usize;
                let mut i = self.pos + 1;
                let mut after = None;
                while i < self.toks.len() {
                    match self.toks[i].tok {
                        Tok::Punct("(") => depth += 1,
                        Tok::Punct(")") => {
                            depth -= 1;
                            if depth == 0 {
                                after = self.toks.get(i + 1).map(|t| t.tok.clone());
                                break;
                            }
                        }
                        Tok::Eof => break,
                        _ => {}
                    }
                    i += 1;
                }
                matches!(after, Some(Tok::Punct("{" | "=>")))
            };
        if is_fn {
            Some(if ty.name == "void" && ty.args.is_empty() {
                None
            } else {
                Some(ty)
            })
        } else {
            self.pos = save;
            None
        }
    }

    fn local_function(&mut self, ret: Option<TypeRef>) -> Result<StmtKind, ParseError> {
        let name = self.ident("a function name")?;
        self.expect_punct("(")?;
        let mut params = Vec::new();
        if !self.eat(")") {
            loop {
                let ty = self
                    .type_ref()
                    .ok_or_else(|| self.error_here("expected a parameter type"))?;
                let n = self.ident("a parameter name")?;
                params.push((ty, n));
                if self.eat(",") {
                    continue;
                }
                self.expect_punct(")")?;
                break;
            }
        }
        let body = if self.eat("=>") {
            let start = self.span().start;
            let e = self.expr()?;
            self.expect_punct(";")?;
            let span = Span::new(start, self.prev_end());
            vec![Stmt {
                kind: StmtKind::Return(Some(e)),
                span,
            }]
        } else {
            self.block()?
        };
        Ok(StmtKind::LocalFunction {
            ret,
            name,
            params,
            body,
        })
    }

    /// After the type of a local declaration: `x = e, y`.
    fn local_rest(&mut self, ty: Option<TypeRef>) -> Result<StmtKind, ParseError> {
        let mut vars = Vec::new();
        loop {
            let name = self.ident("a variable name")?;
            let init = if self.eat("=") {
                Some(if self.is("{") {
                    self.brace_item()?
                } else {
                    self.expr()?
                })
            } else {
                None
            };
            vars.push((name, init));
            if !self.eat(",") {
                break;
            }
        }
        if ty.is_none() && vars.iter().any(|(_, e)| e.is_none()) {
            return Err(self.error_here("a 'var' declaration needs an initializer"));
        }
        Ok(StmtKind::Local { ty, vars })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(src: &str) -> String {
        match parse_expr(src, 0) {
            Ok(e) => e.sexpr(),
            Err(e) => panic!("{src}: {} at {:?}", e.message, e.span),
        }
    }

    fn block(src: &str) -> String {
        match parse_stmts(src, 0) {
            Ok(b) => b.iter().map(Stmt::sexpr).collect::<Vec<_>>().join(" "),
            Err(e) => panic!("{src}: {} at {:?}", e.message, e.span),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(s("1 + 2 * 3"), "(+ 1 (* 2 3))");
        assert_eq!(s("1 - 2 - 3"), "(- (- 1 2) 3)");
        assert_eq!(
            s("a || b && c | d ^ e & f == g"),
            "(|| a (&& b (| c (^ d (& e (== f g))))))"
        );
        assert_eq!(s("a < b == c > d"), "(== (< a b) (> c d))");
        assert_eq!(s("1 << 2 + 3"), "(<< 1 (+ 2 3))");
        assert_eq!(s("a ?? b ?? c"), "(?? a (?? b c))");
        assert_eq!(s("a ? b : c ? d : e"), "(?: a b (?: c d e))");
        assert_eq!(s("a = b = c"), "(= a (= b c))");
        assert_eq!(s("x += 1 + 2"), "(+= x (+ 1 2))");
        assert_eq!(s("-a.b"), "(- (. a b))");
        assert_eq!(s("!a || b"), "(|| (! a) b)");
        assert_eq!(s("a ?? b == c"), "(?? a (== b c))");
        assert_eq!(s("x >> 2 >= 1"), "(>= (>> x 2) 1)");
        assert_eq!(s("i++ + --j"), "(+ (post++ i) (-- j))");
    }

    #[test]
    fn members_calls_indexers() {
        assert_eq!(
            s(r#"context.Request.Headers.GetValueOrDefault("Authorization", "")"#),
            r#"(call (. (. (. context Request) Headers) GetValueOrDefault) "Authorization" "")"#
        );
        assert_eq!(
            s(r#"context.Variables["x"]"#),
            r#"([] (. context Variables) "x")"#
        );
        assert_eq!(s("a?.b?[0]?.c()"), "(call (?. (?[] (?. a b) 0) c))");
        assert_eq!(s("a.b[1, 2]"), "([] (. a b) 1 2)");
    }

    #[test]
    fn generics_versus_less_than() {
        assert_eq!(
            s("context.Request.Body.As<JObject>(preserveContent: true)"),
            "(call (. (. (. context Request) Body) As<JObject>) (preserveContent: true))"
        );
        assert_eq!(s("x.As<JObject>()"), "(call (. x As<JObject>))");
        assert_eq!(
            s("v.GetValueOrDefault<string>(\"a\")"),
            r#"(call (. v GetValueOrDefault<string>) "a")"#
        );
        assert_eq!(s("a < b"), "(< a b)");
        assert_eq!(s("a < b && c > d"), "(&& (< a b) (> c d))");
        assert_eq!(s("F(a < b, c > d)"), "(call F (< a b) (> c d))");
        assert_eq!(
            s("x.Value<List<string>>()"),
            "(call (. x Value<List<string>>))"
        );
    }

    #[test]
    fn casts_versus_parentheses() {
        assert_eq!(s("(string)x"), "(cast string x)");
        assert_eq!(s("(int)-1"), "(cast int (- 1))");
        assert_eq!(s("(a)-1"), "(- a 1)");
        assert_eq!(s("(a) + b"), "(+ a b)");
        assert_eq!(
            s(r#"((IResponse)context.Variables["r"]).Body"#),
            r#"(. (cast IResponse ([] (. context Variables) "r")) Body)"#
        );
        assert_eq!(s("(JObject)x.y"), "(cast JObject (. x y))");
        assert_eq!(s("(string)(object)x"), "(cast string (cast object x))");
        assert_eq!(s("(a)"), "a");
        assert_eq!(
            s("(Dictionary<string,int>)d"),
            "(cast Dictionary<string,int> d)"
        );
        assert_eq!(s("(int?)x"), "(cast int? x)");
    }

    #[test]
    fn lambdas() {
        assert_eq!(
            s("xs.Where(x => x > 1)"),
            "(call (. xs Where) (=> (x) (> x 1)))"
        );
        assert_eq!(s("(a, b) => a + b"), "(=> (a b) (+ a b))");
        assert_eq!(s("() => 1"), "(=> () 1)");
        assert_eq!(s("(string s) => s.Length"), "(=> (string s) (. s Length))");
        assert_eq!(s("x => { return x; }"), "(=> (x) (block (return x)))");
        assert_eq!(s("f = x => y => x + y"), "(= f (=> (x) (=> (y) (+ x y))))");
    }

    #[test]
    fn is_as_typeof_default() {
        assert_eq!(s("x is string"), "(is x string)");
        assert_eq!(
            s("x is JObject o && o != null"),
            "(&& (is x JObject o) (!= o null))"
        );
        assert_eq!(s("x is null"), "(is x null)");
        assert_eq!(s("x is not null"), "(is-not x null)");
        assert_eq!(s("x as string ?? \"\""), r#"(?? (as x string) "")"#);
        assert_eq!(s("typeof(string)"), "(typeof string)");
        assert_eq!(s("default(int)"), "(default int)");
    }

    #[test]
    fn new_forms() {
        assert_eq!(s("new JObject()"), "(new JObject)");
        assert_eq!(s("new JProperty(\"a\", 1)"), r#"(new JProperty "a" 1)"#);
        assert_eq!(
            s("new string[] { \"a\", \"b\" }"),
            r#"(new[] string (items "a" "b"))"#
        );
        assert_eq!(s("new[] { 1, 2 }"), "(new[] ? (items 1 2))");
        assert_eq!(s("new int[3]"), "(new[] int 3)");
        assert_eq!(s("new { A = 1, x.B }"), "(new-anon (A 1) (B (. x B)))");
        assert_eq!(
            s(r#"new JObject { ["a"] = 1, ["b"] = "x" }"#),
            r#"(new JObject (init (= ["a"] 1) (= ["b"] "x")))"#
        );
        assert_eq!(
            s("new List<string> { \"a\" }"),
            r#"(new List<string> (init "a"))"#
        );
        assert_eq!(
            s(r#"new Dictionary<string, int> { { "a", 1 } }"#),
            r#"(new Dictionary<string,int> (init (new[] ? (items "a" 1))))"#
        );
        assert_eq!(
            s("new Uri(\"http://x\").Host"),
            r#"(. (new Uri "http://x") Host)"#
        );
    }

    #[test]
    fn literals_and_interpolation() {
        assert_eq!(s("$\"a{b}c{d:N2}\""), r#"($ "a" {b} "c" {d:N2})"#);
        assert_eq!(s("$\"{(a ? 1 : 2)}\""), "($ {(?: a 1 2)})");
        assert_eq!(s("@\"x\\y\""), r#""x\\y""#);
        assert_eq!(s("'c'"), "'c'");
        assert_eq!(s("1.5"), "1.5");
        assert_eq!(s("null"), "null");
    }

    #[test]
    fn out_and_ref_arguments() {
        assert_eq!(
            s("h.TryParseJwt(out var jwt)"),
            "(call (. h TryParseJwt) (out var jwt))"
        );
        assert_eq!(
            s("int.TryParse(s, out int n)"),
            "(call (. int TryParse) s (out int n))"
        );
        assert_eq!(s("F(out x)"), "(call F (out x))");
    }

    #[test]
    fn statements() {
        assert_eq!(
            block("var x = 1; return x + 1;"),
            "(local var (x 1)) (return (+ x 1))"
        );
        assert_eq!(
            block("string a = \"\", b; a = b;"),
            r#"(local string (a "") b) (= a b)"#
        );
        assert_eq!(block("JObject o = null;"), "(local JObject (o null))");
        assert_eq!(
            block("List<string> l = new List<string>();"),
            "(local List<string> (l (new List<string>)))"
        );
        assert_eq!(
            block("if (a) return 1; else { return 2; }"),
            "(if a (return 1) (block (return 2)))"
        );
        assert_eq!(
            block("foreach (var h in hs) { n++; }"),
            "(foreach var h hs (block (post++ n)))"
        );
        assert_eq!(
            block("for (int i = 0; i < 3; i++) s += i;"),
            "(for (block (local int (i 0))) (< i 3) (step (post++ i)) (+= s i))"
        );
        assert_eq!(block("while (x) break;"), "(while x (break))");
        assert_eq!(
            block("try { F(); } catch (Exception ex) { return ex.Message; }"),
            "(try (block (call F)) (catch Exception ex (block (return (. ex Message)))))"
        );
        assert_eq!(block("x.y = 3;"), "(= (. x y) 3)");
        assert_eq!(block("const int N = 3;"), "(local int (N 3))");
        assert_eq!(block("unchecked { x = 1; }"), "(block (= x 1))");
        assert_eq!(
            block("using (var r = Open()) { r.Read(); }"),
            "(using (local var (r (call Open))) (block (call (. r Read))))"
        );
        assert_eq!(
            block("int Twice(int a) { return a * 2; } return Twice(2);"),
            "(fn int Twice (int a) (block (return (* a 2)))) (return (call Twice 2))"
        );
        assert_eq!(
            block("void Log(string m) => Trace(m);"),
            "(fn void Log (string m) (block (return (call Trace m))))"
        );
        assert_eq!(block("F(x);"), "(call F x)");
        assert_eq!(block("a[1] = b < c;"), "(= ([] a 1) (< b c))");
    }

    #[test]
    fn policy_code() {
        assert!(matches!(parse_code("@(1 + 2)", 0), Ok(Code::Expr(_))));
        assert!(matches!(
            parse_code("@{ return 1; }", 0),
            Ok(Code::Block(_))
        ));
        assert!(matches!(parse_code("@((string)x)", 0), Ok(Code::Expr(_))));
        let e = parse_code("@(1 + )", 10).unwrap_err();
        assert_eq!(e.span.start, 16, "{e:?}");
        assert!(parse_code("@(1) 2", 0).is_err());
        assert!(parse_code("(1)", 0).is_err());
        assert!(parse_code("@{ var x; }", 0).is_err());
    }

    #[test]
    fn errors_are_clear_and_deep_nesting_is_refused() {
        let e = parse_expr("F(a, ", 0).unwrap_err();
        assert!(e.message.contains("expected an expression"), "{e:?}");
        let e = parse_expr("a b", 0).unwrap_err();
        assert!(e.message.contains("'b'"), "{e:?}");
        let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse_expr(&deep, 0).is_err());
        let deep = format!("{}1", "-".repeat(5000));
        assert!(parse_expr(&deep, 0).is_err());
    }
}

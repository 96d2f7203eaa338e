//! The lexer of the policy-expression language (the C# subset APIM allows).
//!
//! Produces tokens with byte spans. Literals are decoded here (escapes,
//! verbatim strings, numeric suffixes); interpolated strings are split into
//! text and holes, each hole kept as source with its offset so the parser
//! can parse it in place and report positions in the original text.
//!
//! `>` is always a single token: whether `>>` is a shift or the end of two
//! generic argument lists (`List<List<int>>`) is the parser's call, made
//! from adjacency.

use super::Span;
use std::fmt;

/// A numeric literal's C# type, from its suffix and form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumKind {
    Int,
    UInt,
    Long,
    ULong,
    Float,
    Double,
    Decimal,
}

/// One piece of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum InterpPiece {
    Text(String),
    /// `{expr,align:format}`: the expression's source and its offset in the
    /// whole input.
    Hole {
        src: String,
        offset: usize,
        align: Option<String>,
        format: Option<String>,
    },
}

/// A token's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// An integer literal (value, kind). Values beyond `i64` are `ULong`.
    Int(u64, NumKind),
    Real(f64, NumKind),
    Str(String),
    Char(char),
    Interp(Vec<InterpPiece>),
    /// Punctuation and operators, as written (`&&`, `?.`, `=>`, ...).
    Punct(&'static str),
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "'{s}'"),
            Tok::Int(v, _) => write!(f, "number {v}"),
            Tok::Real(v, _) => write!(f, "number {v}"),
            Tok::Str(_) | Tok::Interp(_) => f.write_str("a string"),
            Tok::Char(_) => f.write_str("a character"),
            Tok::Punct(p) => write!(f, "'{p}'"),
            Tok::Eof => f.write_str("the end of the expression"),
        }
    }
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// A lexing error: what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub message: String,
    pub span: Span,
}

/// Operators and punctuation, longest first so that the first match wins.
const PUNCT: [&str; 48] = [
    "<<=", "??=", "?.", "?[", "??", "=>", "==", "!=", "<=", ">=", "&&", "||", "++", "--", "+=",
    "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<", "::", "(", ")", "[", "]", "{", "}", ".", ",",
    ";", ":", "?", "+", "-", "*", "/", "%", "!", "~", "&", "|", "^", "<", ">", "=",
];

/// Splits `src` (whose first byte is at `base` in the whole input) into tokens.
pub fn lex(src: &str, base: usize) -> Result<Vec<Token>, LexError> {
    Lexer {
        src,
        b: src.as_bytes(),
        i: 0,
        base,
    }
    .run()
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    base: usize,
}

impl Lexer<'_> {
    fn span(&self, start: usize) -> Span {
        Span::new(self.base + start, self.base + self.i)
    }

    fn err<T>(&self, start: usize, message: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            message: message.into(),
            span: Span::new(
                self.base + start,
                self.base + self.i.max(start + 1).min(self.b.len().max(start + 1)),
            ),
        })
    }

    fn peek(&self, k: usize) -> u8 {
        self.b.get(self.i + k).copied().unwrap_or(0)
    }

    fn run(mut self) -> Result<Vec<Token>, LexError> {
        let mut out = Vec::new();
        loop {
            self.skip_trivia()?;
            let start = self.i;
            if self.i >= self.b.len() {
                out.push(Token {
                    tok: Tok::Eof,
                    span: self.span(start),
                });
                return Ok(out);
            }
            let c = self.b[self.i];
            let tok = match c {
                b'"' => Tok::Str(self.string(false)?),
                b'\'' => Tok::Char(self.char_lit()?),
                b'@' if self.peek(1) == b'"' => {
                    self.i += 1;
                    Tok::Str(self.string(true)?)
                }
                b'$' if self.peek(1) == b'"' => {
                    self.i += 1;
                    Tok::Interp(self.interpolated(false)?)
                }
                b'$' if self.peek(1) == b'@' && self.peek(2) == b'"' => {
                    self.i += 2;
                    Tok::Interp(self.interpolated(true)?)
                }
                b'@' if self.peek(1) == b'$' && self.peek(2) == b'"' => {
                    self.i += 2;
                    Tok::Interp(self.interpolated(true)?)
                }
                b'@' if is_ident_start(self.peek(1)) => {
                    // @keyword: a verbatim identifier.
                    self.i += 1;
                    Tok::Ident(self.ident())
                }
                b'0'..=b'9' => self.number()?,
                b'.' if self.peek(1).is_ascii_digit() => self.number()?,
                c if is_ident_start(c) => Tok::Ident(self.ident()),
                _ => match PUNCT.iter().find(|p| self.src[self.i..].starts_with(**p)) {
                    Some(p) => {
                        self.i += p.len();
                        Tok::Punct(p)
                    }
                    None => {
                        let ch = self.src[self.i..].chars().next().unwrap_or('?');
                        self.i += ch.len_utf8();
                        return self.err(start, format!("unexpected character {ch:?}"));
                    }
                },
            };
            out.push(Token {
                tok,
                span: self.span(start),
            });
        }
    }

    fn skip_trivia(&mut self) -> Result<(), LexError> {
        loop {
            while let Some(c) = self.src[self.i..]
                .chars()
                .next()
                .filter(|c| c.is_whitespace())
            {
                // C# counts every Unicode space (U+00A0 included) as whitespace.
                self.i += c.len_utf8();
            }
            if self.peek(0) == b'/' && self.peek(1) == b'/' {
                while self.i < self.b.len() && self.b[self.i] != b'\n' {
                    self.i += 1;
                }
            } else if self.peek(0) == b'/' && self.peek(1) == b'*' {
                let start = self.i;
                match self.src[self.i + 2..].find("*/") {
                    Some(end) => self.i += end + 4,
                    None => {
                        self.i = self.b.len();
                        return self.err(start, "unterminated comment");
                    }
                }
            } else {
                return Ok(());
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        while self.i < self.b.len() && is_ident_part(self.b[self.i]) {
            self.i += 1;
        }
        self.src[start..self.i].to_string()
    }

    fn number(&mut self) -> Result<Tok, LexError> {
        let start = self.i;
        if self.peek(0) == b'0' && matches!(self.peek(1), b'x' | b'X') {
            self.i += 2;
            let digits_start = self.i;
            while self.peek(0).is_ascii_hexdigit() || self.peek(0) == b'_' {
                self.i += 1;
            }
            let digits: String = self.src[digits_start..self.i]
                .chars()
                .filter(|c| *c != '_')
                .collect();
            let v = u64::from_str_radix(&digits, 16)
                .or_else(|_| self.err(start, "hexadecimal literal out of range"))?;
            let kind = self.int_suffix(v);
            return Ok(Tok::Int(v, kind));
        }
        let mut real = false;
        while self.peek(0).is_ascii_digit() || self.peek(0) == b'_' {
            self.i += 1;
        }
        if self.peek(0) == b'.' && self.peek(1).is_ascii_digit() {
            real = true;
            self.i += 1;
            while self.peek(0).is_ascii_digit() || self.peek(0) == b'_' {
                self.i += 1;
            }
        }
        if matches!(self.peek(0), b'e' | b'E')
            && (self.peek(1).is_ascii_digit()
                || (matches!(self.peek(1), b'+' | b'-') && self.peek(2).is_ascii_digit()))
        {
            real = true;
            self.i += 2;
            while self.peek(0).is_ascii_digit() {
                self.i += 1;
            }
        }
        let text: String = self.src[start..self.i]
            .chars()
            .filter(|c| *c != '_')
            .collect();
        let real_kind = match self.peek(0) {
            b'f' | b'F' => Some(NumKind::Float),
            b'd' | b'D' => Some(NumKind::Double),
            b'm' | b'M' => Some(NumKind::Decimal),
            _ => None,
        };
        if let Some(kind) = real_kind {
            self.i += 1;
            let v: f64 = text.parse().or_else(|_| self.err(start, "bad number"))?;
            return Ok(Tok::Real(v, kind));
        }
        if real {
            let v: f64 = text.parse().or_else(|_| self.err(start, "bad number"))?;
            return Ok(Tok::Real(v, NumKind::Double));
        }
        let v: u64 = text
            .parse()
            .or_else(|_| self.err(start, "integer literal out of range"))?;
        let kind = self.int_suffix(v);
        Ok(Tok::Int(v, kind))
    }

    /// Reads `u`, `l`, `ul`, `lu` (any case) and picks the literal's type
    /// as C# does: the first of int, uint, long, ulong that holds it.
    fn int_suffix(&mut self, v: u64) -> NumKind {
        let (u, l) = match (
            self.peek(0).to_ascii_lowercase(),
            self.peek(1).to_ascii_lowercase(),
        ) {
            (b'u', b'l') | (b'l', b'u') => {
                self.i += 2;
                (true, true)
            }
            (b'u', _) => {
                self.i += 1;
                (true, false)
            }
            (b'l', _) => {
                self.i += 1;
                (false, true)
            }
            _ => (false, false),
        };
        match (u, l) {
            (true, true) => NumKind::ULong,
            (true, false) if v <= u32::MAX as u64 => NumKind::UInt,
            (true, false) => NumKind::ULong,
            (false, true) if v <= i64::MAX as u64 => NumKind::Long,
            (false, true) => NumKind::ULong,
            _ if v <= i32::MAX as u64 => NumKind::Int,
            _ if v <= u32::MAX as u64 => NumKind::UInt,
            _ if v <= i64::MAX as u64 => NumKind::Long,
            _ => NumKind::ULong,
        }
    }

    /// An escape sequence after the backslash at `self.i`.
    fn escape(&mut self, start: usize) -> Result<char, LexError> {
        self.i += 1;
        let c = self.peek(0);
        self.i += 1;
        Ok(match c {
            b'\'' => '\'',
            b'"' => '"',
            b'\\' => '\\',
            b'0' => '\0',
            b'a' => '\u{7}',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'v' => '\u{b}',
            b'u' | b'x' | b'U' => {
                let max = if c == b'U' { 8 } else { 4 };
                let hs = self.i;
                while self.i - hs < max && self.peek(0).is_ascii_hexdigit() {
                    self.i += 1;
                }
                if self.i == hs || (c != b'x' && self.i - hs != max) {
                    return self.err(start, "bad unicode escape");
                }
                let v = u32::from_str_radix(&self.src[hs..self.i], 16).unwrap_or(0xFFFD);
                char::from_u32(v).unwrap_or('\u{FFFD}')
            }
            _ => return self.err(start, "unknown escape sequence"),
        })
    }

    /// A regular (`"..."`) or verbatim (`@"..."`) string at `self.i` (the quote).
    fn string(&mut self, verbatim: bool) -> Result<String, LexError> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(ch) = self.src[self.i..].chars().next() else {
                return self.err(start, "unterminated string");
            };
            match ch {
                '"' if verbatim && self.peek(1) == b'"' => {
                    out.push('"');
                    self.i += 2;
                }
                '"' => {
                    self.i += 1;
                    return Ok(out);
                }
                '\\' if !verbatim => out.push(self.escape(start)?),
                '\n' if !verbatim => return self.err(start, "newline in string"),
                _ => {
                    out.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }

    fn char_lit(&mut self) -> Result<char, LexError> {
        let start = self.i;
        self.i += 1;
        let ch = match self.src[self.i..].chars().next() {
            Some('\\') => self.escape(start)?,
            Some('\'') | Some('\n') | None => {
                return self.err(start, "empty or unterminated character literal")
            }
            Some(c) => {
                self.i += c.len_utf8();
                c
            }
        };
        if self.peek(0) != b'\'' {
            return self.err(start, "unterminated character literal");
        }
        self.i += 1;
        Ok(ch)
    }

    /// An interpolated string; `self.i` is at the opening quote.
    fn interpolated(&mut self, verbatim: bool) -> Result<Vec<InterpPiece>, LexError> {
        let start = self.i;
        self.i += 1;
        let mut pieces = Vec::new();
        let mut text = String::new();
        loop {
            let Some(ch) = self.src[self.i..].chars().next() else {
                return self.err(start, "unterminated interpolated string");
            };
            match ch {
                '{' if self.peek(1) == b'{' => {
                    text.push('{');
                    self.i += 2;
                }
                '}' if self.peek(1) == b'}' => {
                    text.push('}');
                    self.i += 2;
                }
                '{' => {
                    if !text.is_empty() {
                        pieces.push(InterpPiece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(self.hole(start)?);
                }
                '}' => return self.err(self.i, "'}' in an interpolated string must be doubled"),
                '"' if verbatim && self.peek(1) == b'"' => {
                    text.push('"');
                    self.i += 2;
                }
                '"' => {
                    self.i += 1;
                    if !text.is_empty() {
                        pieces.push(InterpPiece::Text(text));
                    }
                    return Ok(pieces);
                }
                '\\' if !verbatim => text.push(self.escape(start)?),
                '\n' if !verbatim => return self.err(start, "newline in interpolated string"),
                _ => {
                    text.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }

    /// One `{expr[,align][:format]}` hole; `self.i` is at `{`.
    fn hole(&mut self, string_start: usize) -> Result<InterpPiece, LexError> {
        self.i += 1;
        let expr_start = self.i;
        let mut depth = 0usize;
        let mut expr_end = None;
        let mut align_start = None;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' => depth = depth.saturating_sub(1),
                b'}' if depth > 0 => depth -= 1,
                b'}' => break,
                b'"' => {
                    self.string(false)?;
                    continue;
                }
                b'\'' => {
                    self.char_lit()?;
                    continue;
                }
                b',' if depth == 0 && expr_end.is_none() => {
                    expr_end = Some(self.i);
                    align_start = Some(self.i + 1);
                }
                b':' if depth == 0 && self.peek(1) != b':' => break,
                _ => {}
            }
            self.i += 1;
        }
        let end_of_expr = self.i;
        let (src_end, align) = match (expr_end, align_start) {
            (Some(e), Some(a)) => (e, Some(self.src[a..end_of_expr].trim().to_string())),
            _ => (end_of_expr, None),
        };
        let mut format = None;
        if self.peek(0) == b':' {
            self.i += 1;
            let fs = self.i;
            while self.i < self.b.len() && self.b[self.i] != b'}' {
                self.i += 1;
            }
            format = Some(self.src[fs..self.i].to_string());
        }
        if self.peek(0) != b'}' {
            return self.err(string_start, "unterminated interpolation hole");
        }
        self.i += 1;
        let src = self.src[expr_start..src_end].to_string();
        if src.trim().is_empty() {
            return self.err(expr_start, "empty interpolation hole");
        }
        Ok(InterpPiece::Hole {
            src,
            offset: self.base + expr_start,
            align,
            format,
        })
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_part(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s, 0).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn literals() {
        assert_eq!(
            toks(r#"1 2L 3u 4.5 6f 7m 0xFF 1e3 "a\tb" @"c""d\" 'x' '\n'"#),
            vec![
                Tok::Int(1, NumKind::Int),
                Tok::Int(2, NumKind::Long),
                Tok::Int(3, NumKind::UInt),
                Tok::Real(4.5, NumKind::Double),
                Tok::Real(6.0, NumKind::Float),
                Tok::Real(7.0, NumKind::Decimal),
                Tok::Int(255, NumKind::Int),
                Tok::Real(1000.0, NumKind::Double),
                Tok::Str("a\tb".into()),
                Tok::Str("c\"d\\".into()),
                Tok::Char('x'),
                Tok::Char('\n'),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("3000000000")[0],
            Tok::Int(3_000_000_000, NumKind::UInt)
        );
    }

    #[test]
    fn operators_longest_first() {
        assert_eq!(
            toks("a?.b ?? c?[0] => x<<=1 >>"),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct("?."),
                Tok::Ident("b".into()),
                Tok::Punct("??"),
                Tok::Ident("c".into()),
                Tok::Punct("?["),
                Tok::Int(0, NumKind::Int),
                Tok::Punct("]"),
                Tok::Punct("=>"),
                Tok::Ident("x".into()),
                Tok::Punct("<<="),
                Tok::Int(1, NumKind::Int),
                Tok::Punct(">"),
                Tok::Punct(">"),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn interpolation_holes_keep_offsets() {
        let t = lex(r#"$"id={context.RequestId:N} {{x}} {a,5}""#, 10).unwrap();
        let Tok::Interp(p) = &t[0].tok else { panic!() };
        assert_eq!(p[0], InterpPiece::Text("id=".into()));
        assert_eq!(
            p[1],
            InterpPiece::Hole {
                src: "context.RequestId".into(),
                offset: 16,
                align: None,
                format: Some("N".into())
            }
        );
        assert_eq!(p[2], InterpPiece::Text(" {x} ".into()));
        assert_eq!(
            p[3],
            InterpPiece::Hole {
                src: "a".into(),
                offset: 44,
                align: Some("5".into()),
                format: None
            }
        );
        // A hole with a string containing '}' and a ternary-free call.
        let t = lex(r#"$"{Get("}")}""#, 0).unwrap();
        let Tok::Interp(p) = &t[0].tok else { panic!() };
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn errors_have_positions() {
        let e = lex("a + \"open", 0).unwrap_err();
        assert_eq!(e.span.start, 4);
        assert!(lex("a # b", 0).is_err());
        assert!(lex("'ab'", 0).is_err());
        assert!(lex("/* x", 0).is_err());
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(toks("a // x\n /* y */ b").len(), 3);
    }
}

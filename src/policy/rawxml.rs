//! APIM's "rawxml": policy documents whose C# expressions (`@(...)`,
//! `@{...}`) contain characters XML forbids there (`&&`, `<`, quotes).
//!
//! APIM accepts such documents by finding the expressions before parsing the
//! XML. [`mask_expressions`] does the same: it finds every expression by
//! balancing brackets (skipping C# string and char literals) and replaces the
//! characters that would upset an XML parser with spaces. The result has the
//! same length as the input, so every byte offset — and every `line:col` a
//! diagnostic reports — is the same in both.

/// Where the expressions of `text` are: byte ranges of `@(...)` / `@{...}`,
/// outside comments and CDATA sections.
pub fn expression_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"<!--") {
            i = find(b, i + 4, b"-->").map_or(b.len(), |e| e + 3);
            continue;
        }
        if b[i..].starts_with(b"<![CDATA[") {
            i = find(b, i + 9, b"]]>").map_or(b.len(), |e| e + 3);
            continue;
        }
        if b[i] == b'@' && i + 1 < b.len() && (b[i + 1] == b'(' || b[i + 1] == b'{') {
            // An expression that never closes is left alone: masking it
            // would hide the rest of the document from the XML parser, and
            // the expression parser reports it better.
            if let Some(end) = balanced_end(b, i + 1) {
                spans.push(i..end);
                i = end;
                continue;
            }
        }
        i += 1;
    }
    spans
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Index just past the bracket that closes the one at `open` (`None` when
/// it never closes), skipping C# literals and comments.
fn balanced_end(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'"' => {
                let verbatim =
                    i > 0 && b[i - 1] == b'@' || (i > 1 && b[i - 1] == b'$' && b[i - 2] == b'@');
                i = string_end(b, i, b'"', verbatim);
                continue;
            }
            b'\'' => {
                i = string_end(b, i, b'\'', false);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = find(b, i + 2, b"*/").map_or(b.len(), |e| e + 2);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index just past the literal starting at `start` (a quote).
fn string_end(b: &[u8], start: usize, quote: u8, verbatim: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if verbatim {
            if b[i] == quote {
                if b.get(i + 1) == Some(&quote) {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
        } else if b[i] == b'\\' {
            i += 2;
            continue;
        } else if b[i] == quote {
            return i + 1;
        } else if b[i] == b'\n' {
            // An unterminated literal: stop at the line end.
            return i;
        }
        i += 1;
    }
    b.len()
}

/// `text` with `<`, `>`, `&`, `"` and `'` inside expressions replaced by
/// spaces (same length, same offsets).
pub fn mask_expressions(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for span in expression_spans(text) {
        for b in &mut bytes[span] {
            if matches!(*b, b'<' | b'>' | b'&' | b'"' | b'\'') {
                *b = b' ';
            }
        }
    }
    // Only ASCII bytes were replaced by ASCII, so this stays valid UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_only_inside_expressions() {
        let doc =
            r#"<when condition="@(context.Variables["a"] < 3 && true)"><x a="b&amp;c"/></when>"#;
        let masked = mask_expressions(doc);
        assert_eq!(masked.len(), doc.len());
        assert!(
            masked.contains(r#"condition="@(context.Variables[ a ]   3    true)""#),
            "{masked}"
        );
        assert!(masked.contains("b&amp;c"));
    }

    #[test]
    fn blocks_skip_braces_in_strings_and_comments() {
        let doc = "<v>@{ var s = \"}{\"; return s + '}'; }</v><!-- @( --><v>@(1)</v>";
        let spans = expression_spans(doc);
        assert_eq!(spans.len(), 2);
        assert_eq!(
            &doc[spans[0].clone()],
            "@{ var s = \"}{\"; return s + '}'; }"
        );
        assert_eq!(&doc[spans[1].clone()], "@(1)");
    }

    #[test]
    fn comments_inside_blocks_do_not_close_them() {
        let doc = "<v>@{ // step 1)\n /* ) */ return 1; }</v>";
        let spans = expression_spans(doc);
        assert_eq!(
            &doc[spans[0].clone()],
            "@{ // step 1)\n /* ) */ return 1; }"
        );
    }

    #[test]
    fn an_unclosed_expression_masks_nothing() {
        let doc = "<a>@{ return 1</a><b c=\"@(x < 1)\"/>";
        let spans = expression_spans(doc);
        assert_eq!(spans.len(), 1);
        assert_eq!(&doc[spans[0].clone()], "@(x < 1)");
    }

    #[test]
    fn verbatim_strings() {
        let doc = r#"@(@"a""b)" + ")")"#;
        assert_eq!(expression_spans(doc), vec![0..doc.len()]);
    }
}

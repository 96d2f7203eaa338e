//! Operation ids and display names from `operationId`, `summary`, the
//! method and the path.
//!
//! Ids follow the resource id rule of `model::validate_id`
//! (`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`): other characters become `-`,
//! runs of `-` collapse, the id starts with a letter or digit. Ids are
//! unique per API regardless of case: a repeat gets `-2`, `-3`, ...

use std::collections::HashSet;

const MAX_ID: usize = 80;

/// `raw` reduced to the id character set; empty when nothing is left.
pub fn sanitize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let start = out
        .find(|c: char| c.is_ascii_alphanumeric())
        .unwrap_or(out.len());
    let mut id = out[start..].trim_end_matches('-').to_string();
    id.truncate(MAX_ID);
    id.trim_end_matches('-').to_string()
}

/// The id of an operation without `operationId`: `get-pets-petid`.
pub fn derived(method: &str, path: &str) -> String {
    let id = sanitize(&format!("{method}-{path}").to_ascii_lowercase());
    if id.is_empty() {
        "operation".into()
    } else {
        id
    }
}

/// Hands out unique ids (case-insensitively).
#[derive(Default)]
pub struct Ids {
    used: HashSet<String>,
}

impl Ids {
    /// `base` if it is free, else `base-2`, `base-3`, ... (shortened to fit).
    pub fn claim(&mut self, base: &str) -> String {
        if self.used.insert(base.to_ascii_lowercase()) {
            return base.to_string();
        }
        let mut n = 1usize;
        loop {
            n += 1;
            let suffix = format!("-{n}");
            let stem = clip(base, MAX_ID.saturating_sub(suffix.len()));
            let id = format!("{stem}{suffix}");
            if self.used.insert(id.to_ascii_lowercase()) {
                return id;
            }
        }
    }
}

/// Cuts `s` to at most `n` characters.
pub fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate_id;

    #[test]
    fn sanitizing() {
        assert_eq!(sanitize("listPets"), "listPets");
        assert_eq!(sanitize("/status"), "status");
        assert_eq!(sanitize("get pets/{id}"), "get-pets-id");
        assert_eq!(sanitize("__x"), "x");
        assert_eq!(sanitize("créer un chat"), "cr-er-un-chat");
        assert_eq!(sanitize("---"), "");
        assert_eq!(sanitize("a.b_c-d"), "a.b_c-d");
        let long = sanitize(&"x".repeat(200));
        assert_eq!(long.len(), 80);
        for raw in ["/status", "a b", &"é".repeat(90), "1-", "x//y"] {
            let id = sanitize(raw);
            assert!(id.is_empty() || validate_id("id", &id).is_ok(), "{id}");
        }
    }

    #[test]
    fn derived_ids() {
        assert_eq!(derived("GET", "/pets/{petId}"), "get-pets-petid");
        assert_eq!(derived("GET", "/"), "get");
        assert_eq!(derived("POST", "/estimates/price"), "post-estimates-price");
    }

    #[test]
    fn dedup() {
        let mut ids = Ids::default();
        assert_eq!(ids.claim("getPet"), "getPet");
        assert_eq!(ids.claim("getPet"), "getPet-2");
        assert_eq!(ids.claim("GETPET"), "GETPET-3");
        assert_eq!(ids.claim("getPet-2"), "getPet-2-2");
        let long = "y".repeat(80);
        assert_eq!(ids.claim(&long), long);
        let again = ids.claim(&long);
        assert_eq!(again.len(), 80);
        assert!(again.ends_with("-2"));
        assert!(validate_id("id", &again).is_ok());
    }

    #[test]
    fn clipping() {
        assert_eq!(clip("héllo", 2), "hé");
        assert_eq!(clip("hi", 5), "hi");
    }
}

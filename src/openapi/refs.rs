//! `$ref` resolution within one document: JSON pointers, chains of
//! references, and the check that every local reference resolves.
//!
//! Only references inside the document (`#/...`) are supported; anything
//! else (another file, a URL) is refused with the pointer of the `$ref`.

use super::{ptr, Cx, Loc};
use crate::error::Detail;
use serde_json::Value;

/// Longest chain of references followed to reach a non-reference value.
const MAX_HOPS: usize = 32;

/// At most this many unresolvable references are reported at once.
const MAX_REPORTED: usize = 10;

/// The `$ref` of a Reference Object, if `v` is one.
pub fn ref_of(v: &Value) -> Option<&str> {
    v.as_object()?.get("$ref")?.as_str()
}

/// The JSON pointer a local reference names: `#/components/schemas/Pet`
/// → `/components/schemas/Pet` (percent-decoded; `~0`/`~1` stay escaped,
/// as pointers keep them).
pub fn local_pointer(r: &str) -> Option<String> {
    let fragment = r.strip_prefix('#')?;
    let decoded = percent_encoding::percent_decode_str(fragment)
        .decode_utf8()
        .ok()?;
    (decoded.is_empty() || decoded.starts_with('/')).then(|| decoded.into_owned())
}

/// The value at `pointer` in `doc`.
pub fn resolve<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    doc.pointer(pointer)
}

/// Why `r` (found at `at`) does not resolve in `doc`, if it does not;
/// otherwise the pointer of its target.
pub fn target(doc: &Value, r: &str, at: &str) -> Result<String, Detail> {
    let Some(pointer) = local_pointer(r) else {
        return Err(Detail::new(
            at,
            format!(
                "$ref {r:?} is not supported: only references within the document (\"#/...\") are"
            ),
        ));
    };
    if resolve(doc, &pointer).is_none() {
        return Err(Detail::new(
            at,
            format!("$ref {r:?} does not resolve: nothing at {pointer:?} in the document"),
        ));
    }
    Ok(pointer)
}

impl<'a> Cx<'a> {
    /// Follows references from `v` (at pointer `at`) to a value that is not
    /// one; returns it with its own pointer.
    pub fn deref(&self, v: &'a Value, at: &str) -> Result<(&'a Value, String), Detail> {
        let mut cur = v;
        let mut cur_at = at.to_string();
        for _ in 0..MAX_HOPS {
            let Some(r) = ref_of(cur) else {
                return Ok((cur, cur_at));
            };
            let pointer = target(self.doc, r, &ptr(&cur_at, "$ref"))?;
            cur = resolve(self.doc, &pointer).unwrap_or(&Value::Null);
            cur_at = pointer;
        }
        Err(Detail::new(
            ptr(at, "$ref"),
            format!("circular $ref: more than {MAX_HOPS} references lead to no value"),
        ))
    }
}

/// Checks every `$ref` of the document, used or not, so that a document
/// with a dangling reference is refused whole. Literal data (examples,
/// extensions) is not searched: a `"$ref"` key in an example is data.
pub fn check_all(doc: &Value, swagger2: bool) -> Vec<Detail> {
    let mut out = Vec::new();
    walk(doc, doc, &Loc::At(""), None, None, swagger2, &mut out);
    out
}

fn walk(
    doc: &Value,
    v: &Value,
    at: &Loc,
    key: Option<&str>,
    parent_key: Option<&str>,
    swagger2: bool,
    out: &mut Vec<Detail>,
) {
    if out.len() >= MAX_REPORTED {
        return;
    }
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                if let Err(d) = target(doc, r, &Loc::Key(at, "$ref").render()) {
                    out.push(d);
                }
            }
            // In a map of named schemas, every key is a name.
            let names = matches!(key, Some("properties" | "patternProperties"));
            // An Example Object (a member of an `examples` map) holds data in `value`.
            let example_object = parent_key == Some("examples");
            for (k, child) in o {
                let literal = k.starts_with("x-")
                    || (!names && k == "example")
                    || (!names && example_object && k == "value")
                    || (swagger2 && !names && k == "examples");
                if !literal && k != "$ref" {
                    walk(doc, child, &Loc::Key(at, k), Some(k), key, swagger2, out);
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                walk(doc, child, &Loc::Index(at, i), None, key, swagger2, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers() {
        assert_eq!(
            local_pointer("#/components/schemas/Pet").as_deref(),
            Some("/components/schemas/Pet")
        );
        assert_eq!(
            local_pointer("#/paths/~1pets~1%7Bid%7D").as_deref(),
            Some("/paths/~1pets~1{id}")
        );
        assert_eq!(local_pointer("#").as_deref(), Some(""));
        assert_eq!(local_pointer("other.yaml#/a"), None);
        assert_eq!(local_pointer("#bad"), None);
        let doc = json!({"paths": {"/pets/{id}": {"get": 1}}, "a": [10, 20]});
        assert_eq!(resolve(&doc, "/paths/~1pets~1{id}/get"), Some(&json!(1)));
        assert_eq!(resolve(&doc, "/a/1"), Some(&json!(20)));
    }

    #[test]
    fn chains_and_cycles() {
        let doc = json!({
            "components": {"parameters": {
                "a": {"$ref": "#/components/parameters/b"},
                "b": {"name": "x", "in": "query"},
                "loop": {"$ref": "#/components/parameters/loop"}
            }}
        });
        let cx = Cx::new(&doc);
        let start = json!({"$ref": "#/components/parameters/a"});
        let (v, at) = cx.deref(&start, "/p").unwrap();
        assert_eq!(v["name"], "x");
        assert_eq!(at, "/components/parameters/b");
        let start = json!({"$ref": "#/components/parameters/loop"});
        assert!(cx
            .deref(&start, "/p")
            .unwrap_err()
            .message
            .contains("circular"));
        let start = json!({"$ref": "#/components/parameters/none"});
        let e = cx.deref(&start, "/p").unwrap_err();
        assert_eq!(e.target, "/p/$ref");
        let start = json!({"$ref": "https://example.com/x.yaml"});
        assert!(cx
            .deref(&start, "/p")
            .unwrap_err()
            .message
            .contains("not supported"));
    }

    #[test]
    fn check_all_finds_dangling_refs_but_not_data() {
        let doc = json!({
            "paths": {"/a": {"get": {"responses": {"200": {"$ref": "#/components/responses/gone"}}}}},
            "components": {
                "schemas": {"S": {"properties": {"example": {"$ref": "#/components/schemas/Missing"}},
                                  "example": {"$ref": "not checked"}}},
                "examples": {"e": {"value": {"$ref": "data"}}},
                "x-tool": {"$ref": "ignored"}
            }
        });
        let found = check_all(&doc, false);
        let targets: Vec<&str> = found.iter().map(|d| d.target.as_str()).collect();
        assert_eq!(
            targets,
            [
                "/paths/~1a/get/responses/200/$ref",
                "/components/schemas/S/properties/example/$ref"
            ]
        );
    }
}

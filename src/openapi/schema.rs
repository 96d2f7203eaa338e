//! Schemas as the operation documentation keeps them: `$ref`s inlined,
//! cycles cut, the total size bounded; simple examples made from a schema;
//! APIM's ParameterContract.
//!
//! A schema is inlined by copying it with every `$ref` replaced by its
//! target. A reference met again inside its own expansion is left as
//! `{"$ref": "...", "circular": true}`; references deeper than
//! [`EXPAND_DEPTH`] levels, or past [`EXPAND_CHAIN`] expansions in
//! progress, are left as `{"$ref": "..."}`. Every node
//! copied for the whole import is counted against [`MAX_NODES`]: past it,
//! the import is refused with the pointer being expanded, so a reference
//! bomb (each schema referring to the previous one ten times) costs
//! bounded memory and time.

use super::refs::{ref_of, resolve, target};
use super::{Cx, Loc};
use crate::error::Detail;
use serde_json::{json, Map, Value};

/// Nodes copied into the operations of one import, at most.
pub const MAX_NODES: usize = 1_000_000;

/// References met deeper than this (in JSON nesting) are not expanded.
const EXPAND_DEPTH: usize = 32;

/// References being expanded at once, at most (a chain of schemas each
/// only a reference to the next must not exhaust the stack).
const EXPAND_CHAIN: usize = 64;

/// Nesting deeper than this is refused: stored records must read back
/// under serde_json's recursion limit (128).
const MAX_DEPTH: usize = 96;

/// Example synthesis stops this deep.
const EXAMPLE_DEPTH: usize = 10;

/// Keywords whose values are data, not schemas: copied as they are.
fn literal_keyword(k: &str) -> bool {
    matches!(
        k,
        "example" | "examples" | "default" | "enum" | "const" | "x-example"
    ) || k.starts_with("x-")
}

/// Keywords whose values are maps from names to schemas.
fn schema_map_keyword(k: &str) -> bool {
    matches!(
        k,
        "properties" | "patternProperties" | "definitions" | "$defs" | "dependentSchemas"
    )
}

impl<'a> Cx<'a> {
    fn spend(&mut self, at: &Loc) -> Result<(), Detail> {
        if self.left == 0 {
            return Err(Detail::new(
                at.render(),
                format!(
                    "the operations' schemas and examples, with $refs expanded, exceed {MAX_NODES} nodes"
                ),
            ));
        }
        self.left -= 1;
        Ok(())
    }

    /// The schema `v` (at `at`) with its references inlined.
    pub fn schema(&mut self, v: &'a Value, at: &str) -> Result<Value, Detail> {
        let mut stack = Vec::new();
        self.inline(v, &Loc::At(at), 0, false, &mut stack)
    }

    /// A copy of literal data (an example, a default), counted and bounded.
    pub fn copy(&mut self, v: &Value, at: &str) -> Result<Value, Detail> {
        self.copy_at(v, &Loc::At(at), 0)
    }

    fn too_deep(at: &Loc) -> Detail {
        Detail::new(
            at.render(),
            format!("nested more than {MAX_DEPTH} levels deep"),
        )
    }

    fn copy_at(&mut self, v: &Value, at: &Loc, depth: usize) -> Result<Value, Detail> {
        if depth > MAX_DEPTH {
            return Err(Self::too_deep(at));
        }
        self.spend(at)?;
        Ok(match v {
            Value::Object(o) => {
                let mut m = Map::with_capacity(o.len());
                for (k, child) in o {
                    m.insert(k.clone(), self.copy_at(child, &Loc::Key(at, k), depth + 1)?);
                }
                Value::Object(m)
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, child)| self.copy_at(child, &Loc::Index(at, i), depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }

    /// `names`: `v` is a map from names to schemas (`properties`), not a
    /// schema.
    fn inline(
        &mut self,
        v: &'a Value,
        at: &Loc,
        depth: usize,
        names: bool,
        stack: &mut Vec<&'a str>,
    ) -> Result<Value, Detail> {
        if depth > MAX_DEPTH {
            return Err(Self::too_deep(at));
        }
        self.spend(at)?;
        match v {
            Value::Object(o) => {
                if let (false, Some(r)) = (names, ref_of(v)) {
                    return self.expand(o, r, at, depth, stack);
                }
                let mut m = Map::with_capacity(o.len());
                for (k, child) in o {
                    let here = Loc::Key(at, k);
                    let out = if !names && literal_keyword(k) {
                        self.copy_at(child, &here, depth + 1)?
                    } else {
                        let child_names = !names && schema_map_keyword(k);
                        self.inline(child, &here, depth + 1, child_names, stack)?
                    };
                    m.insert(k.clone(), out);
                }
                Ok(Value::Object(m))
            }
            Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, child) in a.iter().enumerate() {
                    out.push(self.inline(child, &Loc::Index(at, i), depth + 1, false, stack)?);
                }
                Ok(Value::Array(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Replaces the reference `o` (its `$ref` is `r`) by its target, with
    /// the reference's other keywords laid over it (OpenAPI 3.1 allows
    /// them; 3.0 documents rarely have any).
    fn expand(
        &mut self,
        o: &'a Map<String, Value>,
        r: &'a str,
        at: &Loc,
        depth: usize,
        stack: &mut Vec<&'a str>,
    ) -> Result<Value, Detail> {
        if stack.contains(&r) {
            return Ok(json!({"$ref": r, "circular": true}));
        }
        let ref_at = Loc::Key(at, "$ref");
        let pointer = target(self.doc, r, &ref_at.render())?;
        if depth >= EXPAND_DEPTH || stack.len() >= EXPAND_CHAIN {
            return Ok(json!({"$ref": r}));
        }
        let Some(resolved) = resolve(self.doc, &pointer) else {
            return Ok(json!({"$ref": r}));
        };
        stack.push(r);
        let out = self.inline(resolved, &Loc::At(&pointer), depth, false, stack);
        stack.pop();
        let mut out = out?;
        if let Value::Object(m) = &mut out {
            for (k, child) in o {
                if k == "$ref" {
                    continue;
                }
                let here = Loc::Key(at, k);
                let v = if literal_keyword(k) {
                    self.copy_at(child, &here, depth + 1)?
                } else {
                    self.inline(child, &here, depth + 1, schema_map_keyword(k), stack)?
                };
                m.insert(k.clone(), v);
            }
        }
        Ok(out)
    }
}

/// The JSON type a schema names (`string` when it names none; the first
/// non-null one when it names several, as 3.1 allows).
pub fn type_of(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string")
            .to_string(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ if schema.get("items").is_some() => "array".into(),
        _ => "string".into(),
    }
}

/// A value as APIM's string fields show it (`defaultValue`, `values`).
pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A simple example for an (inlined) schema: its own `example`,
/// `examples[0]`, `const`, `default` or first `enum` value when it has
/// one, otherwise one built from its type and properties.
pub fn example(schema: &Value) -> Option<Value> {
    example_at(schema, 0)
}

fn example_at(schema: &Value, depth: usize) -> Option<Value> {
    let s = schema.as_object()?;
    if depth > EXAMPLE_DEPTH || s.contains_key("$ref") {
        return None;
    }
    if let Some(e) = s.get("example") {
        return Some(e.clone());
    }
    if let Some(e) = s
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return Some(e.clone());
    }
    for k in ["const", "default"] {
        if let Some(v) = s.get(k) {
            return Some(v.clone());
        }
    }
    if let Some(e) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return Some(e.clone());
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        let mut other = None;
        for part in all {
            match example_at(part, depth + 1) {
                Some(Value::Object(m)) => merged.extend(m),
                Some(v) => other = Some(v),
                None => {}
            }
        }
        if !merged.is_empty() || other.is_none() {
            if let Some(Value::Object(own)) = object_example(s, depth) {
                merged.extend(own);
            }
            return Some(Value::Object(merged));
        }
        return other;
    }
    for k in ["oneOf", "anyOf"] {
        if let Some(first) = s.get(k).and_then(Value::as_array).and_then(|a| a.first()) {
            return example_at(first, depth + 1);
        }
    }
    let format = s.get("format").and_then(Value::as_str).unwrap_or("");
    Some(match type_of(schema).as_str() {
        "object" => return object_example(s, depth),
        "array" => {
            let item = s.get("items").and_then(|i| example_at(i, depth + 1));
            Value::Array(item.into_iter().collect())
        }
        "integer" => json!(0),
        "number" => json!(0.0),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => Value::String(
            match format {
                "date-time" => "2024-01-01T00:00:00Z",
                "date" => "2024-01-01",
                "time" => "00:00:00",
                "uuid" => "00000000-0000-0000-0000-000000000000",
                "email" => "user@example.com",
                "uri" | "url" => "https://example.com",
                "hostname" => "example.com",
                "ipv4" => "192.0.2.1",
                "ipv6" => "2001:db8::1",
                "byte" => "U3dhZ2dlciByb2Nrcw==",
                _ => "string",
            }
            .to_string(),
        ),
    })
}

fn object_example(s: &Map<String, Value>, depth: usize) -> Option<Value> {
    let mut out = Map::new();
    if let Some(Value::Object(props)) = s.get("properties") {
        for (name, prop) in props {
            if let Some(v) = example_at(prop, depth + 1) {
                out.insert(name.clone(), v);
            }
        }
    }
    Some(Value::Object(out))
}

/// `{"default": {"value": v}}`, the examples map of one unnamed example.
pub fn default_example(v: Value) -> Value {
    json!({"default": {"value": v}})
}

/// One APIM ParameterContract; empty members are left out.
pub struct Param {
    pub name: String,
    pub kind: String,
    pub required: bool,
    pub description: Option<String>,
    pub default: Option<Value>,
    pub values: Vec<Value>,
    pub schema: Option<Value>,
    pub examples: Option<Value>,
}

impl Param {
    pub fn into_contract(self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(self.name));
        m.insert("type".into(), Value::String(self.kind));
        m.insert("required".into(), Value::Bool(self.required));
        if let Some(d) = self.description.filter(|d| !d.is_empty()) {
            m.insert("description".into(), Value::String(d));
        }
        if let Some(d) = self.default {
            m.insert("defaultValue".into(), Value::String(as_text(&d)));
        }
        if !self.values.is_empty() {
            let values = self.values.iter().map(|v| Value::String(as_text(v)));
            m.insert("values".into(), Value::Array(values.collect()));
        }
        if let Some(s) = self.schema {
            m.insert("schema".into(), s);
        }
        if let Some(e) = self.examples {
            m.insert("examples".into(), e);
        }
        Value::Object(m)
    }

    /// A path parameter the document names in the path but does not
    /// describe.
    pub fn undocumented(name: &str) -> Value {
        Param {
            name: name.to_string(),
            kind: "string".into(),
            required: true,
            description: None,
            default: None,
            values: Vec::new(),
            schema: None,
            examples: None,
        }
        .into_contract()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlines_refs_and_cuts_cycles() {
        let doc = json!({
            "components": {"schemas": {
                "Pet": {"type": "object", "properties": {
                    "id": {"type": "integer"},
                    "owner": {"$ref": "#/components/schemas/Person"},
                    "example": {"type": "string"}
                }, "example": {"$ref": "kept as data"}},
                "Person": {"type": "object", "properties": {
                    "pets": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}
                }}
            }}
        });
        let start = json!({"$ref": "#/components/schemas/Pet"});
        let mut cx = Cx::new(&doc);
        let s = cx.schema(&start, "/paths/~1pets/get/schema").unwrap();
        assert_eq!(s["properties"]["owner"]["type"], "object");
        assert_eq!(
            s["properties"]["owner"]["properties"]["pets"]["items"],
            json!({"$ref": "#/components/schemas/Pet", "circular": true})
        );
        assert_eq!(s["example"], json!({"$ref": "kept as data"}));
        assert_eq!(s["properties"]["example"]["type"], "string");
    }

    #[test]
    fn missing_targets_name_the_pointer() {
        let doc = json!({"s": {"properties": {"a": {"$ref": "#/nope"}}}});
        let mut cx = Cx::new(&doc);
        let e = cx.schema(&doc["s"], "/s").unwrap_err();
        assert_eq!(e.target, "/s/properties/a/$ref");
    }

    #[test]
    fn ref_bombs_hit_the_budget() {
        let mut schemas = Map::new();
        schemas.insert("s0".into(), json!({"type": "string"}));
        for i in 1..12 {
            let r = json!({"$ref": format!("#/components/schemas/s{}", i - 1)});
            schemas.insert(format!("s{i}"), json!({"allOf": vec![r; 10]}));
        }
        let doc = json!({"components": {"schemas": schemas}});
        let mut cx = Cx::new(&doc);
        let e = cx
            .schema(&doc["components"]["schemas"]["s11"], "/x")
            .unwrap_err();
        assert!(e.message.contains("exceed"), "{}", e.message);
    }

    #[test]
    fn long_chains_and_deep_nesting_are_bounded() {
        let mut schemas = Map::new();
        for i in 0..10_000 {
            schemas.insert(
                format!("s{i}"),
                json!({"$ref": format!("#/components/schemas/s{}", i + 1)}),
            );
        }
        schemas.insert("s10000".into(), json!({"type": "string"}));
        let doc = json!({"components": {"schemas": schemas}});
        let start = json!({"$ref": "#/components/schemas/s0"});
        let mut cx = Cx::new(&doc);
        let s = cx.schema(&start, "/x").unwrap();
        assert_eq!(s, json!({"$ref": "#/components/schemas/s64"}));

        let mut deep = json!({"type": "string"});
        for _ in 0..60 {
            deep = json!({"type": "object", "properties": {"a": deep}});
        }
        let doc = json!({"deep": deep});
        let mut cx = Cx::new(&doc);
        let e = cx.schema(&doc["deep"], "/deep").unwrap_err();
        assert!(e.message.contains("levels deep"), "{}", e.message);
        assert!(
            e.target.starts_with("/deep/properties/a/properties/a"),
            "{}",
            e.target
        );
    }

    #[test]
    fn examples_from_schemas() {
        let s = json!({"type": "object", "properties": {
            "id": {"type": "integer", "format": "int64"},
            "name": {"type": "string", "example": "doggie"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "when": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": ["available", "sold"]},
            "loop": {"$ref": "#/x", "circular": true}
        }});
        assert_eq!(
            example(&s).unwrap(),
            json!({"id": 0, "name": "doggie", "tags": ["string"],
                   "when": "2024-01-01T00:00:00Z", "status": "available"})
        );
        let all = json!({"allOf": [{"properties": {"a": {"type": "boolean"}}},
                                   {"properties": {"b": {"type": "number"}}}]});
        assert_eq!(example(&all).unwrap(), json!({"a": true, "b": 0.0}));
        assert_eq!(type_of(&json!({"type": ["null", "integer"]})), "integer");
    }
}

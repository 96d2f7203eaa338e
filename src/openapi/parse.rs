//! Document text → `serde_json::Value`: the byte-order mark, UTF-8, JSON
//! through serde_json and YAML through `yaml_serde`, with the expansion of
//! YAML aliases bounded.
//!
//! YAML aliases can make a small document expand into an enormous one (the
//! "billion laughs"). The YAML side is read through [`Bounded`], a serde
//! seed that counts every node and every string byte it builds and stops
//! once the count passes a budget proportional to the input size; a
//! document without aliases never comes near it.

use crate::error::Detail;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::Cell;
use std::fmt;

/// The syntax a document was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Json,
    Yaml,
}

/// The document as text: a UTF-8 byte-order mark dropped, anything that is
/// not UTF-8 refused.
pub fn text(bytes: &[u8]) -> Result<&str, Detail> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(Detail::new(
            "value",
            "the document is UTF-16; send it as UTF-8",
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        Detail::new(
            "value",
            format!("the document is not UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// Parses `text` as JSON when `json_only` or when it opens with `{`,
/// otherwise as YAML (one document).
pub fn parse(text: &str, json_only: bool) -> Result<(Value, Syntax), Detail> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if json_only || text.trim_start().starts_with('{') {
        let v = serde_json::from_str(text).map_err(|e| {
            Detail::new(
                "value",
                format!(
                    "not valid JSON: line {}, column {}: {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        return Ok((v, Syntax::Json));
    }
    yaml(text).map(|v| (v, Syntax::Yaml))
}

/// Parses one YAML document into JSON values, bounded as the module says.
pub fn yaml(text: &str) -> Result<Value, Detail> {
    let left = Cell::new(text.len().saturating_mul(4).saturating_add(1_000_000));
    let de = yaml_serde::Deserializer::from_str(text);
    Bounded { left: &left }
        .deserialize(de)
        .map_err(|e| Detail::new("value", format!("not valid YAML: {e}")))
}

const EXPANDED: &str = "the document expands to far more than its size (YAML aliases)";

/// A seed building a `Value` while spending from a shared budget.
#[derive(Clone, Copy)]
struct Bounded<'b> {
    left: &'b Cell<usize>,
}

impl Bounded<'_> {
    fn spend<E: de::Error>(&self, n: usize) -> Result<(), E> {
        match self.left.get().checked_sub(n) {
            Some(rest) => {
                self.left.set(rest);
                Ok(())
            }
            None => Err(E::custom(EXPANDED)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        self.spend(1)?;
        // .inf and .nan have no JSON form.
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.spend(1 + s.len())?;
        Ok(Value::String(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.spend(1 + s.len())?;
        Ok(Value::String(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.spend(1)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend(1)?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend(1)?;
        let mut out = Map::new();
        while let Some(k) = map.next_key_seed(Key(self))? {
            let v = map.next_value_seed(self)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key as text: YAML allows `200:` (a number) where JSON has
/// `"200":`.
struct Key<'b>(Bounded<'b>);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        self.0.spend(1 + s.len())?;
        Ok(s.to_string())
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<String, E> {
        self.0.spend(1 + s.len())?;
        Ok(s)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<String, E> {
        self.visit_string(b.to_string())
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<String, E> {
        self.visit_string(n.to_string())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<String, E> {
        self.visit_string(n.to_string())
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<String, E> {
        self.visit_string(n.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        self.visit_string("null".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_numbers_as_keys_and_values() {
        let v =
            yaml("responses:\n  200:\n    description: ok\n  n: 3\n  f: 1.5\n  b: true\n  z: ~\n")
                .unwrap();
        assert_eq!(v["responses"]["200"]["description"], "ok");
        assert_eq!(v["responses"]["n"], 3);
        assert_eq!(v["responses"]["f"], 1.5);
        assert_eq!(v["responses"]["b"], true);
        assert!(v["responses"]["z"].is_null());
    }

    #[test]
    fn boms_and_encodings() {
        assert_eq!(
            text(b"\xEF\xBB\xBFopenapi: 3.0.0").unwrap(),
            "openapi: 3.0.0"
        );
        assert!(text(b"\xFF\xFEo\0").is_err());
        assert!(text(b"a\xC3").is_err());
        let (v, syntax) = parse("\u{FEFF}{\"a\": 1}", false).unwrap();
        assert_eq!((v["a"].as_i64(), syntax), (Some(1), Syntax::Json));
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let e = parse("a: [1, 2\nb: c\n", false).unwrap_err();
        assert!(e.message.contains("line"), "{}", e.message);
        let e = parse("{\"a\": }", false).unwrap_err();
        assert!(e.message.contains("line 1, column"), "{}", e.message);
        assert!(parse("openapi: 3.0.0", true).is_err());
    }

    #[test]
    fn alias_bombs_stop() {
        let mut doc = String::from("a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
        for i in 1..10 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = yaml(&doc).unwrap_err();
        assert!(
            e.message.contains("expands") || e.message.contains("repetition"),
            "{}",
            e.message
        );
        // Quadratic: one big anchored list aliased many times.
        let mut doc = String::from("big: &b [");
        doc.push_str(&"1,".repeat(20_000));
        doc.push_str("1]\nuses: [");
        doc.push_str(&"*b,".repeat(20_000));
        doc.push_str("*b]\n");
        let e = yaml(&doc).unwrap_err();
        assert!(
            e.message.contains("expands") || e.message.contains("repetition"),
            "{}",
            e.message
        );
        // A few aliases are fine.
        let v = yaml("x: &x {a: 1}\ny: *x\nz: *x\n").unwrap();
        assert_eq!(v["z"]["a"], 1);
    }
}

//! The allowed .NET surface: types, members, operators, conversions.
//!
//! Each family lives in its own file and declares the member names it
//! implements next to the code that implements them; the binder checks
//! expressions against exactly those lists, so a member the evaluator lacks
//! is a compile-time error, never a runtime surprise.
//!
//! - [`strings`]: `String` instance and static members, `StringBuilder`.
//! - [`statics`]: numeric types, `Math`, `Convert`, `Encoding`, `Guid`,
//!   `DateTime`/`DateTimeOffset`/`TimeSpan`, `Uri`, `WebUtility`,
//!   `BitConverter`, `Random`, `Regex`, hashing, enums.
//! - [`json`]: Newtonsoft `JToken` family and `JsonConvert`.
//! - [`linq`]: `Enumerable` methods over every sequence, lists,
//!   dictionaries and sets.
//! - [`host`]: the `context` object model.
//! - [`natives`]: members of library objects (Regex matches, Jwt, Uri, ...).
//! - [`crypto`]: APIM's `byte[]` `Encrypt`/`Decrypt` extension methods.
//! - [`xml`]: `System.Xml.Linq` (`XDocument`, `XElement`, `XAttribute`,
//!   `XName`, `XNamespace`).

pub mod crypto;
pub mod host;
pub mod json;
pub mod linq;
pub mod natives;
pub mod statics;
pub mod stored;
pub mod strings;
pub mod xml;

use super::ast::TypeRef;
use super::eval::{EResult, EvalError, Interp};
use super::time::{DateTime, TimeSpan};
use super::value::{format_double, JNode, ListKind, Shared, Value};

pub use natives::Native;

/// Namespaces that may prefix a type name (`System.Text.Encoding`).
const NAMESPACES: &[&str] = &[
    "System.",
    "System.Text.",
    "System.Text.RegularExpressions.",
    "System.Linq.",
    "System.Collections.Generic.",
    "System.Security.Cryptography.",
    "System.Net.",
    "System.Xml.Linq.",
    "Newtonsoft.Json.",
    "Newtonsoft.Json.Linq.",
];

/// Type names (and C# keywords) → canonical names.
const TYPES: &[(&str, &str)] = &[
    ("string", "String"),
    ("String", "String"),
    ("int", "Int32"),
    ("Int32", "Int32"),
    ("long", "Int64"),
    ("Int64", "Int64"),
    ("short", "Int16"),
    ("Int16", "Int16"),
    ("uint", "UInt32"),
    ("UInt32", "UInt32"),
    ("ulong", "UInt64"),
    ("UInt64", "UInt64"),
    ("byte", "Byte"),
    ("Byte", "Byte"),
    ("double", "Double"),
    ("Double", "Double"),
    ("float", "Single"),
    ("Single", "Single"),
    ("decimal", "Decimal"),
    ("Decimal", "Decimal"),
    ("bool", "Boolean"),
    ("Boolean", "Boolean"),
    ("char", "Char"),
    ("Char", "Char"),
    ("object", "Object"),
    ("Object", "Object"),
    ("var", "Object"),
    ("Math", "Math"),
    ("Convert", "Convert"),
    ("DateTime", "DateTime"),
    ("DateTimeOffset", "DateTimeOffset"),
    ("TimeSpan", "TimeSpan"),
    ("DateTimeKind", "DateTimeKind"),
    ("Guid", "Guid"),
    ("Encoding", "Encoding"),
    ("StringComparison", "StringComparison"),
    ("StringComparer", "StringComparer"),
    ("StringSplitOptions", "StringSplitOptions"),
    ("StringBuilder", "StringBuilder"),
    ("Regex", "Regex"),
    ("RegexOptions", "RegexOptions"),
    ("Match", "Match"),
    ("Uri", "Uri"),
    ("UriPartial", "UriPartial"),
    ("WebUtility", "WebUtility"),
    ("BitConverter", "BitConverter"),
    ("Random", "Random"),
    ("Array", "Array"),
    ("Enumerable", "Enumerable"),
    ("List", "List"),
    ("IList", "List"),
    ("IEnumerable", "List"),
    ("ICollection", "List"),
    ("Dictionary", "Dictionary"),
    ("IDictionary", "Dictionary"),
    ("IReadOnlyDictionary", "Dictionary"),
    ("HashSet", "HashSet"),
    ("KeyValuePair", "KeyValuePair"),
    ("Exception", "Exception"),
    ("Func", "Func"),
    ("Action", "Action"),
    ("JToken", "JToken"),
    ("JObject", "JObject"),
    ("JArray", "JArray"),
    ("JValue", "JValue"),
    ("JProperty", "JProperty"),
    ("JTokenType", "JTokenType"),
    ("JsonConvert", "JsonConvert"),
    ("Formatting", "Formatting"),
    ("HMACSHA1", "HMACSHA1"),
    ("HMACSHA256", "HMACSHA256"),
    ("HMACSHA384", "HMACSHA384"),
    ("HMACSHA512", "HMACSHA512"),
    ("SHA1", "SHA1"),
    ("SHA256", "SHA256"),
    ("SHA384", "SHA384"),
    ("SHA512", "SHA512"),
    ("Jwt", "Jwt"),
    ("BasicAuthCredentials", "BasicAuthCredentials"),
    ("IResponse", "IResponse"),
    ("IRequest", "IRequest"),
    ("IMessageBody", "IMessageBody"),
    ("IUrl", "IUrl"),
    ("XDocument", "XDocument"),
    ("XElement", "XElement"),
    ("XAttribute", "XAttribute"),
    ("XName", "XName"),
    ("XNamespace", "XNamespace"),
    ("XNode", "XNode"),
    ("LoadOptions", "LoadOptions"),
    ("SaveOptions", "SaveOptions"),
];

/// Resolves a (possibly namespace-qualified) type name.
pub fn resolve_type(path: &str) -> Option<&'static str> {
    let mut name = path;
    for ns in NAMESPACES {
        if let Some(rest) = path.strip_prefix(ns) {
            if !rest.contains('.') {
                name = rest;
            }
        }
    }
    TYPES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// Every member name that some value's type provides (for members on
/// values whose type is only known at run time).
pub fn instance_members() -> impl Iterator<Item = &'static str> {
    strings::INSTANCE
        .iter()
        .chain(statics::INSTANCE)
        .chain(json::INSTANCE)
        .chain(linq::INSTANCE)
        .chain(natives::INSTANCE)
        .chain(crypto::INSTANCE)
        .chain(xml::INSTANCE)
        .chain(COMMON)
        .copied()
        .chain(host::all_members())
}

/// Members every object has.
pub const COMMON: &[&str] = &["ToString", "Equals", "GetHashCode", "GetType"];

/// The static members of a type (`None`: not a type with statics).
pub fn static_members(ty: &str) -> Option<&'static [&'static str]> {
    match ty {
        "String" => Some(strings::STATIC),
        "JObject" | "JArray" | "JToken" | "JValue" | "JsonConvert" | "JTokenType"
        | "Formatting" => json::statics(ty),
        "Enumerable" => Some(linq::STATIC),
        "XDocument" | "XElement" | "XAttribute" | "XName" | "XNamespace" | "XNode" => {
            xml::statics(ty)
        }
        _ => statics::statics(ty),
    }
}

// === conversions ===

/// A boolean; JSON values convert as Newtonsoft's `(bool)JToken` does
/// (`Convert.ToBoolean`: strings parsed, numbers non-zero).
pub fn to_bool(v: &Value) -> EResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Json(j) => match &*j.lock() {
            JNode::Bool(b) => Ok(*b),
            JNode::Int(i) => Ok(*i != 0),
            JNode::Float(f) => Ok(*f != 0.0),
            JNode::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(EvalError::format(format!(
                    "String '{s}' was not recognized as a valid Boolean."
                ))),
            },
            JNode::Null => Err(EvalError::argument("Can not convert Null to Boolean.")),
            JNode::Object(_) => Err(EvalError::argument("Can not convert Object to Boolean.")),
            JNode::Array(_) => Err(EvalError::argument("Can not convert Array to Boolean.")),
        },
        Value::Null => Err(EvalError::null_ref()),
        other => Err(EvalError::invalid_cast(other.type_name(), "Boolean")),
    }
}

pub fn to_i64(v: &Value) -> EResult<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) => Ok(*f as i64),
        Value::Char(c) => Ok(*c as i64),
        Value::Json(j) => match &*j.lock() {
            JNode::Int(i) => Ok(*i),
            JNode::Float(f) => Ok(*f as i64),
            JNode::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| EvalError::format("Input string was not in a correct format.")),
            _ => Err(EvalError::invalid_cast("JToken", "Int32")),
        },
        Value::Null => Err(EvalError::null_ref()),
        other => Err(EvalError::invalid_cast(other.type_name(), "Int32")),
    }
}

pub fn to_f64(v: &Value) -> EResult<f64> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Char(c) => Ok(*c as u32 as f64),
        Value::Json(j) => match &*j.lock() {
            JNode::Int(i) => Ok(*i as f64),
            JNode::Float(f) => Ok(*f),
            JNode::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| EvalError::format("Input string was not in a correct format.")),
            _ => Err(EvalError::invalid_cast("JToken", "Double")),
        },
        Value::Null => Err(EvalError::null_ref()),
        other => Err(EvalError::invalid_cast(other.type_name(), "Double")),
    }
}

/// A string argument (`null` stays `None`).
pub fn opt_str(v: &Value) -> EResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::Str(s) => Ok(Some(s.to_string())),
        Value::Char(c) => Ok(Some(c.to_string())),
        Value::Json(j) => match &*j.lock() {
            JNode::Str(s) => Ok(Some(s.clone())),
            JNode::Null => Ok(None),
            _ => Err(EvalError::invalid_cast("JToken", "String")),
        },
        other => Err(EvalError::invalid_cast(other.type_name(), "String")),
    }
}

/// A required string argument.
pub fn req_str(v: &Value, what: &str) -> EResult<String> {
    opt_str(v)?.ok_or_else(|| {
        EvalError::new(
            "ArgumentNullException",
            format!("Value cannot be null. (Parameter '{what}')"),
        )
    })
}

pub fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or(&Value::Null)
}

/// Whether a `StringComparison`/`bool ignoreCase` argument asks for a
/// case-insensitive comparison.
pub fn ignore_case(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Enum(_, m)) => m.ends_with("IgnoreCase"),
        Some(Value::Bool(b)) => *b,
        _ => false,
    }
}

/// Values → `Vec<Value>` for anything enumerable.
pub fn iterate(it: &mut Interp, v: &Value) -> EResult<Vec<Value>> {
    let items = match v {
        Value::List(items, _) => items.lock().clone(),
        Value::Dict(entries) => entries
            .lock()
            .iter()
            .map(|(k, v)| Value::Pair(std::sync::Arc::new((k.clone(), v.clone()))))
            .collect(),
        Value::Str(s) => s.chars().map(Value::Char).collect(),
        Value::Bytes(b) => b.lock().iter().map(|x| Value::Int(*x as i64)).collect(),
        Value::Json(j) => json::children(j),
        Value::Host(h) => host::iterate(it, h)?,
        Value::Native(n) if stored::owns(n) => stored::iterate(n)?,
        Value::Native(n) => natives::iterate(n)?,
        Value::Null => return Err(EvalError::null_ref()),
        other => {
            return Err(EvalError::invalid_op(format!(
                "a {} cannot be enumerated",
                other.type_name()
            )))
        }
    };
    it.charge(items.len() * 16)?;
    Ok(items)
}

// === operators ===

fn numeric(v: &Value) -> Option<Value> {
    match v {
        Value::Int(_) | Value::Float(_) => Some(v.clone()),
        Value::Char(c) => Some(Value::Int(*c as i64)),
        Value::Enum("RegexOptions", m) => Some(Value::Int(natives::regex_option_bits(m))),
        Value::Json(j) => match &*j.lock() {
            JNode::Int(i) => Some(Value::Int(*i)),
            JNode::Float(f) => Some(Value::Float(*f)),
            _ => None,
        },
        _ => None,
    }
}

/// Arithmetic on numbers, dates and spans.
pub fn arith(op: &str, a: &Value, b: &Value) -> EResult<Value> {
    match (a, b) {
        (Value::DateTime(d), Value::TimeSpan(t)) if op == "+" || op == "-" => {
            let delta = if op == "+" { t.0 } else { -t.0 };
            return d.add_ticks(delta).map(Value::DateTime).ok_or_else(|| {
                EvalError::out_of_range(
                    "The added or subtracted value results in an un-representable DateTime.",
                )
            });
        }
        (Value::DateTimeOffset(d, o), Value::TimeSpan(t)) if op == "+" || op == "-" => {
            let delta = if op == "+" { t.0 } else { -t.0 };
            return d
                .add_ticks(delta)
                .map(|d| Value::DateTimeOffset(d, *o))
                .ok_or_else(|| EvalError::out_of_range("The result is out of range."));
        }
        (Value::DateTime(x), Value::DateTime(y)) if op == "-" => {
            return Ok(Value::TimeSpan(TimeSpan(x.ticks - y.ticks)))
        }
        (Value::DateTimeOffset(x, _), Value::DateTimeOffset(y, _)) if op == "-" => {
            return Ok(Value::TimeSpan(TimeSpan(x.ticks - y.ticks)))
        }
        (Value::TimeSpan(x), Value::TimeSpan(y)) if op == "+" || op == "-" => {
            return Ok(Value::TimeSpan(TimeSpan(if op == "+" {
                x.0.wrapping_add(y.0)
            } else {
                x.0.wrapping_sub(y.0)
            })))
        }
        _ => {}
    }
    let (Some(x), Some(y)) = (numeric(a), numeric(b)) else {
        if a.is_null() || b.is_null() {
            return Ok(Value::Null); // lifted operators: null in, null out
        }
        return Err(EvalError::invalid_op(format!(
            "operator '{op}' cannot be applied to a {} and a {}",
            a.type_name(),
            b.type_name()
        )));
    };
    Ok(match (x, y) {
        (Value::Int(x), Value::Int(y)) => match op {
            "+" => Value::Int(x.wrapping_add(y)),
            "-" => Value::Int(x.wrapping_sub(y)),
            "*" => Value::Int(x.wrapping_mul(y)),
            "/" | "%" if y == 0 => {
                return Err(EvalError::new(
                    "DivideByZeroException",
                    "Attempted to divide by zero.",
                ))
            }
            "/" => Value::Int(x.wrapping_div(y)),
            "%" => Value::Int(x.wrapping_rem(y)),
            "&" => Value::Int(x & y),
            "|" => Value::Int(x | y),
            "^" => Value::Int(x ^ y),
            "<<" => Value::Int(x.wrapping_shl(y as u32)),
            ">>" => Value::Int(x.wrapping_shr(y as u32)),
            _ => return Err(EvalError::invalid_op(format!("unknown operator '{op}'"))),
        },
        (x, y) => {
            let (x, y) = (to_f64(&x)?, to_f64(&y)?);
            Value::Float(match op {
                "+" => x + y,
                "-" => x - y,
                "*" => x * y,
                "/" => x / y,
                "%" => x % y,
                _ => {
                    return Err(EvalError::invalid_op(format!(
                        "operator '{op}' cannot be applied to doubles"
                    )))
                }
            })
        }
    })
}

/// A JSON scalar as a plain value (for comparisons).
fn scalar(v: &Value) -> Value {
    if let Value::Json(j) = v {
        match &*j.lock() {
            JNode::Str(s) => return Value::str(s.as_str()),
            JNode::Int(i) => return Value::Int(*i),
            JNode::Float(f) => return Value::Float(*f),
            JNode::Bool(b) => return Value::Bool(*b),
            JNode::Null => return Value::Null,
            _ => {}
        }
    }
    v.clone()
}

/// C# `==` (strings ordinal; JSON values compare by value; reference
/// types by reference).
pub fn equals(a: &Value, b: &Value) -> bool {
    let (a, b) = (scalar(a), scalar(b));
    match (&a, &b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Char(x), Value::Char(y)) => x == y,
        (Value::DateTime(x), Value::DateTime(y)) => x.ticks == y.ticks,
        (Value::DateTimeOffset(x, _), Value::DateTimeOffset(y, _)) => x.ticks == y.ticks,
        (Value::TimeSpan(x), Value::TimeSpan(y)) => x == y,
        (Value::Guid(x), Value::Guid(y)) => x == y,
        (Value::Enum(t1, m1), Value::Enum(t2, m2)) => t1 == t2 && m1 == m2,
        (Value::Json(x), Value::Json(y)) => x.ptr_eq(y),
        (Value::List(x, _), Value::List(y, _)) => x.ptr_eq(y),
        (Value::Dict(x), Value::Dict(y)) => x.ptr_eq(y),
        (Value::Bytes(x), Value::Bytes(y)) => x.ptr_eq(y),
        (Value::Pair(x), Value::Pair(y)) => equals(&x.0, &y.0) && equals(&x.1, &y.1),
        (Value::Host(x), Value::Host(y)) => x == y,
        (Value::Native(x), Value::Native(y)) => {
            std::sync::Arc::ptr_eq(x, y)
                || matches!((xml::of(&a), xml::of(&b)), (Some(p), Some(q)) if p.same(q))
        }
        (Value::Native(_), Value::Str(s)) | (Value::Str(s), Value::Native(_)) => {
            let x = xml::of(&a).or_else(|| xml::of(&b));
            x.is_some_and(|x| xml::equals_str(x, s))
        }
        _ => match (numeric(&a), numeric(&b)) {
            (Some(Value::Int(x)), Some(Value::Int(y))) => x == y,
            (Some(x), Some(y)) => to_f64(&x).ok() == to_f64(&y).ok(),
            _ => false,
        },
    }
}

/// Orders two values (`<`, `OrderBy`, `Max`); `None` when not comparable.
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    let (a, b) = (scalar(a), scalar(b));
    match (&a, &b) {
        (Value::Str(x), Value::Str(y)) => Some(strings::culture_compare(x, y, false)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.ticks.cmp(&y.ticks)),
        (Value::DateTimeOffset(x, _), Value::DateTimeOffset(y, _)) => Some(x.ticks.cmp(&y.ticks)),
        (Value::TimeSpan(x), Value::TimeSpan(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Guid(x), Value::Guid(y)) => Some(x.cmp(y)),
        _ => match (numeric(&a), numeric(&b)) {
            (Some(Value::Int(x)), Some(Value::Int(y))) => Some(x.cmp(&y)),
            (Some(x), Some(y)) => to_f64(&x).ok()?.partial_cmp(&to_f64(&y).ok()?),
            _ => None,
        },
    }
}

/// Binary operators other than `&& || ??`.
pub fn binary(op: &str, a: &Value, b: &Value) -> EResult<Value> {
    match op {
        "==" => Ok(Value::Bool(equals(a, b))),
        "!=" => Ok(Value::Bool(!equals(a, b))),
        "<" | ">" | "<=" | ">=" => {
            if a.is_null() || b.is_null() {
                return Ok(Value::Bool(false));
            }
            let ord = compare(a, b).ok_or_else(|| {
                EvalError::invalid_op(format!(
                    "operator '{op}' cannot compare a {} with a {}",
                    a.type_name(),
                    b.type_name()
                ))
            })?;
            use std::cmp::Ordering::*;
            Ok(Value::Bool(match op {
                "<" => ord == Less,
                ">" => ord == Greater,
                "<=" => ord != Greater,
                _ => ord != Less,
            }))
        }
        "+" if xml::of(a).is_some() => match xml::namespace_plus(a, b)? {
            Some(name) => Ok(name),
            None => {
                let mut s = a.to_display();
                s.push_str(&b.to_display());
                Ok(Value::str(s))
            }
        },
        "+" if is_stringy(a) || is_stringy(b) => {
            let mut s = a.to_display();
            s.push_str(&b.to_display());
            Ok(Value::str(s))
        }
        "&" | "|" | "^" if matches!((a, b), (Value::Bool(_), Value::Bool(_))) => {
            let (x, y) = (to_bool(a)?, to_bool(b)?);
            Ok(Value::Bool(match op {
                "&" => x & y,
                "|" => x | y,
                _ => x ^ y,
            }))
        }
        _ => arith(op, a, b),
    }
}

fn is_stringy(v: &Value) -> bool {
    match v {
        Value::Str(_) => true,
        Value::Json(j) => matches!(&*j.lock(), JNode::Str(_)),
        _ => false,
    }
}

// === types: casts, is/as, defaults ===

/// The canonical name of a written type (generic args and arrays ignored).
fn canonical(t: &TypeRef) -> &str {
    if t.array_rank > 0 {
        return if matches!(resolve_type(&t.name), Some("Byte")) {
            "Byte[]"
        } else {
            "Array"
        };
    }
    resolve_type(&t.name).unwrap_or(t.name.as_str())
}

pub fn default_of(t: &TypeRef) -> Value {
    if t.nullable || t.array_rank > 0 {
        return Value::Null;
    }
    match canonical(t) {
        "Int32" | "Int64" | "Int16" | "UInt32" | "UInt64" | "Byte" => Value::Int(0),
        "Double" | "Single" | "Decimal" => Value::Float(0.0),
        "Boolean" => Value::Bool(false),
        "Char" => Value::Char('\0'),
        "DateTime" => Value::DateTime(DateTime {
            ticks: 0,
            kind: super::time::Kind::Unspecified,
        }),
        "TimeSpan" => Value::TimeSpan(TimeSpan(0)),
        "Guid" => Value::Guid(0),
        _ => Value::Null,
    }
}

/// `x is T`.
pub fn is_type(v: &Value, t: &TypeRef) -> bool {
    let name = canonical(t);
    match (v, name) {
        (Value::Null, _) => false,
        (_, "Object") => true,
        (Value::Str(_), "String") => true,
        (Value::Int(_), "Int32" | "Int64" | "Int16") => true,
        (Value::Float(_), "Double" | "Single" | "Decimal") => true,
        (Value::Bool(_), "Boolean") => true,
        (Value::Char(_), "Char") => true,
        (Value::DateTime(_), "DateTime") => true,
        (Value::DateTimeOffset(..), "DateTimeOffset") => true,
        (Value::TimeSpan(_), "TimeSpan") => true,
        (Value::Guid(_), "Guid") => true,
        (Value::Bytes(_), "Byte[]") => true,
        (Value::List(_, ListKind::Array), "Array") => true,
        (Value::List(_, ListKind::List), "List") => true,
        (Value::List(_, ListKind::HashSet), "HashSet") => true,
        (Value::Dict(_), "Dictionary") => true,
        (Value::JProperty(..), "JProperty" | "JToken") => true,
        (Value::Json(j), ty) => {
            let node = j.lock();
            match ty {
                "JToken" => true,
                "JObject" => matches!(&*node, JNode::Object(_)),
                "JArray" => matches!(&*node, JNode::Array(_)),
                "JValue" => !matches!(&*node, JNode::Object(_) | JNode::Array(_)),
                _ => false,
            }
        }
        (Value::Host(h), ty) => h.type_name().trim_start_matches('I') == ty.trim_start_matches('I'),
        (Value::Native(n), ty) => match &**n {
            Native::Xml(x) => x.is_a(ty),
            _ => n.type_name() == ty,
        },
        _ => false,
    }
}

/// `(T)x`.
pub fn cast(it: &mut Interp, v: Value, t: &TypeRef) -> EResult<Value> {
    let name = canonical(t);
    if v.is_null() {
        return match name {
            "Int32" | "Int64" | "Double" | "Boolean" | "DateTime" | "Guid" | "Char" | "Single"
            | "Decimal" | "TimeSpan"
                if !t.nullable =>
            {
                Err(EvalError::null_ref())
            }
            _ => Ok(Value::Null),
        };
    }
    if let Some(x) = xml::of(&v) {
        if let Some(converted) = xml::cast(x, name)? {
            return Ok(converted);
        }
    }
    match name {
        "Object" => Ok(v),
        "String" => match &v {
            Value::Str(_) => Ok(v),
            Value::Json(j) => match &*j.lock() {
                JNode::Str(s) => Ok(Value::str(s.as_str())),
                JNode::Int(i) => Ok(Value::str(i.to_string())),
                JNode::Float(f) => Ok(Value::str(format_double(*f))),
                JNode::Bool(b) => Ok(Value::str(if *b { "True" } else { "False" })),
                JNode::Null => Ok(Value::Null),
                JNode::Object(_) => Err(EvalError::argument("Can not convert Object to String.")),
                JNode::Array(_) => Err(EvalError::argument("Can not convert Array to String.")),
            },
            other => Err(EvalError::invalid_cast(other.type_name(), "String")),
        },
        "Int32" | "Int64" | "Int16" | "UInt32" | "UInt64" | "Byte" => match &v {
            Value::Str(_) => Err(EvalError::invalid_cast("String", name)),
            Value::Enum(..) => Ok(Value::Int(statics::enum_value(&v))),
            _ => {
                let i = to_i64(&v)?;
                Ok(Value::Int(match name {
                    "Int32" => i as i32 as i64,
                    "Int16" => i as i16 as i64,
                    "Byte" => i as u8 as i64,
                    "UInt32" => i as u32 as i64,
                    _ => i,
                }))
            }
        },
        "Double" | "Single" | "Decimal" => match &v {
            Value::Str(_) => Err(EvalError::invalid_cast("String", name)),
            _ => Ok(Value::Float(to_f64(&v)?)),
        },
        "Char" => match &v {
            Value::Char(_) => Ok(v),
            Value::Int(i) => char::from_u32(*i as u32)
                .map(Value::Char)
                .ok_or_else(|| EvalError::invalid_cast("Int32", "Char")),
            other => Err(EvalError::invalid_cast(other.type_name(), "Char")),
        },
        "Boolean" => Ok(Value::Bool(to_bool(&v)?)),
        "DateTime" => match &v {
            Value::DateTime(_) => Ok(v),
            Value::Json(j) => {
                let s = match &*j.lock() {
                    JNode::Str(s) => s.clone(),
                    _ => return Err(EvalError::invalid_cast("JToken", "DateTime")),
                };
                DateTime::parse(&s)
                    .map(|(d, _)| Value::DateTime(d))
                    .ok_or_else(|| {
                        EvalError::format(format!(
                            "String '{s}' was not recognized as a valid DateTime."
                        ))
                    })
            }
            other => Err(EvalError::invalid_cast(other.type_name(), "DateTime")),
        },
        "JToken" | "JObject" | "JArray" | "JValue" | "JProperty" => {
            if is_type(&v, t) {
                Ok(v)
            } else {
                Err(EvalError::invalid_cast(v.type_name(), name))
            }
        }
        _ => {
            if is_type(&v, t) || !TYPES.iter().any(|(_, c)| *c == name) {
                // Interface types of the context model and friends.
                Ok(v)
            } else {
                let _ = it;
                Err(EvalError::invalid_cast(v.type_name(), name))
            }
        }
    }
}

/// What `T x = value;` does: numeric widening and the implicit conversions
/// users rely on (`JToken x = "text"`).
pub fn implicit_convert(v: Value, t: &TypeRef) -> EResult<Value> {
    match (canonical(t), &v) {
        ("Double" | "Single" | "Decimal", Value::Int(i)) => Ok(Value::Float(*i as f64)),
        ("JToken" | "JValue", Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_)) => {
            Ok(Value::Json(super::value::to_json(&v)))
        }
        (ty @ ("XName" | "XNamespace"), Value::Str(_)) => Ok(xml::implicit(ty, &v)?.unwrap_or(v)),
        _ => Ok(v),
    }
}

// === exceptions ===

/// `throw x;`
pub fn exception_of(v: &Value) -> EvalError {
    match v {
        Value::Native(n) => match &**n {
            Native::Exception(kind, msg) => {
                let kind: &'static str = statics::EXCEPTIONS
                    .iter()
                    .find(|k| **k == kind.as_str())
                    .copied()
                    .unwrap_or("Exception");
                EvalError::new(kind, msg.clone())
            }
            _ => EvalError::invalid_op("only exceptions can be thrown"),
        },
        _ => EvalError::invalid_op("only exceptions can be thrown"),
    }
}

pub fn exception_matches(catch_type: &str, kind: &str) -> bool {
    let t = catch_type.rsplit('.').next().unwrap_or(catch_type);
    t == "Exception" || t == kind
}

pub fn exception_value(e: &EvalError) -> Value {
    Value::Native(std::sync::Arc::new(Native::Exception(
        e.kind.to_string(),
        e.message.clone(),
    )))
}

// === formatting ===

/// `ToString(format)` and interpolation holes `{x:format}`.
pub fn format_value(v: &Value, format: &str) -> EResult<String> {
    Ok(match v {
        Value::DateTime(d) => d.format(format),
        Value::DateTimeOffset(d, o) => {
            let local = DateTime {
                ticks: d.ticks + *o as i64 * 60 * super::time::TICKS_PER_SECOND,
                kind: super::time::Kind::Unspecified,
            };
            local.format_with_offset(format, Some(*o))
        }
        Value::Int(_) | Value::Float(_) => statics::format_number(v, format)?,
        Value::Guid(g) => super::value::format_guid(*g, format.chars().next().unwrap_or('D')),
        Value::TimeSpan(t) => statics::format_timespan(*t, format),
        other => other.to_display(),
    })
}

/// `{x,10}` / `{x,-10}` alignment.
pub fn align(text: &str, align: Option<&str>) -> String {
    let Some(w) = align.and_then(|a| a.trim().parse::<i64>().ok()) else {
        return text.to_string();
    };
    let n = text.chars().count() as i64;
    if n >= w.abs() {
        return text.to_string();
    }
    let pad = " ".repeat((w.abs() - n) as usize);
    if w > 0 {
        format!("{pad}{text}")
    } else {
        format!("{text}{pad}")
    }
}

// === dispatch ===

/// `Type.Member` (static properties and fields).
pub fn static_get(it: &mut Interp, ty: &str, name: &str) -> EResult<Value> {
    match ty {
        "String" => strings::static_get(name),
        "JObject" | "JArray" | "JToken" | "JValue" | "JsonConvert" | "JTokenType"
        | "Formatting" => json::static_get(ty, name),
        "XNamespace" => xml::static_get(ty, name),
        _ => statics::static_get(it, ty, name),
    }
}

/// `Type.Method(args)`; returns the result and the (possibly `out`-written) arguments.
pub fn call_static(
    it: &mut Interp,
    ty: &str,
    name: &str,
    targs: &[TypeRef],
    mut args: Vec<Value>,
) -> EResult<(Value, Vec<Value>)> {
    let r = match ty {
        "String" => strings::call_static(it, name, &args)?,
        "JObject" | "JArray" | "JToken" | "JValue" | "JsonConvert" => {
            json::call_static(it, ty, name, targs, &args)?
        }
        "Enumerable" => linq::call_static(it, name, &args)?,
        "XDocument" | "XElement" | "XName" | "XNamespace" => xml::call_static(it, ty, name, &args)?,
        _ => statics::call_static(it, ty, name, targs, &mut args)?,
    };
    Ok((r, args))
}

/// `new T(args)`.
pub fn construct(it: &mut Interp, t: &TypeRef, args: Vec<Value>) -> EResult<Value> {
    let name = canonical(t);
    match name {
        "JObject" | "JArray" | "JValue" | "JProperty" => json::construct(it, name, args),
        "StringBuilder" => strings::new_builder(&args),
        "String" => strings::new_string(it, &args),
        "List" | "HashSet" | "Dictionary" | "Array" => linq::construct(it, name, &args),
        _ => statics::construct(it, name, &args),
    }
}

/// `value.Member` (properties).
pub fn get_member(it: &mut Interp, v: &Value, name: &str) -> EResult<Value> {
    match v {
        Value::Str(s) => strings::get(s, name),
        Value::Json(_) | Value::JProperty(..) => json::get(it, v, name),
        Value::List(..) | Value::Dict(_) | Value::Pair(_) | Value::Bytes(_) => linq::get(v, name),
        Value::Host(h) => host::get(it, h, name),
        Value::Native(n) if stored::owns(n) => stored::get(n, name),
        Value::Native(n) => natives::get(it, n, name),
        _ => statics::get(v, name),
    }
}

pub fn set_member(_it: &mut Interp, v: &Value, name: &str, value: Value) -> EResult<()> {
    match v {
        Value::Dict(entries) => {
            let mut entries = entries.lock();
            match entries
                .iter_mut()
                .find(|(k, _)| matches!(k, Value::Str(s) if &**s == name))
            {
                Some(slot) => slot.1 = value,
                None => entries.push((Value::str(name), value)),
            }
            Ok(())
        }
        Value::Json(_) => json::index_set(v, &[Value::str(name)], value),
        other => Err(EvalError::invalid_op(format!(
            "property '{name}' of a {} cannot be assigned",
            other.type_name()
        ))),
    }
}

/// `value.Method(args)`.
pub fn call_method(
    it: &mut Interp,
    v: &Value,
    name: &str,
    targs: &[TypeRef],
    args: Vec<Value>,
) -> EResult<Value> {
    call_method_out(it, v, name, targs, args).map(|(r, _)| r)
}

/// `value.Method(args)` with `out` arguments written back into `args`.
pub fn call_method_out(
    it: &mut Interp,
    v: &Value,
    name: &str,
    targs: &[TypeRef],
    mut args: Vec<Value>,
) -> EResult<(Value, Vec<Value>)> {
    let r = match (v, name) {
        (_, "Equals") if args.len() == 1 && !matches!(v, Value::Str(_)) => {
            Value::Bool(equals(v, &args[0]))
        }
        (_, "GetHashCode") if args.is_empty() => Value::Int(statics::hash_code(v)),
        (_, "GetType") if args.is_empty() => Value::str(v.type_name()),
        (Value::Str(s), _) => strings::call(it, s, name, &mut args)?,
        (Value::Json(_), "TryGetValue") => json::try_get(v, &mut args)?,
        (Value::Json(_) | Value::JProperty(..), _) => json::call(it, v, name, targs, &args)?,
        (Value::Host(h), "TryGetValue") => host::try_get(it, h, &mut args)?,
        (Value::Host(h), _) => host::call(it, h, name, targs, &args)?,
        (Value::Native(n), _) if stored::owns(n) => stored::call(it, n, name, targs, &mut args)?,
        (Value::Native(n), _) => natives::call(it, n, name, &mut args)?,
        (Value::Bytes(_) | Value::List(..), "Encrypt" | "Decrypt") => {
            crypto::call(it, v, name, &args)?
        }
        (Value::List(..) | Value::Dict(_) | Value::Bytes(_) | Value::Pair(_), _) => {
            linq::call(it, v, name, &mut args)?
        }
        (_, "ToString") => match args.first() {
            Some(f) => {
                let f = req_str(f, "format")?;
                Value::str(format_value(v, &f)?)
            }
            None => Value::str(v.to_display()),
        },
        _ => statics::call(it, v, name, &mut args)?,
    };
    if let Value::Str(s) = &r {
        it.charge(s.len())?;
    }
    Ok((r, args))
}

/// `value[index]`.
pub fn index_get(it: &mut Interp, v: &Value, idx: &[Value]) -> EResult<Value> {
    let first = arg(idx, 0);
    match v {
        Value::Str(s) => {
            let i = to_i64(first)?;
            s.chars()
                .nth(usize::try_from(i).unwrap_or(usize::MAX))
                .map(Value::Char)
                .ok_or_else(EvalError::index_out_of_range)
        }
        Value::Json(_) => json::index_get(v, first),
        Value::Host(h) => host::index(it, h, first),
        Value::Native(n) if stored::owns(n) => stored::index(n, first),
        Value::Native(n) => natives::index(n, first),
        _ => linq::index_get(v, first),
    }
}

/// `value[index] = x`.
pub fn index_set(_it: &mut Interp, v: &Value, idx: &[Value], x: Value) -> EResult<()> {
    match v {
        Value::Json(_) => json::index_set(v, idx, x),
        _ => linq::index_set(v, arg(idx, 0), x),
    }
}

/// Builds a fresh list value.
pub fn list_of(items: Vec<Value>) -> Value {
    Value::List(Shared::new(items), ListKind::List)
}

/// Names of every allowed type (for hints).
pub fn known_type_names() -> Vec<&'static str> {
    TYPES.iter().map(|(n, _)| *n).collect()
}

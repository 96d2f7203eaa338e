//! Runtime values of the expression language and the C# semantics users
//! notice: `ToString()` (`True`/`False`, shortest round-trip doubles,
//! `M/d/yyyy h:mm:ss tt` dates), ordinal string equality, reference
//! semantics for JSON tokens and collections.
//!
//! Values are `Send + Sync` (shared parts behind `Arc<Mutex<_>>`) so that
//! `context.Variables` can live across the gateway's awaits; no lock is ever
//! held outside a single library call.

use super::context::Host;
use super::time::{DateTime, TimeSpan};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

/// A shared, mutable cell (C# reference semantics).
#[derive(Debug, Default)]
pub struct Shared<T: 'static>(Arc<Mutex<T>>);

impl<T: 'static> Shared<T> {
    /// Moves out the values this cell holds when it is the last reference
    /// to a list, a dictionary or a JSON container (empty otherwise).
    fn take_children(&mut self, out: &mut Vec<Value>) {
        let Some(cell) = Arc::get_mut(&mut self.0) else {
            return;
        };
        let inner: &mut dyn std::any::Any = cell.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(items) = inner.downcast_mut::<Vec<Value>>() {
            out.append(items);
        } else if let Some(pairs) = inner.downcast_mut::<Vec<(Value, Value)>>() {
            for (k, v) in pairs.drain(..) {
                out.push(k);
                out.push(v);
            }
        } else if let Some(node) = inner.downcast_mut::<JNode>() {
            match node {
                JNode::Array(items) => out.extend(items.drain(..).map(Value::Json)),
                JNode::Object(props) => out.extend(props.drain(..).map(|(_, v)| Value::Json(v))),
                _ => {}
            }
        }
    }
}

/// Values nested a million deep (a loop wrapping a list in a list) would
/// drop recursively, a stack frame per level, and overflow the stack: the
/// last reference to a container unnests its contents onto a heap stack
/// instead.
impl<T: 'static> Drop for Shared<T> {
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.take_children(&mut pending);
        while let Some(v) = pending.pop() {
            match v {
                Value::List(mut s, _) => s.take_children(&mut pending),
                Value::Dict(mut s) => s.take_children(&mut pending),
                Value::Json(mut s) => s.take_children(&mut pending),
                Value::JProperty(_, mut s) => s.take_children(&mut pending),
                Value::Pair(p) => {
                    if let Ok((k, v)) = Arc::try_unwrap(p) {
                        pending.push(k);
                        pending.push(v);
                    }
                }
                _ => {}
            }
        }
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> Shared<T> {
    pub fn new(v: T) -> Shared<T> {
        Shared(Arc::new(Mutex::new(v)))
    }

    /// Locks the cell; a poisoned lock (a panic elsewhere) still yields the data.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ptr_eq(&self, other: &Shared<T>) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A Newtonsoft JSON token (`JToken` and its subclasses), by reference.
pub type JRef = Shared<JNode>;

/// The content of a JSON token.
#[derive(Debug, Clone)]
pub enum JNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<JRef>),
    Object(Vec<(String, JRef)>),
}

/// What kind of sequence a [`Value::List`] is (for `ToString()` and
/// `Add`, which arrays refuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Array,
    List,
    HashSet,
}

/// A runtime value.
#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    /// `int` and `long`.
    Int(i64),
    /// `double`, `float` and `decimal`.
    Float(f64),
    Char(char),
    Str(Arc<str>),
    DateTime(DateTime),
    /// A `DateTimeOffset`: the UTC instant and the offset in minutes.
    DateTimeOffset(DateTime, i32),
    TimeSpan(TimeSpan),
    Guid(u128),
    Json(JRef),
    /// `JProperty`: a name and its value.
    JProperty(Arc<str>, JRef),
    List(Shared<Vec<Value>>, ListKind),
    /// `Dictionary<K, V>` in insertion order; also anonymous objects.
    Dict(Shared<Vec<(Value, Value)>>),
    /// `KeyValuePair<K, V>` (what iterating a dictionary yields).
    Pair(Arc<(Value, Value)>),
    Bytes(Shared<Vec<u8>>),
    /// An enum member: (type, member), e.g. `StringComparison.Ordinal`.
    Enum(&'static str, &'static str),
    /// A lambda closed over its environment.
    Lambda(Arc<super::eval::Closure>),
    /// A part of the `context` object model, read live from the context.
    Host(Host),
    /// Library objects: Regex, Match, Jwt, Uri, Random, hash algorithms, ...
    Native(Arc<super::lib::Native>),
}

impl Value {
    pub fn str(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn new_list(items: Vec<Value>) -> Value {
        Value::List(Shared::new(items), ListKind::List)
    }

    pub fn new_array(items: Vec<Value>) -> Value {
        Value::List(Shared::new(items), ListKind::Array)
    }

    pub fn json(node: JNode) -> Value {
        Value::Json(Shared::new(node))
    }

    /// The C# type name, for messages and `GetType().Name`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "Boolean",
            Value::Int(_) => "Int32",
            Value::Float(_) => "Double",
            Value::Char(_) => "Char",
            Value::Str(_) => "String",
            Value::DateTime(_) => "DateTime",
            Value::DateTimeOffset(..) => "DateTimeOffset",
            Value::TimeSpan(_) => "TimeSpan",
            Value::Guid(_) => "Guid",
            Value::Json(j) => match &*j.lock() {
                JNode::Object(_) => "JObject",
                JNode::Array(_) => "JArray",
                _ => "JValue",
            },
            Value::JProperty(..) => "JProperty",
            Value::List(_, ListKind::Array) => "Array",
            Value::List(_, ListKind::List) => "List",
            Value::List(_, ListKind::HashSet) => "HashSet",
            Value::Dict(_) => "Dictionary",
            Value::Pair(_) => "KeyValuePair",
            Value::Bytes(_) => "Byte[]",
            Value::Enum(t, _) => t,
            Value::Lambda(_) => "Func",
            Value::Host(h) => h.type_name(),
            Value::Native(n) => n.type_name(),
        }
    }

    /// C#'s `ToString()` (and string concatenation, where null is "").
    pub fn to_display(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_double(*f),
            Value::Char(c) => c.to_string(),
            Value::Str(s) => s.to_string(),
            Value::DateTime(d) => d.format_default(),
            Value::DateTimeOffset(d, off) => d.format_offset_default(*off),
            Value::TimeSpan(t) => t.to_string(),
            Value::Guid(g) => format_guid(*g, 'D'),
            Value::Json(j) => json_to_string(j, true),
            Value::JProperty(name, v) => {
                let mut s = serde_json::to_string(&**name).unwrap_or_default();
                s.push_str(": ");
                s.push_str(&json_to_string(v, true));
                s
            }
            Value::List(_, ListKind::Array) => "System.Object[]".into(),
            Value::List(_, ListKind::List) => {
                "System.Collections.Generic.List`1[System.Object]".into()
            }
            Value::List(_, ListKind::HashSet) => {
                "System.Collections.Generic.HashSet`1[System.Object]".into()
            }
            Value::Dict(_) => {
                "System.Collections.Generic.Dictionary`2[System.String,System.Object]".into()
            }
            Value::Pair(p) => format!("[{}, {}]", p.0.to_display(), p.1.to_display()),
            Value::Bytes(_) => "System.Byte[]".into(),
            Value::Enum(_, m) => (*m).into(),
            Value::Lambda(_) => "System.Func".into(),
            Value::Host(h) => h.type_name().into(),
            Value::Native(n) => n.to_display(),
        }
    }
}

/// A double as .NET Core 3.0+ prints it: the shortest text that round-trips,
/// `E+XX` notation from 1E+15 up and below 1E-05.
pub fn format_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "∞".into() } else { "-∞".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let abs = f.abs();
    if (1e-5..1e15).contains(&abs) {
        return format!("{f}");
    }
    // Rust's `{:e}` is also shortest round-trip: 1.5e20 → "1.5e20".
    let s = format!("{f:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}E{sign}{:02}", exp.abs())
}

/// `Guid.ToString(format)` for `D` (default), `N`, `B` and `P`.
pub fn format_guid(g: u128, format: char) -> String {
    let h = format!("{g:032x}");
    let d = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    match format.to_ascii_uppercase() {
        'N' => h,
        'B' => format!("{{{d}}}"),
        'P' => format!("({d})"),
        _ => d,
    }
}

/// Parses the `D`, `N`, `B` and `P` forms of a Guid.
pub fn parse_guid(s: &str) -> Option<u128> {
    let s = s.trim();
    let s = s
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .or_else(|| s.strip_prefix('(').and_then(|x| x.strip_suffix(')')))
        .unwrap_or(s);
    let hex: String = if s.len() == 36 {
        let b = s.as_bytes();
        if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return None;
        }
        s.chars().filter(|c| *c != '-').collect()
    } else {
        s.to_string()
    };
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

// === JSON ===

impl JNode {
    /// Converts from serde_json (a fresh tree).
    pub fn from_serde(v: &serde_json::Value) -> JNode {
        match v {
            serde_json::Value::Null => JNode::Null,
            serde_json::Value::Bool(b) => JNode::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => JNode::Int(i),
                None => JNode::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => JNode::Str(s.clone()),
            serde_json::Value::Array(a) => JNode::Array(
                a.iter()
                    .map(|v| Shared::new(JNode::from_serde(v)))
                    .collect(),
            ),
            serde_json::Value::Object(o) => JNode::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Shared::new(JNode::from_serde(v))))
                    .collect(),
            ),
        }
    }
}

/// How deep a JSON token (or a list or dictionary made into one) may nest
/// for the conversions that recurse: copying (`Add`, `DeepClone`,
/// `FromObject`), serialising (`ToString()`, `JsonConvert`, a body).
/// Expressions that would copy or print a deeper one get an
/// `InvalidOperationException` (`lib::json::refuse_deep`); the conversions
/// themselves stop there too (deeper parts become null), so no tree an
/// expression builds (in place, through indexer references, or a list
/// holding itself) can overflow the stack.
pub const MAX_JSON_DEPTH: usize = 256;

/// Converts a token to serde_json (a deep copy; parts deeper than
/// [`MAX_JSON_DEPTH`] become null).
pub fn json_to_serde(j: &JRef) -> serde_json::Value {
    json_to_serde_at(j, 0)
}

fn json_to_serde_at(j: &JRef, depth: usize) -> serde_json::Value {
    if depth > MAX_JSON_DEPTH {
        return serde_json::Value::Null;
    }
    // Children are cloned out before recursing so only one lock is held.
    let node = j.lock().clone();
    match node {
        JNode::Null => serde_json::Value::Null,
        JNode::Bool(b) => serde_json::Value::Bool(b),
        JNode::Int(i) => serde_json::Value::from(i),
        JNode::Float(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        JNode::Str(s) => serde_json::Value::String(s),
        JNode::Array(a) => {
            serde_json::Value::Array(a.iter().map(|c| json_to_serde_at(c, depth + 1)).collect())
        }
        JNode::Object(o) => serde_json::Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), json_to_serde_at(v, depth + 1)))
                .collect(),
        ),
    }
}

/// A deep copy (what Newtonsoft does when a token that has a parent is
/// added elsewhere); it also keeps trees acyclic.
pub fn json_deep_clone(j: &JRef) -> JRef {
    Shared::new(JNode::from_serde(&json_to_serde(j)))
}

/// `JToken.ToString()`: indented (two spaces) for containers, the raw text
/// for a string value; `ToString(Formatting.None)` is compact.
pub fn json_to_string(j: &JRef, indented: bool) -> String {
    let node = j.lock().clone();
    match node {
        JNode::Null => String::new(),
        JNode::Bool(b) => if b { "True" } else { "False" }.into(),
        JNode::Int(i) => i.to_string(),
        JNode::Float(f) => format_double(f),
        JNode::Str(s) => s,
        _ => {
            let v = json_to_serde(j);
            if indented {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            } else {
                serde_json::to_string(&v).unwrap_or_default()
            }
        }
    }
}

/// A value as a JSON token (what `JToken.FromObject`, `new JObject(...)`
/// and indexer assignment do with plain values).
pub fn to_json(v: &Value) -> JRef {
    to_json_at(v, 0)
}

fn to_json_at(v: &Value, depth: usize) -> JRef {
    match v {
        Value::Json(j) => json_deep_clone(j),
        other => Shared::new(to_jnode(other, depth)),
    }
}

/// Parts deeper than [`MAX_JSON_DEPTH`] (a list holding itself) become null.
fn to_jnode(v: &Value, depth: usize) -> JNode {
    if depth > MAX_JSON_DEPTH {
        return JNode::Null;
    }
    match v {
        Value::Null => JNode::Null,
        Value::Bool(b) => JNode::Bool(*b),
        Value::Int(i) => JNode::Int(*i),
        Value::Float(f) => JNode::Float(*f),
        Value::Json(j) => j.lock().clone(),
        Value::List(items, _) => {
            let items = items.lock().clone();
            JNode::Array(items.iter().map(|x| to_json_at(x, depth + 1)).collect())
        }
        Value::Dict(entries) => {
            let entries = entries.lock().clone();
            JNode::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_display(), to_json_at(v, depth + 1)))
                    .collect(),
            )
        }
        Value::JProperty(name, value) => {
            JNode::Object(vec![(name.to_string(), json_deep_clone(value))])
        }
        Value::DateTime(d) => JNode::Str(d.format("yyyy-MM-ddTHH:mm:ss.FFFFFFFK")),
        other => JNode::Str(other.to_display()),
    }
}

/// Serialises a value as JSON text (for `expr eval` and `JsonConvert`).
pub fn to_serde(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Json(j) => json_to_serde(j),
        Value::List(..) | Value::Dict(_) | Value::JProperty(..) => json_to_serde(&to_json(v)),
        Value::Bytes(b) => {
            use base64::Engine as _;
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(&*b.lock()))
        }
        other => serde_json::Value::String(other.to_display()),
    }
}

/// Human-readable rendering of a string for messages (quoted, truncated).
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if i == 60 {
            out.push('…');
            break;
        }
        let _ = write!(out, "{}", c.escape_debug());
    }
    out.push('"');
    out
}

//! Newtonsoft.Json: `JToken`, `JObject`, `JArray`, `JValue`, `JProperty`,
//! `JTokenType`, `Formatting` and `JsonConvert`, with reference semantics
//! (an indexer returns the token itself; assigning into it changes the
//! parent).

use super::{arg, iterate, opt_str, req_str, to_bool, to_f64, to_i64};
use crate::expr::ast::TypeRef;
use crate::expr::eval::{EResult, EvalError, Interp};
use crate::expr::value::{
    format_double, json_deep_clone, json_to_string, to_json, JNode, JRef, Shared, Value,
    MAX_JSON_DEPTH,
};

pub const INSTANCE: &[&str] = &[
    "Properties",
    "Property",
    "Add",
    "Remove",
    "RemoveAt",
    "Insert",
    "ContainsKey",
    "TryGetValue",
    "GetValue",
    "Value",
    "Values",
    "Children",
    "SelectToken",
    "SelectTokens",
    "ToObject",
    "DeepClone",
    "Count",
    "Type",
    "HasValues",
    "First",
    "Last",
    "Name",
    "Merge",
    "Replace",
];

const STATIC_JSON: &[&str] = &["Parse", "FromObject"];
const STATIC_CONVERT: &[&str] = &["SerializeObject", "DeserializeObject"];
const TOKEN_TYPES: &[&str] = &[
    "None",
    "Object",
    "Array",
    "Constructor",
    "Property",
    "Comment",
    "Integer",
    "Float",
    "String",
    "Boolean",
    "Null",
    "Undefined",
    "Date",
    "Raw",
    "Bytes",
    "Guid",
    "Uri",
    "TimeSpan",
];
const FORMATTING: &[&str] = &["None", "Indented"];

pub fn statics(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "JsonConvert" => STATIC_CONVERT,
        "JTokenType" => TOKEN_TYPES,
        "Formatting" => FORMATTING,
        _ => STATIC_JSON,
    })
}

pub fn static_get(ty: &str, name: &str) -> EResult<Value> {
    let list = statics(ty).unwrap_or_default();
    match list.iter().find(|m| **m == name) {
        Some(m) if ty == "JTokenType" || ty == "Formatting" => Ok(Value::Enum(
            if ty == "JTokenType" {
                "JTokenType"
            } else {
                "Formatting"
            },
            m,
        )),
        _ => Err(EvalError::invalid_op(format!(
            "{ty} has no static property '{name}'"
        ))),
    }
}

fn parse_text(text: &str, want: &str) -> EResult<JRef> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        EvalError::new(
            "JsonReaderException",
            format!("Error reading {want} from JsonReader: {e}"),
        )
    })?;
    let ok = match want {
        "JObject" => v.is_object(),
        "JArray" => v.is_array(),
        _ => true,
    };
    if !ok {
        return Err(EvalError::new(
            "JsonReaderException",
            format!(
                "Error reading {want} from JsonReader: the text is not a JSON {}.",
                &want[1..].to_lowercase()
            ),
        ));
    }
    Ok(Shared::new(JNode::from_serde(&v)))
}

/// Parses JSON text into a token of the wanted type (`JObject`, `JArray`,
/// `JToken`).
pub fn parse(text: &str, want: &str) -> EResult<Value> {
    parse_text(text, want).map(Value::Json)
}

pub fn call_static(
    it: &mut Interp,
    ty: &str,
    name: &str,
    targs: &[TypeRef],
    args: &[Value],
) -> EResult<Value> {
    let a0 = arg(args, 0);
    match (ty, name) {
        (_, "Parse") => {
            let text = req_str(a0, "json")?;
            parse(&text, if ty == "JValue" { "JToken" } else { ty })
        }
        (_, "FromObject") => {
            let j = checked_json(a0)?;
            let want = if ty == "JToken" { "JToken" } else { ty };
            let v = Value::Json(j);
            if want != "JToken" && !super::is_type(&v, &simple_type(want)) {
                return Err(EvalError::argument(format!(
                    "Object serialized to {} is not a {want}.",
                    v.type_name()
                )));
            }
            Ok(v)
        }
        ("JsonConvert", "SerializeObject") => {
            let indented = matches!(arg(args, 1), Value::Enum(_, "Indented"));
            let v = super::super::value::to_serde(a0);
            let s = if indented {
                serde_json::to_string_pretty(&v)
            } else {
                serde_json::to_string(&v)
            }
            .unwrap_or_default();
            it.string(s)
        }
        ("JsonConvert", "DeserializeObject") => {
            let text = req_str(a0, "value")?;
            let want = targs.first().map(|t| t.name.as_str()).unwrap_or("JToken");
            let v = parse(&text, "JToken")?;
            match want {
                "JObject" | "JArray" | "JToken" | "object" | "dynamic" => Ok(v),
                other => super::cast(it, v, &simple_type(other)),
            }
        }
        _ => Err(EvalError::invalid_op(format!(
            "{ty} has no static method '{name}'"
        ))),
    }
}

fn simple_type(name: &str) -> TypeRef {
    TypeRef {
        name: name.to_string(),
        args: Vec::new(),
        array_rank: 0,
        nullable: false,
        span: Default::default(),
    }
}

/// `new JObject(...)`, `new JArray(...)`, `new JProperty(name, value)`, `new JValue(x)`.
pub fn construct(it: &mut Interp, ty: &str, args: Vec<Value>) -> EResult<Value> {
    match ty {
        "JObject" => {
            let obj = Value::json(JNode::Object(Vec::new()));
            for a in &args {
                let items = match a {
                    Value::List(..) => iterate(it, a)?,
                    other => vec![other.clone()],
                };
                for item in items {
                    add(&obj, &[item])?;
                }
            }
            Ok(obj)
        }
        "JArray" => {
            let mut items = Vec::new();
            for a in &args {
                match a {
                    Value::List(..) => {
                        for x in iterate(it, a)? {
                            items.push(checked_json(&x)?);
                        }
                    }
                    Value::Json(j) if matches!(&*j.lock(), JNode::Array(_)) && args.len() == 1 => {
                        for c in children(j) {
                            items.push(checked_json(&c)?);
                        }
                    }
                    other => items.push(checked_json(other)?),
                }
            }
            Ok(Value::json(JNode::Array(items)))
        }
        "JProperty" => {
            let name = req_str(arg(&args, 0), "name")?;
            let value = match args.len() {
                0 | 1 => Shared::new(JNode::Null),
                2 => checked_json(&args[1])?,
                _ => Shared::new(JNode::Array(
                    args[1..].iter().map(checked_json).collect::<EResult<_>>()?,
                )),
            };
            Ok(Value::JProperty(name.into(), value))
        }
        _ => Ok(Value::Json(checked_json(arg(&args, 0))?)),
    }
}

/// The child tokens (array items, or an object's properties).
pub fn children(j: &JRef) -> Vec<Value> {
    match &*j.lock() {
        JNode::Array(items) => items.iter().map(|i| Value::Json(i.clone())).collect(),
        JNode::Object(props) => props
            .iter()
            .map(|(k, v)| Value::JProperty(k.as_str().into(), v.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

fn token_type(j: &JRef) -> &'static str {
    match &*j.lock() {
        JNode::Null => "Null",
        JNode::Bool(_) => "Boolean",
        JNode::Int(_) => "Integer",
        JNode::Float(_) => "Float",
        JNode::Str(_) => "String",
        JNode::Array(_) => "Array",
        JNode::Object(_) => "Object",
    }
}

/// A JValue's raw value (`JValue.Value`).
pub fn raw(j: &JRef) -> Value {
    match &*j.lock() {
        JNode::Null => Value::Null,
        JNode::Bool(b) => Value::Bool(*b),
        JNode::Int(i) => Value::Int(*i),
        JNode::Float(f) => Value::Float(*f),
        JNode::Str(s) => Value::str(s.as_str()),
        _ => Value::Json(j.clone()),
    }
}

pub fn get(_it: &mut Interp, v: &Value, name: &str) -> EResult<Value> {
    if let Value::JProperty(n, value) = v {
        return match name {
            "Name" => Ok(Value::str(n.clone())),
            "Value" => Ok(Value::Json(value.clone())),
            "Type" => Ok(Value::Enum("JTokenType", "Property")),
            "HasValues" => Ok(Value::Bool(true)),
            _ => Err(EvalError::invalid_op(format!(
                "JProperty has no property '{name}'"
            ))),
        };
    }
    let Value::Json(j) = v else {
        return Err(EvalError::invalid_op("not a JSON token"));
    };
    match name {
        "Count" => match &*j.lock() {
            JNode::Array(a) => Ok(Value::Int(a.len() as i64)),
            JNode::Object(o) => Ok(Value::Int(o.len() as i64)),
            _ => Err(EvalError::invalid_op(
                "Cannot access child value on Newtonsoft.Json.Linq.JValue.",
            )),
        },
        "Type" => Ok(Value::Enum("JTokenType", token_type(j))),
        "HasValues" => Ok(Value::Bool(!children(j).is_empty())),
        "First" | "Last" => {
            let c = children(j);
            Ok(if name == "First" { c.first() } else { c.last() }
                .cloned()
                .unwrap_or(Value::Null))
        }
        "Value" => Ok(raw(j)),
        _ => Err(EvalError::invalid_op(format!(
            "{} has no property '{name}'",
            v.type_name()
        ))),
    }
}

fn key_of(k: &Value) -> EResult<String> {
    match k {
        Value::Str(s) => Ok(s.to_string()),
        other => req_str(other, "propertyName"),
    }
}

/// `token[key]` (objects by name, arrays by index).
pub fn index_get(v: &Value, key: &Value) -> EResult<Value> {
    let Value::Json(j) = v else {
        return Err(EvalError::invalid_op("not a JSON token"));
    };
    let node = j.lock();
    match &*node {
        JNode::Object(props) => {
            let k = key_of(key)?;
            Ok(props
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| Value::Json(v.clone()))
                .unwrap_or(Value::Null))
        }
        JNode::Array(items) => {
            let i = to_i64(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i))
                .map(|t| Value::Json(t.clone()))
                .ok_or_else(|| {
                    EvalError::out_of_range(
                        "Index was out of range. Must be non-negative and less than the size of the collection. (Parameter 'index')",
                    )
                })
        }
        _ => Err(EvalError::invalid_op(
            "Cannot access child value on Newtonsoft.Json.Linq.JValue.",
        )),
    }
}

/// How many values [`refuse_deep`] looks at before it calls a value too
/// large to copy (lists sharing sublists could stand for exponentially
/// many nodes).
const MAX_JSON_NODES: usize = 4_000_000;

/// An `InvalidOperationException` when `v` nests deeper than
/// [`MAX_JSON_DEPTH`] or copying it would make more than a few million
/// values. Iterative, so safe on any depth.
pub fn refuse_deep(v: &Value) -> EResult<()> {
    let mut stack: Vec<(Value, usize)> = vec![(v.clone(), 0)];
    let mut seen = 0usize;
    while let Some((v, depth)) = stack.pop() {
        seen += 1;
        if depth > MAX_JSON_DEPTH || seen > MAX_JSON_NODES {
            return Err(EvalError::invalid_op(format!(
                "The value nests deeper than {MAX_JSON_DEPTH} levels or holds too many values to copy or serialize as JSON."
            )));
        }
        match &v {
            Value::Json(j) | Value::JProperty(_, j) => {
                let children: Vec<JRef> = match &*j.lock() {
                    JNode::Array(a) => a.clone(),
                    JNode::Object(o) => o.iter().map(|(_, c)| c.clone()).collect(),
                    _ => Vec::new(),
                };
                stack.extend(children.into_iter().map(|c| (Value::Json(c), depth + 1)));
            }
            Value::List(items, _) => {
                let items = items.lock().clone();
                stack.extend(items.into_iter().map(|x| (x, depth + 1)));
            }
            Value::Dict(entries) => {
                let values: Vec<Value> = entries.lock().iter().map(|(_, x)| x.clone()).collect();
                stack.extend(values.into_iter().map(|x| (x, depth + 1)));
            }
            _ => {}
        }
    }
    Ok(())
}

/// [`to_json`] of a value [`refuse_deep`] accepts.
fn checked_json(v: &Value) -> EResult<JRef> {
    refuse_deep(v)?;
    Ok(to_json(v))
}

/// `token[key] = value`.
pub fn index_set(v: &Value, idx: &[Value], x: Value) -> EResult<()> {
    let Value::Json(j) = v else {
        return Err(EvalError::invalid_op("not a JSON token"));
    };
    let value = checked_json(&x)?;
    let key = arg(idx, 0);
    let mut node = j.lock();
    match &mut *node {
        JNode::Object(props) => {
            let k = key_of(key)?;
            match props.iter_mut().find(|(n, _)| *n == k) {
                Some(slot) => slot.1 = value,
                None => props.push((k, value)),
            }
            Ok(())
        }
        JNode::Array(items) => {
            let i = to_i64(key)?;
            match usize::try_from(i).ok().and_then(|i| items.get_mut(i)) {
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                None => Err(EvalError::out_of_range("Index was out of range.")),
            }
        }
        _ => Err(EvalError::invalid_op(
            "Cannot set child value on Newtonsoft.Json.Linq.JValue.",
        )),
    }
}

/// `Add(JProperty)`, `Add(name, value)` on objects; `Add(value)` on arrays.
fn add(v: &Value, args: &[Value]) -> EResult<()> {
    let Value::Json(j) = v else {
        return Err(EvalError::invalid_op("not a JSON token"));
    };
    let (name, value) = match args {
        [Value::JProperty(n, val)] => {
            refuse_deep(&Value::Json(val.clone()))?;
            (Some(n.to_string()), json_deep_clone(val))
        }
        [n, val] => (Some(req_str(n, "propertyName")?), checked_json(val)?),
        [val] => (None, checked_json(val)?),
        _ => {
            return Err(EvalError::argument(
                "Add takes a value, or a name and a value",
            ))
        }
    };
    let mut node = j.lock();
    match (&mut *node, name) {
        (JNode::Object(props), Some(n)) => {
            if props.iter().any(|(k, _)| *k == n) {
                return Err(EvalError::argument(format!(
                    "Can not add property {n} to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object."
                )));
            }
            props.push((n, value));
            Ok(())
        }
        (JNode::Object(_), None) => Err(EvalError::argument(
            "Can not add Newtonsoft.Json.Linq.JValue to Newtonsoft.Json.Linq.JObject.",
        )),
        (JNode::Array(items), None) => {
            items.push(value);
            Ok(())
        }
        (JNode::Array(items), Some(n)) => {
            items.push(Shared::new(JNode::Object(vec![(n, value)])));
            Ok(())
        }
        _ => Err(EvalError::invalid_op("Cannot add to a JValue.")),
    }
}

/// A tiny JSONPath: `$`, `.name`, `['name']`, `[n]`, `[*]`/`.*`.
fn select(j: &JRef, path: &str) -> EResult<Vec<JRef>> {
    let bad = || {
        EvalError::new(
            "JsonException",
            format!("Unexpected character while parsing path: {path}"),
        )
    };
    let mut current = vec![j.clone()];
    let mut rest = path.trim();
    rest = rest.strip_prefix('$').unwrap_or(rest);
    while !rest.is_empty() {
        let (seg, next): (Seg, &str) = if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").ok_or_else(bad)?;
            (Seg::Name(r[..end].to_string()), &r[end + 2..])
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(bad)?;
            let inner = r[..end].trim();
            let seg = if inner == "*" {
                Seg::All
            } else {
                Seg::Index(inner.parse().map_err(|_| bad())?)
            };
            (seg, &r[end + 1..])
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            if name.is_empty() {
                return Err(bad());
            }
            (
                if name == "*" {
                    Seg::All
                } else {
                    Seg::Name(name.to_string())
                },
                &r[end..],
            )
        };
        let mut next_tokens = Vec::new();
        for t in &current {
            let node = t.lock();
            match (&*node, &seg) {
                (JNode::Object(props), Seg::Name(n)) => {
                    if let Some((_, v)) = props.iter().find(|(k, _)| k == n) {
                        next_tokens.push(v.clone());
                    }
                }
                (JNode::Array(items), Seg::Index(i)) => {
                    if let Some(v) = items.get(*i) {
                        next_tokens.push(v.clone());
                    }
                }
                (JNode::Object(props), Seg::All) => {
                    next_tokens.extend(props.iter().map(|(_, v)| v.clone()))
                }
                (JNode::Array(items), Seg::All) => next_tokens.extend(items.iter().cloned()),
                _ => {}
            }
        }
        current = next_tokens;
        rest = next;
    }
    Ok(current)
}

enum Seg {
    Name(String),
    Index(usize),
    All,
}

/// Converts a token to `T` (`Value<T>`, `ToObject<T>`).
pub fn convert_to(it: &mut Interp, v: Value, targs: &[TypeRef]) -> EResult<Value> {
    let Some(t) = targs.first() else {
        return Ok(match &v {
            Value::Json(j) => raw(j),
            _ => v,
        });
    };
    match super::resolve_type(&t.name) {
        Some("String") => match &v {
            Value::Json(j) => Ok(match &*j.lock() {
                JNode::Null => Value::Null,
                JNode::Str(s) => Value::str(s.as_str()),
                JNode::Int(i) => Value::str(i.to_string()),
                JNode::Float(f) => Value::str(format_double(*f)),
                JNode::Bool(b) => Value::str(if *b { "True" } else { "False" }),
                _ => return Err(EvalError::argument("Can not convert Object to String.")),
            }),
            other => Ok(Value::str(other.to_display())),
        },
        Some("Int32" | "Int64") => Ok(Value::Int(to_i64(&v)?)),
        Some("Double" | "Single" | "Decimal") => Ok(Value::Float(to_f64(&v)?)),
        Some("Boolean") => Ok(Value::Bool(to_bool(&v)?)),
        _ => super::cast(it, v, t),
    }
}

pub fn call(
    it: &mut Interp,
    v: &Value,
    name: &str,
    targs: &[TypeRef],
    args: &[Value],
) -> EResult<Value> {
    if let Value::JProperty(n, value) = v {
        return match name {
            "ToString" => Ok(Value::str(v.to_display())),
            "Value" => convert_to(it, Value::Json(value.clone()), targs),
            _ => Err(EvalError::invalid_op(format!(
                "JProperty has no method '{name}' ({n})"
            ))),
        };
    }
    let Value::Json(j) = v else {
        return Err(EvalError::invalid_op("not a JSON token"));
    };
    let a0 = arg(args, 0);
    match name {
        "ToString" => {
            let indented = !matches!(a0, Value::Enum(_, "None"));
            refuse_deep(v)?;
            it.string(json_to_string(j, indented))
        }
        "Properties" => Ok(super::list_of(children(j))),
        "Property" => {
            let k = req_str(a0, "name")?;
            let node = j.lock();
            Ok(match &*node {
                JNode::Object(props) => props
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(n, v)| Value::JProperty(n.as_str().into(), v.clone()))
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            })
        }
        "Add" => {
            add(v, args)?;
            Ok(Value::Null)
        }
        "Remove" => {
            let mut node = j.lock();
            match &mut *node {
                JNode::Object(props) => {
                    let k = req_str(a0, "propertyName")?;
                    let before = props.len();
                    props.retain(|(n, _)| *n != k);
                    Ok(Value::Bool(props.len() != before))
                }
                JNode::Array(items) => {
                    let before = items.len();
                    if let Value::Json(target) = a0 {
                        items.retain(|i| !i.ptr_eq(target));
                    }
                    Ok(Value::Bool(items.len() != before))
                }
                _ => Err(EvalError::invalid_op("Cannot remove from a JValue.")),
            }
        }
        "RemoveAt" | "Insert" => {
            let i = to_i64(a0)?;
            let inserted = if name == "Insert" {
                Some(checked_json(arg(args, 1))?)
            } else {
                None
            };
            let mut node = j.lock();
            let JNode::Array(items) = &mut *node else {
                return Err(EvalError::invalid_op(format!("{name} needs a JArray")));
            };
            let i = usize::try_from(i)
                .ok()
                .filter(|i| *i < items.len() || (name == "Insert" && *i == items.len()))
                .ok_or_else(|| EvalError::out_of_range("Index is out of range."))?;
            if name == "RemoveAt" {
                items.remove(i);
            } else {
                items.insert(i, inserted.unwrap_or_else(|| Shared::new(JNode::Null)));
            }
            Ok(Value::Null)
        }
        "ContainsKey" => {
            let k = req_str(a0, "propertyName")?;
            Ok(Value::Bool(
                matches!(&*j.lock(), JNode::Object(p) if p.iter().any(|(n, _)| *n == k)),
            ))
        }
        "GetValue" => {
            let k = req_str(a0, "propertyName")?;
            let ic = super::ignore_case(args.get(1));
            let found = match &*j.lock() {
                JNode::Object(p) => p
                    .iter()
                    .find(|(n, _)| {
                        if ic {
                            n.eq_ignore_ascii_case(&k)
                        } else {
                            *n == k
                        }
                    })
                    .map(|(_, v)| Value::Json(v.clone())),
                _ => None,
            };
            Ok(found.unwrap_or(Value::Null))
        }
        "Value" => {
            let token = if args.is_empty() {
                v.clone()
            } else {
                index_get(v, a0)?
            };
            if token.is_null() {
                return Ok(Value::Null);
            }
            convert_to(it, token, targs)
        }
        "Values" => {
            let items: Vec<Value> = match &*j.lock() {
                JNode::Object(p) => p.iter().map(|(_, v)| Value::Json(v.clone())).collect(),
                JNode::Array(a) => a.iter().map(|v| Value::Json(v.clone())).collect(),
                _ => Vec::new(),
            };
            if targs.is_empty() {
                return Ok(super::list_of(items));
            }
            let mut out = Vec::new();
            for i in items {
                out.push(convert_to(it, i, targs)?);
            }
            Ok(super::list_of(out))
        }
        "Children" => Ok(super::list_of(children(j))),
        "SelectToken" => {
            let path = req_str(a0, "path")?;
            let found = select(j, &path)?;
            if found.len() > 1 {
                return Err(EvalError::new(
                    "JsonException",
                    "Path returned multiple tokens.",
                ));
            }
            Ok(found
                .into_iter()
                .next()
                .map(Value::Json)
                .unwrap_or(Value::Null))
        }
        "SelectTokens" => {
            let path = req_str(a0, "path")?;
            Ok(super::list_of(
                select(j, &path)?.into_iter().map(Value::Json).collect(),
            ))
        }
        "ToObject" => convert_to(it, v.clone(), targs),
        "DeepClone" => {
            refuse_deep(v)?;
            Ok(Value::Json(json_deep_clone(j)))
        }
        "Merge" => {
            let Value::Json(other) = a0 else {
                return Ok(Value::Null);
            };
            refuse_deep(a0)?;
            let other = json_deep_clone(other);
            let incoming = match &*other.lock() {
                JNode::Object(p) => p.clone(),
                _ => Vec::new(),
            };
            if let JNode::Object(props) = &mut *j.lock() {
                for (k, val) in incoming {
                    match props.iter_mut().find(|(n, _)| *n == k) {
                        Some(slot) => slot.1 = val,
                        None => props.push((k, val)),
                    }
                }
            }
            Ok(Value::Null)
        }
        _ => super::linq::call(it, v, name, &mut args.to_vec()),
    }
}

/// `TryGetValue(name, out JToken value)` on a JObject.
pub fn try_get(v: &Value, args: &mut [Value]) -> EResult<Value> {
    let Value::Json(j) = v else {
        return Err(EvalError::invalid_op("not a JSON token"));
    };
    let k = req_str(arg(args, 0), "propertyName")?;
    let found = match &*j.lock() {
        JNode::Object(p) => p
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| Value::Json(v.clone())),
        _ => None,
    };
    let ok = found.is_some();
    if let Some(slot) = args.get_mut(1) {
        *slot = found.unwrap_or(Value::Null);
    }
    Ok(Value::Bool(ok))
}

/// Body text → token, for `As<JObject>()` and friends.
pub fn from_body(text: &str, want: &str) -> EResult<Value> {
    parse(text, want)
}

/// A plain string value for JSON string nodes, else the token.
pub fn opt_text(v: &Value) -> Option<String> {
    opt_str(v).ok().flatten()
}

//! LINQ (`System.Linq.Enumerable`) over every sequence — arrays, lists,
//! dictionaries, sets, strings, JSON containers, header collections — and
//! the members of `List<T>`, `Dictionary<K, V>`, `HashSet<T>`,
//! `KeyValuePair<K, V>` and `byte[]`.

use super::{arg, compare, equals, iterate, list_of, to_bool, to_f64, to_i64};
use crate::expr::eval::{Closure, EResult, EvalError, Interp};
use crate::expr::value::{ListKind, Shared, Value};
use std::sync::Arc;

pub const INSTANCE: &[&str] = &[
    "Select",
    "SelectMany",
    "Where",
    "Any",
    "All",
    "First",
    "FirstOrDefault",
    "Last",
    "LastOrDefault",
    "Single",
    "SingleOrDefault",
    "ElementAt",
    "ElementAtOrDefault",
    "Count",
    "Sum",
    "Min",
    "Max",
    "Average",
    "OrderBy",
    "OrderByDescending",
    "ThenBy",
    "ThenByDescending",
    "ToArray",
    "ToList",
    "ToDictionary",
    "ToHashSet",
    "Contains",
    "Skip",
    "Take",
    "SkipWhile",
    "TakeWhile",
    "Distinct",
    "Aggregate",
    "Reverse",
    "Concat",
    "Union",
    "Intersect",
    "Except",
    "SequenceEqual",
    "Cast",
    "OfType",
    "DefaultIfEmpty",
    "GroupBy",
    // List / Dictionary / HashSet / KeyValuePair / arrays
    "Add",
    "AddRange",
    "Remove",
    "RemoveAt",
    "RemoveAll",
    "Insert",
    "Clear",
    "IndexOf",
    "Sort",
    "ContainsKey",
    "ContainsValue",
    "TryGetValue",
    "Keys",
    "Values",
    "Key",
    "Value",
    "Length",
    "Exists",
    "Find",
    "ForEach",
];

pub const STATIC: &[&str] = &["Range", "Repeat", "Empty"];

fn lambda(v: &Value) -> EResult<Arc<Closure>> {
    match v {
        Value::Lambda(c) => Ok(c.clone()),
        _ => Err(EvalError::argument("a lambda (x => ...) was expected")),
    }
}

/// Calls `f(x)` or `f(x, index)` by the lambda's arity.
fn apply(it: &mut Interp, f: &Closure, x: &Value, i: usize) -> EResult<Value> {
    if f.params.len() >= 2 {
        it.call_closure(f, vec![x.clone(), Value::Int(i as i64)])
    } else {
        it.call_closure(f, vec![x.clone()])
    }
}

fn test(it: &mut Interp, f: &Closure, x: &Value, i: usize) -> EResult<bool> {
    let r = apply(it, f, x, i)?;
    to_bool(&r)
}

fn no_elements() -> EvalError {
    EvalError::invalid_op("Sequence contains no elements")
}

fn filtered(it: &mut Interp, items: Vec<Value>, pred: Option<&Value>) -> EResult<Vec<Value>> {
    match pred {
        None => Ok(items),
        Some(p) => {
            let f = lambda(p)?;
            let mut out = Vec::new();
            for (i, x) in items.into_iter().enumerate() {
                if test(it, &f, &x, i)? {
                    out.push(x);
                }
            }
            Ok(out)
        }
    }
}

fn sort_by(
    it: &mut Interp,
    items: Vec<Value>,
    key: Option<&Value>,
    desc: bool,
) -> EResult<Vec<Value>> {
    let mut keyed = Vec::with_capacity(items.len());
    for (i, x) in items.into_iter().enumerate() {
        let k = match key {
            Some(f) => apply(it, &*lambda(f)?, &x, i)?,
            None => x.clone(),
        };
        keyed.push((k, x));
    }
    // Stable, as LINQ's OrderBy is.
    keyed.sort_by(|a, b| {
        let o = compare(&a.0, &b.0).unwrap_or(std::cmp::Ordering::Equal);
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    Ok(keyed.into_iter().map(|(_, x)| x).collect())
}

fn distinct(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for x in items {
        if !out.iter().any(|y| equals(y, &x)) {
            out.push(x);
        }
    }
    out
}

fn number_sum(items: &[Value]) -> EResult<Value> {
    if items.iter().all(|v| matches!(v, Value::Int(_))) {
        let mut s: i64 = 0;
        for v in items {
            s = s.wrapping_add(to_i64(v)?);
        }
        return Ok(Value::Int(s));
    }
    let mut s = 0.0;
    for v in items {
        s += to_f64(v)?;
    }
    Ok(Value::Float(s))
}

/// Enumerable methods and collection members.
pub fn call(it: &mut Interp, v: &Value, name: &str, args: &mut [Value]) -> EResult<Value> {
    // Collection members first (they mutate in place).
    match (v, name) {
        (Value::List(items, kind), "Add") => {
            if *kind == ListKind::Array {
                return Err(EvalError::new(
                    "NotSupportedException",
                    "Collection was of a fixed size.",
                ));
            }
            let x = arg(args, 0).clone();
            let mut g = items.lock();
            if *kind == ListKind::HashSet {
                if g.iter().any(|y| equals(y, &x)) {
                    return Ok(Value::Bool(false));
                }
                g.push(x);
                return Ok(Value::Bool(true));
            }
            g.push(x);
            return Ok(Value::Null);
        }
        (Value::List(items, _), "AddRange") => {
            let more = iterate(it, arg(args, 0))?;
            items.lock().extend(more);
            return Ok(Value::Null);
        }
        (Value::List(items, _), "Remove") => {
            let x = arg(args, 0);
            let mut g = items.lock();
            return Ok(Value::Bool(match g.iter().position(|y| equals(y, x)) {
                Some(i) => {
                    g.remove(i);
                    true
                }
                None => false,
            }));
        }
        (Value::List(items, _), "RemoveAt" | "Insert") => {
            let i = to_i64(arg(args, 0))?;
            let mut g = items.lock();
            let limit = if name == "Insert" {
                g.len() + 1
            } else {
                g.len()
            };
            let i = usize::try_from(i)
                .ok()
                .filter(|i| *i < limit)
                .ok_or_else(|| EvalError::out_of_range("Index was out of range."))?;
            if name == "RemoveAt" {
                g.remove(i);
            } else {
                g.insert(i, arg(args, 1).clone());
            }
            return Ok(Value::Null);
        }
        (Value::List(items, _), "RemoveAll") => {
            let f = lambda(arg(args, 0))?;
            let all = items.lock().clone();
            let mut keep = Vec::new();
            let mut removed = 0;
            for (i, x) in all.into_iter().enumerate() {
                if test(it, &f, &x, i)? {
                    removed += 1;
                } else {
                    keep.push(x);
                }
            }
            *items.lock() = keep;
            return Ok(Value::Int(removed));
        }
        (Value::List(items, _), "Clear") => {
            items.lock().clear();
            return Ok(Value::Null);
        }
        (Value::List(items, _), "IndexOf") => {
            let x = arg(args, 0);
            return Ok(Value::Int(
                items
                    .lock()
                    .iter()
                    .position(|y| equals(y, x))
                    .map(|i| i as i64)
                    .unwrap_or(-1),
            ));
        }
        (Value::List(items, _), "Sort") => {
            let sorted = sort_by(it, items.lock().clone(), None, false)?;
            *items.lock() = sorted;
            return Ok(Value::Null);
        }
        (Value::List(items, _), "ForEach") => {
            let f = lambda(arg(args, 0))?;
            for (i, x) in items.lock().clone().iter().enumerate() {
                apply(it, &f, x, i)?;
            }
            return Ok(Value::Null);
        }
        (Value::Dict(entries), "Add") => {
            let (k, x) = (arg(args, 0).clone(), arg(args, 1).clone());
            if k.is_null() {
                return Err(EvalError::new(
                    "ArgumentNullException",
                    "Value cannot be null. (Parameter 'key')",
                ));
            }
            let mut g = entries.lock();
            if g.iter().any(|(y, _)| equals(y, &k)) {
                return Err(EvalError::argument(format!(
                    "An item with the same key has already been added. Key: {}",
                    k.to_display()
                )));
            }
            g.push((k, x));
            return Ok(Value::Null);
        }
        (Value::Dict(entries), "ContainsKey") => {
            let k = arg(args, 0);
            return Ok(Value::Bool(
                entries.lock().iter().any(|(y, _)| equals(y, k)),
            ));
        }
        (Value::Dict(entries), "ContainsValue") => {
            let x = arg(args, 0);
            return Ok(Value::Bool(
                entries.lock().iter().any(|(_, y)| equals(y, x)),
            ));
        }
        (Value::Dict(entries), "TryGetValue") => {
            let k = arg(args, 0).clone();
            let found = entries
                .lock()
                .iter()
                .find(|(y, _)| equals(y, &k))
                .map(|(_, v)| v.clone());
            let ok = found.is_some();
            if let Some(slot) = args.get_mut(1) {
                *slot = found.unwrap_or(Value::Null);
            }
            return Ok(Value::Bool(ok));
        }
        (Value::Dict(entries), "Remove") => {
            let k = arg(args, 0);
            let mut g = entries.lock();
            let before = g.len();
            g.retain(|(y, _)| !equals(y, k));
            return Ok(Value::Bool(g.len() != before));
        }
        (Value::Dict(entries), "Clear") => {
            entries.lock().clear();
            return Ok(Value::Null);
        }
        (Value::List(..), "Exists" | "Find") => {
            let items = iterate(it, v)?;
            let f = lambda(arg(args, 0))?;
            for (i, x) in items.iter().enumerate() {
                if test(it, &f, x, i)? {
                    return Ok(if name == "Exists" {
                        Value::Bool(true)
                    } else {
                        x.clone()
                    });
                }
            }
            return Ok(if name == "Exists" {
                Value::Bool(false)
            } else {
                Value::Null
            });
        }
        _ => {}
    }
    enumerable(it, v, name, args)
}

fn enumerable(it: &mut Interp, v: &Value, name: &str, args: &mut [Value]) -> EResult<Value> {
    let items = iterate(it, v)?;
    let a0 = args.first().cloned();
    match name {
        "Select" => {
            let f = lambda(arg(args, 0))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, x) in items.iter().enumerate() {
                out.push(apply(it, &f, x, i)?);
            }
            Ok(list_of(out))
        }
        "SelectMany" => {
            let f = lambda(arg(args, 0))?;
            let mut out = Vec::new();
            for (i, x) in items.iter().enumerate() {
                let inner = apply(it, &f, x, i)?;
                out.extend(iterate(it, &inner)?);
            }
            Ok(list_of(out))
        }
        "Where" => Ok(list_of(filtered(it, items, a0.as_ref())?)),
        "Any" => Ok(Value::Bool(!filtered(it, items, a0.as_ref())?.is_empty())),
        "All" => {
            let f = lambda(arg(args, 0))?;
            for (i, x) in items.iter().enumerate() {
                if !test(it, &f, x, i)? {
                    return Ok(Value::Bool(false));
                }
            }
            Ok(Value::Bool(true))
        }
        "First" | "FirstOrDefault" => {
            let found = filtered(it, items, a0.as_ref())?.into_iter().next();
            match (found, name) {
                (Some(x), _) => Ok(x),
                (None, "First") => Err(no_elements()),
                (None, _) => Ok(Value::Null),
            }
        }
        "Last" | "LastOrDefault" => {
            let found = filtered(it, items, a0.as_ref())?.into_iter().last();
            match (found, name) {
                (Some(x), _) => Ok(x),
                (None, "Last") => Err(no_elements()),
                (None, _) => Ok(Value::Null),
            }
        }
        "Single" | "SingleOrDefault" => {
            let found = filtered(it, items, a0.as_ref())?;
            match (found.len(), name) {
                (1, _) => Ok(found.into_iter().next().unwrap_or_default()),
                (0, "Single") => Err(no_elements()),
                (0, _) => Ok(Value::Null),
                _ => Err(EvalError::invalid_op(
                    "Sequence contains more than one element",
                )),
            }
        }
        "ElementAt" | "ElementAtOrDefault" => {
            let i = to_i64(arg(args, 0))?;
            match usize::try_from(i).ok().and_then(|i| items.get(i)) {
                Some(x) => Ok(x.clone()),
                None if name == "ElementAtOrDefault" => Ok(Value::Null),
                None => Err(EvalError::out_of_range("Index was out of range.")),
            }
        }
        "Count" => Ok(Value::Int(filtered(it, items, a0.as_ref())?.len() as i64)),
        "Sum" | "Average" | "Min" | "Max" => {
            let vals = match a0 {
                Some(f) => {
                    let f = lambda(&f)?;
                    let mut out = Vec::new();
                    for (i, x) in items.iter().enumerate() {
                        out.push(apply(it, &f, x, i)?);
                    }
                    out
                }
                None => items,
            };
            match name {
                "Sum" => number_sum(&vals),
                "Average" => {
                    if vals.is_empty() {
                        return Err(no_elements());
                    }
                    let s = to_f64(&number_sum(&vals)?)?;
                    Ok(Value::Float(s / vals.len() as f64))
                }
                _ => {
                    let mut best: Option<Value> = None;
                    for x in vals {
                        best = Some(match best {
                            None => x,
                            Some(b) => {
                                let o = compare(&x, &b).unwrap_or(std::cmp::Ordering::Equal);
                                let better = if name == "Min" {
                                    o == std::cmp::Ordering::Less
                                } else {
                                    o == std::cmp::Ordering::Greater
                                };
                                if better {
                                    x
                                } else {
                                    b
                                }
                            }
                        });
                    }
                    best.ok_or_else(no_elements)
                }
            }
        }
        "OrderBy" | "ThenBy" => Ok(list_of(sort_by(it, items, a0.as_ref(), false)?)),
        "OrderByDescending" | "ThenByDescending" => {
            Ok(list_of(sort_by(it, items, a0.as_ref(), true)?))
        }
        "ToArray" => Ok(Value::new_array(items)),
        "ToList" => Ok(list_of(items)),
        "ToHashSet" => Ok(Value::List(Shared::new(distinct(items)), ListKind::HashSet)),
        "ToDictionary" => {
            let kf = lambda(arg(args, 0))?;
            let vf = args.get(1).map(lambda).transpose()?;
            let mut entries: Vec<(Value, Value)> = Vec::new();
            for (i, x) in items.iter().enumerate() {
                let k = apply(it, &kf, x, i)?;
                let val = match &vf {
                    Some(f) => apply(it, f, x, i)?,
                    None => x.clone(),
                };
                if entries.iter().any(|(y, _)| equals(y, &k)) {
                    return Err(EvalError::argument(format!(
                        "An item with the same key has already been added. Key: {}",
                        k.to_display()
                    )));
                }
                entries.push((k, val));
            }
            Ok(Value::Dict(Shared::new(entries)))
        }
        "Contains" => {
            let x = arg(args, 0);
            let ic = super::ignore_case(args.get(1))
                || matches!(args.get(1), Some(Value::Native(n)) if n.type_name() == "StringComparer" && n.to_display().contains("IgnoreCase"));
            Ok(Value::Bool(items.iter().any(|y| {
                if ic {
                    match (y, x) {
                        (Value::Str(a), Value::Str(b)) => a.eq_ignore_ascii_case(b),
                        _ => equals(y, x),
                    }
                } else {
                    equals(y, x)
                }
            })))
        }
        "Skip" | "Take" => {
            let n = to_i64(arg(args, 0))?.max(0) as usize;
            Ok(list_of(if name == "Skip" {
                items.into_iter().skip(n).collect()
            } else {
                items.into_iter().take(n).collect()
            }))
        }
        "SkipWhile" | "TakeWhile" => {
            let f = lambda(arg(args, 0))?;
            let mut cut = items.len();
            for (i, x) in items.iter().enumerate() {
                if !test(it, &f, x, i)? {
                    cut = i;
                    break;
                }
            }
            let (head, tail) = items.split_at(cut);
            Ok(list_of(
                if name == "TakeWhile" { head } else { tail }.to_vec(),
            ))
        }
        "Distinct" => Ok(list_of(distinct(items))),
        "Aggregate" => {
            let (mut acc, f, start) = match args.len() {
                1 => {
                    let mut iter = items.iter();
                    let first = iter.next().cloned().ok_or_else(no_elements)?;
                    (first, lambda(arg(args, 0))?, 1)
                }
                _ => (arg(args, 0).clone(), lambda(arg(args, 1))?, 0),
            };
            for x in &items[start.min(items.len())..] {
                acc = it.call_closure(&f, vec![acc, x.clone()])?;
            }
            if let Some(sel) = args.get(2) {
                acc = it.call_closure(&*lambda(sel)?, vec![acc])?;
            }
            Ok(acc)
        }
        "Reverse" => Ok(list_of(items.into_iter().rev().collect())),
        "Concat" | "Union" => {
            let mut all = items;
            all.extend(iterate(it, arg(args, 0))?);
            Ok(list_of(if name == "Union" { distinct(all) } else { all }))
        }
        "Intersect" | "Except" => {
            let other = iterate(it, arg(args, 0))?;
            let keep = name == "Intersect";
            Ok(list_of(distinct(
                items
                    .into_iter()
                    .filter(|x| other.iter().any(|y| equals(x, y)) == keep)
                    .collect(),
            )))
        }
        "SequenceEqual" => {
            let other = iterate(it, arg(args, 0))?;
            Ok(Value::Bool(
                other.len() == items.len() && items.iter().zip(&other).all(|(a, b)| equals(a, b)),
            ))
        }
        "Cast" | "OfType" => Ok(list_of(items)),
        "DefaultIfEmpty" => Ok(list_of(if items.is_empty() {
            vec![a0.unwrap_or_default()]
        } else {
            items
        })),
        "GroupBy" => {
            let f = lambda(arg(args, 0))?;
            let mut groups: Vec<(Value, Vec<Value>)> = Vec::new();
            for (i, x) in items.iter().enumerate() {
                let k = apply(it, &f, x, i)?;
                match groups.iter_mut().find(|(g, _)| equals(g, &k)) {
                    Some((_, members)) => members.push(x.clone()),
                    None => groups.push((k, vec![x.clone()])),
                }
            }
            Ok(list_of(
                groups
                    .into_iter()
                    .map(|(k, m)| Value::Pair(Arc::new((k, list_of(m)))))
                    .collect(),
            ))
        }
        "ToString" => Ok(Value::str(v.to_display())),
        _ => Err(EvalError::invalid_op(format!(
            "{} has no method '{name}'",
            v.type_name()
        ))),
    }
}

/// Properties: `Count`, `Length`, `Keys`, `Values`, `Key`, `Value`.
pub fn get(v: &Value, name: &str) -> EResult<Value> {
    match (v, name) {
        (Value::List(items, _), "Count" | "Length") => Ok(Value::Int(items.lock().len() as i64)),
        (Value::Bytes(b), "Length" | "Count") => Ok(Value::Int(b.lock().len() as i64)),
        (Value::Dict(e), "Count") => Ok(Value::Int(e.lock().len() as i64)),
        (Value::Dict(e), "Keys") => Ok(list_of(e.lock().iter().map(|(k, _)| k.clone()).collect())),
        (Value::Dict(e), "Values") => {
            Ok(list_of(e.lock().iter().map(|(_, v)| v.clone()).collect()))
        }
        (Value::Dict(e), other) => {
            // Anonymous-object members.
            e.lock()
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if &**s == other))
                .map(|(_, v)| v.clone())
                .ok_or_else(|| EvalError::invalid_op(format!("the object has no member '{other}'")))
        }
        (Value::Pair(p), "Key") => Ok(p.0.clone()),
        (Value::Pair(p), "Value") => Ok(p.1.clone()),
        _ => Err(EvalError::invalid_op(format!(
            "{} has no property '{name}'",
            v.type_name()
        ))),
    }
}

pub fn index_get(v: &Value, key: &Value) -> EResult<Value> {
    match v {
        Value::List(items, _) => {
            let i = to_i64(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| items.lock().get(i).cloned())
                .ok_or_else(EvalError::index_out_of_range)
        }
        Value::Bytes(b) => {
            let i = to_i64(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| b.lock().get(i).copied())
                .map(|x| Value::Int(x as i64))
                .ok_or_else(EvalError::index_out_of_range)
        }
        Value::Dict(e) => e
            .lock()
            .iter()
            .find(|(k, _)| equals(k, key))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| EvalError::key_not_found(&key.to_display())),
        other => Err(EvalError::invalid_op(format!(
            "a {} cannot be indexed",
            other.type_name()
        ))),
    }
}

pub fn index_set(v: &Value, key: &Value, x: Value) -> EResult<()> {
    match v {
        Value::List(items, _) => {
            let i = to_i64(key)?;
            let mut g = items.lock();
            match usize::try_from(i).ok().and_then(|i| g.get_mut(i)) {
                Some(slot) => {
                    *slot = x;
                    Ok(())
                }
                None => Err(EvalError::index_out_of_range()),
            }
        }
        Value::Bytes(b) => {
            let i = to_i64(key)?;
            let byte = to_i64(&x)? as u8;
            let mut g = b.lock();
            match usize::try_from(i).ok().and_then(|i| g.get_mut(i)) {
                Some(slot) => {
                    *slot = byte;
                    Ok(())
                }
                None => Err(EvalError::index_out_of_range()),
            }
        }
        Value::Dict(e) => {
            let mut g = e.lock();
            match g.iter_mut().find(|(k, _)| equals(k, key)) {
                Some(slot) => slot.1 = x,
                None => g.push((key.clone(), x)),
            }
            Ok(())
        }
        other => Err(EvalError::invalid_op(format!(
            "a {} cannot be indexed",
            other.type_name()
        ))),
    }
}

/// `new List<T>(...)`, `new Dictionary<K, V>()`, `new HashSet<T>(...)`.
pub fn construct(it: &mut Interp, name: &str, args: &[Value]) -> EResult<Value> {
    let initial = match args.first() {
        Some(v @ (Value::List(..) | Value::Json(_) | Value::Dict(_) | Value::Str(_))) => {
            iterate(it, v)?
        }
        _ => Vec::new(),
    };
    Ok(match name {
        "Dictionary" => {
            let entries = initial
                .into_iter()
                .filter_map(|p| match p {
                    Value::Pair(p) => Some((p.0.clone(), p.1.clone())),
                    _ => None,
                })
                .collect();
            Value::Dict(Shared::new(entries))
        }
        "HashSet" => Value::List(Shared::new(distinct(initial)), ListKind::HashSet),
        _ => list_of(initial),
    })
}

pub fn call_static(it: &mut Interp, name: &str, args: &[Value]) -> EResult<Value> {
    match name {
        "Range" => {
            let (start, count) = (to_i64(arg(args, 0))?, to_i64(arg(args, 1))?);
            if count < 0 {
                return Err(EvalError::out_of_range("count"));
            }
            it.charge(count as usize * 16)?;
            Ok(list_of((start..start + count).map(Value::Int).collect()))
        }
        "Repeat" => {
            let count = to_i64(arg(args, 1))?.max(0) as usize;
            it.charge(count * 16)?;
            Ok(list_of(vec![arg(args, 0).clone(); count]))
        }
        "Empty" => Ok(list_of(Vec::new())),
        _ => Err(EvalError::invalid_op(format!(
            "Enumerable has no method '{name}'"
        ))),
    }
}

//! `String` (instance and static members), `String.Format` and
//! `StringBuilder`. Indices are in characters (C# counts UTF-16 units;
//! the two agree outside astral characters).

use super::{arg, ignore_case, list_of, opt_str, req_str, to_i64, Native};
use crate::expr::eval::{EResult, EvalError, Interp};
use crate::expr::value::{Shared, Value};
use std::cmp::Ordering;
use std::sync::Arc;

pub const INSTANCE: &[&str] = &[
    "Length",
    "Substring",
    "Replace",
    "Contains",
    "StartsWith",
    "EndsWith",
    "IndexOf",
    "IndexOfAny",
    "LastIndexOf",
    "Trim",
    "TrimStart",
    "TrimEnd",
    "ToLower",
    "ToUpper",
    "ToLowerInvariant",
    "ToUpperInvariant",
    "Split",
    "PadLeft",
    "PadRight",
    "Insert",
    "Remove",
    "CompareTo",
    "ToCharArray",
    "Normalize",
    "AsJwt",
    "TryParseJwt",
    "AsBasic",
    "TryParseBasic",
    // StringBuilder
    "Append",
    "AppendLine",
    "AppendFormat",
    "Clear",
];

pub const STATIC: &[&str] = &[
    "Empty",
    "IsNullOrEmpty",
    "IsNullOrWhiteSpace",
    "Format",
    "Join",
    "Concat",
    "Equals",
    "Compare",
    "CompareOrdinal",
    "Copy",
];

fn chars_len(s: &str) -> usize {
    s.chars().count()
}

/// Byte offset of the `i`-th character (`None` past the end).
fn byte_at(s: &str, i: usize) -> Option<usize> {
    if i == chars_len(s) {
        return Some(s.len());
    }
    s.char_indices().nth(i).map(|(b, _)| b)
}

fn char_index(s: &str, byte: usize) -> i64 {
    s[..byte].chars().count() as i64
}

fn out_of_range(what: &str) -> EvalError {
    EvalError::out_of_range(format!(
        "Index and length must refer to a location within the string. (Parameter '{what}')"
    ))
}

/// Culture-style ordering: case-insensitive first, lower before upper.
pub fn culture_compare(a: &str, b: &str, ignore_case: bool) -> Ordering {
    let folded = a.to_lowercase().cmp(&b.to_lowercase());
    if folded != Ordering::Equal || ignore_case {
        return folded;
    }
    // Same letters: lowercase sorts first, as in the invariant culture.
    b.cmp(a)
}

pub fn get(s: &Arc<str>, name: &str) -> EResult<Value> {
    match name {
        "Length" => Ok(Value::Int(chars_len(s) as i64)),
        _ => Err(EvalError::invalid_op(format!(
            "String has no property '{name}'"
        ))),
    }
}

pub fn static_get(name: &str) -> EResult<Value> {
    match name {
        "Empty" => Ok(Value::str("")),
        _ => Err(EvalError::invalid_op(format!(
            "String has no static property '{name}'"
        ))),
    }
}

fn lower(s: &str, ic: bool) -> std::borrow::Cow<'_, str> {
    if ic {
        std::borrow::Cow::Owned(s.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn trim_set(args: &[Value]) -> EResult<Option<Vec<char>>> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut set = Vec::new();
    for a in args {
        match a {
            Value::Char(c) => set.push(*c),
            Value::List(items, _) => {
                for i in items.lock().iter() {
                    if let Value::Char(c) = i {
                        set.push(*c);
                    }
                }
            }
            Value::Str(s) => set.extend(s.chars()),
            _ => {}
        }
    }
    Ok(Some(set))
}

/// Separators of `Split`: chars, strings, arrays of either.
fn separators(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Char(c) => out.push(c.to_string()),
        Value::Str(s) => out.push(s.to_string()),
        Value::List(items, _) => {
            for i in items.lock().iter() {
                separators(i, out);
            }
        }
        _ => {}
    }
}

fn split(s: &str, args: &[Value]) -> EResult<Value> {
    let mut seps = Vec::new();
    let mut count = usize::MAX;
    let mut remove_empty = false;
    let mut trim = false;
    for a in args {
        match a {
            Value::Int(n) => count = (*n).max(0) as usize,
            Value::Enum(_, m) => {
                remove_empty |= m.contains("RemoveEmptyEntries");
                trim |= m.contains("TrimEntries");
            }
            other => separators(other, &mut seps),
        }
    }
    seps.retain(|s| !s.is_empty());
    let mut parts: Vec<String> = Vec::new();
    if seps.is_empty() {
        // No separator: split on white space.
        parts = s.split(char::is_whitespace).map(str::to_string).collect();
    } else {
        let mut rest = s;
        loop {
            if parts.len() + 1 >= count {
                parts.push(rest.to_string());
                break;
            }
            let hit = seps
                .iter()
                .filter_map(|sep| rest.find(sep.as_str()).map(|i| (i, sep.len())))
                .min();
            match hit {
                Some((i, len)) => {
                    parts.push(rest[..i].to_string());
                    rest = &rest[i + len..];
                }
                None => {
                    parts.push(rest.to_string());
                    break;
                }
            }
        }
    }
    if trim {
        parts = parts.into_iter().map(|p| p.trim().to_string()).collect();
    }
    if remove_empty {
        parts.retain(|p| !p.is_empty());
    }
    if count == 0 {
        parts.clear();
    }
    Ok(Value::new_array(
        parts.into_iter().map(Value::str).collect(),
    ))
}

pub fn call(it: &mut Interp, s: &Arc<str>, name: &str, args: &mut [Value]) -> EResult<Value> {
    let a0 = arg(args, 0).clone();
    let n = args.len();
    match name {
        "Substring" => {
            let start = to_i64(&a0)?;
            let total = chars_len(s) as i64;
            let len = if n > 1 {
                to_i64(&args[1])?
            } else {
                total - start
            };
            if start < 0 || start > total {
                return Err(out_of_range("startIndex"));
            }
            if len < 0 || start + len > total {
                return Err(out_of_range("length"));
            }
            let b0 = byte_at(s, start as usize).unwrap_or(s.len());
            let b1 = byte_at(s, (start + len) as usize).unwrap_or(s.len());
            Ok(Value::str(&s[b0..b1]))
        }
        "Replace" => {
            let from = match &a0 {
                Value::Char(c) => c.to_string(),
                v => req_str(v, "oldValue")?,
            };
            if from.is_empty() {
                return Err(EvalError::argument(
                    "The value cannot be an empty string. (Parameter 'oldValue')",
                ));
            }
            let to = match arg(args, 1) {
                Value::Char(c) => c.to_string(),
                v => opt_str(v)?.unwrap_or_default(),
            };
            if ignore_case(args.get(2)) {
                let re = regex::RegexBuilder::new(&regex::escape(&from))
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| EvalError::argument(e.to_string()))?;
                return Ok(Value::str(
                    re.replace_all(s, regex::NoExpand(&to)).into_owned(),
                ));
            }
            let count = s.matches(from.as_str()).count();
            it.charge(s.len() + count.saturating_mul(to.len()))?;
            Ok(Value::str(s.replace(from.as_str(), &to)))
        }
        "Contains" => {
            let needle = match &a0 {
                Value::Char(c) => c.to_string(),
                v => req_str(v, "value")?,
            };
            let ic = ignore_case(args.get(1));
            Ok(Value::Bool(lower(s, ic).contains(&*lower(&needle, ic))))
        }
        "StartsWith" | "EndsWith" => {
            let needle = match &a0 {
                Value::Char(c) => c.to_string(),
                v => req_str(v, "value")?,
            };
            let ic = ignore_case(args.get(1));
            let (hay, needle) = (lower(s, ic), lower(&needle, ic));
            Ok(Value::Bool(if name == "StartsWith" {
                hay.starts_with(&*needle)
            } else {
                hay.ends_with(&*needle)
            }))
        }
        "IndexOf" | "LastIndexOf" => {
            let needle = match &a0 {
                Value::Char(c) => c.to_string(),
                v => req_str(v, "value")?,
            };
            let mut start = 0usize;
            let mut cmp = None;
            for a in &args[1..] {
                match a {
                    Value::Int(i) if start == 0 => start = (*i).max(0) as usize,
                    Value::Enum(..) => cmp = Some(a),
                    _ => {}
                }
            }
            let ic = ignore_case(cmp);
            let hay = lower(s, ic).into_owned();
            let needle = lower(&needle, ic).into_owned();
            if name == "IndexOf" {
                let b = byte_at(&hay, start).ok_or_else(|| out_of_range("startIndex"))?;
                Ok(Value::Int(
                    hay[b..]
                        .find(&needle)
                        .map(|i| char_index(&hay, b + i))
                        .unwrap_or(-1),
                ))
            } else {
                Ok(Value::Int(
                    hay.rfind(&needle)
                        .map(|i| char_index(&hay, i))
                        .unwrap_or(-1),
                ))
            }
        }
        "IndexOfAny" => {
            let set = trim_set(&args[..1])?.unwrap_or_default();
            Ok(Value::Int(
                s.chars()
                    .position(|c| set.contains(&c))
                    .map(|i| i as i64)
                    .unwrap_or(-1),
            ))
        }
        "Trim" | "TrimStart" | "TrimEnd" => {
            let set = trim_set(args)?;
            let pred = |c: char| match &set {
                Some(set) => set.contains(&c),
                None => c.is_whitespace(),
            };
            Ok(Value::str(match name {
                "Trim" => s.trim_matches(pred),
                "TrimStart" => s.trim_start_matches(pred),
                _ => s.trim_end_matches(pred),
            }))
        }
        "ToLower" | "ToLowerInvariant" => Ok(Value::str(s.to_lowercase())),
        "ToUpper" | "ToUpperInvariant" => Ok(Value::str(s.to_uppercase())),
        "Split" => split(s, args),
        "PadLeft" | "PadRight" => {
            let width = to_i64(&a0)?;
            let fill = match arg(args, 1) {
                Value::Char(c) => *c,
                _ => ' ',
            };
            let len = chars_len(s) as i64;
            if width <= len {
                return Ok(Value::Str(s.clone()));
            }
            it.charge(width as usize)?;
            let pad: String = std::iter::repeat_n(fill, (width - len) as usize).collect();
            Ok(Value::str(if name == "PadLeft" {
                format!("{pad}{s}")
            } else {
                format!("{s}{pad}")
            }))
        }
        "Insert" => {
            let at = to_i64(&a0)?;
            let b = byte_at(s, at.max(0) as usize)
                .filter(|_| at >= 0)
                .ok_or_else(|| out_of_range("startIndex"))?;
            let ins = req_str(arg(args, 1), "value")?;
            Ok(Value::str(format!("{}{ins}{}", &s[..b], &s[b..])))
        }
        "Remove" => {
            let start = to_i64(&a0)?;
            let total = chars_len(s) as i64;
            let count = if n > 1 {
                to_i64(&args[1])?
            } else {
                total - start
            };
            if start < 0 || count < 0 || start + count > total {
                return Err(out_of_range("count"));
            }
            let b0 = byte_at(s, start as usize).unwrap_or(s.len());
            let b1 = byte_at(s, (start + count) as usize).unwrap_or(s.len());
            Ok(Value::str(format!("{}{}", &s[..b0], &s[b1..])))
        }
        "Equals" => {
            let other = opt_str(&a0).unwrap_or(None);
            let ic = ignore_case(args.get(1));
            Ok(Value::Bool(match other {
                Some(o) => lower(s, ic) == lower(&o, ic),
                None => false,
            }))
        }
        "CompareTo" => {
            let other = opt_str(&a0)?.unwrap_or_default();
            Ok(Value::Int(culture_compare(s, &other, false) as i64))
        }
        "ToCharArray" => Ok(Value::new_array(s.chars().map(Value::Char).collect())),
        "Normalize" => Ok(Value::Str(s.clone())),
        "ToString" => match args.first() {
            None => Ok(Value::Str(s.clone())),
            Some(_) => Ok(Value::Str(s.clone())),
        },
        "AsJwt" => Ok(super::natives::parse_jwt(s)
            .map(|j| Value::Native(Arc::new(Native::Jwt(j))))
            .unwrap_or(Value::Null)),
        "TryParseJwt" => {
            let jwt = super::natives::parse_jwt(s);
            let ok = jwt.is_some();
            if let Some(slot) = args.first_mut() {
                *slot = jwt
                    .map(|j| Value::Native(Arc::new(Native::Jwt(j))))
                    .unwrap_or(Value::Null);
            }
            Ok(Value::Bool(ok))
        }
        "AsBasic" => Ok(super::natives::parse_basic(s).unwrap_or(Value::Null)),
        "TryParseBasic" => {
            let b = super::natives::parse_basic(s);
            let ok = b.is_some();
            if let Some(slot) = args.first_mut() {
                *slot = b.unwrap_or(Value::Null);
            }
            Ok(Value::Bool(ok))
        }
        // A string is an IEnumerable<char>.
        _ => super::linq::call(it, &Value::Str(s.clone()), name, args),
    }
}

pub fn call_static(it: &mut Interp, name: &str, args: &[Value]) -> EResult<Value> {
    let a0 = arg(args, 0);
    match name {
        "IsNullOrEmpty" => Ok(Value::Bool(opt_str(a0)?.is_none_or(|s| s.is_empty()))),
        "IsNullOrWhiteSpace" => Ok(Value::Bool(
            opt_str(a0)?.is_none_or(|s| s.trim().is_empty()),
        )),
        "Format" => {
            let f = req_str(a0, "format")?;
            let rest: Vec<Value> = match args.get(1) {
                Some(Value::List(items, _)) if args.len() == 2 => items.lock().clone(),
                _ => args[1.min(args.len())..].to_vec(),
            };
            it.string(format(&f, &rest)?)
        }
        "Join" => {
            let sep = match a0 {
                Value::Char(c) => c.to_string(),
                v => opt_str(v)?.unwrap_or_default(),
            };
            let items: Vec<Value> = if args.len() == 2 {
                super::iterate(it, &args[1])?
            } else {
                args[1..].to_vec()
            };
            let joined = items
                .iter()
                .map(Value::to_display)
                .collect::<Vec<_>>()
                .join(&sep);
            it.string(joined)
        }
        "Concat" => {
            let items: Vec<Value> = match args {
                [one @ (Value::List(..) | Value::Host(_))] => super::iterate(it, one)?,
                _ => args.to_vec(),
            };
            let s: String = items.iter().map(Value::to_display).collect();
            it.string(s)
        }
        "Equals" => {
            let (x, y) = (opt_str(a0)?, opt_str(arg(args, 1))?);
            let ic = ignore_case(args.get(2));
            Ok(Value::Bool(match (x, y) {
                (Some(x), Some(y)) => lower(&x, ic) == lower(&y, ic),
                (None, None) => true,
                _ => false,
            }))
        }
        "Compare" | "CompareOrdinal" => {
            let x = opt_str(a0)?.unwrap_or_default();
            let y = opt_str(arg(args, 1))?.unwrap_or_default();
            let ord = if name == "CompareOrdinal" {
                x.cmp(&y)
            } else {
                culture_compare(&x, &y, ignore_case(args.get(2)))
            };
            Ok(Value::Int(ord as i64))
        }
        "Copy" => Ok(a0.clone()),
        _ => Err(EvalError::invalid_op(format!(
            "String has no static method '{name}'"
        ))),
    }
}

/// `String.Format` / `AppendFormat`: `{0}`, `{0,5}`, `{0:yyyy}`, `{{`.
pub fn format(f: &str, args: &[Value]) -> EResult<String> {
    let bad = || EvalError::format("Input string was not in a correct format.");
    let mut out = String::new();
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(bad()),
            '{' => {
                let mut spec = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => spec.push(c),
                        None => return Err(bad()),
                    }
                }
                let (head, fmt) = match spec.split_once(':') {
                    Some((h, f)) => (h, Some(f)),
                    None => (spec.as_str(), None),
                };
                let (idx, al) = match head.split_once(',') {
                    Some((i, a)) => (i, Some(a)),
                    None => (head, None),
                };
                let idx: usize = idx.trim().parse().map_err(|_| bad())?;
                let v = args.get(idx).ok_or_else(|| {
                    EvalError::format(
                        "Index (zero based) must be greater than or equal to zero and less than the size of the argument list.",
                    )
                })?;
                let text = match fmt {
                    Some(f) => super::format_value(v, f)?,
                    None => v.to_display(),
                };
                out.push_str(&super::align(&text, al));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `new String(c, n)` / `new string(char[])`.
pub fn new_string(it: &mut Interp, args: &[Value]) -> EResult<Value> {
    match args {
        [Value::Char(c), n] => {
            let n = to_i64(n)?.max(0) as usize;
            it.charge(n * c.len_utf8())?;
            Ok(Value::str(std::iter::repeat_n(*c, n).collect::<String>()))
        }
        [Value::List(items, _)] => Ok(Value::str(
            items
                .lock()
                .iter()
                .map(Value::to_display)
                .collect::<String>(),
        )),
        _ => Err(EvalError::argument(
            "new string(...) takes (char, count) or (char[])",
        )),
    }
}

pub fn new_builder(args: &[Value]) -> EResult<Value> {
    let init = match args.first() {
        Some(Value::Str(s)) => s.to_string(),
        _ => String::new(),
    };
    Ok(Value::Native(Arc::new(Native::StringBuilder(Shared::new(
        init,
    )))))
}

/// Members of a `StringBuilder`.
pub fn builder_call(
    it: &mut Interp,
    this: &Arc<Native>,
    sb: &Shared<String>,
    name: &str,
    args: &[Value],
) -> EResult<Value> {
    let text = match name {
        "Append" => args.iter().map(Value::to_display).collect::<String>(),
        "AppendLine" => format!(
            "{}\n",
            args.iter().map(Value::to_display).collect::<String>()
        ),
        "AppendFormat" => format(
            &req_str(arg(args, 0), "format")?,
            &args[1.min(args.len())..],
        )?,
        "Clear" => {
            sb.lock().clear();
            return Ok(Value::Native(this.clone()));
        }
        "ToString" => return Ok(Value::str(sb.lock().as_str())),
        "Replace" => {
            let from = req_str(arg(args, 0), "oldValue")?;
            let to = opt_str(arg(args, 1))?.unwrap_or_default();
            let mut g = sb.lock();
            *g = g.replace(&from, &to);
            return Ok(Value::Native(this.clone()));
        }
        _ => {
            return Err(EvalError::invalid_op(format!(
                "StringBuilder has no method '{name}'"
            )))
        }
    };
    let len = {
        let mut g = sb.lock();
        g.push_str(&text);
        g.len()
    };
    it.charge(text.len())?;
    if len > 16 << 20 {
        return Err(EvalError::new(
            crate::expr::eval::LIMIT,
            "StringBuilder grew past 16 MiB",
        ));
    }
    Ok(Value::Native(this.clone()))
}

/// `"a,b".Split(',')` etc. as lists, for LINQ callers.
pub fn chars(s: &str) -> Value {
    list_of(s.chars().map(Value::Char).collect())
}

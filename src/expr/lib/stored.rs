//! A response a `send-request` stored in `context.Variables` (an
//! `IResponse` value detached from the context): `StatusCode`,
//! `StatusReason`, `Headers` (a read-only dictionary of string arrays with
//! APIM's comma-joining `GetValueOrDefault`) and `Body.As<T>()`.

use super::natives::Native;
use super::{arg, list_of, req_str};
use crate::expr::ast::TypeRef;
use crate::expr::context::Response;
use crate::expr::eval::{EResult, EvalError, Interp};
use crate::expr::value::Value;
use std::sync::Arc;

/// Wraps a response as an expression value.
pub fn value(r: Response) -> Value {
    Value::Native(Arc::new(Native::Response(Arc::new(r))))
}

/// The response a value holds, if it is a stored one.
pub fn response_of(v: &Value) -> Option<&Response> {
    match v {
        Value::Native(n) => match &**n {
            Native::Response(r) => Some(r),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `n` is one of this module's values.
pub fn owns(n: &Native) -> bool {
    matches!(
        n,
        Native::Response(_) | Native::StoredHeaders(_) | Native::StoredBody(_)
    )
}

fn missing(n: &Native, name: &str) -> EvalError {
    EvalError::invalid_op(format!("{} has no member '{name}'", n.type_name()))
}

fn headers(r: &Response) -> Vec<(Value, Value)> {
    let h = &r.message.headers;
    h.names()
        .into_iter()
        .map(|n| {
            let vals = h.get_all(n).into_iter().map(Value::str).collect();
            (Value::str(n), Value::new_array(vals))
        })
        .collect()
}

pub fn get(n: &Native, name: &str) -> EResult<Value> {
    Ok(match (n, name) {
        (Native::Response(r), "StatusCode") => Value::Int(r.status as i64),
        (Native::Response(r), "StatusReason") => Value::str(r.reason.as_str()),
        (Native::Response(r), "Headers") => {
            Value::Native(Arc::new(Native::StoredHeaders(r.clone())))
        }
        (Native::Response(r), "Body") => {
            if r.message.body.as_ref().is_some_and(|b| !b.is_empty()) {
                Value::Native(Arc::new(Native::StoredBody(r.clone())))
            } else {
                Value::Null
            }
        }
        (Native::StoredHeaders(r), "Count") => Value::Int(headers(r).len() as i64),
        (Native::StoredHeaders(r), "Keys") => {
            list_of(headers(r).into_iter().map(|(k, _)| k).collect())
        }
        (Native::StoredHeaders(r), "Values") => {
            list_of(headers(r).into_iter().map(|(_, v)| v).collect())
        }
        _ => return Err(missing(n, name)),
    })
}

pub fn index(n: &Native, key: &Value) -> EResult<Value> {
    match n {
        Native::StoredHeaders(r) => {
            let k = req_str(key, "key")?;
            headers(r)
                .into_iter()
                .find(|(name, _)| name.to_display().eq_ignore_ascii_case(&k))
                .map(|(_, v)| v)
                .ok_or_else(|| EvalError::key_not_found(&k))
        }
        _ => Err(EvalError::invalid_op(format!(
            "a {} cannot be indexed",
            n.type_name()
        ))),
    }
}

pub fn iterate(n: &Native) -> EResult<Vec<Value>> {
    match n {
        Native::StoredHeaders(r) => Ok(headers(r)
            .into_iter()
            .map(|(k, v)| Value::Pair(Arc::new((k, v))))
            .collect()),
        _ => Err(EvalError::invalid_op(format!(
            "a {} cannot be enumerated",
            n.type_name()
        ))),
    }
}

pub fn call(
    it: &mut Interp,
    n: &Native,
    name: &str,
    targs: &[TypeRef],
    args: &mut [Value],
) -> EResult<Value> {
    match (n, name) {
        (Native::StoredHeaders(r), "GetValueOrDefault") => {
            let k = req_str(arg(args, 0), "key")?;
            Ok(match r.message.headers.joined(&k) {
                Some(v) => Value::str(v),
                None => arg(args, 1).clone(),
            })
        }
        (Native::StoredHeaders(r), "ContainsKey") => {
            let k = req_str(arg(args, 0), "key")?;
            Ok(Value::Bool(r.message.headers.contains(&k)))
        }
        (Native::StoredHeaders(_), "TryGetValue") => {
            let found = index(n, arg(args, 0)).ok();
            let ok = found.is_some();
            if let Some(slot) = args.get_mut(1) {
                *slot = found.unwrap_or_default();
            }
            Ok(Value::Bool(ok))
        }
        (Native::StoredHeaders(_), "ToString") => Ok(Value::str(n.to_display())),
        (Native::StoredHeaders(_), _) => {
            let items = iterate(n)?;
            super::linq::call(it, &list_of(items), name, args)
        }
        (Native::StoredBody(r), "As" | "AsFormUrlEncodedContent") => {
            let body = r.message.body.clone().unwrap_or_default();
            super::host::body_as(it, &body, name, targs)
        }
        (_, "ToString") => Ok(Value::str(n.to_display())),
        _ => Err(missing(n, name)),
    }
}

#[cfg(test)]
mod tests {
    use crate::expr::context::{Ctx, Headers, Message, Response};
    use crate::expr::{compile, Limits};

    fn ev(ctx: &Ctx, src: &str) -> String {
        let c = compile(src, 0).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        match c.eval(ctx, Limits::default()) {
            Ok(v) => v.to_display(),
            Err(e) => format!("error {}: {}", e.kind, e.message),
        }
    }

    #[test]
    fn a_stored_response_reads_like_iresponse() {
        let mut ctx = Ctx::default();
        let mut headers = Headers::default();
        headers.append("Content-Type", "application/json".into());
        headers.append("X-Multi", "a".into());
        headers.append("x-multi", "b".into());
        ctx.variables.insert(
            "r".into(),
            super::value(Response {
                status: 201,
                reason: "Created".into(),
                message: Message {
                    headers,
                    body: Some(bytes::Bytes::from_static(br#"{"token":"t1","n":[1,2]}"#)),
                },
            }),
        );
        for (src, want) in [
            (
                r#"@(((IResponse)context.Variables["r"]).StatusCode)"#,
                "201",
            ),
            (
                r#"@(((IResponse)context.Variables["r"]).StatusReason)"#,
                "Created",
            ),
            (
                r#"@(((IResponse)context.Variables["r"]).Body.As<JObject>()["token"].ToString())"#,
                "t1",
            ),
            (
                r#"@(((IResponse)context.Variables["r"]).Body.As<JObject>()["n"].Count())"#,
                "2",
            ),
            (
                r#"@(context.Variables.GetValueOrDefault<IResponse>("r").Headers.GetValueOrDefault("x-multi", ""))"#,
                "a,b",
            ),
            (
                r#"@(((IResponse)context.Variables["r"]).Headers["Content-Type"][0])"#,
                "application/json",
            ),
            (
                r#"@{ var r = (IResponse)context.Variables["r"]; return r.Body.As<string>().Length; }"#,
                "24",
            ),
            (r#"@(context.Variables["r"] is IResponse)"#, "True"),
            (
                r#"@(((IResponse)context.Variables["r"]).Headers.ContainsKey("content-type"))"#,
                "True",
            ),
            (
                r#"@(context.Variables.GetValueOrDefault<IResponse>("missing") == null)"#,
                "True",
            ),
        ] {
            assert_eq!(ev(&ctx, src), want, "{src}");
        }
    }
}

//! The `context` object model (apim.md §4.3): members of [`Host`] handles,
//! read live from the evaluation's [`Ctx`].
//!
//! [`MODEL`] is the typed surface the binder checks `context.…` chains
//! against: each interface, its members and their result types.

use super::{arg, list_of, req_str};
use crate::expr::ast::TypeRef;
use crate::expr::context::{Ctx, Headers, Host, Url, UrlWhich};
use crate::expr::eval::{EResult, EvalError, Interp};
use crate::expr::time::{DateTime, TimeSpan};
use crate::expr::value::{Shared, Value};
use std::sync::Arc;

/// Members that behave like `IReadOnlyDictionary` (LINQ applies too).
const DICT: &[(&str, &str)] = &[
    ("GetValueOrDefault", "?"),
    ("ContainsKey", "Boolean"),
    ("TryGetValue", "Boolean"),
    ("Keys", "?"),
    ("Values", "?"),
    ("Count", "Int32"),
];

/// Interfaces of the context model: (type, [(member, result type)]).
/// `?` is a type the binder does not track further.
pub const MODEL: &[(&str, &[(&str, &str)])] = &[
    (
        "IProxyContext",
        &[
            ("Api", "IApi"),
            ("Deployment", "IDeployment"),
            ("Elapsed", "TimeSpan"),
            ("LastError", "ILastError"),
            ("Operation", "IOperation"),
            ("Product", "IProduct"),
            ("Request", "IRequest"),
            ("RequestId", "Guid"),
            ("Response", "IResponse"),
            ("Subscription", "ISubscription"),
            ("Timestamp", "DateTime"),
            ("Tracing", "Boolean"),
            ("User", "IUser"),
            ("Variables", "IVariables"),
            ("Trace", "?"),
        ],
    ),
    (
        "IRequest",
        &[
            ("Body", "IMessageBody"),
            ("Certificate", "X509Certificate2"),
            ("Headers", "IHeaders"),
            ("IpAddress", "String"),
            ("MatchedParameters", "IMatchedParameters"),
            ("Method", "String"),
            ("OriginalUrl", "IUrl"),
            ("Url", "IUrl"),
            ("PrivateEndpointConnection", "?"),
        ],
    ),
    (
        "IResponse",
        &[
            ("Body", "IMessageBody"),
            ("Headers", "IHeaders"),
            ("StatusCode", "Int32"),
            ("StatusReason", "String"),
        ],
    ),
    ("IHeaders", DICT),
    ("IQuery", DICT),
    ("IMatchedParameters", DICT),
    ("IVariables", DICT),
    (
        "IUrl",
        &[
            ("Scheme", "String"),
            ("Host", "String"),
            ("Port", "Int32"),
            ("Path", "String"),
            ("Query", "IQuery"),
            ("QueryString", "String"),
            ("ToUri", "?"),
        ],
    ),
    (
        "IMessageBody",
        &[("As", "?"), ("AsFormUrlEncodedContent", "?")],
    ),
    (
        "IApi",
        &[
            ("Id", "String"),
            ("Name", "String"),
            ("Path", "String"),
            ("Protocols", "?"),
            ("ServiceUrl", "IUrl"),
            (
                "SubscriptionKeyParameterNames",
                "ISubscriptionKeyParameterNames",
            ),
            ("IsCurrentRevision", "Boolean"),
            ("Revision", "String"),
            ("Version", "String"),
        ],
    ),
    (
        "ISubscriptionKeyParameterNames",
        &[("Header", "String"), ("Query", "String")],
    ),
    (
        "IOperation",
        &[
            ("Id", "String"),
            ("Method", "String"),
            ("Name", "String"),
            ("UrlTemplate", "String"),
        ],
    ),
    (
        "IProduct",
        &[
            ("ApprovalRequired", "Boolean"),
            ("Groups", "IGroups"),
            ("Id", "String"),
            ("Name", "String"),
            ("State", "String"),
            ("SubscriptionLimit", "?"),
            ("SubscriptionRequired", "Boolean"),
        ],
    ),
    (
        "ISubscription",
        &[
            ("CreatedDate", "DateTime"),
            ("EndDate", "?"),
            ("Id", "String"),
            ("Key", "String"),
            ("Name", "String"),
            ("PrimaryKey", "String"),
            ("SecondaryKey", "String"),
            ("StartDate", "?"),
        ],
    ),
    (
        "IUser",
        &[
            ("Email", "String"),
            ("FirstName", "String"),
            ("LastName", "String"),
            ("Groups", "IGroups"),
            ("Id", "String"),
            ("Identities", "?"),
            ("Note", "String"),
            ("RegistrationDate", "DateTime"),
        ],
    ),
    (
        "IDeployment",
        &[
            ("GatewayId", "String"),
            ("Region", "String"),
            ("ServiceId", "String"),
            ("ServiceName", "String"),
        ],
    ),
    (
        "ILastError",
        &[
            ("Source", "String"),
            ("Reason", "String"),
            ("Message", "String"),
            ("Scope", "String"),
            ("Section", "String"),
            ("Path", "String"),
            ("PolicyId", "String"),
        ],
    ),
    ("IGroups", &[("Count", "Int32")]),
    (
        "X509Certificate2",
        &[
            ("Subject", "String"),
            ("Issuer", "String"),
            ("Thumbprint", "String"),
            ("SerialNumber", "String"),
            ("NotBefore", "DateTime"),
            ("NotAfter", "DateTime"),
            ("SubjectName", "X500DistinguishedName"),
            ("IssuerName", "X500DistinguishedName"),
            ("Verify", "Boolean"),
            ("VerifyNoRevocation", "Boolean"),
        ],
    ),
    ("X500DistinguishedName", &[("Name", "String")]),
    ("IGroup", &[("Id", "String"), ("Name", "String")]),
];

/// The members of the model that are methods (the rest are properties).
pub const METHODS: &[&str] = &[
    "GetValueOrDefault",
    "ContainsKey",
    "TryGetValue",
    "As",
    "AsFormUrlEncodedContent",
    "ToUri",
    "Trace",
    "Verify",
    "VerifyNoRevocation",
];

/// Whether a model type is enumerable (LINQ members apply).
pub fn enumerable(ty: &str) -> bool {
    matches!(
        ty,
        "IHeaders" | "IQuery" | "IMatchedParameters" | "IVariables" | "IGroups"
    )
}

/// Every member name of the model.
pub fn all_members() -> impl Iterator<Item = &'static str> {
    MODEL.iter().flat_map(|(_, m)| m.iter().map(|(n, _)| *n))
}

fn s(v: &str) -> Value {
    Value::str(v)
}

fn date(d: Option<DateTime>) -> Value {
    d.map(Value::DateTime).unwrap_or(Value::Null)
}

fn url_of(ctx: &Ctx, which: UrlWhich) -> Option<&Url> {
    match which {
        UrlWhich::Url => Some(&ctx.request.url),
        UrlWhich::Original => Some(&ctx.request.original_url),
        UrlWhich::Service => ctx.api.as_ref().and_then(|a| a.service_url.as_ref()),
    }
}

fn which(h: &Host) -> UrlWhich {
    match h {
        Host::OriginalUrl => UrlWhich::Original,
        Host::ServiceUrl => UrlWhich::Service,
        _ => UrlWhich::Url,
    }
}

fn headers<'a>(ctx: &'a Ctx, h: &Host) -> Option<&'a Headers> {
    match h {
        Host::RequestHeaders => Some(&ctx.request.message.headers),
        Host::ResponseHeaders => ctx.response.as_ref().map(|r| &r.message.headers),
        _ => None,
    }
}

fn missing(h: &Host, name: &str) -> EvalError {
    EvalError::invalid_op(format!("{} has no member '{name}'", h.type_name()))
}

fn groups(g: &[(String, String)]) -> Value {
    list_of(
        g.iter()
            .map(|(id, name)| {
                Value::Dict(Shared::new(vec![(s("Id"), s(id)), (s("Name"), s(name))]))
            })
            .collect(),
    )
}

pub fn get(it: &mut Interp, h: &Host, name: &str) -> EResult<Value> {
    let ctx = it.ctx;
    let v = match (h, name) {
        (Host::Context, "Api") => ctx
            .api
            .as_ref()
            .map(|_| Value::Host(Host::Api))
            .unwrap_or_default(),
        (Host::Context, "Deployment") => Value::Host(Host::Deployment),
        (Host::Context, "Elapsed") => {
            Value::TimeSpan(TimeSpan((ctx.started.elapsed().as_nanos() / 100) as i64))
        }
        (Host::Context, "LastError") => ctx
            .last_error
            .as_ref()
            .map(|_| Value::Host(Host::LastError))
            .unwrap_or_default(),
        (Host::Context, "Operation") => ctx
            .operation
            .as_ref()
            .map(|_| Value::Host(Host::Operation))
            .unwrap_or_default(),
        (Host::Context, "Product") => ctx
            .product
            .as_ref()
            .map(|_| Value::Host(Host::Product))
            .unwrap_or_default(),
        (Host::Context, "Request") => Value::Host(Host::Request),
        (Host::Context, "RequestId") => Value::Guid(ctx.request_id),
        (Host::Context, "Response") => ctx
            .response
            .as_ref()
            .map(|_| Value::Host(Host::Response))
            .unwrap_or_default(),
        (Host::Context, "Subscription") => ctx
            .subscription
            .as_ref()
            .map(|_| Value::Host(Host::Subscription))
            .unwrap_or_default(),
        (Host::Context, "Timestamp") => Value::DateTime(ctx.timestamp),
        (Host::Context, "Tracing") => Value::Bool(ctx.tracing),
        (Host::Context, "User") => ctx
            .user
            .as_ref()
            .map(|_| Value::Host(Host::User))
            .unwrap_or_default(),
        (Host::Context, "Variables") => Value::Host(Host::Variables),

        (Host::Request, "Body") => {
            if ctx
                .request
                .message
                .body
                .as_ref()
                .is_some_and(|b| !b.is_empty())
            {
                Value::Host(Host::RequestBody)
            } else {
                Value::Null
            }
        }
        (Host::Request, "Certificate") => ctx
            .request
            .certificate
            .as_ref()
            .map(|_| Value::Host(Host::Certificate))
            .unwrap_or_default(),
        (Host::Request, "PrivateEndpointConnection") => Value::Null,
        (Host::Certificate | Host::CertificateName(_), _) => {
            let c = ctx
                .request
                .certificate
                .as_ref()
                .ok_or_else(EvalError::null_ref)?;
            match (h, name) {
                (Host::Certificate, "Subject") | (Host::CertificateName(false), "Name") => {
                    s(&c.subject)
                }
                (Host::Certificate, "Issuer") | (Host::CertificateName(true), "Name") => {
                    s(&c.issuer)
                }
                (Host::Certificate, "Thumbprint") => s(&c.thumbprint),
                (Host::Certificate, "SerialNumber") => s(&c.serial_number),
                (Host::Certificate, "NotBefore") => date(c.not_before),
                (Host::Certificate, "NotAfter") => date(c.not_after),
                (Host::Certificate, "SubjectName") => Value::Host(Host::CertificateName(false)),
                (Host::Certificate, "IssuerName") => Value::Host(Host::CertificateName(true)),
                _ => return Err(missing(h, name)),
            }
        }
        (Host::Request, "Headers") => Value::Host(Host::RequestHeaders),
        (Host::Request, "IpAddress") => s(&ctx.request.ip_address),
        (Host::Request, "MatchedParameters") => Value::Host(Host::MatchedParameters),
        (Host::Request, "Method") => s(&ctx.request.method),
        (Host::Request, "OriginalUrl") => Value::Host(Host::OriginalUrl),
        (Host::Request, "Url") => Value::Host(Host::Url),

        (Host::Response, _) => {
            let Some(r) = &ctx.response else {
                return Err(EvalError::null_ref());
            };
            match name {
                "Body" => {
                    if r.message.body.as_ref().is_some_and(|b| !b.is_empty()) {
                        Value::Host(Host::ResponseBody)
                    } else {
                        Value::Null
                    }
                }
                "Headers" => Value::Host(Host::ResponseHeaders),
                "StatusCode" => Value::Int(r.status as i64),
                "StatusReason" => s(&r.reason),
                _ => return Err(missing(h, name)),
            }
        }

        (Host::Url | Host::OriginalUrl | Host::ServiceUrl, _) => {
            let Some(u) = url_of(ctx, which(h)) else {
                return Err(EvalError::null_ref());
            };
            match name {
                "Scheme" => s(&u.scheme),
                "Host" => s(&u.host),
                "Port" => Value::Int(u.port as i64),
                "Path" => s(&u.path),
                "Query" => Value::Host(Host::UrlQuery(which(h))),
                "QueryString" => s(&u.query_string()),
                _ => return Err(missing(h, name)),
            }
        }

        (Host::Api, _) => {
            let Some(a) = &ctx.api else {
                return Err(EvalError::null_ref());
            };
            match name {
                "Id" => s(&a.id),
                "Name" => s(&a.name),
                "Path" => s(&a.path),
                "Protocols" => list_of(a.protocols.iter().map(|p| s(p)).collect()),
                "ServiceUrl" => {
                    if a.service_url.is_some() {
                        Value::Host(Host::ServiceUrl)
                    } else {
                        Value::Null
                    }
                }
                "SubscriptionKeyParameterNames" => Value::Host(Host::SubscriptionKeyParameterNames),
                "IsCurrentRevision" => Value::Bool(true),
                "Revision" => s(&a.revision),
                "Version" => s(&a.version),
                _ => return Err(missing(h, name)),
            }
        }
        (Host::SubscriptionKeyParameterNames, _) => {
            let a = ctx.api.as_ref().ok_or_else(EvalError::null_ref)?;
            match name {
                "Header" => s(&a.header_name),
                "Query" => s(&a.query_name),
                _ => return Err(missing(h, name)),
            }
        }
        (Host::Operation, _) => {
            let o = ctx.operation.as_ref().ok_or_else(EvalError::null_ref)?;
            match name {
                "Id" => s(&o.id),
                "Method" => s(&o.method),
                "Name" => s(&o.name),
                "UrlTemplate" => s(&o.url_template),
                _ => return Err(missing(h, name)),
            }
        }
        (Host::Product, _) => {
            let p = ctx.product.as_ref().ok_or_else(EvalError::null_ref)?;
            match name {
                "ApprovalRequired" => Value::Bool(p.approval_required),
                "Groups" => groups(&p.groups),
                "Id" => s(&p.id),
                "Name" => s(&p.name),
                "State" => s(&p.state),
                "SubscriptionLimit" => p.subscriptions_limit.map(Value::Int).unwrap_or_default(),
                "SubscriptionRequired" => Value::Bool(p.subscription_required),
                _ => return Err(missing(h, name)),
            }
        }
        (Host::Subscription, _) => {
            let x = ctx.subscription.as_ref().ok_or_else(EvalError::null_ref)?;
            match name {
                "CreatedDate" => date(x.created),
                "EndDate" => date(x.end_date),
                "StartDate" => date(x.start_date),
                "Id" => s(&x.id),
                "Key" => s(&x.key),
                "Name" => s(&x.name),
                "PrimaryKey" => s(&x.primary_key),
                "SecondaryKey" => s(&x.secondary_key),
                _ => return Err(missing(h, name)),
            }
        }
        (Host::User, _) => {
            let u = ctx.user.as_ref().ok_or_else(EvalError::null_ref)?;
            match name {
                "Email" => s(&u.email),
                "FirstName" => s(&u.first_name),
                "LastName" => s(&u.last_name),
                "Groups" => groups(&u.groups),
                "Id" => s(&u.id),
                "Identities" => list_of(Vec::new()),
                "Note" => s(&u.note),
                "RegistrationDate" => date(u.registration_date),
                _ => return Err(missing(h, name)),
            }
        }
        (Host::Deployment, _) => {
            let d = &ctx.deployment;
            match name {
                "GatewayId" => s(&d.gateway_id),
                "Region" => s(&d.region),
                "ServiceId" | "ServiceName" => s(&d.service_name),
                _ => return Err(missing(h, name)),
            }
        }
        (Host::LastError, _) => {
            let e = ctx.last_error.as_ref().ok_or_else(EvalError::null_ref)?;
            match name {
                "Source" => s(&e.source),
                "Reason" => s(&e.reason),
                "Message" => s(&e.message),
                "Scope" => s(&e.scope),
                "Section" => s(&e.section),
                "Path" => s(&e.path),
                "PolicyId" => s(&e.policy_id),
                _ => return Err(missing(h, name)),
            }
        }
        (_, "Count") => Value::Int(entries(it, h)?.len() as i64),
        (_, "Keys") => list_of(entries(it, h)?.into_iter().map(|(k, _)| k).collect()),
        (_, "Values") => list_of(entries(it, h)?.into_iter().map(|(_, v)| v).collect()),
        _ => return Err(missing(h, name)),
    };
    Ok(v)
}

/// The (key, value) entries of a dictionary-like handle.
fn entries(it: &mut Interp, h: &Host) -> EResult<Vec<(Value, Value)>> {
    let ctx = it.ctx;
    Ok(match h {
        Host::RequestHeaders | Host::ResponseHeaders => {
            let hs = headers(ctx, h).ok_or_else(EvalError::null_ref)?;
            hs.names()
                .into_iter()
                .map(|n| {
                    let vals = hs.get_all(n).into_iter().map(s).collect();
                    (s(n), Value::new_array(vals))
                })
                .collect()
        }
        Host::UrlQuery(w) => {
            let u = url_of(ctx, *w).ok_or_else(EvalError::null_ref)?;
            let mut names: Vec<&str> = Vec::new();
            for (k, _) in &u.query {
                if !names.iter().any(|n| n.eq_ignore_ascii_case(k)) {
                    names.push(k);
                }
            }
            names
                .into_iter()
                .map(|n| {
                    let vals = u.query_values(n).into_iter().map(s).collect();
                    (s(n), Value::new_array(vals))
                })
                .collect()
        }
        Host::MatchedParameters => ctx
            .request
            .matched_parameters
            .iter()
            .map(|(k, v)| (s(k), s(v)))
            .collect(),
        Host::Variables => {
            let mut v: Vec<(Value, Value)> = ctx
                .variables
                .iter()
                .map(|(k, v)| (s(k), v.clone()))
                .collect();
            v.sort_by_key(|a| a.0.to_display());
            v
        }
        Host::UserGroups | Host::ProductGroups => Vec::new(),
        _ => {
            return Err(EvalError::invalid_op(format!(
                "{} is not a dictionary",
                h.type_name()
            )))
        }
    })
}

/// Looks one key up (headers and query case-insensitively, joined).
fn lookup(it: &mut Interp, h: &Host, key: &str) -> EResult<Option<Value>> {
    let ctx = it.ctx;
    Ok(match h {
        Host::RequestHeaders | Host::ResponseHeaders => {
            let hs = headers(ctx, h).ok_or_else(EvalError::null_ref)?;
            hs.joined(key).map(Value::str)
        }
        Host::UrlQuery(w) => {
            let u = url_of(ctx, *w).ok_or_else(EvalError::null_ref)?;
            let vals = u.query_values(key);
            (!vals.is_empty()).then(|| Value::str(vals.join(",")))
        }
        Host::MatchedParameters => ctx
            .request
            .matched_parameters
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| s(v)),
        Host::Variables => ctx.variables.get(key).cloned(),
        _ => None,
    })
}

pub fn iterate(it: &mut Interp, h: &Host) -> EResult<Vec<Value>> {
    Ok(entries(it, h)?
        .into_iter()
        .map(|(k, v)| Value::Pair(Arc::new((k, v))))
        .collect())
}

/// `handle[key]`: headers and query give `string[]`, the others their value.
pub fn index(it: &mut Interp, h: &Host, key: &Value) -> EResult<Value> {
    let k = req_str(key, "key")?;
    match h {
        Host::RequestHeaders | Host::ResponseHeaders | Host::UrlQuery(_) => {
            let found = entries(it, h)?
                .into_iter()
                .find(|(n, _)| n.to_display().eq_ignore_ascii_case(&k));
            found
                .map(|(_, v)| v)
                .ok_or_else(|| EvalError::key_not_found(&k))
        }
        _ => lookup(it, h, &k)?.ok_or_else(|| EvalError::key_not_found(&k)),
    }
}

fn typed_default(it: &mut Interp, v: Value, targs: &[TypeRef]) -> EResult<Value> {
    let Some(t) = targs.first() else {
        return Ok(v);
    };
    if v.is_null() {
        return Ok(super::default_of(t));
    }
    match super::resolve_type(&t.name) {
        Some("Object") | None => Ok(v),
        Some("String") if matches!(v, Value::Str(_)) => Ok(v),
        Some("Int32" | "Int64") if matches!(v, Value::Int(_)) => Ok(v),
        Some("Double") if matches!(v, Value::Float(_) | Value::Int(_)) => {
            Ok(Value::Float(super::to_f64(&v)?))
        }
        _ if super::is_type(&v, t) => Ok(v),
        Some(to) => {
            let _ = it;
            Err(EvalError::invalid_cast(v.type_name(), to))
        }
    }
}

pub fn call(
    it: &mut Interp,
    h: &Host,
    name: &str,
    targs: &[TypeRef],
    args: &[Value],
) -> EResult<Value> {
    match (h, name) {
        (Host::Context, "Trace") => Ok(Value::Null),
        (Host::Certificate, "Verify" | "VerifyNoRevocation") => {
            let c = it
                .ctx
                .request
                .certificate
                .as_ref()
                .ok_or_else(EvalError::null_ref)?;
            let ok = c
                .verifier
                .as_ref()
                .is_some_and(|v| v.verify(name == "Verify"));
            Ok(Value::Bool(ok))
        }
        (Host::Certificate, "ToString") => {
            let c = it
                .ctx
                .request
                .certificate
                .as_ref()
                .ok_or_else(EvalError::null_ref)?;
            Ok(s(&format!("[Subject]\n  {}\n\n[Issuer]\n  {}\n\n[Serial Number]\n  {}\n\n[Thumbprint]\n  {}\n", c.subject, c.issuer, c.serial_number, c.thumbprint)))
        }
        (Host::CertificateName(_), "ToString") => Ok(s(
            "System.Security.Cryptography.X509Certificates.X500DistinguishedName",
        )),
        (_, "GetValueOrDefault") => {
            let k = req_str(arg(args, 0), "key")?;
            let found = lookup(it, h, &k)?;
            match found {
                Some(v) => typed_default(it, v, targs),
                None => match args.get(1) {
                    Some(d) => Ok(d.clone()),
                    None => typed_default(it, Value::Null, targs),
                },
            }
        }
        (_, "ContainsKey") => {
            let k = req_str(arg(args, 0), "key")?;
            Ok(Value::Bool(lookup(it, h, &k)?.is_some()))
        }
        (Host::Url | Host::OriginalUrl | Host::ServiceUrl, "ToString" | "ToUri") => {
            let u = url_of(it.ctx, which(h)).ok_or_else(EvalError::null_ref)?;
            Ok(if name == "ToUri" {
                Value::Native(Arc::new(super::Native::Uri(u.to_string())))
            } else {
                s(&u.to_string())
            })
        }
        (Host::RequestBody | Host::ResponseBody, "As" | "AsFormUrlEncodedContent") => {
            let body = match h {
                Host::RequestBody => it.ctx.request.message.body.clone(),
                _ => it
                    .ctx
                    .response
                    .as_ref()
                    .and_then(|r| r.message.body.clone()),
            }
            .unwrap_or_default();
            body_as(it, &body, name, targs)
        }
        (_, "ToString") => Ok(s(h.type_name())),
        (_, "TryGetValue") => Err(EvalError::invalid_op(
            "TryGetValue is handled with out arguments",
        )),
        _ if enumerable(h.type_name()) => {
            let items = iterate(it, h)?;
            super::linq::call(it, &list_of(items), name, &mut args.to_vec())
        }
        _ => Err(missing(h, name)),
    }
}

/// `TryGetValue(key, out value)` on a dictionary-like handle.
pub fn try_get(it: &mut Interp, h: &Host, args: &mut [Value]) -> EResult<Value> {
    let k = req_str(arg(args, 0), "key")?;
    let found = match h {
        Host::RequestHeaders | Host::ResponseHeaders | Host::UrlQuery(_) => entries(it, h)?
            .into_iter()
            .find(|(n, _)| n.to_display().eq_ignore_ascii_case(&k))
            .map(|(_, v)| v),
        _ => lookup(it, h, &k)?,
    };
    let ok = found.is_some();
    if let Some(slot) = args.get_mut(1) {
        *slot = found.unwrap_or(Value::Null);
    }
    Ok(Value::Bool(ok))
}

/// `IMessageBody.As<T>()` / `AsFormUrlEncodedContent()` over a buffered
/// body (the request's, the response's, or a stored `send-request` one).
pub fn body_as(
    it: &mut Interp,
    body: &bytes::Bytes,
    name: &str,
    targs: &[TypeRef],
) -> EResult<Value> {
    let text = String::from_utf8_lossy(body).into_owned();
    it.charge(text.len())?;
    if name == "AsFormUrlEncodedContent" {
        let mut entries: Vec<(Value, Value)> = Vec::new();
        for (k, v) in crate::expr::context::parse_query(&text) {
            entries.push((s(&k), Value::new_array(vec![s(&v)])));
        }
        return Ok(Value::Dict(Shared::new(entries)));
    }
    let want = targs
        .first()
        .map(|t| {
            if t.array_rank > 0 {
                "Byte[]"
            } else {
                super::resolve_type(&t.name).unwrap_or(t.name.as_str())
            }
        })
        .unwrap_or("String");
    match want {
        "String" => Ok(Value::str(text)),
        "Byte[]" => Ok(Value::Bytes(Shared::new(body.to_vec()))),
        "JObject" | "JArray" | "JToken" => super::json::from_body(&text, want),
        "XDocument" => super::xml::parse_value(it, &text, "XDocument", false),
        "XElement" | "XNode" => super::xml::parse_value(it, &text, "XElement", false),
        other => Err(EvalError::invalid_op(format!(
            "IMessageBody.As<{other}>() is not supported; use string, byte[], JObject, JArray, JToken, XNode, XElement or XDocument"
        ))),
    }
}

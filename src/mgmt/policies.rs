//! Policy documents at the four scopes: `/mgmt/policy` (global),
//! `/mgmt/products/{p}/policy`, `/mgmt/apis/{a}/policy`,
//! `/mgmt/apis/{a}/operations/{o}/policy`.
//!
//! PUT takes the raw XML (`Content-Type: application/xml` or `text/*`), or
//! APIM's JSON form `{"format": "rawxml" | "xml", "value": "<policies>…"}`.
//! GET returns the XML as stored. A document that does not check is refused
//! with each problem's `line:col` in `details`.

use super::body::{self, check_if_match, etag};
use super::{commit, MgmtState};
use crate::error::{ApiError, Code, Detail};
use crate::model::{validate_id, Catalog, Change, PolicyDoc, PolicyScope};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyJson {
    #[serde(default)]
    format: Option<String>,
    value: String,
}

/// Checks that the scope's owner exists.
fn owner_exists(c: &Catalog, scope: &PolicyScope) -> Result<(), ApiError> {
    let missing = match scope {
        PolicyScope::Global | PolicyScope::Fragment(_) => None,
        PolicyScope::Product(p) => (!c.products.contains_key(p)).then(|| format!("product {p:?}")),
        PolicyScope::Api(a) => (!c.apis.contains_key(a)).then(|| format!("API {a:?}")),
        PolicyScope::Operation(a, o) => {
            if !c.apis.contains_key(a) {
                Some(format!("API {a:?}"))
            } else if !c.operations.get(a).is_some_and(|ops| ops.contains_key(o)) {
                Some(format!("operation {o:?} of API {a:?}"))
            } else {
                None
            }
        }
    };
    match missing {
        Some(what) => Err(ApiError::not_found(what)),
        None => Ok(()),
    }
}

fn xml_response(status: StatusCode, doc: &PolicyDoc) -> Response {
    let mut resp = (status, doc.xml.clone()).into_response();
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag(doc)) {
        h.insert(http::header::ETAG, v);
    }
    resp
}

/// The XML of a PUT body, in either accepted form.
fn xml_of(headers: &HeaderMap, bytes: &[u8]) -> Result<String, ApiError> {
    let ctype = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::new(Code::MalformedBody, "the policy document is not UTF-8"))?;
    if ctype.starts_with("application/json") {
        let parsed: PolicyJson = body::parse(bytes, "", &[])?;
        match parsed.format.as_deref() {
            None | Some("rawxml") | Some("xml") => Ok(parsed.value),
            Some(other) => Err(ApiError::invalid(
                "format",
                format!("{other:?} is not supported; use \"rawxml\" or \"xml\""),
            )),
        }
    } else if ctype.is_empty() || ctype.contains("xml") || ctype.starts_with("text/") {
        Ok(text.to_string())
    } else {
        Err(ApiError::new(
            Code::UnsupportedMediaType,
            "send the policy as application/xml, or as application/json {\"format\":\"rawxml\",\"value\":\"...\"}",
        ))
    }
}

async fn get(s: MgmtState, scope: PolicyScope) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    owner_exists(&c, &scope)?;
    let doc = c.policies.get(&scope.key()).ok_or_else(|| match &scope {
        PolicyScope::Fragment(id) => ApiError::not_found(format!("policy fragment {id:?}")),
        _ => ApiError::not_found("policy"),
    })?;
    Ok(xml_response(StatusCode::OK, doc))
}

async fn put(
    s: MgmtState,
    scope: PolicyScope,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let PolicyScope::Fragment(id) = &scope {
        validate_id("id", id).map_err(|d| ApiError::invalid_all(vec![d]))?;
    }
    let bytes = body::read(body, &headers, s.max_body).await?;
    let xml = xml_of(&headers, &bytes)?;
    let checked = match scope {
        PolicyScope::Fragment(_) => crate::policy::check_fragment(&xml),
        _ => crate::policy::check_document(&xml),
    };
    if let Err(diags) = checked {
        let details = diags
            .iter()
            .map(|d| Detail::new(format!("{}:{}", d.line, d.col), d.message.clone()))
            .collect();
        return Err(ApiError {
            message: format!("the policy document has {} problem(s)", diags.len()),
            ..ApiError::invalid_all(details)
        });
    }
    let doc = PolicyDoc { xml };
    let key = scope.key();
    let created = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sc, flag) = (scope.clone(), created.clone());
    let c = commit(&s, move |c| {
        owner_exists(c, &sc)?;
        let unresolved = crate::policy::check_references(
            &doc.xml,
            |name| {
                c.named_values
                    .values()
                    .any(|nv| nv.display_name.eq_ignore_ascii_case(name))
            },
            |id| {
                c.policies
                    .contains_key(&PolicyScope::Fragment(id.into()).key())
                    || sc == PolicyScope::Fragment(id.into())
            },
        );
        if !unresolved.is_empty() {
            return Err(ApiError::invalid_all(
                unresolved
                    .iter()
                    .map(|d| Detail::new(format!("{}:{}", d.line, d.col), d.message.clone()))
                    .collect(),
            ));
        }
        if let PolicyScope::Fragment(id) = &sc {
            let mut fragments: std::collections::BTreeMap<String, String> = c
                .policies
                .iter()
                .filter_map(|(k, d)| {
                    k.strip_prefix("fragment/")
                        .map(|f| (f.to_string(), d.xml.clone()))
                })
                .collect();
            fragments.insert(id.clone(), doc.xml.clone());
            if let Some(cycle) = crate::policy::fragment_cycle(&fragments) {
                return Err(ApiError::invalid(
                    "value",
                    format!(
                        "policy fragments would include each other: {}",
                        cycle.join(" → ")
                    ),
                ));
            }
        }
        let old = c.policies.get(&sc.key());
        check_if_match(&headers, old.map(etag).as_deref())?;
        flag.store(old.is_none(), std::sync::atomic::Ordering::Relaxed);
        Ok(vec![Change::Policy(sc, Some(doc))])
    })
    .await?;
    let doc = c.policies.get(&key).ok_or_else(ApiError::internal)?;
    let status = if created.load(std::sync::atomic::Ordering::Relaxed) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(xml_response(status, doc))
}

async fn delete(
    s: MgmtState,
    scope: PolicyScope,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    commit(&s, move |c| {
        owner_exists(c, &scope)?;
        let doc = c
            .policies
            .get(&scope.key())
            .ok_or_else(|| ApiError::not_found("policy"))?;
        check_if_match(&headers, Some(&etag(doc)))?;
        if let PolicyScope::Fragment(id) = &scope {
            let users: Vec<&str> = c
                .policies
                .iter()
                .filter(|(k, d)| {
                    **k != scope.key()
                        && crate::policy::fragment_refs(&d.xml)
                            .iter()
                            .any(|(f, _)| f == id)
                })
                .map(|(k, _)| k.as_str())
                .collect();
            if !users.is_empty() {
                return Err(ApiError::conflict(format!(
                    "policy fragment {id:?} is included by: {}",
                    users.join(", ")
                )));
            }
        }
        Ok(vec![Change::Policy(scope, None)])
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_global(State(s): State<MgmtState>) -> Result<Response, ApiError> {
    get(s, PolicyScope::Global).await
}
pub async fn put_global(
    State(s): State<MgmtState>,
    h: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    put(s, PolicyScope::Global, h, b).await
}
pub async fn delete_global(
    State(s): State<MgmtState>,
    h: HeaderMap,
) -> Result<StatusCode, ApiError> {
    delete(s, PolicyScope::Global, h).await
}
pub async fn get_product(
    State(s): State<MgmtState>,
    Path(p): Path<String>,
) -> Result<Response, ApiError> {
    get(s, PolicyScope::Product(p)).await
}
pub async fn put_product(
    State(s): State<MgmtState>,
    Path(p): Path<String>,
    h: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    put(s, PolicyScope::Product(p), h, b).await
}
pub async fn delete_product(
    State(s): State<MgmtState>,
    Path(p): Path<String>,
    h: HeaderMap,
) -> Result<StatusCode, ApiError> {
    delete(s, PolicyScope::Product(p), h).await
}
pub async fn get_api(
    State(s): State<MgmtState>,
    Path(a): Path<String>,
) -> Result<Response, ApiError> {
    get(s, PolicyScope::Api(a)).await
}
pub async fn put_api(
    State(s): State<MgmtState>,
    Path(a): Path<String>,
    h: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    put(s, PolicyScope::Api(a), h, b).await
}
pub async fn delete_api(
    State(s): State<MgmtState>,
    Path(a): Path<String>,
    h: HeaderMap,
) -> Result<StatusCode, ApiError> {
    delete(s, PolicyScope::Api(a), h).await
}
pub async fn get_operation(
    State(s): State<MgmtState>,
    Path((a, o)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    get(s, PolicyScope::Operation(a, o)).await
}
pub async fn put_operation(
    State(s): State<MgmtState>,
    Path((a, o)): Path<(String, String)>,
    h: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    put(s, PolicyScope::Operation(a, o), h, b).await
}
pub async fn delete_operation(
    State(s): State<MgmtState>,
    Path((a, o)): Path<(String, String)>,
    h: HeaderMap,
) -> Result<StatusCode, ApiError> {
    delete(s, PolicyScope::Operation(a, o), h).await
}

pub async fn get_fragment(
    State(s): State<MgmtState>,
    Path(f): Path<String>,
) -> Result<Response, ApiError> {
    get(s, PolicyScope::Fragment(f)).await
}
pub async fn put_fragment(
    State(s): State<MgmtState>,
    Path(f): Path<String>,
    h: HeaderMap,
    b: Body,
) -> Result<Response, ApiError> {
    put(s, PolicyScope::Fragment(f), h, b).await
}
pub async fn delete_fragment(
    State(s): State<MgmtState>,
    Path(f): Path<String>,
    h: HeaderMap,
) -> Result<StatusCode, ApiError> {
    delete(s, PolicyScope::Fragment(f), h).await
}

/// `GET /mgmt/policy-fragments`: `{"value": [{"id", "format", "value"}], "count"}`.
pub async fn list_fragments(
    State(s): State<MgmtState>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    let items = c
        .policies
        .iter()
        .filter_map(|(k, d)| {
            k.strip_prefix("fragment/")
                .map(|id| serde_json::json!({"id": id, "format": "rawxml", "value": d.xml}))
        })
        .collect();
    body::list_response(items, q.as_deref())
}

//! Importing an API definition (APIM's `format` + `value`): `PUT
//! /mgmt/apis/{id}` with `format` set, and `GET
//! /mgmt/apis/{id}?export=openapi`.
//!
//! The document, given inline or fetched from a link, is converted by
//! [`openapi::import`] on a blocking thread. One `commit` then writes the
//! API, its stored definition, every operation, and deletes the
//! operations that vanished together with their policies; an operation
//! whose id survives a re-import keeps its policy. A refused import stores
//! nothing.
//!
//! Links (`openapi-link`, `swagger-link-json`): http or https only, at
//! most [`MAX_REDIRECTS`] redirects followed, [`FETCH_TIMEOUT`] for the
//! whole exchange, and at most `[management] max_body_bytes` of document,
//! the same cap as a document sent inline. Every failure is a 400 on
//! `value` saying why.

use super::apis::delete_operation_changes;
use super::body::{self, check_if_match, etag, with_etag};
use super::resource::{get_one, put_bytes, Resource};
use super::{commit, MgmtState};
use crate::error::ApiError;
use crate::model::{Api, Catalog, Change};
use crate::openapi::{self, Format, Imported};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Time allowed to fetch a linked document, redirects included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Redirects followed when fetching a linked document.
pub const MAX_REDIRECTS: usize = 3;

/// `PUT /mgmt/apis/{id}`: an import when the body has `format`, the plain
/// resource PUT otherwise.
pub async fn put_api(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    Api::check_id(&id).map_err(|d| ApiError::invalid_all(vec![d]))?;
    let bytes = body::read(body, &headers, s.max_body).await?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(fields)) if fields.contains_key("format") => {
            import(s, id, headers, fields).await
        }
        _ => put_bytes::<Api>(&s, id, headers, &bytes).await,
    }
}

async fn import(
    s: MgmtState,
    id: String,
    headers: HeaderMap,
    mut fields: Map<String, Value>,
) -> Result<Response, ApiError> {
    let format = match fields.remove("format") {
        Some(Value::String(f)) => Format::parse(&f).ok_or_else(|| {
            ApiError::invalid(
                "format",
                format!(
                    "unsupported format {:?}: one of {}",
                    crate::model::truncate(&f, 50),
                    Format::NAMES
                ),
            )
        })?,
        _ => {
            return Err(ApiError::invalid(
                "format",
                format!("must be a string: one of {}", Format::NAMES),
            ))
        }
    };
    let value = match fields.remove("value") {
        Some(Value::String(v)) => v,
        _ => {
            return Err(ApiError::invalid(
                "value",
                "required with format: the document as a string, or its URL for a -link format",
            ))
        }
    };
    for key in ["id", "name"] {
        if let Some(given) = fields.remove(key) {
            if given.as_str() != Some(id.as_str()) {
                return Err(ApiError::invalid(
                    key,
                    format!("must equal the id in the URL ({id:?}) when given"),
                ));
            }
        }
    }
    let (document, base) = if format.is_link() {
        let (bytes, url) = fetch(&value, s.max_body).await?;
        (bytes, Some(url))
    } else {
        (Bytes::from(value), None)
    };
    let imported =
        tokio::task::spawn_blocking(move || openapi::import(format, &document, base.as_deref()))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "import task failed");
                ApiError::internal()
            })?
            .map_err(ApiError::invalid_all)?;
    let created = Arc::new(AtomicBool::new(false));
    let (pid, flag) = (id.clone(), created.clone());
    let c = commit(&s, move |c| {
        plan(c, &pid, &headers, fields, imported, &flag)
    })
    .await?;
    let api = c.apis.get(&id).ok_or_else(ApiError::internal)?;
    let status = if created.load(Ordering::Relaxed) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_etag(status, api.view(&id), &etag(api)))
}

/// The changes of one import: the API (its current settings, then what
/// the document says, then what the body says), the definition, the
/// operations, and the deletion of operations that are gone.
fn plan(
    c: &Catalog,
    id: &str,
    headers: &HeaderMap,
    explicit: Map<String, Value>,
    imported: Imported,
    created: &AtomicBool,
) -> Result<Vec<Change>, ApiError> {
    let old = c.apis.get(id);
    check_if_match(headers, old.map(etag).as_deref())?;
    created.store(old.is_none(), Ordering::Relaxed);
    let mut merged = match old.map(serde_json::to_value) {
        Some(Ok(Value::Object(m))) => m,
        _ => Map::new(),
    };
    if let Some(n) = imported.display_name {
        merged.insert("displayName".into(), Value::String(n));
    }
    if let Some(d) = imported.description {
        merged.insert("description".into(), Value::String(d));
    }
    if let Some(u) = imported.service_url {
        merged.insert("serviceUrl".into(), Value::String(u));
    }
    if !imported.tags.is_empty() {
        let tags = imported.tags.into_iter().map(Value::String).collect();
        merged.insert("tags".into(), Value::Array(tags));
    }
    merged.extend(explicit);
    if !merged.contains_key("path") {
        return Err(ApiError::invalid(
            "path",
            "required when importing a new API: the URL suffix the gateway serves it under",
        ));
    }
    let api: Api = body::from_value(Value::Object(merged))?;
    let mut changes = Api::plan_put(id, api, old, c)?;
    changes.push(Change::ApiSpec(id.into(), Some(imported.spec)));
    let kept: HashSet<&str> = imported
        .operations
        .iter()
        .map(|(op, _)| op.as_str())
        .collect();
    for gone in c
        .operations
        .get(id)
        .into_iter()
        .flat_map(|ops| ops.keys())
        .filter(|op| !kept.contains(op.as_str()))
    {
        changes.extend(delete_operation_changes(c, id, gone));
    }
    for (op_id, op) in imported.operations {
        changes.push(Change::Operation(id.into(), op_id, Some(op)));
    }
    Ok(changes)
}

/// `GET /mgmt/apis/{id}`, and with `?export=openapi` the imported
/// document as it was received (`?export=openapi+json`: as JSON).
pub async fn get_api(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let Some(wanted) = crate::snapshot::routes::query_value(q.as_deref(), "export") else {
        return get_one::<Api>(State(s), Path(id)).await;
    };
    let wanted = percent_encoding::percent_decode_str(wanted)
        .decode_utf8_lossy()
        .replace(' ', "+");
    let c = s.store.catalog();
    if !c.apis.contains_key(&id) {
        return Err(ApiError::not_found(format!("API {id:?}")));
    }
    let spec = c
        .api_specs
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("an imported definition of API {id:?}")))?;
    let (text, content_type) = match wanted.as_str() {
        "openapi" => (spec.document.clone(), openapi::content_type(&spec.format)),
        "openapi+json" if spec.format == "openapi" => {
            let json = openapi::to_json(&spec.document).map_err(|d| {
                tracing::error!(api = %id, problem = %d.message, "stored definition does not parse");
                ApiError::internal()
            })?;
            (json, "application/json")
        }
        "openapi+json" => (spec.document.clone(), "application/json"),
        _ => {
            return Err(ApiError::invalid(
                "export",
                "unsupported export format: openapi (as imported) or openapi+json",
            ))
        }
    };
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

fn bad_link(message: String) -> ApiError {
    ApiError::invalid("value", message)
}

/// Fetches a linked document: its bytes and the URL they came from (after
/// redirects).
async fn fetch(url: &str, max: usize) -> Result<(Bytes, String), ApiError> {
    let shown = crate::model::truncate(url, 200);
    let work = fetch_following(url.trim().to_string(), max);
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| {
            bad_link(format!(
                "fetching {shown} took longer than {} s",
                FETCH_TIMEOUT.as_secs()
            ))
        })?
}

async fn fetch_following(mut current: String, max: usize) -> Result<(Bytes, String), ApiError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(FETCH_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    for hop in 0..=MAX_REDIRECTS {
        let shown = crate::model::truncate(&current, 200);
        let uri = current
            .parse::<http::Uri>()
            .ok()
            .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some())
            .ok_or_else(|| {
                bad_link(format!(
                    "{shown:?} is not an absolute http:// or https:// URL"
                ))
            })?;
        let req = http::Request::get(uri)
            .header(
                header::USER_AGENT,
                format!("turnpike/{}", env!("CARGO_PKG_VERSION")),
            )
            .header(
                header::ACCEPT,
                "application/json, application/yaml, text/yaml, */*;q=0.5",
            )
            .body(Empty::new())
            .map_err(|e| bad_link(format!("cannot request {shown}: {e}")))?;
        let resp = client
            .request(req)
            .await
            .map_err(|e| bad_link(format!("cannot fetch {shown}: {}", describe(&e))))?;
        let status = resp.status();
        if status.is_redirection() {
            if let Some(location) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                if hop == MAX_REDIRECTS {
                    return Err(bad_link(format!(
                        "fetching {shown}: more than {MAX_REDIRECTS} redirects"
                    )));
                }
                current = openapi::join_url(&current, location).ok_or_else(|| {
                    bad_link(format!("{shown} redirects to an unusable location"))
                })?;
                continue;
            }
        }
        if !status.is_success() {
            return Err(bad_link(format!("{shown} answered {status}")));
        }
        let too_large = || {
            bad_link(format!(
                "the document at {shown} is larger than {max} bytes"
            ))
        };
        let declared = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let body = match Limited::new(resp.into_body(), max).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
            Err(e) => {
                return Err(bad_link(format!(
                    "reading the document at {shown} failed: {}",
                    describe(e.as_ref())
                )))
            }
        };
        return Ok((body, current));
    }
    Err(bad_link(format!("more than {MAX_REDIRECTS} redirects")))
}

fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

//! Request bodies, entity tags and response helpers shared by all routes.

use crate::error::{ApiError, Code, Detail};
use crate::model::truncate;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Reads a body of at most `limit` bytes; 413 beyond.
pub async fn read(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Code::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(_) => Err(ApiError::new(
            Code::MalformedBody,
            "the request body could not be read",
        )),
    }
}

/// Parses a JSON object body into `T`.
///
/// `id` in the body, when present, must equal the id in the URL; the
/// resource's read-only properties (as GET returns them) are accepted and
/// ignored so that a GET → edit → PUT round trip works. Any other unknown
/// property is an error naming it.
pub fn parse<T: DeserializeOwned>(
    bytes: &[u8],
    id: &str,
    read_only: &[&str],
) -> Result<T, ApiError> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            Code::MalformedBody,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid("", "the body must be a JSON object"))?;
    for key in ["id", "name"] {
        if let Some(given) = obj.remove(key) {
            if given.as_str() != Some(id) {
                return Err(ApiError::invalid(
                    key,
                    format!("must equal the id in the URL ({id:?}) when given"),
                ));
            }
        }
    }
    for key in read_only {
        obj.remove(*key);
    }
    from_value(value)
}

/// [`parse`] for a body that may be left out: an empty (or all-blank) body
/// is `T::default()`.
pub fn parse_optional<T: DeserializeOwned + Default>(
    bytes: &[u8],
    id: &str,
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse(bytes, id, &[])
}

/// Deserializes a JSON value into `T`; an error names the property.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let target = e.path().to_string();
        let target = if target == "." { String::new() } else { target };
        ApiError::invalid(target, truncate(&e.into_inner().to_string(), 300))
    })
}

/// A strong entity tag for any serializable entity: a keyed hash (SipHash
/// under a random per-process key) of its stored JSON. The stored form
/// includes secrets, so changing a key changes the tag; the random key makes
/// the tag useless for guessing secrets offline. Tags change when the process
/// restarts; clients then GET again, as after any 412.
pub fn etag<T: Serialize>(entity: &T) -> String {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let bytes = serde_json::to_vec(entity).unwrap_or_default();
    let h = KEY.get_or_init(Default::default).hash_one(bytes);
    format!("\"{h:016x}\"")
}

/// Honours `If-Match` against the current entity tag (`None` = the entity
/// does not exist). `*` matches any existing entity.
pub fn check_if_match(headers: &HeaderMap, current: Option<&str>) -> Result<(), ApiError> {
    let Some(wanted) = headers.get(http::header::IF_MATCH) else {
        return Ok(());
    };
    let wanted = wanted.to_str().unwrap_or("");
    let ok = match current {
        None => false,
        Some(cur) => wanted
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == cur),
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::PreconditionFailed,
            "If-Match does not match the current entity tag; GET the resource again",
        ))
    }
}

/// A JSON response with an `ETag`.
pub fn with_etag(status: StatusCode, body: Value, tag: &str) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(tag) {
        resp.headers_mut().insert(http::header::ETAG, v);
    }
    resp
}

/// `{"value": [...], "count": N}` with `$top` / `$skip` paging; `count` is
/// the total before paging.
pub fn list_response(items: Vec<Value>, query: Option<&str>) -> Result<Response, ApiError> {
    let number = |name: &str| -> Result<Option<usize>, ApiError> {
        match crate::snapshot::routes::query_value(query, name) {
            None => Ok(None),
            Some(v) => v
                .parse::<usize>()
                .map(Some)
                .map_err(|_| ApiError::invalid(name, "must be a non-negative integer")),
        }
    };
    let count = items.len();
    let skip = number("$skip")?.or(number("%24skip")?).unwrap_or(0);
    let top = number("$top")?.or(number("%24top")?).unwrap_or(usize::MAX);
    let value: Vec<Value> = items.into_iter().skip(skip).take(top).collect();
    Ok(axum::Json(serde_json::json!({ "value": value, "count": count })).into_response())
}

/// Whether the query string sets `name=true`.
pub fn flag(query: Option<&str>, name: &str) -> bool {
    crate::snapshot::routes::query_value(query, name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The current time in RFC 3339 (seconds).
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Fails with every collected problem, or goes on.
pub fn ensure_valid(details: Vec<Detail>) -> Result<(), ApiError> {
    if details.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_all(details))
    }
}

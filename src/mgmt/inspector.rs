//! The API inspector's management routes: `POST /mgmt/apis/{id}/debug-token`
//! (a short-lived token that makes the gateway trace that API's requests)
//! and `GET /mgmt/traces/{traceId}` (a finished trace from this node's
//! ring).
//!
//! Owns: the token request (APIM's `credentialsExpireAfter`, or
//! `expiresAfter`; ISO 8601 or seconds, default and cap one hour), creating
//! the signing key on first use (one store write; sealed at rest, exported
//! to secondaries) and serving traces.

use super::{body, commit, MgmtState};
use crate::error::{random_hex, ApiError, Code, Secret};
use crate::model::debug_token::{parse_lifetime, DebugKey, MAX_LIFETIME};
use crate::model::{rfc3339, unix_now, Change};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    /// APIM's name: an ISO 8601 duration (or seconds).
    credentials_expire_after: Option<Value>,
    /// The same, shorter.
    expires_after: Option<Value>,
    /// APIM's `listDebugCredentials` names the API in the body too.
    api_id: Option<String>,
    /// APIM's `purposes` (`["tracing"]`); tracing is the only purpose.
    purposes: Option<Vec<String>>,
}

/// `POST /mgmt/apis/{id}/debug-token {"credentialsExpireAfter"?}` →
/// `{"token", "expires"}`.
pub async fn debug_token(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    req: Body,
) -> Result<Response, ApiError> {
    let bytes = body::read(req, &headers, s.max_body).await?;
    let ask: TokenRequest = body::parse_optional(&bytes, &id)?;
    if ask.api_id.as_deref().is_some_and(|a| a != id) {
        return Err(ApiError::invalid(
            "apiId",
            format!("must equal the API id in the URL ({id:?}) when given"),
        ));
    }
    if let Some(p) = &ask.purposes {
        if p.iter().any(|p| !p.eq_ignore_ascii_case("tracing")) {
            return Err(ApiError::invalid(
                "purposes",
                "the only purpose is \"tracing\"",
            ));
        }
    }
    let lifetime = match (&ask.credentials_expire_after, &ask.expires_after) {
        (Some(v), _) => {
            parse_lifetime(v).map_err(|m| ApiError::invalid("credentialsExpireAfter", m))?
        }
        (None, Some(v)) => parse_lifetime(v).map_err(|m| ApiError::invalid("expiresAfter", m))?,
        (None, None) => MAX_LIFETIME,
    };
    if !s.store.catalog().apis.contains_key(&id) {
        return Err(ApiError::not_found(format!("api {id:?}")));
    }
    let key = match s.store.catalog().debug_key.clone() {
        Some(k) => k,
        None => {
            let fresh = Secret::new(random_hex(32)?);
            let catalog = commit(&s, move |c| {
                Ok(match c.debug_key {
                    // Another request created it meanwhile.
                    Some(_) => Vec::new(),
                    None => vec![Change::DebugKey(Some(fresh))],
                })
            })
            .await?;
            catalog.debug_key.clone().ok_or_else(ApiError::internal)?
        }
    };
    let expiry = unix_now() + lifetime.as_secs().max(1);
    let token = DebugKey::new(&key).mint(&id, expiry);
    tracing::info!(api = %id, expires = %rfc3339(expiry), "issued a debug token");
    Ok(
        axum::Json(serde_json::json!({ "token": token, "expires": rfc3339(expiry) }))
            .into_response(),
    )
}

/// `GET /mgmt/traces/{traceId}`: the trace as JSON, while this node's ring
/// holds it.
pub async fn get_trace(State(s): State<MgmtState>, Path(id): Path<String>) -> Response {
    match s.traces.get(&id) {
        Some(json) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json.to_string(),
        )
            .into_response(),
        None => ApiError::new(
            Code::ResourceNotFound,
            "no such trace on this node (unknown, or evicted from the ring)",
        )
        .into_response(),
    }
}

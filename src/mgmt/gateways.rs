//! Self-hosted gateway registrations (`/mgmt/gateways`): PUT/GET/DELETE,
//! the list with each gateway's heartbeat state, token minting and key
//! regeneration.

use super::body::{self, etag, with_etag};
use super::cluster::ClusterSide;
use super::resource::Resource;
use super::{commit, MgmtState};
use crate::error::{random_hex, ApiError, Detail, Secret};
use crate::model::{
    mint_token, rfc3339, unix_now, validate_id, Catalog, Change, Gateway, GatewayKeys, KeyType,
    MANAGED_GATEWAY,
};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// The default token expiry (APIM's maximum).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

fn new_keys() -> Result<GatewayKeys, ApiError> {
    Ok(GatewayKeys {
        primary: Secret::new(random_hex(32)?),
        secondary: Secret::new(random_hex(32)?),
    })
}

impl Resource for Gateway {
    const NAME: &'static str = "gateway";
    const READ_ONLY: &'static [&'static str] = &[
        "status",
        "lastHeartbeat",
        "region",
        "revision",
        "lag",
        "version",
        "hostname",
        "uptimeSeconds",
        "heartbeatIntervalSeconds",
        "configSource",
        "requests",
        "lastConfigRequest",
    ];

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.gateways
    }

    fn check_id(id: &str) -> Result<(), Detail> {
        validate_id("id", id)?;
        if id.eq_ignore_ascii_case(MANAGED_GATEWAY) {
            return Err(Detail::new(
                "id",
                "\"managed\" is reserved for the primary's own gateway",
            ));
        }
        Ok(())
    }

    fn plan_put(
        id: &str,
        mut new: Self,
        old: Option<&Self>,
        c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        let mut details = Vec::new();
        new.normalize(&mut details);
        body::ensure_valid(details)?;
        let mut changes = vec![Change::Gateway(id.into(), Some(new))];
        if old.is_none() || !c.gateway_keys.contains_key(id) {
            changes.push(Change::GatewayKeys(id.into(), Some(new_keys()?)));
        }
        Ok(changes)
    }

    fn plan_delete(id: &str, _c: &Catalog, _q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        // Its keys go with it: every token it was given stops working.
        Ok(vec![
            Change::Gateway(id.into(), None),
            Change::GatewayKeys(id.into(), None),
        ])
    }
}

fn view(s: &MgmtState, c: &Catalog, id: &str, g: &Gateway) -> Value {
    view_with(&s.cluster, c, id, g)
}

fn view_with(cluster: &ClusterSide, c: &Catalog, id: &str, g: &Gateway) -> Value {
    let mut v = g.view(id);
    if let Some(obj) = v.as_object_mut() {
        obj.extend(cluster.registry.view(id, c.revision));
    }
    v
}

/// Every registered gateway with its heartbeat state, as `GET
/// /mgmt/gateways` shows it (the portal's admin corner shows them too).
pub fn views(cluster: &ClusterSide, c: &Catalog) -> Vec<Value> {
    c.gateways
        .iter()
        .map(|(id, g)| view_with(cluster, c, id, g))
        .collect()
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("gateway {id:?}"))
}

/// `GET /mgmt/gateways`: every registration with its heartbeat state.
pub async fn list(State(s): State<MgmtState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    let items = c
        .gateways
        .iter()
        .map(|(id, g)| view(&s, &c, id, g))
        .collect();
    body::list_response(items, q.as_deref())
}

/// `GET /mgmt/gateways/{gid}`.
pub async fn get(State(s): State<MgmtState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    let g = c.gateways.get(&id).ok_or_else(|| not_found(&id))?;
    Ok(with_etag(StatusCode::OK, view(&s, &c, &id, g), &etag(g)))
}

/// `DELETE /mgmt/gateways/{gid}`: the registration, its keys, and what the
/// primary remembers of its heartbeats.
pub async fn delete(
    state: State<MgmtState>,
    id: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let s = state.0.clone();
    let gid = id.0.clone();
    let status = super::resource::delete_one::<Gateway>(state, id, query, headers).await?;
    s.cluster.registry.forget(&gid);
    Ok(status)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    /// RFC 3339.
    expiry: Option<String>,
    #[serde(default)]
    key_type: KeyType,
}

/// `POST /mgmt/gateways/{gid}/token {"expiry"?, "keyType"?}` →
/// `{"value", "expiry"}`; `value` goes verbatim into the secondary's
/// `[cluster] token`.
pub async fn token(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    req: Body,
) -> Result<Response, ApiError> {
    let bytes = body::read(req, &headers, s.max_body).await?;
    let ask: TokenRequest = body::parse_optional(&bytes, &id)?;
    let c = s.store.catalog();
    if !c.gateways.contains_key(&id) {
        return Err(not_found(&id));
    }
    let keys = c.gateway_keys.get(&id).ok_or_else(|| not_found(&id))?;
    let now = unix_now();
    let max = s.cluster.token_max_lifetime.as_secs();
    let expiry = match ask.expiry.as_deref() {
        None => now + DEFAULT_TOKEN_LIFETIME.as_secs().min(max),
        Some(text) => {
            let at = humantime::parse_rfc3339_weak(text).map_err(|e| {
                ApiError::invalid("expiry", format!("must be an RFC 3339 date-time: {e}"))
            })?;
            let at = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if at <= now {
                return Err(ApiError::invalid("expiry", "must be in the future"));
            }
            if at > now.saturating_add(max) {
                return Err(ApiError::invalid(
                    "expiry",
                    format!(
                        "must be at most {} from now ([management] gateway_token_max_lifetime)",
                        humantime::format_duration(Duration::from_secs(max))
                    ),
                ));
            }
            at
        }
    };
    let value = mint_token(&id, keys, ask.key_type, expiry);
    tracing::info!(gateway = %id, expiry = %rfc3339(expiry), "minted a gateway token");
    Ok(
        axum::Json(serde_json::json!({ "value": value, "expiry": rfc3339(expiry) }))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegenerateRequest {
    key_type: KeyType,
}

/// `POST /mgmt/gateways/{gid}/regenerateKey {"keyType": "primary"|"secondary"}`
/// → 204. Every token signed with the old key is refused from now on.
pub async fn regenerate_key(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    req: Body,
) -> Result<StatusCode, ApiError> {
    let bytes = body::read(req, &headers, s.max_body).await?;
    let ask: RegenerateRequest = body::parse(&bytes, &id, &[])?;
    commit(&s, move |c| {
        if !c.gateways.contains_key(&id) {
            return Err(not_found(&id));
        }
        let mut keys = match c.gateway_keys.get(&id) {
            Some(k) => k.clone(),
            None => new_keys()?,
        };
        let fresh = Secret::new(random_hex(32)?);
        match ask.key_type {
            KeyType::Primary => keys.primary = fresh,
            KeyType::Secondary => keys.secondary = fresh,
        }
        Ok(vec![Change::GatewayKeys(id, Some(keys))])
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

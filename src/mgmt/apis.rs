//! `/mgmt/apis/{apiId}` and `/mgmt/apis/{apiId}/operations/{opId}`.

use super::body::{self, check_if_match, ensure_valid, etag, with_etag};
use super::resource::Resource;
use super::{commit, MgmtState};
use crate::error::{ApiError, Detail};
use crate::model::{validate_id, Api, Catalog, Change, Operation, PolicyScope, SubscriptionScope};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

impl Resource for Api {
    const NAME: &'static str = "API";

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.apis
    }

    fn plan_put(
        id: &str,
        mut new: Self,
        _old: Option<&Self>,
        c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        let mut details = Vec::new();
        new.normalize(id, &mut details);
        ensure_valid(details)?;
        let taken = c
            .apis
            .iter()
            .find(|(other, a)| *other != id && a.path.eq_ignore_ascii_case(&new.path));
        if let Some((other, _)) = taken {
            return Err(ApiError {
                details: vec![Detail::new(
                    "path",
                    format!("already used by API {other:?}"),
                )],
                ..ApiError::conflict(format!(
                    "path {:?} is already used by API {other:?}",
                    new.path
                ))
            });
        }
        Ok(vec![Change::Api(id.into(), Some(new))])
    }

    /// Deleting an API removes its operations, its policies, its product
    /// links, the subscriptions scoped to it and the definition it was
    /// imported from, atomically.
    fn plan_delete(id: &str, c: &Catalog, _q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        let mut changes = vec![Change::Api(id.into(), None)];
        if c.api_specs.contains_key(id) {
            changes.push(Change::ApiSpec(id.into(), None));
        }
        if c.policies.contains_key(&PolicyScope::Api(id.into()).key()) {
            changes.push(Change::Policy(PolicyScope::Api(id.into()), None));
        }
        for op in c.operations.get(id).into_iter().flat_map(|ops| ops.keys()) {
            changes.extend(delete_operation_changes(c, id, op));
        }
        for p in c.products_of_api(id) {
            changes.push(Change::ProductApi(p.into(), id.into(), false));
        }
        for (sid, s) in &c.subscriptions {
            if SubscriptionScope::parse(&s.scope) == Some(SubscriptionScope::Api(id.into())) {
                changes.push(Change::Subscription(sid.clone(), None));
            }
        }
        Ok(changes)
    }
}

/// Deleting an operation deletes its policy too.
pub(super) fn delete_operation_changes(c: &Catalog, api: &str, op: &str) -> Vec<Change> {
    let mut changes = vec![Change::Operation(api.into(), op.into(), None)];
    let scope = PolicyScope::Operation(api.into(), op.into());
    if c.policies.contains_key(&scope.key()) {
        changes.push(Change::Policy(scope, None));
    }
    changes
}

fn api_exists(c: &Catalog, api: &str) -> Result<(), ApiError> {
    if c.apis.contains_key(api) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("API {api:?}")))
    }
}

fn operation_view(op: &Operation, id: &str, api: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(op).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("id".into(), id.into());
        obj.insert("apiId".into(), api.into());
    }
    v
}

pub async fn list_operations(
    State(s): State<MgmtState>,
    Path(api): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    api_exists(&c, &api)?;
    let items = c
        .operations
        .get(&api)
        .into_iter()
        .flatten()
        .map(|(id, op)| operation_view(op, id, &api))
        .collect();
    body::list_response(items, q.as_deref())
}

pub async fn get_operation(
    State(s): State<MgmtState>,
    Path((api, op)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    api_exists(&c, &api)?;
    let o = c
        .operations
        .get(&api)
        .and_then(|ops| ops.get(&op))
        .ok_or_else(|| ApiError::not_found(format!("operation {op:?} of API {api:?}")))?;
    Ok(with_etag(
        StatusCode::OK,
        operation_view(o, &op, &api),
        &etag(o),
    ))
}

pub async fn put_operation(
    State(s): State<MgmtState>,
    Path((api, op)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    validate_id("id", &op).map_err(|d| ApiError::invalid_all(vec![d]))?;
    let bytes = body::read(body, &headers, s.max_body).await?;
    let mut new: Operation = body::parse(&bytes, &op, &["apiId"])?;
    let mut details = Vec::new();
    new.normalize(&op, &mut details);
    ensure_valid(details)?;
    let created = Arc::new(AtomicBool::new(false));
    let (a, o, flag) = (api.clone(), op.clone(), created.clone());
    let c = commit(&s, move |c| {
        api_exists(c, &a)?;
        let old = c.operations.get(&a).and_then(|ops| ops.get(&o));
        check_if_match(&headers, old.map(etag).as_deref())?;
        flag.store(old.is_none(), Ordering::Relaxed);
        Ok(vec![Change::Operation(a, o, Some(new))])
    })
    .await?;
    let o = c
        .operations
        .get(&api)
        .and_then(|ops| ops.get(&op))
        .ok_or_else(ApiError::internal)?;
    let status = if created.load(Ordering::Relaxed) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_etag(status, operation_view(o, &op, &api), &etag(o)))
}

pub async fn delete_operation(
    State(s): State<MgmtState>,
    Path((api, op)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    commit(&s, move |c| {
        api_exists(c, &api)?;
        let old = c
            .operations
            .get(&api)
            .and_then(|ops| ops.get(&op))
            .ok_or_else(|| ApiError::not_found(format!("operation {op:?} of API {api:?}")))?;
        check_if_match(&headers, Some(&etag(old)))?;
        Ok(delete_operation_changes(c, &api, &op))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

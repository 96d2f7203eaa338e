//! `/mgmt/subscriptions/{sid}` and its key actions.
//!
//! Keys come from the operating system's CSPRNG (128 bits, 32 hex
//! characters, APIM's format) unless supplied on PUT. They are never shown
//! by GET; `listSecrets` returns them.

use super::body::{self, ensure_valid, now};
use super::resource::Resource;
use super::{commit, MgmtState};
use crate::error::{random_hex, ApiError, Detail, Secret};
use crate::model::{user_of_owner, Catalog, Change, Subscription, SubscriptionScope};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

/// A fresh subscription key.
pub fn new_key() -> Result<Secret, ApiError> {
    Ok(Secret::new(random_hex(16)?))
}

impl Resource for Subscription {
    const NAME: &'static str = "subscription";
    const READ_ONLY: &'static [&'static str] = &["createdDate"];

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.subscriptions
    }

    fn plan_put(
        id: &str,
        mut new: Self,
        old: Option<&Self>,
        c: &Catalog,
    ) -> Result<Vec<Change>, ApiError> {
        let mut details = Vec::new();
        new.normalize(id, &mut details);
        ensure_valid(details)?;
        match SubscriptionScope::parse(&new.scope) {
            Some(SubscriptionScope::Api(a)) if !c.apis.contains_key(&a) => {
                return Err(ApiError::invalid(
                    "scope",
                    format!("API {a:?} does not exist"),
                ));
            }
            Some(SubscriptionScope::Product(p)) if !c.products.contains_key(&p) => {
                return Err(ApiError::invalid(
                    "scope",
                    format!("product {p:?} does not exist"),
                ));
            }
            _ => {}
        }
        if let Some(uid) = new.owner_id.as_deref().and_then(user_of_owner) {
            if !c.users.contains_key(uid) {
                return Err(ApiError::invalid(
                    "ownerId",
                    format!("user {uid:?} does not exist"),
                ));
            }
            check_limit(id, &new, uid, c)?;
        }
        // A replace keeps the keys and the creation date unless given.
        new.primary_key = pick_key(new.primary_key, old.map(|o| &o.primary_key))?;
        new.secondary_key = pick_key(new.secondary_key, old.map(|o| &o.secondary_key))?;
        new.created_date = old.map(|o| o.created_date.clone()).unwrap_or_else(now);
        for (target, key) in [
            ("primaryKey", &new.primary_key),
            ("secondaryKey", &new.secondary_key),
        ] {
            if let Some(other) = c.subscription_with_key(key.expose()).filter(|o| *o != id) {
                return Err(ApiError {
                    details: vec![Detail::new(target, "already used by another subscription")],
                    ..ApiError::conflict(format!(
                        "{target} is already used by subscription {other:?}"
                    ))
                });
            }
        }
        Ok(vec![Change::Subscription(id.into(), Some(new))])
    }

    fn plan_delete(id: &str, _c: &Catalog, _q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        Ok(vec![Change::Subscription(id.into(), None)])
    }

    fn view(&self, id: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.remove("primaryKey");
            obj.remove("secondaryKey");
            obj.insert("id".into(), id.into());
        }
        v
    }
}

fn pick_key(given: Secret, old: Option<&Secret>) -> Result<Secret, ApiError> {
    match (given.is_empty(), old) {
        (false, _) => Ok(given),
        (true, Some(old)) => Ok(old.clone()),
        (true, None) => new_key(),
    }
}

/// A product's `subscriptionsLimit` caps one user's subscriptions to it
/// (those not cancelled, rejected or expired: see
/// [`Catalog::held_subscriptions`]).
fn check_limit(id: &str, new: &Subscription, uid: &str, c: &Catalog) -> Result<(), ApiError> {
    let Some(SubscriptionScope::Product(p)) = SubscriptionScope::parse(&new.scope) else {
        return Ok(());
    };
    if !new.state.holds_a_place() {
        return Ok(());
    }
    let Some(limit) = c.products.get(&p).and_then(|p| p.subscriptions_limit) else {
        return Ok(());
    };
    let held = c.held_subscriptions(uid, &p, Some(id));
    if held >= limit as usize {
        return Err(ApiError::conflict(format!(
            "user {uid:?} already has {held} subscription(s) to product {p:?}, its limit"
        )));
    }
    Ok(())
}

fn find<'c>(c: &'c Catalog, id: &str) -> Result<&'c Subscription, ApiError> {
    c.subscriptions
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("subscription {id:?}")))
}

/// `POST .../listSecrets` → `{primaryKey, secondaryKey}`.
pub async fn list_secrets(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    let sub = find(&c, &id)?;
    Ok(axum::Json(serde_json::json!({
        "primaryKey": sub.primary_key.expose(),
        "secondaryKey": sub.secondary_key.expose(),
    }))
    .into_response())
}

async fn regenerate(s: &MgmtState, id: String, primary: bool) -> Result<StatusCode, ApiError> {
    commit(s, move |c| {
        let mut sub = find(c, &id)?.clone();
        let key = new_key()?;
        if primary {
            sub.primary_key = key;
        } else {
            sub.secondary_key = key;
        }
        Ok(vec![Change::Subscription(id, Some(sub))])
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../regeneratePrimaryKey` → 204.
pub async fn regenerate_primary(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    regenerate(&s, id, true).await
}

/// `POST .../regenerateSecondaryKey` → 204.
pub async fn regenerate_secondary(
    State(s): State<MgmtState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    regenerate(&s, id, false).await
}

fn list_where(
    c: &Catalog,
    q: Option<&str>,
    keep: impl Fn(&Subscription) -> bool,
) -> Result<Response, ApiError> {
    let items = c
        .subscriptions
        .iter()
        .filter(|(_, s)| keep(s))
        .map(|(id, s)| s.view(id))
        .collect();
    body::list_response(items, q)
}

/// `GET /mgmt/products/{p}/subscriptions`
pub async fn of_product(
    State(s): State<MgmtState>,
    Path(p): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    if !c.products.contains_key(&p) {
        return Err(ApiError::not_found(format!("product {p:?}")));
    }
    let scope = SubscriptionScope::Product(p);
    list_where(&c, q.as_deref(), |s| {
        SubscriptionScope::parse(&s.scope).as_ref() == Some(&scope)
    })
}

/// `GET /mgmt/users/{u}/subscriptions`
pub async fn of_user(
    State(s): State<MgmtState>,
    Path(u): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    if !c.users.contains_key(&u) {
        return Err(ApiError::not_found(format!("user {u:?}")));
    }
    list_where(&c, q.as_deref(), |s| {
        s.owner_id.as_deref().and_then(user_of_owner) == Some(u.as_str())
    })
}

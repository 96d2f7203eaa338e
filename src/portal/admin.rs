//! The admin corner, for members of the `administrators` group: pending
//! subscription requests (approve, reject with a comment), the users, and
//! the registered gateways with their heartbeat state.

use super::profile::{day, scope_label};
use super::{render, Chrome, PortalError, PortalState, SignedIn, Visitor};
use crate::error::{ApiError, Code};
use crate::model::{user_of_owner, Catalog, Change, SubscriptionState, UserState};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::Value;

/// At most this many users are listed (the management API lists all).
const MAX_USERS: usize = 500;

/// Longest rejection comment.
const MAX_COMMENT: usize = 500;

/// The signed-in administrator; anyone else signed in gets a 403 page.
fn require_admin<'v>(v: &'v Visitor, return_to: &str) -> Result<&'v SignedIn, PortalError> {
    let user = v.require_user(return_to)?;
    if !user.admin {
        return Err(PortalError::new(
            StatusCode::FORBIDDEN,
            v,
            "Administrators only",
            "This page is for portal administrators: members of the Administrators group.",
        ));
    }
    Ok(user)
}

/// A subscription awaiting approval.
pub struct Pending {
    pub id: String,
    pub email: String,
    pub product: String,
    pub product_link: Option<String>,
    pub name: String,
    pub created: String,
}

/// A user as the admin corner lists them.
pub struct UserRow {
    pub email: String,
    pub name: String,
    pub state: &'static str,
    pub groups: String,
    pub registered: String,
    pub subscriptions: usize,
}

/// A registered gateway (from the same view as `GET /mgmt/gateways`).
pub struct GatewayRow {
    pub id: String,
    pub location: String,
    pub status: String,
    pub last_heartbeat: String,
    pub revision: String,
    pub lag: String,
    pub version: String,
    pub hostname: String,
}

#[derive(Template)]
#[template(path = "portal/admin.html")]
struct AdminPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    pending: Vec<Pending>,
    users: Vec<UserRow>,
    user_total: usize,
    gateways: Vec<GatewayRow>,
}

fn pending(c: &Catalog) -> Vec<Pending> {
    let mut rows: Vec<Pending> = c
        .subscriptions
        .iter()
        .filter(|(_, s)| s.state == SubscriptionState::Submitted)
        .map(|(sid, s)| {
            let (product, product_link) = scope_label(c, &s.scope);
            let email = s
                .owner_id
                .as_deref()
                .and_then(user_of_owner)
                .and_then(|u| c.users.get(u))
                .map_or_else(|| "(no owner)".to_string(), |u| u.email.clone());
            Pending {
                id: sid.clone(),
                email,
                product,
                product_link,
                name: s.display_name.clone(),
                created: s.created_date.clone(),
            }
        })
        .collect();
    // Oldest request first: it has waited longest.
    rows.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
    for r in &mut rows {
        r.created = day(&r.created);
    }
    rows
}

fn user_state(s: UserState) -> &'static str {
    match s {
        UserState::Active => "active",
        UserState::Blocked => "blocked",
        UserState::Pending => "pending",
        UserState::Deleted => "deleted",
    }
}

fn users(c: &Catalog) -> Vec<UserRow> {
    let mut rows: Vec<UserRow> = c
        .users
        .iter()
        .map(|(uid, u)| {
            let owner = format!("/users/{uid}");
            let mut groups: Vec<String> = c
                .group_users
                .iter()
                .filter(|(_, members)| members.contains(uid))
                .map(|(g, _)| {
                    c.groups
                        .get(g)
                        .map_or_else(|| g.clone(), |g| g.display_name.clone())
                })
                .collect();
            groups.sort();
            UserRow {
                email: u.email.clone(),
                name: format!("{} {}", u.first_name, u.last_name)
                    .trim()
                    .to_string(),
                state: user_state(u.state),
                groups: groups.join(", "),
                registered: day(&u.registration_date),
                subscriptions: c
                    .subscriptions
                    .values()
                    .filter(|s| s.owner_id.as_deref() == Some(owner.as_str()))
                    .count(),
            }
        })
        .collect();
    rows.sort_by_key(|r| r.email.to_ascii_lowercase());
    rows.truncate(MAX_USERS);
    rows
}

fn text(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "—".to_string(),
    }
}

fn gateways(list: &[Value]) -> Vec<GatewayRow> {
    list.iter()
        .map(|g| GatewayRow {
            id: text(g, "/id"),
            location: text(g, "/locationData/name"),
            status: text(g, "/status"),
            last_heartbeat: text(g, "/lastHeartbeat"),
            revision: text(g, "/revision"),
            lag: text(g, "/lag"),
            version: text(g, "/version"),
            hostname: text(g, "/hostname"),
        })
        .collect()
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "approved" => Some("The subscription was approved: its keys work now."),
        "rejected" => Some("The subscription request was rejected."),
        _ => None,
    }
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /admin`.
pub async fn page(
    State(s): State<PortalState>,
    v: Visitor,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    require_admin(&v, "/admin")?;
    let c = s.catalog();
    let page = AdminPage {
        chrome: v.chrome("Admin"),
        notice: notice(q.done.as_deref()),
        pending: pending(&c),
        users: users(&c),
        user_total: c.users.len(),
        gateways: gateways(&(s.inner.gateways)()),
    };
    let mut r = render(&page);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Moves a `submitted` subscription to `to` in one write.
async fn decide(
    s: &PortalState,
    v: &Visitor,
    sid: String,
    to: SubscriptionState,
    comment: Option<String>,
) -> Result<Response, PortalError> {
    let admin = require_admin(v, "/admin")?;
    let id = sid.clone();
    let written = s
        .commit(move |c| {
            let mut sub = c
                .subscriptions
                .get(&id)
                .cloned()
                .ok_or_else(|| ApiError::not_found("subscription"))?;
            if sub.state != SubscriptionState::Submitted {
                return Err(ApiError::conflict(
                    "This subscription is no longer awaiting approval.",
                ));
            }
            sub.state = to;
            sub.state_comment = comment;
            Ok(vec![Change::Subscription(id, Some(sub))])
        })
        .await;
    match written {
        Ok(_) => {
            let done = if to == SubscriptionState::Active {
                "approved"
            } else {
                "rejected"
            };
            tracing::info!(admin = %admin.uid, subscription = %sid, decision = done, "portal approval");
            Ok(Redirect::to(&format!("/admin?done={done}")).into_response())
        }
        Err(e) if e.code == Code::ResourceNotFound => {
            Err(PortalError::not_found(v, "There is no such subscription."))
        }
        Err(e) => Err(PortalError::from_api(v, e)),
    }
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
}

/// `POST /admin/subscriptions/{sid}/approve`: `submitted` → `active`.
pub async fn approve(
    State(s): State<PortalState>,
    v: Visitor,
    Path(sid): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    decide(&s, &v, sid, SubscriptionState::Active, None).await
}

/// `POST /admin/subscriptions/{sid}/reject`: `submitted` → `rejected`,
/// with the optional `comment` as its `stateComment`.
pub async fn reject(
    State(s): State<PortalState>,
    v: Visitor,
    Path(sid): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    require_admin(&v, "/admin")?;
    let comment = f.comment.trim().to_string();
    if comment.chars().count() > MAX_COMMENT {
        return Err(PortalError::new(
            StatusCode::BAD_REQUEST,
            &v,
            "That did not work",
            &format!("Keep the comment under {MAX_COMMENT} characters."),
        ));
    }
    let comment = (!comment.is_empty()).then_some(comment);
    decide(&s, &v, sid, SubscriptionState::Rejected, comment).await
}

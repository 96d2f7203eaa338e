//! The profile: account details, name and password changes, and the
//! user's subscriptions with their keys and actions (show, regenerate,
//! rename, cancel).
//!
//! Keys appear on this page only, only to their owner, and only for active
//! subscriptions; the page is never cached. Every action checks the form
//! token and that the subscription belongs to the signed-in user (anything
//! else is a 404 page), writes through [`PortalState::commit`] (so a
//! regenerated or cancelled key stops working at the gateway as soon as
//! the write returns), and comes back with `?done=CODE`, which maps to a
//! fixed message: nothing of the query is ever echoed.

use super::products::MAX_NAME;
use super::{render, Chrome, PortalError, PortalState, SignedIn, Visitor};
use crate::error::{random_hex, ApiError, Code, Secret};
use crate::model::{
    credentials, Catalog, Change, Subscription, SubscriptionScope, SubscriptionState,
    UserCredentials,
};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

/// The date part (`YYYY-MM-DD`) of an RFC 3339 timestamp.
pub fn day(ts: &str) -> String {
    match ts.get(..10) {
        Some(d)
            if d.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            }) =>
        {
            d.to_string()
        }
        _ => ts.to_string(),
    }
}

/// How a subscription state is shown: its CSS class and its label.
#[derive(Debug, Clone, Copy)]
pub struct StateBadge {
    pub class: &'static str,
    pub label: &'static str,
}

pub fn state_badge(s: SubscriptionState) -> StateBadge {
    let (class, label) = match s {
        SubscriptionState::Active => ("active", "Active"),
        SubscriptionState::Suspended => ("suspended", "Suspended"),
        SubscriptionState::Submitted => ("submitted", "Awaiting approval"),
        SubscriptionState::Rejected => ("rejected", "Rejected"),
        SubscriptionState::Cancelled => ("cancelled", "Cancelled"),
        SubscriptionState::Expired => ("expired", "Expired"),
    };
    StateBadge { class, label }
}

/// What a subscription is for, as a name and (for a visible product or
/// API) a link.
pub fn scope_label(c: &Catalog, scope: &str) -> (String, Option<String>) {
    match SubscriptionScope::parse(scope) {
        Some(SubscriptionScope::Product(p)) => match c.products.get(&p) {
            Some(prod) => (prod.display_name.clone(), Some(format!("/products/{p}"))),
            None => (p, None),
        },
        Some(SubscriptionScope::Api(a)) => match c.apis.get(&a) {
            Some(api) => (
                format!("API: {}", api.display_name),
                Some(format!("/apis/{a}")),
            ),
            None => (format!("API: {a}"), None),
        },
        Some(SubscriptionScope::AllApis) => ("All APIs".into(), None),
        None => (scope.to_string(), None),
    }
}

/// The fixed message of a `?done=` code.
fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "subscribed" => "You are subscribed. Your keys are below.",
        "requested" => {
            "Your subscription request was sent. Its keys appear here once an administrator approves it."
        }
        "regenerated" => "A new key was generated. The previous one no longer works.",
        "renamed" => "The subscription was renamed.",
        "cancelled" => "The subscription was cancelled. Its keys no longer work.",
        "updated" => "Your name was saved.",
        "password" => "Your password was changed. Every other session was signed out.",
        _ => return None,
    })
}

/// One of the user's subscriptions as the profile shows it.
pub struct SubRow {
    pub id: String,
    pub name: String,
    pub product: String,
    pub product_link: Option<String>,
    pub state: StateBadge,
    pub comment: Option<String>,
    pub created: String,
    /// `(primary, secondary)`, for active subscriptions only.
    pub keys: Option<(String, String)>,
    pub can_cancel: bool,
}

#[derive(Template)]
#[template(path = "portal/profile.html")]
struct ProfilePage {
    chrome: Chrome,
    notice: Option<&'static str>,
    email: String,
    first_name: String,
    last_name: String,
    registered: String,
    name_error: Option<String>,
    password_error: Option<String>,
    subscriptions: Vec<SubRow>,
}

fn subscriptions_of(c: &Catalog, uid: &str) -> Vec<SubRow> {
    let owner = format!("/users/{uid}");
    let mut rows: Vec<(String, SubRow)> = c
        .subscriptions
        .iter()
        .filter(|(_, s)| s.owner_id.as_deref() == Some(owner.as_str()))
        .map(|(sid, s)| {
            let (product, product_link) = scope_label(c, &s.scope);
            let row = SubRow {
                id: sid.clone(),
                name: s.display_name.clone(),
                product,
                product_link,
                state: state_badge(s.state),
                comment: s.state_comment.clone().filter(|t| !t.is_empty()),
                created: day(&s.created_date),
                keys: (s.state == SubscriptionState::Active).then(|| {
                    (
                        s.primary_key.expose().to_string(),
                        s.secondary_key.expose().to_string(),
                    )
                }),
                can_cancel: cancellable(s.state),
            };
            (s.created_date.clone(), row)
        })
        .collect();
    // Newest first.
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    rows.into_iter().map(|(_, r)| r).collect()
}

fn cancellable(s: SubscriptionState) -> bool {
    matches!(
        s,
        SubscriptionState::Active | SubscriptionState::Submitted | SubscriptionState::Suspended
    )
}

fn profile_page(c: &Catalog, v: &Visitor, user: &SignedIn) -> ProfilePage {
    let u = c.users.get(&user.uid);
    ProfilePage {
        chrome: v.chrome("Your profile"),
        notice: None,
        email: user.email.clone(),
        first_name: u.map(|u| u.first_name.clone()).unwrap_or_default(),
        last_name: u.map(|u| u.last_name.clone()).unwrap_or_default(),
        registered: u.map(|u| day(&u.registration_date)).unwrap_or_default(),
        name_error: None,
        password_error: None,
        subscriptions: subscriptions_of(c, &user.uid),
    }
}

/// A profile page response: never stored by caches (it shows keys).
fn respond(status: StatusCode, page: &ProfilePage) -> Response {
    let mut r = (status, render(page)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /profile`.
pub async fn page(
    State(s): State<PortalState>,
    v: Visitor,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let user = v.require_user("/profile")?;
    let c = s.catalog();
    let mut p = profile_page(&c, &v, user);
    p.notice = notice(q.done.as_deref());
    Ok(respond(StatusCode::OK, &p))
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    csrf: String,
    #[serde(rename = "firstName", default)]
    first_name: String,
    #[serde(rename = "lastName", default)]
    last_name: String,
}

/// `POST /profile`: first and last name.
pub async fn update(
    State(s): State<PortalState>,
    v: Visitor,
    Form(f): Form<NameForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    let user = v.require_user("/profile")?;
    let (first, last) = (
        f.first_name.trim().to_string(),
        f.last_name.trim().to_string(),
    );
    if first.chars().count() > 100 || last.chars().count() > 100 {
        let mut p = profile_page(&s.catalog(), &v, user);
        p.first_name = first;
        p.last_name = last;
        p.name_error = Some("Use at most 100 characters for each name.".into());
        return Ok(respond(StatusCode::BAD_REQUEST, &p));
    }
    let uid = user.uid.clone();
    s.commit(move |c| {
        let mut u = c
            .users
            .get(&uid)
            .cloned()
            .ok_or_else(|| ApiError::not_found("user"))?;
        if u.first_name == first && u.last_name == last {
            return Ok(vec![]);
        }
        u.first_name = first;
        u.last_name = last;
        Ok(vec![Change::User(uid, Some(u))])
    })
    .await
    .map_err(|e| PortalError::from_api(&v, e))?;
    Ok(Redirect::to("/profile?done=updated").into_response())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /profile/password`: checks the current password (failures count
/// towards the sign-in throttle), applies the password rules, then stores
/// the new hash with a bumped session epoch, which signs out every other
/// session; this browser gets a new session cookie.
pub async fn change_password(
    State(s): State<PortalState>,
    v: Visitor,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    let user = v.require_user("/profile")?.clone();
    let again = |status: StatusCode, message: &str| {
        let mut p = profile_page(&s.catalog(), &v, &user);
        p.password_error = Some(message.to_string());
        respond(status, &p)
    };
    let by_email = format!("email:{}", user.email.to_ascii_lowercase());
    let throttle = &s.inner.throttle;
    if throttle.blocked(&by_email).is_some() {
        return Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong passwords. Try again later.",
        ));
    }
    let Some(stored) = s.catalog().user_credentials.get(&user.uid).cloned() else {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "This account has no portal password to change.",
        ));
    };
    let (current, hash) = (f.current.clone(), stored.password_hash.expose().to_string());
    let ok = tokio::task::spawn_blocking(move || credentials::verify_password(&current, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        throttle.failed(&by_email);
        tracing::info!(user = %user.uid, "portal password change: wrong current password");
        return Ok(again(
            StatusCode::FORBIDDEN,
            "The current password is wrong.",
        ));
    }
    if let Some(problem) = credentials::password_problem(&f.password, &user.email) {
        return Ok(again(StatusCode::BAD_REQUEST, problem));
    }
    if f.password != f.confirm {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "The two new passwords do not match.",
        ));
    }
    let password = f.password.clone();
    let new_hash = tokio::task::spawn_blocking(move || credentials::hash_password(&password))
        .await
        .map_err(|_| PortalError::from_api(&v, ApiError::internal()))?
        .map_err(|e| {
            tracing::error!(error = %e, "portal password change");
            PortalError::from_api(&v, ApiError::internal())
        })?;
    let uid = user.uid.clone();
    let written = s
        .commit(move |c| {
            // Refuse if the password changed meanwhile (another tab, the
            // management API): the one verified above is no longer it.
            let now = c
                .user_credentials
                .get(&uid)
                .filter(|cr| cr.password_hash == stored.password_hash)
                .ok_or_else(|| {
                    ApiError::conflict("Your password was changed meanwhile. Sign in again.")
                })?;
            Ok(vec![Change::UserCredentials(
                uid,
                Some(UserCredentials {
                    password_hash: Secret::new(new_hash),
                    session_epoch: now.session_epoch + 1,
                }),
            )])
        })
        .await
        .map_err(|e| PortalError::from_api(&v, e))?;
    let epoch = written
        .user_credentials
        .get(&user.uid)
        .map_or(0, |cr| cr.session_epoch);
    tracing::info!(user = %user.uid, "portal password changed");
    Ok(super::account::signed_in(
        &s,
        &user.uid,
        epoch,
        "/profile?done=password",
    ))
}

/// Runs `act` on subscription `sid` of the signed-in user in one write,
/// then goes back to the profile with `?done={done}`. Someone else's
/// subscription (or none) is a 404 page.
async fn on_own<F>(
    s: &PortalState,
    v: &Visitor,
    sid: String,
    done: &'static str,
    act: F,
) -> Result<Response, PortalError>
where
    F: FnOnce(&mut Subscription) -> Result<(), ApiError> + Send + 'static,
{
    let user = v.require_user("/profile")?;
    let owner = format!("/users/{}", user.uid);
    let id = sid.clone();
    let written = s
        .commit(move |c| {
            let mut sub = c
                .subscriptions
                .get(&id)
                .filter(|x| x.owner_id.as_deref() == Some(owner.as_str()))
                .cloned()
                .ok_or_else(|| ApiError::not_found("subscription"))?;
            act(&mut sub)?;
            Ok(vec![Change::Subscription(id, Some(sub))])
        })
        .await;
    match written {
        Ok(_) => {
            tracing::info!(user = %user.uid, subscription = %sid, action = done, "portal subscription");
            Ok(Redirect::to(&format!("/profile?done={done}")).into_response())
        }
        Err(e) if e.code == Code::ResourceNotFound => {
            Err(PortalError::not_found(v, "There is no such subscription."))
        }
        Err(e) => Err(PortalError::from_api(v, e)),
    }
}

#[derive(Deserialize)]
pub struct RegenerateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

/// `POST /subscriptions/{sid}/regenerate` with `key=primary|secondary`.
pub async fn regenerate(
    State(s): State<PortalState>,
    v: Visitor,
    Path(sid): Path<String>,
    Form(f): Form<RegenerateForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    let primary = match f.key.as_str() {
        "primary" => true,
        "secondary" => false,
        _ => {
            return Err(PortalError::new(
                StatusCode::BAD_REQUEST,
                &v,
                "That did not work",
                "Choose the primary or the secondary key.",
            ))
        }
    };
    let key = random_hex(16)
        .map(Secret::new)
        .map_err(|e| PortalError::from_api(&v, e.into()))?;
    on_own(&s, &v, sid, "regenerated", move |sub| {
        if sub.state != SubscriptionState::Active {
            return Err(ApiError::conflict(
                "Keys can be regenerated only for an active subscription.",
            ));
        }
        if primary {
            sub.primary_key = key;
        } else {
            sub.secondary_key = key;
        }
        Ok(())
    })
    .await
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /subscriptions/{sid}/rename`.
pub async fn rename(
    State(s): State<PortalState>,
    v: Visitor,
    Path(sid): Path<String>,
    Form(f): Form<RenameForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    let name = f.name.trim().to_string();
    on_own(&s, &v, sid, "renamed", move |sub| {
        let n = name.chars().count();
        if n == 0 || n > MAX_NAME {
            return Err(ApiError::new(
                Code::ValidationError,
                format!("Give the subscription a name of 1 to {MAX_NAME} characters."),
            ));
        }
        sub.display_name = name;
        Ok(())
    })
    .await
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /subscriptions/{sid}/cancel`: the subscription becomes
/// `cancelled` and its keys stop working.
pub async fn cancel(
    State(s): State<PortalState>,
    v: Visitor,
    Path(sid): Path<String>,
    Form(f): Form<CancelForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    on_own(&s, &v, sid, "cancelled", |sub| {
        if !cancellable(sub.state) {
            return Err(ApiError::conflict(format!(
                "This subscription is {} already.",
                state_badge(sub.state).label.to_ascii_lowercase()
            )));
        }
        sub.state = SubscriptionState::Cancelled;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_notices() {
        assert_eq!(day("2024-05-06T07:08:09Z"), "2024-05-06");
        assert_eq!(day("soon"), "soon");
        assert_eq!(day("2024x05-06T07"), "2024x05-06T07");
        assert!(notice(Some("regenerated")).is_some());
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }
}

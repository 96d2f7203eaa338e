//! Home, sign up, sign in and sign out.

use super::session::{self, Claims, SESSION_COOKIE};
use super::{render, safe_return, Chrome, PortalError, PortalState, Visitor};
use crate::error::{random_hex, ApiError, Detail, Secret};
use crate::model::{credentials, Change, User, UserCredentials, UserState};
use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::net::SocketAddr;

/// A product as the home page and catalog list it.
pub struct ProductCard {
    pub id: String,
    pub name: String,
    pub description: String,
    pub api_count: usize,
    pub approval_required: bool,
}

#[derive(Template)]
#[template(path = "portal/home.html")]
struct Home {
    chrome: Chrome,
    api_count: usize,
    products: Vec<ProductCard>,
}

/// `GET /`.
pub async fn home(State(s): State<PortalState>, v: Visitor) -> Response {
    let c = s.catalog();
    let viewer = v.viewer(&c);
    let products = viewer
        .products(&c)
        .into_iter()
        .take(6)
        .map(|(id, p)| ProductCard {
            id: id.clone(),
            name: p.display_name.clone(),
            description: p.description.clone().unwrap_or_default(),
            api_count: c.product_apis.get(id).map_or(0, |a| a.len()),
            approval_required: p.approval_required,
        })
        .collect();
    render(&Home {
        chrome: v.chrome("Home"),
        api_count: viewer.apis(&c).len(),
        products,
    })
}

#[derive(Deserialize, Default)]
pub struct ReturnQuery {
    #[serde(rename = "returnUrl")]
    return_url: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/signup.html")]
struct SignUpPage {
    chrome: Chrome,
    error: Option<String>,
    return_url: String,
    email: String,
    first_name: String,
    last_name: String,
}

/// `GET /signup`.
pub async fn signup_page(v: Visitor, Query(q): Query<ReturnQuery>) -> Response {
    if v.user.is_some() {
        return Redirect::to("/profile").into_response();
    }
    render(&SignUpPage {
        chrome: v.chrome("Sign up"),
        error: None,
        return_url: safe_return(q.return_url.as_deref()),
        email: String::new(),
        first_name: String::new(),
        last_name: String::new(),
    })
}

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    csrf: String,
    email: String,
    #[serde(rename = "firstName", default)]
    first_name: String,
    #[serde(rename = "lastName", default)]
    last_name: String,
    password: String,
    confirm: String,
    #[serde(rename = "returnUrl", default)]
    return_url: Option<String>,
}

/// `POST /signup`: creates an active user in `developers` and signs in.
pub async fn signup(
    State(s): State<PortalState>,
    v: Visitor,
    Form(f): Form<SignUpForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    let again = |error: &str, status: StatusCode| {
        let page = SignUpPage {
            chrome: v.chrome("Sign up"),
            error: Some(error.to_string()),
            return_url: safe_return(f.return_url.as_deref()),
            email: f.email.clone(),
            first_name: f.first_name.clone(),
            last_name: f.last_name.clone(),
        };
        (status, render(&page)).into_response()
    };
    let mut user = User {
        email: f.email.trim().to_string(),
        first_name: f.first_name.trim().to_string(),
        last_name: f.last_name.trim().to_string(),
        state: UserState::Active,
        note: None,
        registration_date: crate::model::rfc3339(crate::model::unix_now()),
        password: None,
    };
    let mut details: Vec<Detail> = Vec::new();
    user.normalize(&mut details);
    if let Some(d) = details.first() {
        let msg = match d.target.as_str() {
            "email" => "Enter a valid email address.".to_string(),
            _ => format!("{}: {}", d.target, d.message),
        };
        return Ok(again(&msg, StatusCode::BAD_REQUEST));
    }
    if let Some(problem) = credentials::password_problem(&f.password, &user.email) {
        return Ok(again(problem, StatusCode::BAD_REQUEST));
    }
    if f.password != f.confirm {
        return Ok(again(
            "The two passwords do not match.",
            StatusCode::BAD_REQUEST,
        ));
    }
    let password = f.password.clone();
    let hash = tokio::task::spawn_blocking(move || credentials::hash_password(&password))
        .await
        .map_err(|_| PortalError::from_api(&v, ApiError::internal()))?
        .map_err(|e| {
            tracing::error!(error = %e, "portal sign-up");
            PortalError::from_api(&v, ApiError::internal())
        })?;
    let uid = format!(
        "u-{}",
        random_hex(8).map_err(|_| PortalError::from_api(&v, ApiError::internal()))?
    );
    let (id, email) = (uid.clone(), user.email.clone());
    let written = s
        .commit(move |c| {
            if c.users
                .values()
                .any(|u| u.email.eq_ignore_ascii_case(&email))
            {
                return Err(ApiError::conflict("email taken"));
            }
            Ok(vec![
                Change::User(id.clone(), Some(user)),
                Change::UserCredentials(
                    id.clone(),
                    Some(UserCredentials {
                        password_hash: Secret::new(hash),
                        session_epoch: 0,
                    }),
                ),
                Change::GroupUser("developers".into(), id, true),
            ])
        })
        .await;
    match written {
        Ok(_) => {}
        Err(e) if e.code == crate::error::Code::Conflict => {
            return Ok(again(
                "An account with this email exists already. Sign in instead.",
                StatusCode::CONFLICT,
            ))
        }
        Err(e) => return Err(PortalError::from_api(&v, e)),
    }
    tracing::info!(user = %uid, "portal sign-up");
    // New developers land on their profile unless they came from a page.
    let to = match safe_return(f.return_url.as_deref()) {
        r if r == "/" => "/profile".to_string(),
        r => r,
    };
    Ok(signed_in(&s, &uid, 0, &to))
}

/// A redirect to `to` that carries a fresh session cookie for `uid`.
pub(super) fn signed_in(s: &PortalState, uid: &str, epoch: u64, to: &str) -> Response {
    let lifetime = s.inner.settings.session_lifetime.as_secs().max(60);
    let value = s.inner.keys.mint(&Claims {
        uid: uid.to_string(),
        epoch,
        expiry: crate::model::unix_now() + lifetime,
    });
    let mut r = Redirect::to(to).into_response();
    let c = session::set_cookie(SESSION_COOKIE, &value, Some(lifetime), s.inner.secure);
    if let Ok(h) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, h);
    }
    r
}

#[derive(Template)]
#[template(path = "portal/signin.html")]
struct SignInPage {
    chrome: Chrome,
    error: Option<String>,
    return_url: String,
    email: String,
}

/// `GET /signin`.
pub async fn signin_page(v: Visitor, Query(q): Query<ReturnQuery>) -> Response {
    if v.user.is_some() {
        return Redirect::to(&safe_return(q.return_url.as_deref())).into_response();
    }
    render(&SignInPage {
        chrome: v.chrome("Sign in"),
        error: None,
        return_url: safe_return(q.return_url.as_deref()),
        email: String::new(),
    })
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    email: String,
    password: String,
    #[serde(rename = "returnUrl", default)]
    return_url: Option<String>,
}

/// A hash to verify against when the email is unknown, so that an unknown
/// email costs what a wrong password does.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg";

/// `POST /signin`: at most 5 failures per email and per client address in
/// 15 minutes.
pub async fn signin(
    State(s): State<PortalState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    v: Visitor,
    Form(f): Form<SignInForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    let email = f.email.trim().to_string();
    let return_url = safe_return(f.return_url.as_deref());
    let again = |error: &str, status: StatusCode| {
        let page = SignInPage {
            chrome: v.chrome("Sign in"),
            error: Some(error.to_string()),
            return_url: return_url.clone(),
            email: email.clone(),
        };
        (status, render(&page)).into_response()
    };
    let by_email = format!("email:{}", email.to_ascii_lowercase());
    let by_peer = format!("peer:{}", peer.ip());
    let throttle = &s.inner.throttle;
    if let Some(wait) = throttle
        .blocked(&by_email)
        .or_else(|| throttle.blocked(&by_peer))
    {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let mut r = again(
            &format!("Too many failed sign-in attempts. Try again in {minutes} minute(s)."),
            StatusCode::TOO_MANY_REQUESTS,
        );
        if let Ok(h) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, h);
        }
        return Ok(r);
    }
    let c = s.catalog();
    let found = c
        .users
        .iter()
        .find(|(_, u)| u.email.eq_ignore_ascii_case(&email))
        .and_then(|(uid, u)| {
            c.user_credentials
                .get(uid)
                .map(|cr| (uid.clone(), u.state, cr.clone()))
        });
    let hash = found
        .as_ref()
        .map(|(_, _, cr)| cr.password_hash.expose().to_string())
        .unwrap_or_else(|| DUMMY_HASH.to_string());
    let password = f.password.clone();
    let ok = tokio::task::spawn_blocking(move || credentials::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    match found {
        Some((uid, state, cr)) if ok => {
            if state != UserState::Active {
                return Ok(again(
                    "This account cannot sign in (it is blocked or not yet active).",
                    StatusCode::FORBIDDEN,
                ));
            }
            throttle.clear(&by_email);
            tracing::info!(user = %uid, "portal sign-in");
            Ok(signed_in(&s, &uid, cr.session_epoch, &return_url))
        }
        _ => {
            throttle.failed(&by_email);
            throttle.failed(&by_peer);
            tracing::info!(peer = %peer.ip(), "portal sign-in failed");
            Ok(again(
                "The email or the password is wrong.",
                StatusCode::UNAUTHORIZED,
            ))
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /signout`.
pub async fn signout(
    State(s): State<PortalState>,
    v: Visitor,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    let mut r = Redirect::to("/").into_response();
    let c = session::set_cookie(SESSION_COOKIE, "", Some(0), s.inner.secure);
    if let Ok(h) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, h);
    }
    Ok(r)
}

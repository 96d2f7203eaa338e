//! The developer portal: server-rendered pages where developers discover
//! APIs, read their reference, sign up, subscribe to products, manage
//! their keys and try operations; and a small admin corner.
//!
//! Owns: the portal router and its state, the visitor (session and CSRF)
//! extraction, visibility rules (which products and APIs a visitor sees,
//! APIM's guests / developers / groups model), page templates (askama,
//! compiled in from `templates/portal/`) and static assets (embedded from
//! `static/`). Writes go through [`crate::writer::commit`], like the
//! management API's.
//!
//! Pages are plain HTML forms (every form carries a CSRF token); the only
//! script is the try-it console's.
//!
//! May use: `store`, `snapshot`, `writer`, `model`, `config`, `error`,
//! `analytics` (the Reports page reads its aggregates).

mod account;
mod admin;
mod assets;
mod catalog;
mod charts;
mod console;
mod products;
mod profile;
mod reference;
mod reports;
mod session;
mod visibility;

use crate::config;
use crate::error::Secret;
use crate::model::Catalog;
use crate::snapshot::SnapshotHandle;
use crate::store::Store;
use askama::Template;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use visibility::Viewer;

/// The registered gateways with their runtime state (as `GET
/// /mgmt/gateways` shows them), supplied by the wiring.
pub type GatewayView = Arc<dyn Fn() -> Vec<serde_json::Value> + Send + Sync>;

/// What every portal handler shares.
#[derive(Clone)]
pub struct PortalState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    snapshot: Arc<SnapshotHandle>,
    keys: session::Keys,
    /// Failed sign-ins per email and per client address.
    throttle: session::Throttle,
    settings: config::Portal,
    /// Where this node's gateway listens (the try-it console's only target).
    gateway_addr: SocketAddr,
    gateways: GatewayView,
    /// Whether the portal is served over TLS (cookies get `Secure`).
    secure: bool,
    /// The persisted traffic aggregates (`None`: analytics is off).
    analytics: Option<Arc<crate::analytics::AnalyticsDb>>,
}

/// How the portal is started.
pub struct PortalOptions {
    pub store: Arc<Store>,
    pub snapshot: Arc<SnapshotHandle>,
    /// Signing key for sessions and CSRF tokens.
    pub key: Secret,
    pub settings: config::Portal,
    pub gateway_addr: SocketAddr,
    pub gateways: GatewayView,
    /// The portal is served over TLS: its cookies get `Secure`.
    pub secure: bool,
    /// The traffic aggregates the Reports page reads (`None`: analytics
    /// is off; the page says so).
    pub analytics: Option<Arc<crate::analytics::AnalyticsDb>>,
}

impl PortalState {
    pub fn new(o: PortalOptions) -> PortalState {
        PortalState {
            inner: Arc::new(Inner {
                store: o.store,
                snapshot: o.snapshot,
                keys: session::Keys::new(&o.key),
                throttle: session::Throttle::new(5, Duration::from_secs(15 * 60)),
                settings: o.settings,
                gateway_addr: o.gateway_addr,
                gateways: o.gateways,
                secure: o.secure,
                analytics: o.analytics,
            }),
        }
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.inner.store.catalog()
    }

    async fn commit<F>(&self, plan: F) -> Result<Arc<Catalog>, crate::error::ApiError>
    where
        F: FnOnce(&Catalog) -> Result<Vec<crate::model::Change>, crate::error::ApiError>
            + Send
            + 'static,
    {
        crate::writer::commit(&self.inner.store, &self.inner.snapshot, plan).await
    }

    /// The gateway base URL shown to developers: `[portal] gateway_url`, or
    /// this host on the gateway's port.
    fn gateway_url(&self, host: Option<&str>) -> String {
        if let Some(url) = &self.inner.settings.gateway_url {
            return url.trim_end_matches('/').to_string();
        }
        let port = self.inner.gateway_addr.port();
        let host = host
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
            .map(|a| a.host().to_string())
            .unwrap_or_else(|| "localhost".into());
        format!("http://{host}:{port}")
    }
}

/// The portal router.
pub fn router(state: PortalState) -> Router {
    Router::new()
        .route("/", get(account::home))
        .route("/signup", get(account::signup_page).post(account::signup))
        .route("/signin", get(account::signin_page).post(account::signin))
        .route("/signout", post(account::signout))
        // Products, profile and admin
        .route("/products", get(products::list))
        .route("/products/{id}", get(products::detail))
        .route("/products/{id}/subscribe", post(products::subscribe))
        .route("/profile", get(profile::page).post(profile::update))
        .route("/profile/password", post(profile::change_password))
        .route("/subscriptions/{sid}/regenerate", post(profile::regenerate))
        .route("/subscriptions/{sid}/rename", post(profile::rename))
        .route("/subscriptions/{sid}/cancel", post(profile::cancel))
        .route("/admin", get(admin::page))
        .route("/reports", get(reports::page))
        .route("/admin/subscriptions/{sid}/approve", post(admin::approve))
        .route("/admin/subscriptions/{sid}/reject", post(admin::reject))
        // Catalog and reference
        .route("/apis", get(catalog::list))
        .route("/apis/{api}", get(catalog::api))
        .route("/apis/{api}/openapi", get(catalog::openapi))
        .route("/apis/{api}/operations/{op}", get(catalog::operation))
        .route("/console/send", post(console::send))
        .route("/static/{file}", get(assets::serve))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            visitor_layer,
        ))
        .with_state(state)
}

async fn not_found(v: Visitor) -> PortalError {
    PortalError::not_found(&v, "There is no page here.")
}

/// The CSRF cookie value of this request (minted by [`visitor_layer`] when
/// the visitor had none).
#[derive(Clone)]
struct CsrfCookie(String);

/// Gives every visitor a CSRF cookie, applies "require sign-in to browse",
/// and sets the security headers every page carries.
async fn visitor_layer(State(s): State<PortalState>, mut req: Request, next: Next) -> Response {
    let existing = session::cookie(req.headers(), session::CSRF_COOKIE)
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    let (value, minted) = match existing {
        Some(v) => (v, false),
        None => match crate::error::random_hex(16) {
            Ok(v) => (v, true),
            Err(_) => {
                let mut r = (StatusCode::INTERNAL_SERVER_ERROR, "no randomness").into_response();
                finish(&s, &mut r, None);
                return r;
            }
        },
    };
    req.extensions_mut().insert(CsrfCookie(value.clone()));
    let path = req.uri().path().to_string();
    let open = path.starts_with("/static/") || path == "/signin" || path == "/signup";
    if s.inner.settings.require_sign_in && !open && req.method() == http::Method::GET {
        let (mut parts, body) = req.into_parts();
        let signed_in = Visitor::from_request_parts(&mut parts, &s)
            .await
            .is_ok_and(|v| v.user.is_some());
        if !signed_in {
            let target = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let mut r = Redirect::to(&format!(
                "/signin?returnUrl={}",
                percent_encoding::utf8_percent_encode(target, percent_encoding::NON_ALPHANUMERIC)
            ))
            .into_response();
            finish(&s, &mut r, minted.then_some(value.as_str()));
            return r;
        }
        req = Request::from_parts(parts, body);
    }
    let mut resp = next.run(req).await;
    finish(&s, &mut resp, minted.then_some(value.as_str()));
    resp
}

fn finish(s: &PortalState, resp: &mut Response, new_csrf: Option<&str>) {
    let h = resp.headers_mut();
    if let Some(v) = new_csrf {
        let c = session::set_cookie(session::CSRF_COOKIE, v, None, s.inner.secure);
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
}

/// A signed-in portal user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub uid: String,
    pub email: String,
    pub name: String,
    pub admin: bool,
}

/// Who is asking: the signed-in user (if any) and the form token.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub user: Option<SignedIn>,
    /// The CSRF token every form of this page carries.
    pub csrf: String,
    csrf_cookie: String,
    /// The `Host` the visitor used (for gateway URLs).
    pub host: Option<String>,
}

impl Visitor {
    /// Refuses a form whose token does not match the visitor's cookie.
    fn check_csrf(&self, token: &str, s: &PortalState) -> Result<(), PortalError> {
        if s.inner.keys.csrf_ok(&self.csrf_cookie, token) {
            Ok(())
        } else {
            Err(PortalError::new(
                StatusCode::FORBIDDEN,
                self,
                "Form expired",
                "This form is no longer valid (or did not come from this portal). Go back, reload the page and try again.",
            ))
        }
    }

    /// The signed-in user, or a redirect to sign in.
    fn require_user(&self, return_to: &str) -> Result<&SignedIn, PortalError> {
        self.user.as_ref().ok_or_else(|| PortalError::SignIn {
            return_to: return_to.to_string(),
        })
    }

    fn viewer(&self, c: &Catalog) -> Viewer {
        Viewer::of(c, self.user.as_ref().map(|u| u.uid.as_str()))
    }

    /// The chrome (navigation) of a page for this visitor.
    fn chrome(&self, title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            user: self.user.clone(),
            csrf: self.csrf.clone(),
        }
    }
}

impl FromRequestParts<PortalState> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        s: &PortalState,
    ) -> Result<Self, Self::Rejection> {
        let csrf_cookie = parts
            .extensions
            .get::<CsrfCookie>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        let user = session::cookie(&parts.headers, session::SESSION_COOKIE)
            .and_then(|v| s.inner.keys.open(v, crate::model::unix_now()))
            .and_then(|claims| {
                let c = s.catalog();
                let u = c.users.get(&claims.uid)?;
                let creds = c.user_credentials.get(&claims.uid)?;
                if u.state != crate::model::UserState::Active || creds.session_epoch != claims.epoch
                {
                    return None;
                }
                let name = format!("{} {}", u.first_name, u.last_name)
                    .trim()
                    .to_string();
                Some(SignedIn {
                    admin: c
                        .group_users
                        .get("administrators")
                        .is_some_and(|m| m.contains(&claims.uid)),
                    name: if name.is_empty() {
                        u.email.clone()
                    } else {
                        name
                    },
                    email: u.email.clone(),
                    uid: claims.uid,
                })
            });
        Ok(Visitor {
            user,
            csrf: s.inner.keys.csrf_token(&csrf_cookie),
            csrf_cookie,
            host: parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string),
        })
    }
}

/// What the layout template needs on every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    pub user: Option<SignedIn>,
    pub csrf: String,
}

impl Chrome {
    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.admin)
    }
}

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: String,
    message: String,
}

/// A page that could not be shown.
#[derive(Debug)]
pub enum PortalError {
    Page {
        status: StatusCode,
        chrome: Box<Chrome>,
        heading: String,
        message: String,
    },
    /// The visitor must sign in first.
    SignIn { return_to: String },
}

impl PortalError {
    fn new(status: StatusCode, v: &Visitor, heading: &str, message: &str) -> PortalError {
        PortalError::Page {
            status,
            chrome: Box::new(v.chrome(heading)),
            heading: heading.into(),
            message: message.into(),
        }
    }

    fn not_found(v: &Visitor, message: &str) -> PortalError {
        PortalError::new(StatusCode::NOT_FOUND, v, "Not found", message)
    }

    /// A write refused or failed: the management error's message is safe
    /// to show (it never carries secrets).
    fn from_api(v: &Visitor, e: crate::error::ApiError) -> PortalError {
        let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let message = if status.is_server_error() {
            "Something went wrong on our side. Try again later.".to_string()
        } else {
            e.message.clone()
        };
        PortalError::new(status, v, "That did not work", &message)
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        match self {
            PortalError::SignIn { return_to } => Redirect::to(&format!(
                "/signin?returnUrl={}",
                percent_encoding::utf8_percent_encode(
                    &return_to,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ))
            .into_response(),
            PortalError::Page {
                status,
                chrome,
                heading,
                message,
            } => {
                let page = ErrorPage {
                    chrome: *chrome,
                    heading,
                    message,
                };
                (status, render(&page)).into_response()
            }
        }
    }
}

/// Renders a template; a template error is logged and answered with 500.
fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "portal template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// A local path to return to after signing in; anything else (another
/// host, a scheme, `//host`, backslashes) becomes `/`.
pub fn safe_return(target: Option<&str>) -> String {
    match target {
        Some(t)
            if t.starts_with('/')
                && !t.starts_with("//")
                && !t.contains('\\')
                && !t.chars().any(char::is_control) =>
        {
            t.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return;

    #[test]
    fn return_urls_stay_on_this_site() {
        assert_eq!(safe_return(Some("/apis/x?y=1")), "/apis/x?y=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(safe_return(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_return(None), "/");
    }
}

//! Products: the list, a product's page, and subscribing to one.
//!
//! A visitor sees the products [`super::Viewer`] lets them see; any other
//! product id is a 404 page, as if it did not exist. Subscribing is for
//! signed-in users only, and the checks (visibility, open product, terms,
//! `subscriptionsLimit`) run again inside the write, so two subscribes at
//! once cannot both take the last place.

use super::profile::{day, state_badge, StateBadge};
use super::{render, Chrome, PortalError, PortalState, Visitor};
use crate::error::{random_hex, ApiError, Code, Secret};
use crate::model::{Catalog, Change, Product, ProductState, Subscription, SubscriptionState};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

/// Longest subscription name (as the management API allows).
pub const MAX_NAME: usize = 100;

/// A product as the list shows it.
pub struct ProductRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub api_count: usize,
    pub open: bool,
    pub approval_required: bool,
    pub published: bool,
}

fn row(c: &Catalog, id: &str, p: &Product) -> ProductRow {
    ProductRow {
        id: id.to_string(),
        name: p.display_name.clone(),
        description: p.description.clone().unwrap_or_default(),
        api_count: c.product_apis.get(id).map_or(0, |a| a.len()),
        open: !p.subscription_required,
        approval_required: p.approval_required,
        published: p.state == ProductState::Published,
    }
}

#[derive(Template)]
#[template(path = "portal/products.html")]
struct ProductsPage {
    chrome: Chrome,
    products: Vec<ProductRow>,
}

/// `GET /products`.
pub async fn list(State(s): State<PortalState>, v: Visitor) -> Response {
    let c = s.catalog();
    let products = v
        .viewer(&c)
        .products(&c)
        .into_iter()
        .map(|(id, p)| row(&c, id, p))
        .collect();
    render(&ProductsPage {
        chrome: v.chrome("Products"),
        products,
    })
}

/// An API inside a product.
pub struct ApiLink {
    pub id: String,
    pub name: String,
    pub path: String,
    pub description: String,
}

/// One of the visitor's own subscriptions to the product.
pub struct Held {
    pub name: String,
    pub state: StateBadge,
    pub created: String,
}

#[derive(Template)]
#[template(path = "portal/product.html")]
struct ProductPage {
    chrome: Chrome,
    product: ProductRow,
    terms: Option<String>,
    limit: Option<u32>,
    apis: Vec<ApiLink>,
    /// The visitor's subscriptions to this product.
    mine: Vec<Held>,
    /// Places the visitor already holds under the limit.
    held: usize,
    /// Why the last subscribe did not work.
    error: Option<String>,
    /// The name typed into the form.
    name: String,
}

impl ProductPage {
    fn limit_reached(&self) -> bool {
        self.limit.is_some_and(|l| self.held >= l as usize)
    }
}

/// The product page for `id`, or `None` when this visitor cannot see it.
fn page(c: &Catalog, v: &Visitor, id: &str) -> Option<ProductPage> {
    if !v.viewer(c).sees_product(c, id) {
        return None;
    }
    let p = c.products.get(id)?;
    let apis = c
        .product_apis
        .get(id)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            c.apis.get(a).map(|api| ApiLink {
                id: a.clone(),
                name: api.display_name.clone(),
                path: api.path.clone(),
                description: api.description.clone().unwrap_or_default(),
            })
        })
        .collect();
    let (mine, held) = match &v.user {
        Some(u) => {
            let owner = format!("/users/{}", u.uid);
            let scope = format!("/products/{id}");
            let mine = c
                .subscriptions
                .values()
                .filter(|s| {
                    s.owner_id.as_deref() == Some(owner.as_str())
                        && s.scope.trim_end_matches('/') == scope
                })
                .map(|s| Held {
                    name: s.display_name.clone(),
                    state: state_badge(s.state),
                    created: day(&s.created_date),
                })
                .collect();
            (mine, c.held_subscriptions(&u.uid, id, None))
        }
        None => (Vec::new(), 0),
    };
    Some(ProductPage {
        chrome: v.chrome(p.display_name.clone()),
        product: row(c, id, p),
        terms: p.terms.clone().filter(|t| !t.trim().is_empty()),
        limit: p.subscriptions_limit,
        apis,
        mine,
        held,
        error: None,
        name: String::new(),
    })
}

fn hidden(v: &Visitor) -> PortalError {
    PortalError::not_found(v, "There is no such product.")
}

/// `GET /products/{productId}`.
pub async fn detail(
    State(s): State<PortalState>,
    v: Visitor,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let c = s.catalog();
    let page = page(&c, &v, &id).ok_or_else(|| hidden(&v))?;
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct SubscribeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// The terms checkbox (`on` when ticked).
    #[serde(rename = "acceptTerms", default)]
    accept_terms: Option<String>,
}

/// `POST /products/{productId}/subscribe`: a subscription owned by the
/// signed-in user, `active` (or `submitted` when the product needs
/// approval), then the profile.
pub async fn subscribe(
    State(s): State<PortalState>,
    v: Visitor,
    Path(id): Path<String>,
    Form(f): Form<SubscribeForm>,
) -> Result<Response, PortalError> {
    v.check_csrf(&f.csrf, &s)?;
    let user = v.require_user(&format!("/products/{id}"))?.clone();
    let typed = f.name.trim().to_string();
    let again =
        |c: &Catalog, status: StatusCode, message: String| -> Result<Response, PortalError> {
            let mut p = page(c, &v, &id).ok_or_else(|| hidden(&v))?;
            p.error = Some(message);
            p.name = typed.clone();
            Ok((status, render(&p)).into_response())
        };
    let before = s.catalog();
    if page(&before, &v, &id).is_none() {
        return Err(hidden(&v));
    }
    if typed.chars().count() > MAX_NAME {
        return again(
            &before,
            StatusCode::BAD_REQUEST,
            format!("Use at most {MAX_NAME} characters for the subscription's name."),
        );
    }
    let accepted = f.accept_terms.as_deref().is_some_and(|t| !t.is_empty());
    let fresh = || random_hex(16).map(Secret::new);
    let (sid, primary, secondary) = match (random_hex(8), fresh(), fresh()) {
        (Ok(sid), Ok(p), Ok(s)) => (format!("s-{sid}"), p, s),
        _ => return Err(PortalError::from_api(&v, ApiError::internal())),
    };
    let (pid, uid, name, new_id) = (id.clone(), user.uid.clone(), typed.clone(), sid.clone());
    // Every check runs again on the catalog the write applies to: this is
    // what keeps two subscribes at once within the limit.
    let written = s
        .commit(move |c| {
            let viewer = super::Viewer::of(c, Some(&uid));
            let Some(p) = c.products.get(&pid).filter(|_| viewer.sees_product(c, &pid)) else {
                return Err(ApiError::not_found("product"));
            };
            if !p.subscription_required {
                return Err(ApiError::conflict(
                    "This product is open: its APIs are called without a key, so there is nothing to subscribe to.",
                ));
            }
            if p.terms.as_deref().is_some_and(|t| !t.trim().is_empty()) && !accepted {
                return Err(ApiError::new(
                    Code::ValidationError,
                    "Accept the terms of use to subscribe.",
                ));
            }
            if let Some(limit) = p.subscriptions_limit {
                let held = c.held_subscriptions(&uid, &pid, None);
                if held >= limit as usize {
                    return Err(ApiError::conflict(format!(
                        "You already have {held} subscription(s) to this product, its limit. \
                         Cancel one on your profile to subscribe again."
                    )));
                }
            }
            if c.subscriptions.contains_key(&sid) {
                return Err(ApiError::internal());
            }
            let display_name = if name.is_empty() {
                crate::model::truncate(&p.display_name, MAX_NAME)
            } else {
                name
            };
            let state = if p.approval_required {
                SubscriptionState::Submitted
            } else {
                SubscriptionState::Active
            };
            Ok(vec![Change::Subscription(
                sid,
                Some(Subscription {
                    scope: format!("/products/{pid}"),
                    display_name,
                    owner_id: Some(format!("/users/{uid}")),
                    state,
                    state_comment: None,
                    allow_tracing: false,
                    primary_key: primary,
                    secondary_key: secondary,
                    created_date: crate::model::rfc3339(crate::model::unix_now()),
                    expiration_date: None,
                }),
            )])
        })
        .await;
    match written {
        Ok(c) => {
            let pending = c
                .subscriptions
                .get(&new_id)
                .is_some_and(|s| s.state == SubscriptionState::Submitted);
            tracing::info!(user = %user.uid, product = %id, subscription = %new_id, "portal subscribe");
            let done = if pending { "requested" } else { "subscribed" };
            Ok(Redirect::to(&format!("/profile?done={done}")).into_response())
        }
        Err(e) if e.code == Code::ResourceNotFound => Err(hidden(&v)),
        Err(e) if matches!(e.code, Code::Conflict | Code::ValidationError) => {
            let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
            again(&s.catalog(), status, e.message)
        }
        Err(e) => Err(PortalError::from_api(&v, e)),
    }
}

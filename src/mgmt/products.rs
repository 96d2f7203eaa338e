//! `/mgmt/products/{productId}` and its API and group links.

use super::body::{self, ensure_valid, flag};
use super::resource::{Link, Resource};
use super::MgmtState;
use crate::error::ApiError;
use crate::model::{Api, Catalog, Change, Group, PolicyScope, Product, SubscriptionScope};
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use std::collections::{BTreeMap, BTreeSet};

impl Resource for Product {
    const NAME: &'static str = "product";

    fn all(c: &Catalog) -> &BTreeMap<String, Self> {
        &c.products
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
        if !new.subscription_required {
            for api in c.product_apis.get(id).into_iter().flatten() {
                if let Some(other) = open_product_of(c, api, id) {
                    return Err(ApiError::conflict(format!(
                        "API {api:?} is already in the open product {other:?}; an API can be in at most one open product"
                    )));
                }
            }
        }
        let mut changes = vec![Change::Product(id.into(), Some(new))];
        if old.is_none() {
            // As in APIM, administrators see every new product.
            changes.push(Change::ProductGroup(
                id.into(),
                "administrators".into(),
                true,
            ));
        }
        Ok(changes)
    }

    /// Refused while subscriptions exist unless `deleteSubscriptions=true`;
    /// then removes them with the product's links and policy.
    fn plan_delete(id: &str, c: &Catalog, q: Option<&str>) -> Result<Vec<Change>, ApiError> {
        let scope = SubscriptionScope::Product(id.into());
        let subs: Vec<&String> = c
            .subscriptions
            .iter()
            .filter(|(_, s)| SubscriptionScope::parse(&s.scope).as_ref() == Some(&scope))
            .map(|(sid, _)| sid)
            .collect();
        if !subs.is_empty() && !flag(q, "deleteSubscriptions") {
            return Err(ApiError::conflict(format!(
                "product {id:?} has {} subscription(s); delete them first or pass deleteSubscriptions=true",
                subs.len()
            )));
        }
        let mut changes = vec![Change::Product(id.into(), None)];
        changes.extend(
            subs.into_iter()
                .map(|sid| Change::Subscription(sid.clone(), None)),
        );
        for api in c.product_apis.get(id).into_iter().flatten() {
            changes.push(Change::ProductApi(id.into(), api.clone(), false));
        }
        for g in c.product_groups.get(id).into_iter().flatten() {
            changes.push(Change::ProductGroup(id.into(), g.clone(), false));
        }
        if c.policies
            .contains_key(&PolicyScope::Product(id.into()).key())
        {
            changes.push(Change::Policy(PolicyScope::Product(id.into()), None));
        }
        Ok(changes)
    }
}

/// The open product other than `except` that contains `api`.
fn open_product_of<'c>(c: &'c Catalog, api: &'c str, except: &str) -> Option<&'c str> {
    c.products_of_api(api)
        .find(|p| *p != except && c.products.get(*p).is_some_and(|p| !p.subscription_required))
}

/// Product ↔ API.
pub struct ProductApis;

impl Link for ProductApis {
    type Parent = Product;
    type Child = Api;

    fn map(c: &Catalog) -> &BTreeMap<String, BTreeSet<String>> {
        &c.product_apis
    }

    fn change(parent: &str, child: &str, on: bool) -> Change {
        Change::ProductApi(parent.into(), child.into(), on)
    }

    fn check_link(product: &str, api: &str, c: &Catalog) -> Result<(), ApiError> {
        let open = c
            .products
            .get(product)
            .is_some_and(|p| !p.subscription_required);
        if let (true, Some(other)) = (open, open_product_of(c, api, product)) {
            return Err(ApiError::conflict(format!(
                "API {api:?} is already in the open product {other:?}; an API can be in at most one open product"
            )));
        }
        Ok(())
    }
}

/// Product ↔ group (portal visibility).
pub struct ProductGroups;

impl Link for ProductGroups {
    type Parent = Product;
    type Child = Group;

    fn map(c: &Catalog) -> &BTreeMap<String, BTreeSet<String>> {
        &c.product_groups
    }

    fn change(parent: &str, child: &str, on: bool) -> Change {
        Change::ProductGroup(parent.into(), child.into(), on)
    }
}

/// `GET /mgmt/apis/{apiId}/products`
pub async fn products_of_api(
    State(s): State<MgmtState>,
    Path(api): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let c = s.store.catalog();
    if !c.apis.contains_key(&api) {
        return Err(ApiError::not_found(format!("API {api:?}")));
    }
    let items = c
        .products_of_api(&api)
        .filter_map(|p| c.products.get(p).map(|e| e.view(p)))
        .collect();
    body::list_response(items, q.as_deref())
}

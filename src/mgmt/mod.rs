//! The management REST API (DESIGN.md §5): axum routes over the store.
//!
//! Owns: admin authentication, JSON/XML body parsing with capped reads and
//! precise `details[].target`s, entity tags (`ETag` / `If-Match`), and turning
//! each request into one atomic store write whose result compiles into the
//! next snapshot before it is acknowledged.
//!
//! **Invariant:** a 2xx answer to a write means the change is flushed to
//! disk and the gateway serves it (or a newer revision). A refused write
//! changes neither the store nor the running snapshot.
//!
//! The primary's side of the cluster protocol (`/cluster/v1/*`, gateway
//! tokens instead of the admin key) is served here too: `cluster.rs`.
//!
//! May use: `store`, `model`, `snapshot`, `policy`, `openapi`, `error`.

mod apis;
mod auth;
mod body;
mod certificates;
pub mod cluster;
mod directory;
pub mod gateways;
mod hostnames;
mod import;
mod inspector;
mod loggers;
pub mod metrics;
mod policies;
mod products;
mod reports;
mod resource;
pub mod routes;
mod subscriptions;

use crate::error::{ApiError, Code, Secret};
use crate::model::{Catalog, Change};
use crate::snapshot::SnapshotHandle;
use crate::store::Store;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;

/// What every management handler shares.
#[derive(Clone)]
pub struct MgmtState {
    pub store: Arc<Store>,
    pub snapshot: Arc<SnapshotHandle>,
    pub admin_key: Secret,
    pub max_body: usize,
    /// The primary's side of the cluster protocol.
    pub cluster: Arc<cluster::ClusterSide>,
    /// The traffic aggregates behind `/mgmt/reports/*` and where
    /// secondaries' heartbeats add theirs (`None`: analytics is off).
    pub analytics: Option<Arc<crate::analytics::AnalyticsDb>>,
    /// The gateway's API inspector traces (`GET /mgmt/traces/{id}`).
    pub traces: Arc<crate::telemetry::inspector::TraceRing>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

/// Runs one write through [`crate::writer::commit`].
pub async fn commit<F>(state: &MgmtState, plan: F) -> Result<Arc<Catalog>, ApiError>
where
    F: FnOnce(&Catalog) -> Result<Vec<Change>, ApiError> + Send + 'static,
{
    crate::writer::commit(&state.store, &state.snapshot, plan).await
}

async fn revision(axum::extract::State(state): axum::extract::State<MgmtState>) -> Response {
    Json(serde_json::json!({ "revision": state.store.revision() })).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(Code::ResourceNotFound, "no such management route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(Code::MethodNotAllowed, "method not allowed on this route")
}

/// The management router (everything under `/mgmt`, admin key required).
pub fn router(state: MgmtState) -> Router {
    use crate::model::{
        Api, Backend, Gateway, Group, Location, NamedValue, Product, Subscription, User,
    };
    use resource::{
        delete_link, delete_one, get_link, get_one, list, list_links, put_link, put_one,
    };

    let mgmt = Router::new()
        .route("/revision", get(revision))
        .route("/reports/{kind}", get(reports::report))
        .route("/apis", get(list::<Api>))
        .route(
            "/apis/{id}",
            get(import::get_api)
                .put(import::put_api)
                .delete(delete_one::<Api>),
        )
        .route("/apis/{id}/operations", get(apis::list_operations))
        .route(
            "/apis/{id}/operations/{op}",
            get(apis::get_operation)
                .put(apis::put_operation)
                .delete(apis::delete_operation),
        )
        .route(
            "/apis/{id}/policy",
            get(policies::get_api)
                .put(policies::put_api)
                .delete(policies::delete_api),
        )
        .route(
            "/apis/{id}/operations/{op}/policy",
            get(policies::get_operation)
                .put(policies::put_operation)
                .delete(policies::delete_operation),
        )
        .route("/apis/{id}/products", get(products::products_of_api))
        .route("/apis/{id}/debug-token", post(inspector::debug_token))
        .route("/traces/{id}", get(inspector::get_trace))
        .route("/products", get(list::<Product>))
        .route(
            "/products/{id}",
            get(get_one::<Product>)
                .put(put_one::<Product>)
                .delete(delete_one::<Product>),
        )
        .route(
            "/products/{id}/apis",
            get(list_links::<products::ProductApis>),
        )
        .route(
            "/products/{id}/apis/{api}",
            get(get_link::<products::ProductApis>)
                .put(put_link::<products::ProductApis>)
                .delete(delete_link::<products::ProductApis>),
        )
        .route(
            "/products/{id}/groups",
            get(list_links::<products::ProductGroups>),
        )
        .route(
            "/products/{id}/groups/{group}",
            get(get_link::<products::ProductGroups>)
                .put(put_link::<products::ProductGroups>)
                .delete(delete_link::<products::ProductGroups>),
        )
        .route(
            "/products/{id}/policy",
            get(policies::get_product)
                .put(policies::put_product)
                .delete(policies::delete_product),
        )
        .route(
            "/products/{id}/subscriptions",
            get(subscriptions::of_product),
        )
        .route(
            "/policy",
            get(policies::get_global)
                .put(policies::put_global)
                .delete(policies::delete_global),
        )
        .route("/policy-fragments", get(policies::list_fragments))
        .route(
            "/policy-fragments/{id}",
            get(policies::get_fragment)
                .put(policies::put_fragment)
                .delete(policies::delete_fragment),
        )
        .route("/subscriptions", get(list::<Subscription>))
        .route(
            "/subscriptions/{id}",
            get(get_one::<Subscription>)
                .put(put_one::<Subscription>)
                .delete(delete_one::<Subscription>),
        )
        .route(
            "/subscriptions/{id}/listSecrets",
            post(subscriptions::list_secrets),
        )
        .route(
            "/subscriptions/{id}/regeneratePrimaryKey",
            post(subscriptions::regenerate_primary),
        )
        .route(
            "/subscriptions/{id}/regenerateSecondaryKey",
            post(subscriptions::regenerate_secondary),
        )
        .route("/users", get(list::<User>))
        .route(
            "/users/{id}",
            get(get_one::<User>)
                .put(put_one::<User>)
                .delete(delete_one::<User>),
        )
        .route("/users/{id}/subscriptions", get(subscriptions::of_user))
        .route("/users/{id}/groups", get(directory::groups_of_user))
        .route("/groups", get(list::<Group>))
        .route(
            "/groups/{id}",
            get(get_one::<Group>)
                .put(put_one::<Group>)
                .delete(delete_one::<Group>),
        )
        .route(
            "/groups/{id}/users",
            get(list_links::<directory::GroupUsers>),
        )
        .route(
            "/groups/{id}/users/{user}",
            get(get_link::<directory::GroupUsers>)
                .put(put_link::<directory::GroupUsers>)
                .delete(delete_link::<directory::GroupUsers>),
        )
        .route("/named-values", get(list::<NamedValue>))
        .route(
            "/named-values/{id}",
            get(get_one::<NamedValue>)
                .put(put_one::<NamedValue>)
                .delete(delete_one::<NamedValue>),
        )
        .route("/named-values/{id}/listValue", post(directory::list_value))
        .route("/backends", get(list::<Backend>))
        .route(
            "/backends/{id}",
            get(get_one::<Backend>)
                .put(put_one::<Backend>)
                .delete(delete_one::<Backend>),
        )
        .route("/loggers", get(list::<crate::model::Logger>))
        .route(
            "/loggers/{id}",
            get(get_one::<crate::model::Logger>)
                .put(put_one::<crate::model::Logger>)
                .delete(delete_one::<crate::model::Logger>),
        )
        .route("/certificates", get(list::<crate::model::Certificate>))
        .route(
            "/certificates/{id}",
            get(get_one::<crate::model::Certificate>)
                .put(put_one::<crate::model::Certificate>)
                .delete(delete_one::<crate::model::Certificate>),
        )
        .route("/hostnames", get(list::<crate::model::Hostname>))
        .route(
            "/hostnames/{host}",
            get(hostnames::get)
                .put(hostnames::put)
                .delete(hostnames::delete),
        )
        .route("/locations", get(list::<Location>))
        .route(
            "/locations/{id}",
            get(get_one::<Location>)
                .put(put_one::<Location>)
                .delete(delete_one::<Location>),
        )
        .route("/gateways", get(gateways::list))
        .route(
            "/gateways/{id}",
            get(gateways::get)
                .put(put_one::<Gateway>)
                .delete(gateways::delete),
        )
        .route("/gateways/{id}/token", post(gateways::token))
        .route(
            "/gateways/{id}/regenerateKey",
            post(gateways::regenerate_key),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // `layer`, not `route_layer`: unknown routes need the key too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ))
        .with_state(state.clone());
    // Secondaries authenticate with gateway tokens, not the admin key.
    let cluster = Router::new()
        .route("/config", get(cluster::config))
        .route("/heartbeat", post(cluster::heartbeat))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    Router::new()
        .nest("/mgmt", mgmt)
        .nest("/cluster/v1", cluster)
        .fallback(not_found)
        .layer(axum::middleware::map_response(response_headers))
}

/// Headers on every management and cluster response: `nosniff`, and
/// `Cache-Control: no-store` unless the handler chose one (responses carry
/// keys, tokens and configuration; no cache, shared or private, keeps
/// them).
async fn response_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    h.entry(http::header::CACHE_CONTROL)
        .or_insert(http::HeaderValue::from_static("no-store"));
    resp
}

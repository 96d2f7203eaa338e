//! `GET /metrics`: the Prometheus text exposition of the gateway's metrics
//! (`telemetry::prometheus`), served on the management listener outside
//! `/mgmt` and without the admin key (Prometheus scrapes unauthenticated;
//! the exposition holds configuration ids and counts, never a path, key or
//! secret — keep the management listener on a private network).
//!
//! Owns: the route and what a scrape reads at scrape time (revision in
//! service, region, circuit breakers).

use crate::snapshot::SnapshotHandle;
use crate::telemetry::prometheus::{render, NodeInfo};
use crate::telemetry::Telemetry;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The content type of the text format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Seconds since a secondary's last answered poll and accepted heartbeat.
pub type Ages = Arc<dyn Fn() -> (Option<f64>, Option<f64>) + Send + Sync>;

/// What a scrape reads.
#[derive(Clone)]
pub struct Scrape {
    pub telemetry: Arc<Telemetry>,
    pub snapshot: Arc<SnapshotHandle>,
    pub region: String,
    /// Backends and whether their circuit breaker is open.
    pub breakers: Arc<dyn Fn() -> Vec<(String, bool)> + Send + Sync>,
    /// A secondary's cluster link (`None` on a primary).
    pub ages: Option<Ages>,
}

/// The `/metrics` route, to merge into a listener's router.
pub fn router(scrape: Scrape) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .layer(axum::middleware::map_response(nosniff))
        .with_state(Arc::new(scrape))
}

/// `X-Content-Type-Options: nosniff` on the scrape (a text body).
async fn nosniff(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Serves `GET /metrics` alone on `listener` until `shutdown` (`[telemetry]
/// metrics_listen`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    scrape: Scrape,
    mut shutdown: crate::shutdown::Shutdown,
) {
    let served = axum::serve(listener, router(scrape))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "metrics listener failed");
    }
}

async fn metrics(State(s): State<Arc<Scrape>>) -> Response {
    let node = NodeInfo {
        region: &s.region,
        revision: s.snapshot.load().revision,
        breakers: (s.breakers)(),
        sync_age: None,
        heartbeat_age: None,
    };
    let mut node = node;
    if let Some(ages) = &s.ages {
        (node.sync_age, node.heartbeat_age) = ages();
    }
    let body = render(&s.telemetry.prometheus, &s.telemetry.metrics, &node);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// The exposition as a scrape would read it now (for the OTLP metrics
/// export, which sends the same series).
pub fn text(s: &Scrape) -> String {
    let mut node = NodeInfo {
        region: &s.region,
        revision: s.snapshot.load().revision,
        breakers: (s.breakers)(),
        sync_age: None,
        heartbeat_age: None,
    };
    if let Some(ages) = &s.ages {
        (node.sync_age, node.heartbeat_age) = ages();
    }
    render(&s.telemetry.prometheus, &s.telemetry.metrics, &node)
}

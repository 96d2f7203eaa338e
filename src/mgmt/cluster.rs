//! The primary's side of the cluster protocol (DESIGN.md §8), served on the
//! management listener: `GET /cluster/v1/config` (the export, long-poll) and
//! `POST /cluster/v1/heartbeat`, both authenticated with a gateway token
//! (`Authorization: GatewayKey <token>`), not the admin key.
//!
//! Owns: token checks against the stored gateway keys, the export cache
//! (one gzip encoding per revision, however many secondaries ask at once),
//! long-polls that answer as soon as the revision moves, the
//! [`Registry`] of what each gateway last reported, and the transport
//! rule for the export: it carries secrets (subscription keys, secret
//! named values, certificate keys), so it is served over TLS, or over
//! plain HTTP to a loopback peer only, unless the primary sets `[cluster]
//! allow_plaintext_export = true` ([`export_allowed`]).

use super::body;
use super::MgmtState;
use crate::error::{ApiError, Code};
use crate::model::{export, unix_now, verify_token, Catalog, Heartbeat, RequestCounts, Verified};
use crate::shutdown::Shutdown;
use crate::tls::accept::Transport;
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Longest long-poll a secondary may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// Largest heartbeat body read.
/// (Analytics batches ride along: at most two of 2,000 rows each.)
const MAX_HEARTBEAT_BYTES: usize = 4 * 1024 * 1024;

/// The cluster side of the management state.
pub struct ClusterSide {
    pub registry: Registry,
    exports: Mutex<Option<(u64, Arc<tokio::sync::OnceCell<Bytes>>)>>,
    /// Ends long-polls when the appliance stops.
    shutdown: Shutdown,
    /// Longest expiry a minted gateway token may have.
    pub token_max_lifetime: Duration,
    /// `[cluster] allow_plaintext_export`: the export may go over plain
    /// HTTP to any peer.
    allow_plaintext_export: bool,
}

impl ClusterSide {
    pub fn new(shutdown: Shutdown, token_max_lifetime: Duration) -> ClusterSide {
        ClusterSide {
            registry: Registry::default(),
            exports: Mutex::new(None),
            shutdown,
            token_max_lifetime,
            allow_plaintext_export: false,
        }
    }

    /// Lets the export go over plain HTTP to non-loopback peers
    /// (`[cluster] allow_plaintext_export`).
    pub fn with_plaintext_export(mut self, allow: bool) -> ClusterSide {
        self.allow_plaintext_export = allow;
        self
    }

    /// The gzip export of `catalog`, encoded once per revision.
    async fn export(&self, catalog: Arc<Catalog>) -> Result<Bytes, ApiError> {
        let cell = {
            let mut slot = self.exports.lock().unwrap_or_else(|p| p.into_inner());
            match &*slot {
                Some((rev, cell)) if *rev == catalog.revision => cell.clone(),
                _ => {
                    let cell = Arc::new(tokio::sync::OnceCell::new());
                    *slot = Some((catalog.revision, cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || Bytes::from(export::encode(&catalog)))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "encoding the configuration export failed");
                    ApiError::internal()
                })
        })
        .await
        .cloned()
    }
}

/// What one gateway last told the primary.
#[derive(Debug, Clone)]
struct Seen {
    at: SystemTime,
    beat: Heartbeat,
    /// Requests reported since this primary started.
    totals: RequestCounts,
}

/// Heartbeats and config polls per gateway id. In memory: a restarted
/// primary knows a gateway again at its next heartbeat.
#[derive(Default)]
pub struct Registry {
    seen: Mutex<BTreeMap<String, Seen>>,
    polled: Mutex<BTreeMap<String, SystemTime>>,
}

impl Registry {
    fn beat(&self, beat: Heartbeat) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let prev = seen.get(&beat.gateway_id);
        let same_instance = prev.is_some_and(|p| {
            !beat.instance_id.is_empty() && p.beat.instance_id == beat.instance_id
        });
        if same_instance && prev.is_some_and(|p| beat.sequence <= p.beat.sequence) {
            // Sent before one already recorded, delivered late: stale.
            return;
        }
        let totals = prev.map(|s| s.totals).unwrap_or_default();
        // Count from the running totals when the gateway sends them (exact
        // even if an unacknowledged beat got through); else trust deltas.
        let delta = match (beat.requests_since_start, prev) {
            (Some(now), Some(p)) if same_instance => match p.beat.requests_since_start {
                Some(before) => RequestCounts {
                    total: now.total.saturating_sub(before.total),
                    failed: now.failed.saturating_sub(before.failed),
                },
                None => beat.requests,
            },
            (Some(now), _) => now,
            (None, _) => beat.requests,
        };
        let totals = RequestCounts {
            total: totals.total.saturating_add(delta.total),
            failed: totals.failed.saturating_add(delta.failed),
        };
        seen.insert(
            beat.gateway_id.clone(),
            Seen {
                at: SystemTime::now(),
                beat,
                totals,
            },
        );
    }

    /// Drops what `gateway` reported: a registration made again under the
    /// same id starts unseen.
    pub fn forget(&self, gateway: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(gateway);
        self.polled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(gateway);
    }

    fn polled(&self, gateway: &str) {
        self.polled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(gateway.to_string(), SystemTime::now());
    }

    /// The runtime fields `GET /mgmt/gateways` shows for `gateway`, with
    /// `current` the primary's revision.
    pub fn view(&self, gateway: &str, current: u64) -> serde_json::Map<String, Value> {
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(gateway)
            .cloned();
        let polled = self
            .polled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(gateway)
            .copied();
        let time = |t: SystemTime| Value::String(humantime::format_rfc3339_millis(t).to_string());
        let mut m = serde_json::Map::new();
        match seen {
            None => {
                m.insert("status".into(), "registered".into());
                m.insert("lastHeartbeat".into(), Value::Null);
            }
            Some(s) => {
                let interval = Duration::from_secs_f64(
                    s.beat.heartbeat_interval_seconds.clamp(0.001, 86_400.0),
                );
                let age = SystemTime::now()
                    .duration_since(s.at)
                    .unwrap_or(Duration::ZERO);
                let status = if age > interval * 3 {
                    "stale"
                } else {
                    "connected"
                };
                m.insert("status".into(), status.into());
                m.insert("lastHeartbeat".into(), time(s.at));
                m.insert("region".into(), s.beat.region.into());
                m.insert("revision".into(), s.beat.revision.into());
                m.insert("lag".into(), current.saturating_sub(s.beat.revision).into());
                m.insert("version".into(), s.beat.version.into());
                m.insert("hostname".into(), s.beat.hostname.into());
                m.insert("uptimeSeconds".into(), s.beat.uptime_seconds.into());
                m.insert(
                    "heartbeatIntervalSeconds".into(),
                    json!(s.beat.heartbeat_interval_seconds),
                );
                m.insert("configSource".into(), s.beat.config_source.into());
                m.insert(
                    "requests".into(),
                    json!({"total": s.totals.total, "failed": s.totals.failed}),
                );
            }
        }
        m.insert(
            "lastConfigRequest".into(),
            polled.map(time).unwrap_or(Value::Null),
        );
        m
    }
}

/// 401 with the reason, and the scheme to use.
fn refused(message: String) -> Response {
    let mut resp = ApiError::new(Code::Unauthorized, message).into_response();
    resp.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("GatewayKey"),
    );
    resp
}

/// The gateway a request's token belongs to, or why it is refused.
fn authenticate(s: &MgmtState, headers: &HeaderMap) -> Result<Verified, String> {
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(crate::model::TOKEN_SCHEME))
        .map(|(_, token)| token.trim().to_string())
        .ok_or_else(|| {
            "missing gateway token: send Authorization: GatewayKey <token>".to_string()
        })?;
    let catalog = s.store.catalog();
    verify_token(&token, |gid| catalog.gateway_keys.get(gid), unix_now()).map_err(|e| {
        tracing::warn!(reason = %e, "refused a gateway token");
        e.to_string()
    })
}

/// The revision an `If-None-Match` names (`"7"`, `W/"7"`), if any.
fn known_revision(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(http::header::IF_NONE_MATCH)?.to_str().ok()?;
    v.split(',').find_map(|t| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .ok()
    })
}

fn etag(revision: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Whether the export may be served on `transport` (`None`: unknown, as
/// when the listener recorded no peer): over TLS always; over plain HTTP
/// to a loopback peer, or to anyone when `allow_plaintext` is set.
pub fn export_allowed(transport: Option<Transport>, allow_plaintext: bool) -> bool {
    match transport {
        Some(t) if t.tls => true,
        Some(t) => allow_plaintext || t.peer.ip().to_canonical().is_loopback(),
        None => allow_plaintext,
    }
}

/// How the request arrived: the TLS listener records a [`Transport`]; the
/// plain one only the peer's address.
fn transport(ext: &http::Extensions) -> Option<Transport> {
    ext.get::<Transport>().copied().or_else(|| {
        ext.get::<ConnectInfo<SocketAddr>>().map(|c| Transport {
            peer: c.0,
            tls: false,
        })
    })
}

/// 403: the export is not served over plain HTTP to this peer.
fn plaintext_refused() -> Response {
    ApiError::new(
        Code::NotSupported,
        "the configuration export carries secrets and goes over plain HTTP only to a \
         loopback peer: enable TLS on the primary's management listener ([management] \
         tls_cert/tls_key) and use an https:// [cluster] primary URL, or set [cluster] \
         allow_plaintext_export = true on the primary",
    )
    .into_response()
}

/// `GET /cluster/v1/config[?wait=30s][&schemaVersion=1]`.
pub async fn config(
    State(s): State<MgmtState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ext: http::Extensions,
) -> Response {
    let via = transport(&ext);
    if !export_allowed(via, s.cluster.allow_plaintext_export) {
        tracing::warn!(
            peer = %via.map(|t| t.peer.to_string()).unwrap_or_else(|| "unknown".into()),
            "refused the configuration export over plain HTTP to a non-loopback peer"
        );
        return plaintext_refused();
    }
    let token = match authenticate(&s, &headers) {
        Ok(t) => t,
        Err(reason) => return refused(reason),
    };
    let gid = token.gateway_id;
    let query = q.as_deref();
    let wait = match crate::snapshot::routes::query_value(query, "wait") {
        None => Duration::ZERO,
        Some(w) => match crate::config::parse_duration(w) {
            Ok(d) if d <= MAX_WAIT => d,
            Ok(_) => {
                return ApiError::invalid("wait", "must be at most 5m").into_response();
            }
            Err(e) => return ApiError::invalid("wait", e).into_response(),
        },
    };
    if let Some(v) = crate::snapshot::routes::query_value(query, "schemaVersion") {
        // Version 1 is the only format so far; every reader of a later
        // version still reads it. A future format serves older readers here.
        if v.parse::<u32>().map_or(true, |v| v == 0) {
            return ApiError::invalid("schemaVersion", "must be a positive integer")
                .into_response();
        }
    }
    // A held poll never outlives the token that opened it.
    let wait = wait.min(Duration::from_secs(token.expiry.saturating_sub(unix_now())));
    s.cluster.registry.polled(&gid);
    let known = known_revision(&headers);
    let mut changes = s.snapshot.watch();
    if known == Some(s.store.revision()) && !wait.is_zero() {
        let mut stop = s.cluster.shutdown.clone();
        let store = s.store.clone();
        let moved = async move {
            while store.revision() == known.unwrap_or(0) {
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = moved => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait() => {}
        }
    }
    let catalog = s.store.catalog();
    if known == Some(catalog.revision) {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        resp.headers_mut()
            .insert(http::header::ETAG, etag(catalog.revision));
        return resp;
    }
    let revision = catalog.revision;
    let gz = match s.cluster.export(catalog).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, export::CONTENT_TYPE)
        .header(http::header::ETAG, etag(revision))
        .header(http::header::VARY, "Accept-Encoding")
        .header(http::header::CACHE_CONTROL, "no-store");
    let body = if accepts_gzip(&headers) {
        builder = builder.header(http::header::CONTENT_ENCODING, "gzip");
        gz
    } else {
        match export::inflate(&gz, export::MAX_EXPORT_BYTES) {
            Ok(json) => Bytes::from(json),
            Err(e) => {
                tracing::error!(error = %e, "inflating the configuration export failed");
                return ApiError::internal().into_response();
            }
        }
    };
    tracing::debug!(gateway = %gid, revision, bytes = body.len(), "served the configuration");
    builder
        .body(Body::from(body))
        .unwrap_or_else(|_| ApiError::internal().into_response())
}

/// `POST /cluster/v1/heartbeat` → `{"revision": <primary's revision>}`.
pub async fn heartbeat(State(s): State<MgmtState>, headers: HeaderMap, req: Body) -> Response {
    let gid = match authenticate(&s, &headers) {
        Ok(t) => t.gateway_id,
        Err(reason) => return refused(reason),
    };
    let bytes = match body::read(req, &headers, MAX_HEARTBEAT_BYTES).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let beat: Heartbeat = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(
                Code::MalformedBody,
                format!("the heartbeat is not valid JSON: {e}"),
            )
            .into_response()
        }
    };
    if beat.gateway_id != gid {
        return ApiError::invalid(
            "gatewayId",
            format!(
                "must be the token's gateway ({gid:?}), not {:?}",
                crate::model::truncate(&beat.gateway_id, 80)
            ),
        )
        .into_response();
    }
    tracing::debug!(gateway = %gid, revision = beat.revision, "heartbeat");
    let mut beat = beat;
    let batches = std::mem::take(&mut beat.analytics);
    if let Err(resp) = super::reports::accept_batches(&s, &gid, &beat.region, batches).await {
        return resp;
    }
    s.cluster.registry.beat(beat);
    axum::Json(json!({ "revision": s.store.revision() })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(seq: u64, total: u64, since_last: u64, revision: u64) -> Heartbeat {
        Heartbeat {
            gateway_id: "west".into(),
            revision,
            heartbeat_interval_seconds: 60.0,
            requests: RequestCounts {
                total: since_last,
                failed: 0,
            },
            requests_since_start: Some(RequestCounts { total, failed: 0 }),
            instance_id: "i1".into(),
            sequence: seq,
            ..Heartbeat::default()
        }
    }

    #[test]
    fn export_goes_over_tls_or_to_loopback_only() {
        let t = |addr: &str, tls| {
            Some(Transport {
                peer: addr.parse().unwrap(),
                tls,
            })
        };
        assert!(export_allowed(t("203.0.113.7:5000", true), false));
        assert!(export_allowed(t("127.0.0.1:5000", false), false));
        assert!(export_allowed(t("127.8.9.1:5000", false), false));
        assert!(export_allowed(t("[::1]:5000", false), false));
        assert!(export_allowed(t("[::ffff:127.0.0.1]:5000", false), false));
        assert!(!export_allowed(t("203.0.113.7:5000", false), false));
        assert!(!export_allowed(t("[::ffff:10.0.0.1]:5000", false), false));
        assert!(!export_allowed(t("0.0.0.0:5000", false), false));
        assert!(!export_allowed(None, false));
        assert!(export_allowed(t("203.0.113.7:5000", false), true));
        assert!(export_allowed(None, true));
        let r = plaintext_refused();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn late_beats_are_ignored_and_requests_counted_once() {
        let r = Registry::default();
        r.beat(beat(1, 10, 10, 4));
        // Beat 2 (23 more requests) timed out at the gateway but reaches the
        // primary; beat 3 reports those 23 again as "since the last ack".
        r.beat(beat(2, 33, 23, 4));
        r.beat(beat(3, 40, 30, 5));
        // A duplicate of beat 2 delivered after beat 3: stale.
        r.beat(beat(2, 33, 23, 4));
        let v = r.view("west", 5);
        assert_eq!(v["requests"]["total"], 40, "{v:?}");
        assert_eq!(v["revision"], 5);
        // A restarted gateway (new instance) starts counting from its total.
        let mut restarted = beat(1, 7, 7, 5);
        restarted.instance_id = "i2".into();
        r.beat(restarted);
        assert_eq!(r.view("west", 5)["requests"]["total"], 47);
        // An older gateway that sends only deltas.
        let mut old = beat(0, 0, 5, 5);
        old.instance_id = String::new();
        old.requests_since_start = None;
        r.beat(old);
        assert_eq!(r.view("west", 5)["requests"]["total"], 52);
    }
}

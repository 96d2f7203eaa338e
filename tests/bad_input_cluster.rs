//! Bad input in cluster mode: a secondary fed truncated or corrupted
//! exports by its primary (through a fake primary in front of a real one)
//! keeps serving its last configuration and its backup; a tampered token
//! or a corrupted first export stops start-up with a clear error.
//! (Tampered, forged and expired tokens at the primary are covered in
//! `cluster_api.rs`.)

mod common;

use bytes::Bytes;
use common::backend::{self, full};
use common::{TestApp, ADMIN};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use turnpike::shutdown::{self, Trigger};
use turnpike::{Options, Running, Settings};

/// Corrupted answers to `GET /cluster/v1/config`, each at a new revision.
fn corrupted(n: usize) -> (Bytes, bool) {
    let gzip = turnpike::model::export::gzip;
    match n % 4 {
        // A gzip stream cut in half.
        0 => {
            let whole = gzip(&br#"{"schemaVersion":1,"apis":{}}"#.repeat(200));
            (Bytes::from(whole[..whole.len() / 2].to_vec()), true)
        }
        // Not gzip at all, though it says so.
        1 => (Bytes::from_static(b"\x00\x01\x02 this is not gzip"), true),
        // Well-compressed JSON that stops mid-object.
        2 => (
            Bytes::from(gzip(br#"{"schemaVersion":1,"apis":{"x":{"#)),
            true,
        ),
        // Uncompressed JSON of the wrong shape.
        _ => (
            Bytes::from_static(br#"{"schemaVersion":"one","apis":[1,2,3]}"#),
            false,
        ),
    }
}

/// A fake primary: passes requests through to `real` until `corrupt` is
/// set, then answers config polls with [`corrupted`] exports.
async fn fake_primary(
    real: String,
    corrupt: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
) -> SocketAddr {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    backend::spawn(move |req| {
        let client = client.clone();
        let real = real.clone();
        let corrupt = corrupt.clone();
        let served = served.clone();
        async move {
            use http_body_util::BodyExt;
            let is_config = req.uri().path() == "/cluster/v1/config";
            if is_config && corrupt.load(Ordering::SeqCst) {
                let n = served.fetch_add(1, Ordering::SeqCst);
                let (body, gz) = corrupted(n);
                let mut r = hyper::Response::new(full(body));
                let h = r.headers_mut();
                h.insert("etag", format!("\"{}\"", 1000 + n).parse().unwrap());
                if gz {
                    h.insert("content-encoding", "gzip".parse().unwrap());
                }
                return r;
            }
            let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
            let url = format!("{real}{}", req.uri());
            let mut fwd = client.request(method, url);
            for name in [
                "authorization",
                "if-none-match",
                "accept-encoding",
                "content-type",
                "user-agent",
            ] {
                if let Some(v) = req.headers().get(name) {
                    fwd = fwd.header(name, v.as_bytes());
                }
            }
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let answer = fwd.body(body).send().await.unwrap();
            let status = answer.status().as_u16();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap();
            let mut r = hyper::Response::new(full(bytes));
            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
            for name in ["etag", "content-encoding", "content-type"] {
                if let Some(v) = headers.get(name) {
                    r.headers_mut().insert(
                        name,
                        hyper::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
                    );
                }
            }
            r
        }
    })
    .await
}

fn management_base(app: &TestApp) -> String {
    app.mgmt.trim_end_matches("/mgmt").to_string()
}

/// Registers gateway `west` on the primary and mints its token.
async fn token(app: &TestApp) -> String {
    app.put_ok(
        "/gateways/west",
        json!({"locationData": {"name": "West US"}}),
    )
    .await;
    let r = app
        .client
        .post(format!("{}/gateways/west/token", app.mgmt))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    v["value"].as_str().unwrap().to_string()
}

fn secondary_settings(dir: &std::path::Path, primary: &str, token: &str) -> Settings {
    let mut s = common::test_settings(dir);
    s.management.admin_key = None;
    s.node.role = toml::Spanned::new(0..0, turnpike::config::Role::Secondary);
    s.cluster.primary = Some(primary.to_string());
    s.cluster.gateway_id = Some("west".into());
    s.cluster.token = Some(turnpike::error::Secret::new(token));
    s.cluster.poll_interval = Duration::from_millis(100);
    s.cluster.heartbeat_interval = Duration::from_millis(200);
    s.cluster.long_poll = false;
    s.cluster.backup = true;
    s
}

async fn start(settings: Settings) -> Result<(Running, Trigger), String> {
    let (stop, signal) = shutdown::channel();
    turnpike::run(settings, Options::default(), signal)
        .await
        .map(|r| (r, stop))
        .map_err(|e| e.to_string())
}

async fn keyless_api(app: &TestApp, id: &str) {
    app.put_ok(
        &format!("/apis/{id}"),
        json!({"path": id, "serviceUrl": app.echo_url(), "subscriptionRequired": false}),
    )
    .await;
    app.put_ok(
        &format!("/apis/{id}/operations/all"),
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
}

#[tokio::test]
async fn corrupted_exports_keep_the_last_configuration() {
    let primary = TestApp::spawn().await;
    keyless_api(&primary, "echo").await;
    let token = token(&primary).await;
    let corrupt = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let fake = fake_primary(management_base(&primary), corrupt.clone(), served.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (secondary, _stop) = start(secondary_settings(
        dir.path(),
        &format!("http://{fake}"),
        &token,
    ))
    .await
    .unwrap();
    let gw = secondary.addr("gateway-http").unwrap();
    assert_eq!(common::gateway_status(gw, "/echo/x").await, 200);
    let backup = dir.path().join("config-backup.gz");
    let saved = std::fs::read(&backup).expect("a backup after the first sync");

    corrupt.store(true, Ordering::SeqCst);
    // Every kind of corruption, twice over.
    for _ in 0..200 {
        if served.load(Ordering::SeqCst) >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served.load(Ordering::SeqCst) >= 8,
        "the secondary kept polling"
    );
    assert_eq!(
        common::gateway_status(gw, "/echo/x").await,
        200,
        "still the last configuration"
    );
    assert_eq!(
        common::gateway_status(gw, "/status-0123456789abcdef").await,
        200
    );
    assert_eq!(
        std::fs::read(&backup).unwrap(),
        saved,
        "the backup is untouched"
    );

    // The primary is sound again: the next change arrives.
    keyless_api(&primary, "late").await;
    corrupt.store(false, Ordering::SeqCst);
    let mut late = 0;
    for _ in 0..200 {
        late = common::gateway_status(gw, "/late/x").await;
        if late == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(late, 200, "caught up after the corruption");
    assert_ne!(std::fs::read(&backup).unwrap(), saved, "the new backup");
    secondary.shutdown();
    secondary.wait().await;
}

#[tokio::test]
async fn a_corrupted_first_export_stops_start_up_clearly() {
    let primary = TestApp::spawn().await;
    let token = token(&primary).await;
    let corrupt = Arc::new(AtomicBool::new(true));
    let served = Arc::new(AtomicUsize::new(0));
    let fake = fake_primary(management_base(&primary), corrupt, served.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let err = start(secondary_settings(
        dir.path(),
        &format!("http://{fake}"),
        &token,
    ))
    .await
    .err()
    .expect("no start without a usable configuration");
    assert!(err.contains("was refused"), "{err}");
    assert!(err.contains("no configuration"), "{err}");
    assert!(served.load(Ordering::SeqCst) >= 1);
    assert!(
        !dir.path().join("config-backup.gz").exists(),
        "nothing saved"
    );
}

#[tokio::test]
async fn a_tampered_token_stops_start_up_without_echoing_it() {
    let primary = TestApp::spawn().await;
    let token = token(&primary).await;
    let sig = token.rsplit('&').next().unwrap().to_string();
    let first = if sig.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{}{first}{}", &token[..token.len() - sig.len()], &sig[1..]);
    let dir = tempfile::tempdir().unwrap();
    let err = start(secondary_settings(
        dir.path(),
        &management_base(&primary),
        &tampered,
    ))
    .await
    .err()
    .expect("a tampered token cannot start a secondary");
    assert!(err.contains("refused this gateway"), "{err}");
    assert!(!err.contains(&sig[1..]), "{err}");
    assert!(!dir.path().join("config-backup.gz").exists());
    // The primary still serves its genuine token.
    let r = primary
        .client
        .get(format!("{}/cluster/v1/config", management_base(&primary)))
        .header("authorization", format!("GatewayKey {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

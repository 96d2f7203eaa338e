//! Authentication of every route of the management listener, through real
//! sockets. The routes come from `turnpike::mgmt::routes::ROUTES`, which a
//! unit test keeps equal to the router's source: a route added without a
//! table entry fails there, and once listed it is driven here.
//!
//! - every admin route refuses a missing, wrong, truncated, extended or
//!   almost-right admin key (same length, last byte changed) with a 401 in
//!   DESIGN.md's error shape, and the refused writes change nothing;
//! - the table is the router: each listed method is routed, each other
//!   method on the same path is a 405;
//! - the cluster routes refuse anything but a valid gateway token (a
//!   tampered signature, another gateway's id, the admin key);
//! - `/metrics` is the one public route and holds no secret;
//! - every management response is `nosniff` and `no-store`.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{assert_mgmt_error, TestApp, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use turnpike::mgmt::routes::{Auth, Route, ROUTES};

/// The management listener without `/mgmt`.
fn base(app: &TestApp) -> String {
    app.mgmt.trim_end_matches("/mgmt").to_string()
}

/// `path` with every `{segment}` filled in with a well-formed id.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{kind}" => "byApi",
            s if s.starts_with('{') => "authn-probe",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// One request to the management listener; `auth` is the raw
/// `Authorization` value. Writes carry a JSON body so that only the
/// credential stands between them and the store.
async fn send(app: &TestApp, method: &str, path: &str, auth: Option<&str>) -> reqwest::Response {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = app
        .client
        .request(method.clone(), format!("{}{path}", base(app)));
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    if method == Method::PUT {
        r = r.json(&json!({"displayName": "probe", "path": "probe", "value": "v"}));
    } else if method == Method::POST || method == Method::PATCH {
        r = r.json(&json!({}));
    }
    r.send().await.unwrap()
}

/// `ADMIN` with the byte at `at` changed (same length).
fn flipped(at: usize) -> String {
    let mut b = ADMIN.as_bytes().to_vec();
    b[at] = if b[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).unwrap()
}

/// Every `Authorization` value that must not open an admin route.
fn wrong_admin_credentials() -> Vec<(&'static str, Option<String>)> {
    let n = ADMIN.len();
    let last = flipped(n - 1);
    assert_eq!(last.len(), n);
    assert_ne!(last, ADMIN);
    vec![
        ("no Authorization header", None),
        ("an empty bearer", Some("Bearer ".to_string())),
        ("a wrong bearer", Some("Bearer wrong".to_string())),
        (
            "same length, last byte differs",
            Some(format!("Bearer {last}")),
        ),
        (
            "same length, first byte differs",
            Some(format!("Bearer {}", flipped(0))),
        ),
        (
            "one byte short",
            Some(format!("Bearer {}", &ADMIN[..n - 1])),
        ),
        ("one byte long", Some(format!("Bearer {ADMIN}0"))),
        ("the key twice", Some(format!("Bearer {ADMIN}{ADMIN}"))),
        ("the key under Basic", Some(format!("Basic {ADMIN}"))),
        ("the key without a scheme", Some(ADMIN.to_string())),
        (
            "the key as a gateway token",
            Some(format!("GatewayKey {ADMIN}")),
        ),
    ]
}

async fn revision(app: &TestApp) -> u64 {
    app.get_json("/revision").await["revision"]
        .as_u64()
        .unwrap()
}

/// A refused admin request: 401, `WWW-Authenticate: Bearer`, DESIGN.md's
/// error body, and no trace of the key.
async fn assert_admin_refused(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 401, "{what}");
    assert_eq!(r.headers()["www-authenticate"], "Bearer", "{what}");
    let v = assert_mgmt_error(r, 401, "Unauthorized").await;
    assert!(!v.to_string().contains(ADMIN), "{what}: {v}");
}

#[tokio::test]
async fn every_admin_route_refuses_a_missing_or_wrong_admin_key() {
    let app = TestApp::spawn().await;
    app.standard().await;
    let before = revision(&app).await;
    let admin: Vec<&Route> = ROUTES.iter().filter(|r| r.auth == Auth::Admin).collect();
    assert!(admin.len() > 90, "{}", admin.len());
    let mut checked = 0;
    for route in &admin {
        let path = concrete(route.path);
        for (what, auth) in wrong_admin_credentials() {
            let r = send(&app, route.method, &path, auth.as_deref()).await;
            assert_admin_refused(r, &format!("{} {path} with {what}", route.method)).await;
            checked += 1;
        }
    }
    assert_eq!(checked, admin.len() * wrong_admin_credentials().len());
    // Paths and methods the router does not have are refused the same
    // way before anything says they do not exist.
    for (method, path) in [
        ("GET", "/mgmt"),
        ("GET", "/mgmt/no-such-route"),
        ("GET", "/mgmt/apis/echo/operations/all/policy/extra"),
        ("PATCH", "/mgmt/apis/echo"),
        ("POST", "/mgmt/apis"),
    ] {
        assert_admin_refused(
            send(&app, method, path, None).await,
            &format!("{method} {path}"),
        )
        .await;
        assert_admin_refused(
            send(
                &app,
                method,
                path,
                Some(&format!("Bearer {}", flipped(ADMIN.len() - 1))),
            )
            .await,
            &format!("{method} {path} with an almost-right key"),
        )
        .await;
    }
    // Hundreds of refused writes later, nothing changed.
    assert_eq!(revision(&app).await, before);
    assert_eq!(app.get_json("/apis").await["count"], 1);
    assert_eq!(app.get_json("/users").await["count"], 0);

    // The right key opens them (the scheme is case-insensitive).
    for auth in [format!("Bearer {ADMIN}"), format!("bearer {ADMIN}")] {
        for path in ["/mgmt/revision", "/mgmt/apis", "/mgmt/apis/echo"] {
            let r = send(&app, "GET", path, Some(&auth)).await;
            assert_eq!(r.status(), 200, "GET {path} with {auth:.7}…");
        }
    }
    let r = send(
        &app,
        "POST",
        "/mgmt/subscriptions/s1/listSecrets",
        Some(&format!("Bearer {ADMIN}")),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_route_table_is_what_the_router_serves() {
    let app = TestApp::spawn().await;
    let key = format!("Bearer {ADMIN}");
    let mut by_path: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in ROUTES.iter().filter(|r| r.auth == Auth::Admin) {
        by_path.entry(r.path).or_default().insert(r.method);
    }
    for (path, methods) in &by_path {
        let concrete = concrete(path);
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            let r = send(&app, method, &concrete, Some(&key)).await;
            let status = r.status();
            let body = r.text().await.unwrap();
            if methods.contains(method) {
                assert_ne!(status, 405, "{method} {concrete}: {body}");
                assert!(
                    !body.contains("no such management route"),
                    "{method} {concrete} is listed but not routed: {body}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {concrete} is served but not listed: {body}"
                );
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["error"]["code"], "MethodNotAllowed", "{body}");
            }
        }
    }
    // Outside the table: the fallback.
    let r = send(&app, "GET", "/mgmt/no-such-route", Some(&key)).await;
    assert_mgmt_error(r, 404, "ResourceNotFound").await;
}

/// Registers gateway `gid` and mints a token for it.
async fn gateway_token(app: &TestApp, gid: &str) -> String {
    app.put_ok(
        &format!("/gateways/{gid}"),
        json!({"locationData": {"name": "West US"}}),
    )
    .await;
    let r = app
        .client
        .post(format!("{}/gateways/{gid}/token", app.mgmt))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["value"].as_str().unwrap().to_string()
}

/// A heartbeat body from gateway `gid`.
fn beat(gid: &str) -> Value {
    json!({
        "gatewayId": gid,
        "region": "westus",
        "revision": 0,
        "version": "0.1.0-test",
        "uptimeSeconds": 1,
        "hostname": "gw-probe",
        "heartbeatIntervalSeconds": 10.0,
        "configSource": "primary",
        "requests": {"total": 0, "failed": 0},
    })
}

async fn cluster_call(app: &TestApp, route: &Route, auth: Option<&str>) -> reqwest::Response {
    let method = Method::from_bytes(route.method.as_bytes()).unwrap();
    let mut r = app
        .client
        .request(method.clone(), format!("{}{}", base(app), route.path));
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    if method == Method::POST {
        r = r.json(&beat("west-1"));
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn cluster_routes_refuse_anything_but_a_valid_gateway_token() {
    let app = TestApp::spawn().await;
    let token = gateway_token(&app, "west-1").await;
    let other = gateway_token(&app, "east-1").await;
    let parts: Vec<&str> = token.split('&').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let (gid, expiry, sig) = (parts[0], parts[1], parts[2]);
    // The signature with its last byte changed: same length, valid base64.
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    *raw.last_mut().unwrap() ^= 1;
    let last_byte = URL_SAFE_NO_PAD.encode(&raw);
    assert_eq!(last_byte.len(), sig.len());
    let other_sig = other.rsplit('&').next().unwrap();
    let later: u64 = expiry.parse::<u64>().unwrap() + 3600;
    let wrong: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        ("garbage", Some("GatewayKey garbage".into())),
        ("an empty token", Some("GatewayKey ".into())),
        (
            "the signature's last byte changed",
            Some(format!("GatewayKey {gid}&{expiry}&{last_byte}")),
        ),
        (
            "another gateway's signature",
            Some(format!("GatewayKey {gid}&{expiry}&{other_sig}")),
        ),
        (
            "a later expiry under the same signature",
            Some(format!("GatewayKey {gid}&{later}&{sig}")),
        ),
        (
            "an unknown gateway",
            Some(format!("GatewayKey nope&{expiry}&{sig}")),
        ),
        (
            "the signature cut short",
            Some(format!("GatewayKey {}", &token[..token.len() - 1])),
        ),
        ("the admin key", Some(format!("Bearer {ADMIN}"))),
        ("the token as a bearer", Some(format!("Bearer {token}"))),
    ];
    let cluster: Vec<&Route> = ROUTES
        .iter()
        .filter(|r| r.auth == Auth::GatewayToken)
        .collect();
    assert_eq!(cluster.len(), 2);
    for route in &cluster {
        for (what, auth) in &wrong {
            let r = cluster_call(&app, route, auth.as_deref()).await;
            let what = format!("{} {} with {what}", route.method, route.path);
            assert_eq!(r.status(), 401, "{what}");
            assert_eq!(r.headers()["www-authenticate"], "GatewayKey", "{what}");
            let v = assert_mgmt_error(r, 401, "Unauthorized").await;
            assert!(!v.to_string().contains(sig), "{what}: {v}");
        }
        // No heartbeat was recorded by any of them.
        let gw = app.get_json("/gateways/west-1").await;
        assert!(gw.get("lastHeartbeat").is_none_or(Value::is_null), "{gw}");
        // The valid token opens the route.
        let r = cluster_call(&app, route, Some(&format!("GatewayKey {token}"))).await;
        assert!(
            r.status().is_success(),
            "{} {}: {}",
            route.method,
            route.path,
            r.status()
        );
    }
}

#[tokio::test]
async fn metrics_is_the_one_public_route_and_holds_no_secret() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    assert_eq!(app.call("/echo/x", Some(&key)).await.status(), 200);
    let public: Vec<&Route> = ROUTES.iter().filter(|r| r.auth == Auth::Public).collect();
    assert_eq!(public.len(), 1);
    let r = send(&app, public[0].method, public[0].path, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let body = r.text().await.unwrap();
    assert!(body.contains("echo"), "the scrape names the API");
    assert!(!body.contains(&key), "a subscription key in /metrics");
    assert!(!body.contains(ADMIN), "the admin key in /metrics");
}

#[tokio::test]
async fn management_responses_are_nosniff_and_no_store() {
    let app = TestApp::spawn().await;
    app.standard().await;
    let token = gateway_token(&app, "west-1").await;
    let key = format!("Bearer {ADMIN}");
    let gw = format!("GatewayKey {token}");
    let cases: Vec<(&str, &str, Option<&str>, u16)> = vec![
        ("GET", "/mgmt/apis", Some(&key), 200),
        ("GET", "/mgmt/apis/echo", Some(&key), 200),
        (
            "POST",
            "/mgmt/subscriptions/s1/listSecrets",
            Some(&key),
            200,
        ),
        ("POST", "/mgmt/gateways/west-1/token", Some(&key), 200),
        ("GET", "/mgmt/apis", None, 401),
        ("GET", "/mgmt/no-such-route", Some(&key), 404),
        ("PATCH", "/mgmt/apis", Some(&key), 405),
        ("GET", "/no-such-route", None, 404),
        ("GET", "/cluster/v1/config", None, 401),
        ("GET", "/cluster/v1/config", Some(&gw), 200),
    ];
    for (method, path, auth, status) in cases {
        let r = send(&app, method, path, auth).await;
        assert_eq!(r.status(), status, "{method} {path}");
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{method} {path}");
        assert_eq!(h["cache-control"], "no-store", "{method} {path}");
    }
}

//! The primary's cluster surface through real sockets: gateway
//! registrations, token minting and key regeneration under `/mgmt`, and the
//! `/cluster/v1` config export (gzip, ETag, long-poll) and heartbeat that
//! secondaries call with a gateway token.

mod common;

use common::{assert_mgmt_error, TestApp, ADMIN};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime};
use turnpike::model::export;

const DAY: u64 = 24 * 3600;

/// The management listener without `/mgmt`.
fn base(app: &TestApp) -> String {
    app.mgmt.trim_end_matches("/mgmt").to_string()
}

/// Registers gateway `gid` in "West US".
async fn register(app: &TestApp, gid: &str) {
    app.put_ok(
        &format!("/gateways/{gid}"),
        json!({"locationData": {"name": "West US"}}),
    )
    .await;
}

/// `POST /mgmt/gateways/{gid}{suffix}` with an optional JSON body.
async fn post_json(app: &TestApp, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut r = app
        .client
        .post(format!("{}{path}", app.mgmt))
        .bearer_auth(ADMIN);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

/// Mints a token for `gid` (must succeed): `(value, expiry)`.
async fn mint(app: &TestApp, gid: &str, body: Option<Value>) -> (String, String) {
    let r = post_json(app, &format!("/gateways/{gid}/token"), body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    (
        v["value"].as_str().unwrap().to_string(),
        v["expiry"].as_str().unwrap().to_string(),
    )
}

/// The signature part of a token.
fn signature(token: &str) -> &str {
    token.rsplit('&').next().unwrap()
}

/// `GET /cluster/v1/config{query}` with `token` and extra headers.
async fn config(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = app
        .client
        .get(format!("{}/cluster/v1/config{query}", base(app)));
    if let Some(t) = token {
        r = r.header("authorization", format!("GatewayKey {t}"));
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

/// `POST /cluster/v1/heartbeat` with `token` and a raw body.
async fn heartbeat_raw(app: &TestApp, token: &str, body: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/cluster/v1/heartbeat", base(app)))
        .header("authorization", format!("GatewayKey {token}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

fn beat(gid: &str, revision: u64, interval: f64, total: u64, failed: u64) -> Value {
    json!({
        "gatewayId": gid,
        "region": "westus",
        "revision": revision,
        "version": "0.1.0-test",
        "uptimeSeconds": 42,
        "hostname": "gw-west-1",
        "heartbeatIntervalSeconds": interval,
        "configSource": "primary",
        "requests": {"total": total, "failed": failed},
    })
}

async fn revision(app: &TestApp) -> u64 {
    app.get_json("/revision").await["revision"]
        .as_u64()
        .unwrap()
}

fn etag_of(r: &reqwest::Response) -> String {
    r.headers()["etag"].to_str().unwrap().to_string()
}

/// A 401 from `/cluster/v1`: the scheme, the code; returns the message.
async fn assert_refused(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "GatewayKey");
    let v = assert_mgmt_error(r, 401, "Unauthorized").await;
    v["error"]["message"].as_str().unwrap().to_string()
}

/// Every object key anywhere in `v`, lowercased.
fn keys_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.to_ascii_lowercase());
                keys_of(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys_of(v, out)),
        _ => {}
    }
}

fn assert_no_key_fields(v: &Value) {
    let mut keys = Vec::new();
    keys_of(v, &mut keys);
    for k in keys {
        assert!(
            !(k.contains("primary") || k.contains("secondary") || k.contains("key")),
            "field {k:?} in {v}"
        );
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

fn rfc3339_in(secs: i64) -> String {
    let now = SystemTime::now();
    let at = if secs >= 0 {
        now + Duration::from_secs(secs as u64)
    } else {
        now - Duration::from_secs(secs.unsigned_abs())
    };
    humantime::format_rfc3339_seconds(at).to_string()
}

#[tokio::test]
async fn registration_crud_and_validation() {
    let app = TestApp::spawn().await;
    let r = app
        .put(
            "/gateways/west-1",
            json!({"locationData": {"name": "West US"}, "description": "first"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["locationData"]["name"], "West US");
    let (before, _) = mint(&app, "west-1", None).await;

    // Replace: 200, and the keys stay (a token minted before still works).
    let r = app
        .put(
            "/gateways/west-1",
            json!({"locationData": {"name": "West US 2", "city": "Seattle"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(config(&app, Some(&before), "", &[]).await.status(), 200);

    let r = app.get("/gateways/west-1").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("etag"));
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["id"], "west-1");
    assert_eq!(got["locationData"]["name"], "West US 2");
    assert_eq!(got["locationData"]["city"], "Seattle");
    assert!(
        got.get("description").is_none(),
        "replaced, not merged: {got}"
    );
    assert_no_key_fields(&got);

    register(&app, "east-1").await;
    let list = app.get_json("/gateways").await;
    assert_eq!(list["count"], 2);
    let ids: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["east-1", "west-1"]);
    assert_no_key_fields(&list);
    // The signature of a token is derived from a key; nothing shown is.
    assert!(!list.to_string().contains(signature(&before)));

    // The managed gateway's id is reserved, in any case.
    for id in ["managed", "MANAGED"] {
        let v = assert_mgmt_error(
            app.put(
                &format!("/gateways/{id}"),
                json!({"locationData": {"name": "x"}}),
            )
            .await,
            400,
            "ValidationError",
        )
        .await;
        assert_eq!(v["error"]["details"][0]["target"], "id", "{v}");
    }
    for body in [
        json!({"locationData": {"name": ""}}),
        json!({"locationData": {"name": "   "}}),
        json!({"locationData": {"name": "x".repeat(257)}}),
    ] {
        let v =
            assert_mgmt_error(app.put("/gateways/g2", body).await, 400, "ValidationError").await;
        assert_eq!(v["error"]["details"][0]["target"], "locationData.name");
    }
    // Absent altogether: refused by the parser, naming what is missing.
    let v = assert_mgmt_error(
        app.put("/gateways/g2", json!({"locationData": {}})).await,
        400,
        "ValidationError",
    )
    .await;
    assert!(
        v["error"]["details"][0]["target"]
            .as_str()
            .unwrap()
            .starts_with("locationData"),
        "{v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("name"),
        "{v}"
    );
    let v = assert_mgmt_error(
        app.put("/gateways/g2", json!({"description": "x"})).await,
        400,
        "ValidationError",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("locationData"),
        "{v}"
    );
    let v = assert_mgmt_error(
        app.put(
            "/gateways/g2",
            json!({"locationData": {"name": "x"}, "bogus": 1}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "bogus");
    let v = assert_mgmt_error(
        app.put(
            "/gateways/g2",
            json!({"locationData": {"name": "x", "bogus": 1}}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "locationData.bogus");
    assert_mgmt_error(app.get("/gateways/g2").await, 404, "ResourceNotFound").await;

    // DELETE: 204; then it is gone, and so are its keys.
    let r = app.delete("/gateways/west-1").await;
    assert_eq!(r.status(), 204);
    assert_mgmt_error(app.get("/gateways/west-1").await, 404, "ResourceNotFound").await;
    assert_mgmt_error(
        post_json(&app, "/gateways/west-1/token", None).await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_mgmt_error(
        app.delete("/gateways/west-1").await,
        404,
        "ResourceNotFound",
    )
    .await;
    assert_eq!(app.get_json("/gateways").await["count"], 1);

    // Registering the id again gives new keys: the old token stays dead.
    register(&app, "west-1").await;
    let msg = assert_refused(config(&app, Some(&before), "", &[]).await).await;
    assert!(msg.contains("signature"), "{msg}");
    let (after, _) = mint(&app, "west-1", None).await;
    assert_eq!(config(&app, Some(&after), "", &[]).await.status(), 200);

    // Gateway routes need the admin key.
    let r = app
        .client
        .get(format!("{}/gateways", app.mgmt))
        .send()
        .await
        .unwrap();
    assert_mgmt_error(r, 401, "Unauthorized").await;
    let r = app
        .client
        .post(format!("{}/gateways/west-1/token", app.mgmt))
        .header("authorization", format!("GatewayKey {after}"))
        .send()
        .await
        .unwrap();
    assert_mgmt_error(r, 401, "Unauthorized").await;
}

#[tokio::test]
async fn tokens_expiry_and_key_type() {
    let app = TestApp::spawn().await;
    assert_mgmt_error(
        post_json(&app, "/gateways/nope/token", None).await,
        404,
        "ResourceNotFound",
    )
    .await;
    register(&app, "west-1").await;

    // Default: 30 days from now; the token carries the same expiry.
    let (token, expiry) = mint(&app, "west-1", None).await;
    let at = unix(humantime::parse_rfc3339(&expiry).unwrap());
    let want = unix(SystemTime::now()) + 30 * DAY;
    assert!(at.abs_diff(want) <= 60, "{expiry}");
    let parts: Vec<&str> = token.split('&').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert_eq!(parts[0], "west-1");
    assert_eq!(parts[1], at.to_string());
    assert_eq!(config(&app, Some(&token), "", &[]).await.status(), 200);
    // An empty JSON object is the default too.
    let (_, e2) = mint(&app, "west-1", Some(json!({}))).await;
    let at2 = unix(humantime::parse_rfc3339(&e2).unwrap());
    assert!(at2.abs_diff(want) <= 60, "{e2}");

    // An explicit expiry is kept to the second.
    let asked = rfc3339_in(3600);
    let (t, expiry) = mint(&app, "west-1", Some(json!({"expiry": asked}))).await;
    assert_eq!(expiry, asked);
    assert_eq!(
        t.split('&').nth(1).unwrap(),
        unix(humantime::parse_rfc3339(&asked).unwrap()).to_string()
    );

    // Past, beyond the maximum, malformed: refused, naming `expiry`.
    for bad in [
        rfc3339_in(-60),
        rfc3339_in(31 * DAY as i64),
        "tomorrow".to_string(),
        "2030-13-45T00:00:00Z".to_string(),
    ] {
        let v = assert_mgmt_error(
            post_json(&app, "/gateways/west-1/token", Some(json!({"expiry": bad}))).await,
            400,
            "ValidationError",
        )
        .await;
        assert_eq!(v["error"]["details"][0]["target"], "expiry", "{bad}: {v}");
    }
    let v = assert_mgmt_error(
        post_json(
            &app,
            "/gateways/west-1/token",
            Some(json!({"keyType": "tertiary"})),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "keyType", "{v}");
    let v = assert_mgmt_error(
        post_json(&app, "/gateways/west-1/token", Some(json!({"bogus": 1}))).await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "bogus", "{v}");

    // The secondary key signs tokens that work too, with another signature.
    let (by_secondary, _) = mint(
        &app,
        "west-1",
        Some(json!({"keyType": "secondary", "expiry": asked})),
    )
    .await;
    assert_ne!(signature(&by_secondary), signature(&t));
    assert_eq!(
        config(&app, Some(&by_secondary), "", &[]).await.status(),
        200
    );
    let (by_primary, _) = mint(
        &app,
        "west-1",
        Some(json!({"keyType": "primary", "expiry": asked})),
    )
    .await;
    assert_eq!(by_primary, t, "same key and expiry: same token");
}

#[tokio::test]
async fn token_lifetime_is_capped_by_settings() {
    let app = TestApp::spawn_with(|s| {
        s.management.gateway_token_max_lifetime = Duration::from_secs(3600);
    })
    .await;
    register(&app, "west-1").await;
    // The default expiry shrinks to the maximum.
    let (_, expiry) = mint(&app, "west-1", None).await;
    let at = unix(humantime::parse_rfc3339(&expiry).unwrap());
    assert!(
        at.abs_diff(unix(SystemTime::now()) + 3600) <= 60,
        "{expiry}"
    );
    let v = assert_mgmt_error(
        post_json(
            &app,
            "/gateways/west-1/token",
            Some(json!({"expiry": rfc3339_in(2 * 3600)})),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"][0]["target"], "expiry");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gateway_token_max_lifetime"),
        "{v}"
    );
    mint(&app, "west-1", Some(json!({"expiry": rfc3339_in(1800)}))).await;
}

#[tokio::test]
async fn config_requires_a_valid_gateway_token() {
    let app = TestApp::spawn().await;
    register(&app, "west-1").await;
    let (token, _) = mint(&app, "west-1", None).await;
    let sig = signature(&token).to_string();
    assert_eq!(config(&app, Some(&token), "", &[]).await.status(), 200);

    // No header; the admin key; another scheme.
    let msg = assert_refused(config(&app, None, "", &[]).await).await;
    assert!(msg.contains("GatewayKey"), "{msg}");
    let r = app
        .client
        .get(format!("{}/cluster/v1/config", base(&app)))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_refused(r).await;
    let r = app
        .client
        .get(format!("{}/cluster/v1/config", base(&app)))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_refused(r).await;
    // The scheme is case-insensitive.
    let r = app
        .client
        .get(format!("{}/cluster/v1/config", base(&app)))
        .header("authorization", format!("gatewaykey {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The heartbeat is guarded the same way.
    let r = app
        .client
        .post(format!("{}/cluster/v1/heartbeat", base(&app)))
        .bearer_auth(ADMIN)
        .json(&beat("west-1", 0, 10.0, 0, 0))
        .send()
        .await
        .unwrap();
    assert_refused(r).await;

    // Garbage.
    let msg = assert_refused(config(&app, Some("garbage"), "", &[]).await).await;
    assert!(msg.contains("malformed"), "{msg}");

    // One character of the signature changed.
    let parts: Vec<&str> = token.split('&').collect();
    let first = if sig.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{}&{}&{first}{}", parts[0], parts[1], &sig[1..]);
    assert_ne!(tampered, token);
    let msg = assert_refused(config(&app, Some(&tampered), "", &[]).await).await;
    assert!(msg.contains("signature"), "{msg}");
    assert!(!msg.contains(&sig) && !msg.contains(&sig[1..]), "{msg}");

    // A longer (or shorter) expiry under the same signature.
    let expiry: u64 = parts[1].parse().unwrap();
    for e in [expiry + 1, expiry + 365 * DAY, expiry - 1] {
        let forged = format!("{}&{e}&{sig}", parts[0]);
        let msg = assert_refused(config(&app, Some(&forged), "", &[]).await).await;
        assert!(msg.contains("signature"), "{msg}");
        assert!(!msg.contains(&sig), "{msg}");
    }
    // Another gateway's name under west-1's signature.
    register(&app, "east-1").await;
    let forged = format!("east-1&{expiry}&{sig}");
    let msg = assert_refused(config(&app, Some(&forged), "", &[]).await).await;
    assert!(msg.contains("signature") && msg.contains("east-1"), "{msg}");

    // The gateway was deleted.
    assert_eq!(app.delete("/gateways/west-1").await.status(), 204);
    let msg = assert_refused(config(&app, Some(&token), "", &[]).await).await;
    assert!(msg.contains("no gateway"), "{msg}");
    assert!(msg.contains("west-1"), "{msg}");
    assert!(!msg.contains(&sig), "{msg}");
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::spawn().await;
    register(&app, "west-1").await;
    let (token, expiry) = mint(&app, "west-1", Some(json!({"expiry": rfc3339_in(2)}))).await;
    let at = humantime::parse_rfc3339(&expiry).unwrap();
    // Valid until then (unless the machine is very slow: then skip ahead).
    if SystemTime::now() + Duration::from_millis(500) < at {
        assert_eq!(config(&app, Some(&token), "", &[]).await.status(), 200);
    }
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    tokio::time::sleep(left + Duration::from_millis(1100)).await;
    let msg = assert_refused(config(&app, Some(&token), "", &[]).await).await;
    assert!(msg.contains("expired"), "{msg}");
    assert!(msg.contains(&expiry), "names when: {msg}");
    assert!(!msg.contains(signature(&token)), "{msg}");
    let r = heartbeat_raw(&app, &token, &beat("west-1", 0, 10.0, 0, 0).to_string()).await;
    let msg = assert_refused(r).await;
    assert!(msg.contains("expired"), "{msg}");
}

#[tokio::test]
async fn regenerating_a_key_revokes_its_tokens_only() {
    let app = TestApp::spawn().await;
    register(&app, "west-1").await;
    let (by_primary, _) = mint(&app, "west-1", Some(json!({"keyType": "primary"}))).await;
    let (by_secondary, _) = mint(&app, "west-1", Some(json!({"keyType": "secondary"}))).await;
    assert_eq!(config(&app, Some(&by_primary), "", &[]).await.status(), 200);
    assert_eq!(
        config(&app, Some(&by_secondary), "", &[]).await.status(),
        200
    );

    let r = post_json(
        &app,
        "/gateways/west-1/regenerateKey",
        Some(json!({"keyType": "primary"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    let msg = assert_refused(config(&app, Some(&by_primary), "", &[]).await).await;
    assert!(msg.contains("signature"), "{msg}");
    assert_eq!(
        config(&app, Some(&by_secondary), "", &[]).await.status(),
        200
    );
    let (fresh, _) = mint(&app, "west-1", None).await;
    assert_ne!(signature(&fresh), signature(&by_primary));
    assert_eq!(config(&app, Some(&fresh), "", &[]).await.status(), 200);

    // Then the secondary: its token dies, the fresh primary one lives.
    let r = post_json(
        &app,
        "/gateways/west-1/regenerateKey",
        Some(json!({"keyType": "secondary"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_refused(config(&app, Some(&by_secondary), "", &[]).await).await;
    assert_eq!(config(&app, Some(&fresh), "", &[]).await.status(), 200);

    // Bad requests.
    for body in [
        Some(json!({"keyType": "tertiary"})),
        Some(json!({})),
        Some(json!({"keyType": "primary", "bogus": 1})),
    ] {
        assert_mgmt_error(
            post_json(&app, "/gateways/west-1/regenerateKey", body).await,
            400,
            "ValidationError",
        )
        .await;
    }
    let r = post_json(&app, "/gateways/west-1/regenerateKey", None).await;
    assert_eq!(r.status(), 400);
    assert_mgmt_error(
        post_json(
            &app,
            "/gateways/nope/regenerateKey",
            Some(json!({"keyType": "primary"})),
        )
        .await,
        404,
        "ResourceNotFound",
    )
    .await;
    // A refused regeneration changed nothing.
    assert_eq!(config(&app, Some(&fresh), "", &[]).await.status(), 200);
}

#[tokio::test]
async fn export_is_gzip_with_the_revision_and_without_gateway_keys() {
    let app = TestApp::spawn().await;
    app.api("petstore", "pets", &app.echo_url()).await;
    register(&app, "west-1").await;
    let (token, _) = mint(&app, "west-1", None).await;
    let rev = revision(&app).await;
    assert!(rev >= 3);

    let r = config(&app, Some(&token), "", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(etag_of(&r), format!("\"{rev}\""));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let gz = r.bytes().await.unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    let catalog = export::decode(&gz, export::MAX_EXPORT_BYTES).unwrap();
    assert_eq!(catalog.schema_version, 1);
    assert_eq!(catalog.revision, rev);
    assert_eq!(catalog.apis["petstore"].path, "pets");
    assert!(catalog.gateway_keys.is_empty());
    let text = String::from_utf8(export::inflate(&gz, export::MAX_EXPORT_BYTES).unwrap()).unwrap();
    assert!(!text.contains("gatewayKeys"), "{text}");
    assert!(!text.contains("gateway_keys"), "{text}");

    // Without gzip: the same export, plain.
    let r = config(&app, Some(&token), "", &[]).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(etag_of(&r), format!("\"{rev}\""));
    let plain = r.bytes().await.unwrap();
    assert_eq!(plain.as_ref(), text.as_bytes());
    let again = export::parse(&plain).unwrap();
    assert_eq!(again, catalog);
    // gzip refused with q=0 is plain too.
    let r = config(&app, Some(&token), "", &[("accept-encoding", "gzip;q=0")]).await;
    assert!(r.headers().get("content-encoding").is_none());
    export::parse(&r.bytes().await.unwrap()).unwrap();
    // A version this primary serves.
    let r = config(&app, Some(&token), "?schemaVersion=1", &[]).await;
    assert_eq!(r.status(), 200);

    // A later write shows up in the next export.
    app.put_ok(
        "/apis/petstore",
        json!({"displayName": "Pets", "path": "pets2", "serviceUrl": app.echo_url()}),
    )
    .await;
    let r = config(&app, Some(&token), "", &[("accept-encoding", "gzip")]).await;
    assert_eq!(etag_of(&r), format!("\"{}\"", rev + 1));
    let catalog = export::decode(&r.bytes().await.unwrap(), export::MAX_EXPORT_BYTES).unwrap();
    assert_eq!(catalog.apis["petstore"].path, "pets2");
}

#[tokio::test]
async fn conditional_requests_and_long_polls() {
    let app = TestApp::spawn().await;
    register(&app, "west-1").await;
    let (token, _) = mint(&app, "west-1", None).await;
    let rev = revision(&app).await;
    let current = format!("\"{rev}\"");

    // Unchanged: 304 with the ETag, no body.
    let r = config(&app, Some(&token), "", &[("if-none-match", &current)]).await;
    assert_eq!(r.status(), 304);
    assert_eq!(etag_of(&r), current);
    assert!(r.bytes().await.unwrap().is_empty());
    let weak = format!("W/{current}");
    let r = config(&app, Some(&token), "", &[("if-none-match", &weak)]).await;
    assert_eq!(r.status(), 304);
    // Another revision: the export.
    let old = format!("\"{}\"", rev - 1);
    let r = config(&app, Some(&token), "", &[("if-none-match", &old)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(etag_of(&r), current);

    // A long-poll answers as soon as the revision moves.
    let poll = {
        let url = format!("{}/cluster/v1/config?wait=3s", base(&app));
        let client = app.client.clone();
        let token = token.clone();
        let current = current.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = client
                .get(url)
                .header("authorization", format!("GatewayKey {token}"))
                .header("if-none-match", current)
                .header("accept-encoding", "gzip")
                .send()
                .await
                .unwrap();
            let status = r.status();
            let etag = etag_of(&r);
            let body = r.bytes().await.unwrap();
            (status, etag, body, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.put_ok(
        "/apis/late",
        json!({"displayName": "late", "path": "late", "serviceUrl": app.echo_url()}),
    )
    .await;
    let now = revision(&app).await;
    assert_eq!(now, rev + 1);
    let (status, etag, body, took) = poll.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(etag, format!("\"{now}\""), "answered with the new revision");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let catalog = export::decode(&body, export::MAX_EXPORT_BYTES).unwrap();
    assert!(catalog.apis.contains_key("late"));

    // Nothing changes: 304 once the wait is over, not before.
    let current = format!("\"{now}\"");
    let started = Instant::now();
    let r = config(
        &app,
        Some(&token),
        "?wait=500ms",
        &[("if-none-match", &current)],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.status(), 304);
    assert_eq!(etag_of(&r), current);
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // A wait without a matching If-None-Match answers at once.
    let started = Instant::now();
    let r = config(&app, Some(&token), "?wait=5s", &[]).await;
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));

    // Bad parameters.
    for q in [
        "?wait=banana",
        "?wait=10m",
        "?wait=-1s",
        "?schemaVersion=0",
        "?schemaVersion=x",
    ] {
        let started = Instant::now();
        let r = config(&app, Some(&token), q, &[("if-none-match", &current)]).await;
        let v = assert_mgmt_error(r, 400, "ValidationError").await;
        let target = if q.contains("wait") {
            "wait"
        } else {
            "schemaVersion"
        };
        assert_eq!(v["error"]["details"][0]["target"], target, "{q}: {v}");
        assert!(started.elapsed() < Duration::from_secs(2), "{q}");
    }
}

#[tokio::test]
async fn heartbeats_show_in_the_gateway_list() {
    let app = TestApp::spawn().await;
    register(&app, "west-1").await;
    register(&app, "east-1").await;
    let (token, _) = mint(&app, "west-1", None).await;

    // Before any heartbeat or poll.
    let g = app.get_json("/gateways/west-1").await;
    assert_eq!(g["status"], "registered");
    assert!(g["lastHeartbeat"].is_null());
    assert!(g["lastConfigRequest"].is_null());

    let current = revision(&app).await;
    assert!(current >= 2);
    let reported = current - 1;
    let r = heartbeat_raw(
        &app,
        &token,
        &beat("west-1", reported, 10.0, 5, 1).to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"revision": current}));
    let r = heartbeat_raw(
        &app,
        &token,
        &beat("west-1", reported, 10.0, 7, 2).to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(config(&app, Some(&token), "", &[]).await.status(), 200);

    let list = app.get_json("/gateways").await;
    let find = |id: &str| {
        list["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == id)
            .unwrap()
            .clone()
    };
    let west = find("west-1");
    assert_eq!(west["status"], "connected", "{west}");
    assert_eq!(west["region"], "westus");
    assert_eq!(west["revision"], reported);
    assert_eq!(west["lag"], 1);
    assert_eq!(west["version"], "0.1.0-test");
    assert_eq!(west["hostname"], "gw-west-1");
    assert_eq!(west["configSource"], "primary");
    assert_eq!(west["requests"], json!({"total": 12, "failed": 3}));
    let last = humantime::parse_rfc3339(west["lastHeartbeat"].as_str().unwrap()).unwrap();
    assert!(SystemTime::now().duration_since(last).unwrap() < Duration::from_secs(60));
    assert!(west["lastConfigRequest"].is_string(), "{west}");
    assert_eq!(west["locationData"]["name"], "West US");
    assert_no_key_fields(&west);
    // The other gateway was never heard from.
    let east = find("east-1");
    assert_eq!(east["status"], "registered", "{east}");
    assert!(east["lastHeartbeat"].is_null());
    assert!(east.get("region").is_none(), "{east}");

    // The lag follows the primary's revision.
    app.api("more", "more", &app.echo_url()).await;
    let g = app.get_json("/gateways/west-1").await;
    assert_eq!(g["lag"], revision(&app).await - reported);

    // Someone else's id, bad JSON, missing fields: 400, nothing recorded.
    let r = heartbeat_raw(&app, &token, &beat("east-1", 0, 10.0, 100, 0).to_string()).await;
    let v = assert_mgmt_error(r, 400, "ValidationError").await;
    assert_eq!(v["error"]["details"][0]["target"], "gatewayId");
    for bad in [
        "{not json",
        "[]",
        "",
        r#"{"gatewayId": "west-1"}"#,
        r#"{"gatewayId": "west-1", "region": "w", "revision": "x", "version": "v",
            "uptimeSeconds": 1, "hostname": "h", "heartbeatIntervalSeconds": 1}"#,
    ] {
        let r = heartbeat_raw(&app, &token, bad).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = heartbeat_raw(&app, &token, "{not json").await;
    assert_mgmt_error(r, 400, "MalformedBody").await;
    let list = app.get_json("/gateways").await;
    let east = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == "east-1")
        .unwrap()
        .clone();
    assert_eq!(east["status"], "registered", "{east}");
    assert_eq!(
        app.get_json("/gateways/west-1").await["requests"],
        json!({"total": 12, "failed": 3})
    );
}

#[tokio::test]
async fn silent_gateways_go_stale() {
    let app = TestApp::spawn().await;
    register(&app, "west-1").await;
    let (token, _) = mint(&app, "west-1", None).await;
    let r = heartbeat_raw(&app, &token, &beat("west-1", 0, 0.2, 1, 0).to_string()).await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let g = app.get_json("/gateways/west-1").await;
    assert_eq!(g["status"], "stale", "{g}");
    assert_eq!(g["heartbeatIntervalSeconds"], 0.2);
    // A new heartbeat brings it back.
    let r = heartbeat_raw(&app, &token, &beat("west-1", 0, 30.0, 1, 0).to_string()).await;
    assert_eq!(r.status(), 200);
    let g = app.get_json("/gateways/west-1").await;
    assert_eq!(g["status"], "connected", "{g}");
    assert_eq!(g["requests"]["total"], 2);
}

#[tokio::test]
async fn a_huge_max_lifetime_does_not_overflow() {
    let app = TestApp::spawn_with(|s| {
        s.management.gateway_token_max_lifetime = Duration::from_secs(u64::MAX);
    })
    .await;
    register(&app, "west-1").await;
    let asked = rfc3339_in(3600);
    let (token, expiry) = mint(&app, "west-1", Some(json!({"expiry": asked}))).await;
    assert_eq!(expiry, asked);
    assert_eq!(config(&app, Some(&token), "", &[]).await.status(), 200);
    let (_, expiry) = mint(&app, "west-1", None).await;
    let at = unix(humantime::parse_rfc3339(&expiry).unwrap());
    assert!(
        at.abs_diff(unix(SystemTime::now()) + 30 * DAY) <= 60,
        "{expiry}"
    );
}

#[tokio::test]
async fn a_registration_made_again_starts_unseen() {
    let app = TestApp::spawn().await;
    register(&app, "west-1").await;
    let (token, _) = mint(&app, "west-1", None).await;
    let r = heartbeat_raw(&app, &token, &beat("west-1", 0, 30.0, 9, 0).to_string()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(config(&app, Some(&token), "", &[]).await.status(), 200);
    assert_eq!(
        app.get_json("/gateways/west-1").await["status"],
        "connected"
    );

    // Deleted and registered again: nothing of the old one shows.
    assert_eq!(app.delete("/gateways/west-1").await.status(), 204);
    register(&app, "west-1").await;
    let g = app.get_json("/gateways/west-1").await;
    assert_eq!(g["status"], "registered", "{g}");
    assert!(g["lastHeartbeat"].is_null(), "{g}");
    assert!(g["lastConfigRequest"].is_null(), "{g}");
    assert!(g.get("requests").is_none(), "{g}");
    // Its first heartbeat counts from zero.
    let (token, _) = mint(&app, "west-1", None).await;
    let r = heartbeat_raw(&app, &token, &beat("west-1", 0, 30.0, 1, 0).to_string()).await;
    assert_eq!(r.status(), 200);
    let g = app.get_json("/gateways/west-1").await;
    assert_eq!(g["requests"], json!({"total": 1, "failed": 0}), "{g}");
}

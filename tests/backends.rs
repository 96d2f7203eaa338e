//! Backends through the real gateway: credentials, circuit breakers, pools
//! and the backend authentication policies. Backends count the calls they
//! get, so "the gateway did not call it" is asserted, not assumed.

mod common;

use common::backend::{self, full};
use common::{assert_mgmt_error, TestApp};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn policy(app: &TestApp, path: &str, xml: &str) {
    let r = app.put_xml(path, xml).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "PUT {path}: {status} {body}");
}

/// A backend answering `status` (changeable) with a JSON echo of what it
/// got (name, path and query, headers); counts its calls.
struct Probe {
    url: String,
    calls: Arc<AtomicUsize>,
    status: Arc<AtomicU16>,
}

async fn probe(name: &'static str) -> Probe {
    let calls = Arc::new(AtomicUsize::new(0));
    let status = Arc::new(AtomicU16::new(200));
    let (c, s) = (calls.clone(), status.clone());
    let addr = backend::spawn(move |req| {
        let (c, s) = (c.clone(), s.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            let mut headers = serde_json::Map::new();
            for k in req.headers().keys() {
                let all: Vec<&str> = req
                    .headers()
                    .get_all(k)
                    .iter()
                    .map(|v| v.to_str().unwrap_or(""))
                    .collect();
                headers.insert(k.to_string(), json!(all.join(", ")));
            }
            let body = json!({
                "name": name,
                "uri": req.uri().path_and_query().map(|p| p.to_string()),
                "headers": headers,
            });
            let mut resp = hyper::Response::new(full(body.to_string()));
            *resp.status_mut() = hyper::StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap();
            resp
        }
    })
    .await;
    Probe {
        url: format!("http://{addr}"),
        calls,
        status,
    }
}

/// An API `svc` at `/svc` whose inbound selects backend `id`.
async fn api_using(app: &TestApp, id: &str) {
    open_api(app).await;
    policy(
        app,
        "/apis/svc/policy",
        &format!(r#"<policies><inbound><base /><set-backend-service backend-id="{id}" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#),
    )
    .await;
}

/// `svc` at `/svc`, callable without a key.
async fn open_api(app: &TestApp) {
    app.put_ok(
        "/apis/svc",
        json!({"displayName": "svc", "path": "svc", "serviceUrl": "http://127.0.0.1:9", "subscriptionRequired": false}),
    )
    .await;
    app.put_ok(
        "/apis/svc/operations/all",
        json!({"method": "*", "urlTemplate": "/*"}),
    )
    .await;
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{}", app.gw, path))
        .send()
        .await
        .unwrap()
}

fn breaker(count: u32, trip: &str) -> Value {
    json!({"rules": [{
        "name": "five-hundreds",
        "failureCondition": {"count": count, "interval": "PT1M", "statusCodeRanges": [{"min": 500, "max": 599}]},
        "tripDuration": trip
    }]})
}

#[tokio::test]
async fn backend_credentials_reach_the_backend_and_stay_hidden() {
    let app = TestApp::spawn().await;
    let b = probe("a").await;
    app.put_ok(
        "/backends/creds",
        json!({
            "url": format!("{}/base", b.url),
            "credentials": {
                "header": {"x-team": ["blue"], "x-multi": ["1", "2"]},
                "query": {"code": ["s3cr t"]},
                "authorization": {"scheme": "Bearer", "parameter": "tok-123"}
            }
        }),
    )
    .await;
    api_using(&app, "creds").await;
    let r = app
        .client
        .get(format!("{}/svc/items?x=1", app.gw))
        .header("x-team", "client-value")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["uri"], "/base/items?x=1&code=s3cr%20t");
    assert_eq!(v["headers"]["x-team"], "blue");
    assert_eq!(v["headers"]["authorization"], "Bearer tok-123");
    assert_eq!(v["headers"]["x-multi"], "1, 2");
    let got = app.get_json("/backends/creds").await;
    assert!(!got.to_string().contains("tok-123"), "{got}");
}

#[tokio::test]
async fn circuit_breaker_opens_refuses_without_calling_and_closes() {
    let app = TestApp::spawn().await;
    let b = probe("a").await;
    b.status.store(500, Ordering::SeqCst);
    app.put_ok(
        "/backends/flaky",
        json!({"url": b.url, "circuitBreaker": breaker(3, "PT1S")}),
    )
    .await;
    api_using(&app, "flaky").await;
    for _ in 0..3 {
        assert_eq!(get(&app, "/svc/x").await.status(), 500);
    }
    assert_eq!(b.calls.load(Ordering::SeqCst), 3);
    // Open: 503 with Retry-After, and the backend is not called.
    for _ in 0..3 {
        let r = get(&app, "/svc/x").await;
        assert_eq!(r.status(), 503);
        let ra: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=1).contains(&ra), "{ra}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["statusCode"], 503);
    }
    assert_eq!(b.calls.load(Ordering::SeqCst), 3);
    // After the trip duration it closes.
    b.status.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(get(&app, "/svc/x").await.status(), 200);
    assert_eq!(b.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn circuit_breaker_honours_retry_after_and_on_error_sees_the_reason() {
    let app = TestApp::spawn().await;
    let addr = backend::spawn(|_req| async {
        let mut r = hyper::Response::new(full("busy"));
        *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
        r.headers_mut().insert("retry-after", "7".parse().unwrap());
        r
    })
    .await;
    let mut cb = breaker(1, "PT1H");
    cb["rules"][0]["acceptRetryAfter"] = json!(true);
    app.put_ok(
        "/backends/busy",
        json!({"url": format!("http://{addr}"), "circuitBreaker": cb}),
    )
    .await;
    open_api(&app).await;
    policy(
        &app,
        "/apis/svc/policy",
        r#"<policies><inbound><base /><set-backend-service backend-id="busy" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /><set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason)</value></set-header></on-error></policies>"#,
    )
    .await;
    assert_eq!(get(&app, "/svc").await.status(), 503);
    let r = get(&app, "/svc").await;
    assert_eq!(r.status(), 503);
    let ra: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((6..=7).contains(&ra), "{ra}");
    assert_eq!(r.headers()["x-reason"], "BackendUnavailable");
}

#[tokio::test]
async fn pool_round_robin_and_weights() {
    let app = TestApp::spawn().await;
    let (a, b) = (probe("a").await, probe("b").await);
    app.put_ok("/backends/a", json!({"url": a.url})).await;
    app.put_ok("/backends/b", json!({"url": b.url})).await;
    app.put_ok(
        "/backends/pool",
        json!({"type": "Pool", "pool": {"services": [{"id": "/backends/a"}, {"id": "b"}]}}),
    )
    .await;
    api_using(&app, "pool").await;
    for _ in 0..10 {
        assert_eq!(get(&app, "/svc").await.status(), 200);
    }
    assert_eq!(a.calls.load(Ordering::SeqCst), 5);
    assert_eq!(b.calls.load(Ordering::SeqCst), 5);
    // Weighted 3:1.
    app.put_ok(
        "/backends/pool",
        json!({"type": "Pool", "pool": {"services": [{"id": "a", "weight": 3}, {"id": "b", "weight": 1}]}}),
    )
    .await;
    for _ in 0..8 {
        assert_eq!(get(&app, "/svc").await.status(), 200);
    }
    assert_eq!(a.calls.load(Ordering::SeqCst), 5 + 6);
    assert_eq!(b.calls.load(Ordering::SeqCst), 5 + 2);
    let got = app.get_json("/backends/pool").await;
    assert_eq!(got["type"], "Pool");
    assert_eq!(got["pool"]["services"][0]["id"], "a");
}

#[tokio::test]
async fn pool_fails_over_to_the_next_priority_when_the_primary_trips() {
    let app = TestApp::spawn().await;
    let (a, b) = (probe("a").await, probe("b").await);
    a.status.store(502, Ordering::SeqCst);
    app.put_ok(
        "/backends/primary",
        json!({"url": a.url, "circuitBreaker": breaker(2, "PT1S")}),
    )
    .await;
    app.put_ok(
        "/backends/secondary",
        json!({"url": b.url, "circuitBreaker": breaker(2, "PT1M")}),
    )
    .await;
    app.put_ok(
        "/backends/pool",
        json!({"type": "Pool", "pool": {"services": [
            {"id": "secondary", "priority": 2},
            {"id": "primary", "priority": 1}
        ]}}),
    )
    .await;
    api_using(&app, "pool").await;
    // The primary group takes everything until its breaker opens.
    assert_eq!(get(&app, "/svc").await.status(), 502);
    assert_eq!(get(&app, "/svc").await.status(), 502);
    for _ in 0..4 {
        let r = get(&app, "/svc").await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["name"], "b");
    }
    assert_eq!(a.calls.load(Ordering::SeqCst), 2);
    assert_eq!(b.calls.load(Ordering::SeqCst), 4);
    // The primary recovers after its trip duration.
    a.status.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let v: Value = get(&app, "/svc").await.json().await.unwrap();
    assert_eq!(v["name"], "a");
    // Every member open: 503.
    b.status.store(500, Ordering::SeqCst);
    a.status.store(500, Ordering::SeqCst);
    for _ in 0..2 {
        get(&app, "/svc").await;
    }
    let calls_a = a.calls.load(Ordering::SeqCst);
    for _ in 0..2 {
        get(&app, "/svc").await;
    }
    let r = get(&app, "/svc").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(a.calls.load(Ordering::SeqCst) <= calls_a + 2);
}

#[tokio::test]
async fn backend_management_validates_pools_and_breakers() {
    let app = TestApp::spawn().await;
    app.put_ok("/backends/a", json!({"url": "http://a.example"}))
        .await;
    let v = assert_mgmt_error(
        app.put(
            "/backends/p",
            json!({"type": "Pool", "pool": {"services": [{"id": "a"}, {"id": "ghost"}]}}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(
        v["error"]["details"][0]["target"], "pool.services[1].id",
        "{v}"
    );
    let v = assert_mgmt_error(
        app.put(
            "/backends/p",
            json!({"type": "Pool", "pool": {"services": [{"id": "a", "weight": 0, "priority": 101}]}}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(v["error"]["details"].as_array().unwrap().len(), 2, "{v}");
    assert_mgmt_error(
        app.put("/backends/p", json!({"type": "Pool"})).await,
        400,
        "ValidationError",
    )
    .await;
    assert_mgmt_error(
        app.put("/backends/s", json!({})).await,
        400,
        "ValidationError",
    )
    .await;
    app.put_ok(
        "/backends/p",
        json!({"type": "Pool", "pool": {"services": [{"id": "a"}]}}),
    )
    .await;
    // No nested pools, either way round.
    assert_mgmt_error(
        app.put(
            "/backends/q",
            json!({"type": "Pool", "pool": {"services": [{"id": "p"}]}}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_mgmt_error(
        app.put(
            "/backends/a",
            json!({"type": "Pool", "pool": {"services": [{"id": "p"}]}}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    // A member in use cannot be deleted.
    assert_mgmt_error(app.delete("/backends/a").await, 409, "Conflict").await;
    let v = assert_mgmt_error(
        app.put(
            "/backends/b",
            json!({"url": "http://b.example", "circuitBreaker": {"rules": [{"name": "r", "failureCondition": {"count": 1, "interval": "1 minute"}, "tripDuration": "PT1M"}]}}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(
        v["error"]["details"][0]["target"],
        "circuitBreaker.rules[0].failureCondition.interval"
    );
    let v = assert_mgmt_error(
        app.put(
            "/backends/c",
            json!({"url": "http://c.example", "credentials": {"certificateIds": ["/certificates/x"]}}),
        )
        .await,
        400,
        "ValidationError",
    )
    .await;
    assert_eq!(
        v["error"]["details"][0]["target"],
        "credentials.certificateIds"
    );
    assert_eq!(app.delete("/backends/p").await.status(), 204);
    assert_eq!(app.delete("/backends/a").await.status(), 204);
}

#[tokio::test]
async fn authentication_basic_sets_the_backend_authorization() {
    let app = TestApp::spawn().await;
    let b = probe("a").await;
    app.put_ok("/backends/a", json!({"url": b.url})).await;
    api_using(&app, "a").await;
    policy(
        &app,
        "/apis/svc/policy",
        r#"<policies><inbound><base /><set-backend-service backend-id="a" /><authentication-basic username="alice" password="open sesame" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
    )
    .await;
    let v: Value = get(&app, "/svc").await.json().await.unwrap();
    assert_eq!(
        v["headers"]["authorization"],
        "Basic YWxpY2U6b3BlbiBzZXNhbWU="
    );
}

/// A fake OAuth2 token endpoint: counts calls, remembers the last form.
async fn token_endpoint(fail: bool) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<String>>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let form = Arc::new(std::sync::Mutex::new(String::new()));
    let (c, f) = (calls.clone(), form.clone());
    let addr = backend::spawn(move |req| {
        let (c, f) = (c.clone(), f.clone());
        async move {
            use http_body_util::BodyExt;
            let n = c.fetch_add(1, Ordering::SeqCst);
            let body = req.into_body().collect().await.unwrap().to_bytes();
            *f.lock().unwrap() = String::from_utf8_lossy(&body).into_owned();
            let mut resp = hyper::Response::new(full(if fail {
                json!({"error": "invalid_client"}).to_string()
            } else {
                json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600}).to_string()
            }));
            if fail {
                *resp.status_mut() = hyper::StatusCode::UNAUTHORIZED;
            }
            resp
        }
    })
    .await;
    (format!("http://{addr}/oauth2/token"), calls, form)
}

const MI_POLICY: &str = r#"<policies><inbound><base /><set-backend-service backend-id="a" /><authentication-managed-identity resource="api://orders" output-token-variable-name="tok" /><set-header name="X-Tok" exists-action="override"><value>@((string)context.Variables["tok"])</value></set-header></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;

#[tokio::test]
async fn managed_identity_uses_client_credentials_and_caches_the_token() {
    let (endpoint, calls, form) = token_endpoint(false).await;
    let app = TestApp::spawn_with(|s| {
        s.identity.token_endpoint = Some(endpoint.clone());
        s.identity.client_id = Some("gateway-app".into());
        s.identity.client_secret = Some(turnpike::error::Secret::new("sh&h secret"));
    })
    .await;
    let b = probe("a").await;
    app.put_ok("/backends/a", json!({"url": b.url})).await;
    api_using(&app, "a").await;
    policy(&app, "/apis/svc/policy", MI_POLICY).await;
    for _ in 0..3 {
        let r = get(&app, "/svc").await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["headers"]["authorization"], "Bearer tok-0");
        assert_eq!(v["headers"]["x-tok"], "tok-0");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the token is reused");
    let form = form.lock().unwrap().clone();
    assert!(form.contains("grant_type=client_credentials"), "{form}");
    assert!(form.contains("client_id=gateway-app"), "{form}");
    assert!(form.contains("client_secret=sh%26h%20secret"), "{form}");
    assert!(
        form.contains("scope=api%3A%2F%2Forders%2F.default"),
        "{form}"
    );
}

#[tokio::test]
async fn managed_identity_failure_is_a_500_unless_ignored() {
    let (endpoint, calls, _) = token_endpoint(true).await;
    let app = TestApp::spawn_with(|s| {
        s.identity.token_endpoint = Some(endpoint.clone());
        s.identity.client_id = Some("gateway-app".into());
        s.identity.client_secret = Some(turnpike::error::Secret::new("x"));
    })
    .await;
    let b = probe("a").await;
    app.put_ok("/backends/a", json!({"url": b.url})).await;
    api_using(&app, "a").await;
    policy(
        &app,
        "/apis/svc/policy",
        r#"<policies><inbound><base /><set-backend-service backend-id="a" /><authentication-managed-identity resource="api://orders" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /><set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason)</value></set-header></on-error></policies>"#,
    )
    .await;
    let r = get(&app, "/svc").await;
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["x-reason"], "ManagedIdentityTokenFailure");
    assert_eq!(b.calls.load(Ordering::SeqCst), 0);
    policy(
        &app,
        "/apis/svc/policy",
        r#"<policies><inbound><base /><set-backend-service backend-id="a" /><authentication-managed-identity resource="api://orders" ignore-error="true" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
    )
    .await;
    let r = get(&app, "/svc").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["headers"].get("authorization").is_none(), "{v}");
    assert!(calls.load(Ordering::SeqCst) >= 2, "failures are not cached");
}

#[tokio::test]
async fn managed_identity_from_an_imds_compatible_endpoint() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let addr = backend::spawn(move |req| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            let ok = req.headers().get("metadata").is_some_and(|v| v == "true")
                && req.uri().query().is_some_and(|q| {
                    q.contains("resource=https%3A%2F%2Fvault") && q.contains("client_id=abc")
                });
            let mut r = hyper::Response::new(full(
                json!({"access_token": "imds-token", "expires_in": "3599"}).to_string(),
            ));
            if !ok {
                *r.status_mut() = hyper::StatusCode::BAD_REQUEST;
            }
            r
        }
    })
    .await;
    let app = TestApp::spawn_with(|s| {
        s.identity.imds_endpoint = Some(format!("http://{addr}/metadata/identity/oauth2/token"));
    })
    .await;
    let b = probe("a").await;
    app.put_ok("/backends/a", json!({"url": b.url})).await;
    api_using(&app, "a").await;
    policy(
        &app,
        "/apis/svc/policy",
        r#"<policies><inbound><base /><set-backend-service backend-id="a" /><authentication-managed-identity resource="https://vault" client-id="abc" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
    )
    .await;
    for _ in 0..2 {
        let v: Value = get(&app, "/svc").await.json().await.unwrap();
        assert_eq!(v["headers"]["authorization"], "Bearer imds-token");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// `send-request` with an `<authentication-managed-identity>` child: the
/// token (cached like the policy's) goes on that call only.
#[tokio::test]
async fn send_request_authenticates_with_its_children() {
    let (endpoint, calls, _) = token_endpoint(false).await;
    let app = TestApp::spawn_with(|s| {
        s.identity.token_endpoint = Some(endpoint.clone());
        s.identity.client_id = Some("gateway-app".into());
        s.identity.client_secret = Some(turnpike::error::Secret::new("x"));
    })
    .await;
    let svc = probe("svc").await;
    open_api(&app).await;
    policy(
        &app,
        "/apis/svc/policy",
        &format!(
            r#"<policies><inbound><base />
  <send-request mode="new" response-variable-name="mi" timeout="5"><set-url>{u}/mi</set-url><authentication-managed-identity resource="api://orders" /></send-request>
  <send-request mode="new" response-variable-name="plain" timeout="5"><set-url>{u}/plain</set-url></send-request>
  <return-response><set-status code="200" reason="OK" /><set-body>@{{
    var mi = ((IResponse)context.Variables["mi"]).Body.As<JObject>();
    var plain = ((IResponse)context.Variables["plain"]).Body.As<JObject>();
    return mi["headers"]["authorization"] + "|" + plain["headers"]["authorization"] + "|" + (context.Request.Headers.ContainsKey("Authorization") ? "leaked" : "clean");
  }}</set-body></return-response>
</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
            u = svc.url
        ),
    )
    .await;
    for _ in 0..2 {
        let r = get(&app, "/svc").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "Bearer tok-0||clean");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the token is reused");
    assert_eq!(svc.calls.load(Ordering::SeqCst), 4);
    // The token goes on the call only: no output variable there.
    let r = app
        .put_xml(
            "/apis/svc/policy",
            r#"<policies><inbound><send-request response-variable-name="r"><set-url>http://x</set-url><authentication-managed-identity resource="r" output-token-variable-name="t" /></send-request></inbound></policies>"#,
        )
        .await;
    assert_eq!(r.status(), 400);
}

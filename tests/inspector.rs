//! The API inspector through the real gateway and management API: debug
//! tokens, traced requests, `Apim-Trace-Id`, `GET /mgmt/traces/{id}`.

mod common;

use common::{assert_mgmt_error, TestApp, ADMIN};
use serde_json::{json, Value};
use std::time::Duration;

const SECRET: &str = "very-secret-named-value-123";
const BEARER: &str = "client-bearer-token-0123456789";

async fn policy(app: &TestApp, path: &str, xml: &str) {
    let r = app.put_xml(path, xml).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "PUT {path}: {status} {body}");
}

/// A debug token for `api`, with an optional body.
async fn token(app: &TestApp, api: &str, body: Option<Value>) -> String {
    let mut r = app
        .client
        .post(format!("{}/apis/{api}/debug-token", app.mgmt))
        .bearer_auth(ADMIN);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["expires"].as_str().unwrap().ends_with('Z'), "{v}");
    v["token"].as_str().unwrap().to_string()
}

async fn traced_call(
    app: &TestApp,
    path: &str,
    key: &str,
    debug: Option<&str>,
) -> reqwest::Response {
    let mut r = app
        .client
        .get(format!("{}{}", app.gw, path))
        .header("Ocp-Apim-Subscription-Key", key)
        .header("Authorization", format!("Bearer {BEARER}"));
    if let Some(t) = debug {
        r = r.header("Apim-Debug-Authorization", t);
    }
    r.send().await.unwrap()
}

fn trace_id(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("apim-trace-id")
        .map(|v| v.to_str().unwrap().to_string())
}

/// The trace's JSON text and value.
async fn get_trace(app: &TestApp, id: &str) -> (String, Value) {
    let r = app.get(&format!("/traces/{id}")).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap();
    (text, v)
}

/// (source, scope) of each entry of `section`.
fn steps(trace: &Value, section: &str) -> Vec<(String, String)> {
    trace["traceEntries"][section]
        .as_array()
        .unwrap_or_else(|| panic!("section {section}: {trace}"))
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap().to_string(),
                e["scope"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn header_in<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers
        .as_array()?
        .iter()
        .find(|h| h["name"].as_str().unwrap().eq_ignore_ascii_case(name))
        .and_then(|h| h["value"].as_str())
}

/// The standard echo API with policies at every scope.
async fn layered(app: &TestApp) -> String {
    let key = app.standard().await;
    app.put_ok(
        "/named-values/sec",
        json!({"displayName": "sec", "value": SECRET, "secret": true}),
    )
    .await;
    policy(
        app,
        "/policy",
        r#"<policies><inbound><set-header name="X-Global" exists-action="override"><value>g</value></set-header></inbound><outbound /><on-error /></policies>"#,
    )
    .await;
    policy(
        app,
        "/products/starter/policy",
        r#"<policies><inbound><base /><rate-limit calls="100" renewal-period="60" /></inbound><outbound><base /></outbound></policies>"#,
    )
    .await;
    policy(
        app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><set-variable name="greeting" value="@("hi " + context.Request.Method)" /><trace source="inspect-test" severity="information"><message>@("seen " + (string)context.Variables["greeting"])</message><metadata name="tenant" value="blue" /></trace><set-header name="X-Data" exists-action="override"><value>{{sec}}</value></set-header></inbound><outbound><base /><set-status code="201" reason="Created" /></outbound><on-error><base /></on-error></policies>"#,
    )
    .await;
    policy(
        app,
        "/apis/echo/operations/all/policy",
        r#"<policies><inbound><base /><rewrite-uri template="/rewritten" /></inbound><outbound><base /><set-header name="X-Out" exists-action="override"><value>o</value></set-header></outbound></policies>"#,
    )
    .await;
    key
}

#[tokio::test]
async fn a_debug_token_trace_contains_each_policy() {
    let app = TestApp::spawn().await;
    let key = layered(&app).await;
    let token = token(&app, "echo", None).await;

    let r = traced_call(&app, "/echo/a?page=2", &key, Some(&token)).await;
    assert_eq!(r.status(), 201);
    let id = trace_id(&r).expect("Apim-Trace-Id");
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let echoed: Value = r.json().await.unwrap();
    assert_eq!(echoed["path"], "/rewritten");
    assert!(
        echoed["headers"].get("apim-debug-authorization").is_none(),
        "the debug token never reaches the backend: {echoed}"
    );

    let (text, t) = get_trace(&app, &id).await;
    assert_eq!(t["traceId"], id);
    assert_eq!(t["apiId"], "echo");
    assert_eq!(t["operationId"], "all");
    assert!(t["elapsedMs"].as_f64().unwrap() >= 0.0);
    assert!(t["startedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        steps(&t, "inbound"),
        pairs(&[
            ("api-inspector", "gateway"),
            ("set-header", "global"),
            ("rate-limit", "product"),
            ("set-variable", "api"),
            ("trace", "api"),
            ("set-header", "api"),
            ("rewrite-uri", "operation"),
        ])
    );
    assert_eq!(
        steps(&t, "backend"),
        pairs(&[("forward-request", "global")])
    );
    assert_eq!(
        steps(&t, "outbound"),
        pairs(&[("set-status", "api"), ("set-header", "operation")])
    );
    assert_eq!(steps(&t, "on-error"), vec![]);
    for section in ["inbound", "backend", "outbound"] {
        for e in t["traceEntries"][section].as_array().unwrap() {
            assert!(e["timestamp"].as_str().unwrap().ends_with('Z'), "{e}");
            assert!(e["elapsed"].as_str().unwrap().starts_with("00:00:"), "{e}");
            assert!(e["offsetUs"].is_u64(), "{e}");
            assert!(e["durationUs"].is_u64(), "{e}");
        }
    }
    let inbound = &t["traceEntries"]["inbound"];

    // On arrival: the request, its credentials masked.
    let arrival = &inbound[0]["data"]["request"];
    assert_eq!(arrival["method"], "GET");
    assert!(arrival["url"].as_str().unwrap().ends_with("/echo/a?page=2"));
    let sub = header_in(&arrival["headers"], "ocp-apim-subscription-key").unwrap();
    assert_eq!(sub, format!("{}…", &key[..4]));
    assert_eq!(
        header_in(&arrival["headers"], "authorization"),
        Some("Bear…")
    );
    let debug = header_in(&arrival["headers"], "apim-debug-authorization").unwrap();
    assert!(
        debug.ends_with('…') && debug.chars().count() == 5,
        "{debug}"
    );
    assert_eq!(inbound[0]["data"]["configuration"]["product"], "starter");

    // What each policy did.
    assert_eq!(
        inbound[1]["data"]["requestHeaders"]["set"]["X-Global"], "g",
        "{}",
        inbound[1]
    );
    assert_eq!(inbound[3]["data"]["variables"]["set"]["greeting"], "hi GET");
    assert_eq!(
        inbound[4]["data"]["trace"],
        json!([{"source": "inspect-test", "severity": "information", "message": "seen hi GET", "metadata": {"tenant": "blue"}}])
    );
    assert_eq!(
        inbound[5]["data"]["requestHeaders"]["set"]["X-Data"], "***",
        "a secret named value is redacted"
    );
    let url = &inbound[6]["data"]["url"];
    assert!(
        url["from"].as_str().unwrap().ends_with("/a?page=2"),
        "{url}"
    );
    assert!(
        url["to"].as_str().unwrap().ends_with("/rewritten?page=2"),
        "{url}"
    );

    // The backend call: what was sent (masked) and what came back.
    let fwd = &t["traceEntries"]["backend"][0]["data"];
    let sent = &fwd["request"];
    assert_eq!(sent["method"], "GET");
    assert_eq!(
        sent["url"],
        format!("{}/rewritten?page=2", app.echo_url()),
        "{fwd}"
    );
    assert_eq!(header_in(&sent["headers"], "x-global"), Some("g"));
    assert_eq!(header_in(&sent["headers"], "x-data"), Some("***"));
    assert_eq!(header_in(&sent["headers"], "authorization"), Some("Bear…"));
    assert!(header_in(&sent["headers"], "x-forwarded-for").is_some());
    assert!(header_in(&sent["headers"], "apim-debug-authorization").is_none());
    assert_eq!(fwd["response"]["status"], 200);
    assert!(fwd["response"]["elapsedUs"].is_u64());
    assert!(header_in(&fwd["response"]["headers"], "content-type").is_some());

    let outbound = &t["traceEntries"]["outbound"];
    assert_eq!(
        outbound[0]["data"]["responseStatus"],
        json!({"from": 200, "to": 201})
    );
    assert_eq!(outbound[1]["data"]["responseHeaders"]["set"]["X-Out"], "o");
    assert_eq!(t["response"]["status"], 201);
    assert!(t["lastError"].is_null());

    // No secret in clear anywhere in the trace.
    for secret in [key.as_str(), token.as_str(), SECRET, BEARER] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn only_a_valid_token_for_the_api_traces() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    app.api("other", "other", &app.echo_url()).await;
    app.product("starter", &["echo", "other"], true).await;

    // No header: no trace.
    let r = traced_call(&app, "/echo/a", &key, None).await;
    assert_eq!(r.status(), 200);
    assert!(trace_id(&r).is_none());

    let for_other = token(&app, "other", None).await;
    let short = token(
        &app,
        "echo",
        Some(json!({"credentialsExpireAfter": "PT1S"})),
    )
    .await;
    let good = token(&app, "echo", Some(json!({"expiresAfter": 600}))).await;
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let forged_expiry = {
        let parts: Vec<&str> = good.split('&').collect();
        format!(
            "{}&{}&{}",
            parts[0],
            parts[1].parse::<u64>().unwrap() + 1,
            parts[2]
        )
    };

    // The good token traces echo; the other API's token traces other.
    let r = traced_call(&app, "/echo/a", &key, Some(&good)).await;
    assert!(trace_id(&r).is_some());
    let r = traced_call(&app, "/other/a", &key, Some(&for_other)).await;
    assert!(trace_id(&r).is_some());

    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (what, t) in [
        ("another API's token", &for_other),
        ("an expired token", &short),
        ("a tampered signature", &tampered),
        ("a tampered expiry", &forged_expiry),
        ("garbage", &"nonsense".to_string()),
    ] {
        let r = traced_call(&app, "/echo/a", &key, Some(t)).await;
        assert_eq!(r.status(), 200, "{what}: the request runs as usual");
        assert!(trace_id(&r).is_none(), "{what} must not trace");
        let echoed: Value = r.json().await.unwrap();
        assert!(
            echoed["headers"].get("apim-debug-authorization").is_none(),
            "{what}: the header is not forwarded"
        );
    }
}

#[tokio::test]
async fn a_failing_policy_shows_the_error_and_on_error() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><set-header name="X-Before" exists-action="override"><value>1</value></set-header><check-header name="X-Needed" failed-check-httpcode="403" failed-check-error-message="X-Needed is required" /><set-header name="X-Never" exists-action="override"><value>1</value></set-header></inbound><on-error><base /><set-header name="X-Error" exists-action="override"><value>@(context.LastError.Reason)</value></set-header></on-error></policies>"#,
    )
    .await;
    let token = token(&app, "echo", None).await;
    let r = traced_call(&app, "/echo/a", &key, Some(&token)).await;
    assert_eq!(r.status(), 403);
    let id = trace_id(&r).expect("a failed request is traced too");
    let (_, t) = get_trace(&app, &id).await;
    assert_eq!(
        steps(&t, "inbound"),
        pairs(&[
            ("api-inspector", "gateway"),
            ("set-header", "api"),
            ("check-header", "api"),
        ])
    );
    let failed = &t["traceEntries"]["inbound"][2]["data"]["error"];
    assert_eq!(failed["status"], 403, "{t}");
    assert_eq!(failed["source"], "check-header");
    assert_eq!(failed["message"], "X-Needed is required");
    assert_eq!(failed["scope"], "api");
    assert_eq!(failed["section"], "inbound");
    assert_eq!(steps(&t, "backend"), vec![]);
    assert_eq!(steps(&t, "on-error"), pairs(&[("set-header", "api")]));
    let reason = failed["reason"].as_str().unwrap();
    assert_eq!(
        t["traceEntries"]["on-error"][0]["data"]["responseHeaders"]["set"]["X-Error"],
        reason
    );
    assert_eq!(t["lastError"]["source"], "check-header");
    assert_eq!(t["lastError"]["reason"], reason);
    assert_eq!(t["response"]["status"], 403);
}

#[tokio::test]
async fn a_return_response_short_circuits_in_the_trace() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><return-response><set-status code="401" reason="Unauthorized" /></return-response></inbound></policies>"#,
    )
    .await;
    let token = token(&app, "echo", None).await;
    let r = traced_call(&app, "/echo/a", &key, Some(&token)).await;
    assert_eq!(r.status(), 401);
    let (_, t) = get_trace(&app, &trace_id(&r).unwrap()).await;
    let entry = &t["traceEntries"]["inbound"][1];
    assert_eq!(entry["source"], "return-response");
    assert_eq!(entry["data"]["shortCircuit"]["status"], 401, "{entry}");
    assert_eq!(
        entry["data"]["shortCircuit"]["message"],
        "short-circuited with 401"
    );
    assert_eq!(steps(&t, "backend"), vec![]);
}

#[tokio::test]
async fn the_ring_keeps_the_newest_traces() {
    let app = TestApp::spawn_with(|s| s.telemetry.trace_ring_size = 2).await;
    let key = app.standard().await;
    let token = token(&app, "echo", None).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = traced_call(&app, "/echo/a", &key, Some(&token)).await;
        ids.push(trace_id(&r).unwrap());
    }
    assert_ne!(ids[1], ids[2]);
    let r = app.get(&format!("/traces/{}", ids[0])).await;
    assert_mgmt_error(r, 404, "ResourceNotFound").await;
    get_trace(&app, &ids[1]).await;
    get_trace(&app, &ids[2]).await;
    let r = app.get("/traces/0123456789abcdef0123456789abcdef").await;
    assert_mgmt_error(r, 404, "ResourceNotFound").await;
}

#[tokio::test]
async fn a_zero_ring_turns_the_inspector_off() {
    let app = TestApp::spawn_with(|s| s.telemetry.trace_ring_size = 0).await;
    let key = app.standard().await;
    let token = token(&app, "echo", None).await;
    let r = traced_call(&app, "/echo/a", &key, Some(&token)).await;
    assert_eq!(r.status(), 200);
    assert!(trace_id(&r).is_none());
}

#[tokio::test]
async fn the_token_endpoint_checks_its_input_and_the_admin_key() {
    let app = TestApp::spawn().await;
    app.standard().await;
    let post = |path: &str, body: Value| {
        app.client
            .post(format!("{}{path}", app.mgmt))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    for bad in [
        json!({"credentialsExpireAfter": "soon"}),
        json!({"credentialsExpireAfter": "PT0S"}),
        json!({"expiresAfter": 0}),
        json!({"expiresAfter": -1}),
        json!({"lifetime": "PT1H"}),
        json!({"apiId": "other"}),
        json!({"purposes": ["debugging"]}),
    ] {
        let r = post("/apis/echo/debug-token", bad.clone()).await.unwrap();
        assert_mgmt_error(r, 400, "ValidationError").await;
    }
    let r = post("/apis/nope/debug-token", json!({})).await.unwrap();
    assert_mgmt_error(r, 404, "ResourceNotFound").await;

    // Longer than an hour is capped at an hour.
    let r = post(
        "/apis/echo/debug-token",
        json!({"apiId": "echo", "purposes": ["tracing"], "credentialsExpireAfter": "PT5H"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let expires = humantime::parse_rfc3339(v["expires"].as_str().unwrap()).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(left <= Duration::from_secs(3600), "{left:?}");
    assert!(left > Duration::from_secs(3500), "{left:?}");

    // The admin key is required for both routes.
    for (method, path) in [
        (reqwest::Method::POST, "/apis/echo/debug-token"),
        (
            reqwest::Method::GET,
            "/traces/0123456789abcdef0123456789abcdef",
        ),
    ] {
        let r = app
            .client
            .request(method.clone(), format!("{}{path}", app.mgmt))
            .send()
            .await
            .unwrap();
        assert_mgmt_error(r, 401, "Unauthorized").await;
        let r = app
            .client
            .request(method, format!("{}{path}", app.mgmt))
            .bearer_auth("wrong-key-0123456789abcdef")
            .send()
            .await
            .unwrap();
        assert_mgmt_error(r, 401, "Unauthorized").await;
    }
}

#[tokio::test]
async fn tokens_survive_a_restart() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    let token = token(&app, "echo", None).await;
    let dir = app.stop().await;
    let settings = common::test_settings(dir.path());
    let app = TestApp::start(dir, settings).await;
    // The echo backend moved with the restart.
    app.api("echo", "echo", &app.echo_url()).await;
    let r = traced_call(&app, "/echo/a", &key, Some(&token)).await;
    assert_eq!(r.status(), 200);
    assert!(
        trace_id(&r).is_some(),
        "the signing key is kept in the store"
    );
}

#[tokio::test]
async fn a_secondary_verifies_debug_tokens_from_its_snapshot() {
    let primary = TestApp::spawn().await;
    let key = primary.standard().await;
    // The signing key is created with the first token, before the
    // secondary fetches its configuration.
    let token = token(&primary, "echo", None).await;
    primary
        .put_ok(
            "/gateways/west-1",
            json!({"locationData": {"name": "West US"}}),
        )
        .await;
    let r = primary
        .client
        .post(format!("{}/gateways/west-1/token", primary.mgmt))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let gateway_token = r.json::<Value>().await.unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let mut s = common::test_settings(dir.path());
    s.management.admin_key = None;
    s.node.role = toml::Spanned::new(0..0, turnpike::config::Role::Secondary);
    s.node.region = "West US".into();
    s.cluster.primary = Some(primary.mgmt.trim_end_matches("/mgmt").to_string());
    s.cluster.gateway_id = Some("west-1".into());
    s.cluster.token = Some(turnpike::error::Secret::new(&gateway_token));
    s.cluster.long_poll = false;
    let (stop, never) = turnpike::shutdown::channel();
    let secondary = turnpike::run(s, turnpike::Options::default(), never)
        .await
        .unwrap();
    let gw = format!("http://{}", secondary.addr("gateway-http").unwrap());
    let r = primary
        .client
        .get(format!("{gw}/echo/a"))
        .header("Ocp-Apim-Subscription-Key", &key)
        .header("Apim-Debug-Authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = trace_id(&r).expect("the secondary traces with the exported key");
    // The trace stays on the node that served the request.
    let r = primary.get(&format!("/traces/{id}")).await;
    assert_mgmt_error(r, 404, "ResourceNotFound").await;
    secondary.shutdown();
    drop(stop);
    drop(dir);
}

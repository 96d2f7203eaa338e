//! Bad input at the management API: deep JSON, XML entity bombs and
//! external entities, deep policy documents, deep or cyclic OpenAPI,
//! out-of-range numbers and invalid `If-Match` headers. Each case checks
//! the clear error (DESIGN.md's error shape), that nothing was written
//! (the revision did not move, the resource is unchanged), and that the
//! API still answers.

mod common;

use common::{assert_mgmt_error, TestApp, ADMIN};
use serde_json::{json, Value};

async fn put_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .put(format!("{}{path}", app.mgmt))
        .bearer_auth(ADMIN)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn revision(app: &TestApp) -> u64 {
    app.get_json("/revision").await["revision"]
        .as_u64()
        .unwrap()
}

/// An API `a` with a catch-all operation on the echo backend.
async fn api_a(app: &TestApp) {
    app.api("a", "a", &app.echo_url()).await;
}

fn nested_array(depth: usize) -> Vec<u8> {
    let mut v = vec![b'['; depth];
    v.extend(vec![b']'; depth]);
    v
}

#[tokio::test]
async fn deeply_nested_json_is_400() {
    let app = TestApp::spawn().await;
    // Top-level nesting far past serde_json's recursion limit.
    let r = put_raw(&app, "/apis/a", "application/json", nested_array(100_000)).await;
    assert_mgmt_error(r, 400, "MalformedBody").await;
    // Nesting inside an otherwise valid object.
    let mut body = br#"{"path":"a","serviceUrl":"http://h","description":"#.to_vec();
    body.extend(b"{\"x\":".repeat(50_000));
    body.extend(b"1");
    body.extend(b"}".repeat(50_000));
    body.extend(b"}");
    let r = put_raw(&app, "/apis/a", "application/json", body).await;
    let v = assert_mgmt_error(r, 400, "MalformedBody").await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("JSON"),
        "{v}"
    );
    assert_eq!(app.get("/apis/a").await.status(), 404, "nothing created");
    assert_eq!(revision(&app).await, 0);
}

#[tokio::test]
async fn out_of_range_numbers_are_400() {
    let app = TestApp::spawn().await;
    app.put_ok("/products/p", json!({"displayName": "P"})).await;
    let before = app.get_json("/products/p").await;
    let rev = revision(&app).await;
    for limit in ["1e400", "18446744073709551616000", "-1", "1.5", "\"ten\""] {
        let body = format!(r#"{{"displayName":"P","subscriptionsLimit":{limit}}}"#);
        let r = put_raw(&app, "/products/p", "application/json", body.into_bytes()).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{limit}: {v}");
        assert!(
            v["error"]["code"] == "ValidationError" || v["error"]["code"] == "MalformedBody",
            "{limit}: {v}"
        );
    }
    assert_eq!(app.get_json("/products/p").await, before, "unchanged");
    assert_eq!(revision(&app).await, rev);
}

const LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<policies><inbound><base /><set-header name="x-lol" exists-action="override"><value>&lol9;</value></set-header></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;

#[tokio::test]
async fn xml_entity_bombs_are_refused_unexpanded() {
    let app = TestApp::spawn().await;
    api_a(&app).await;
    let rev = revision(&app).await;
    let r = put_raw(&app, "/apis/a/policy", "application/xml", LAUGHS.into()).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(
        text.len() < 4096,
        "the answer is short: {} bytes",
        text.len()
    );
    assert!(!text.contains("lollol"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "ValidationError", "{v}");
    assert!(text.contains("DOCTYPE"), "{text}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(
        app.get("/apis/a/policy").await.status(),
        404,
        "nothing stored"
    );
    assert_eq!(revision(&app).await, rev);
    // The gateway still forwards untouched.
    let r = app
        .call("/a/x", Some(&app.subscription("s", "/apis").await))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-lol").is_none());
}

#[tokio::test]
async fn xml_external_entities_are_never_read() {
    let app = TestApp::spawn().await;
    api_a(&app).await;
    let rev = revision(&app).await;
    let secret = app.dir.as_ref().unwrap().path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-CONTENT").unwrap();
    let xxe = format!(
        r#"<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file://{}">]><policies><inbound><base /><set-header name="x-leak" exists-action="override"><value>&xxe;</value></set-header></inbound></policies>"#,
        secret.display()
    );
    let r = put_raw(&app, "/apis/a/policy", "application/xml", xxe.into_bytes()).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains("TOP-SECRET"), "{text}");
    assert_eq!(app.get("/apis/a/policy").await.status(), 404);
    // A policy fragment, the same.
    let frag = r#"<!DOCTYPE f [<!ENTITY e SYSTEM "file:///etc/passwd">]><fragment><set-header name="x" exists-action="override"><value>&e;</value></set-header></fragment>"#;
    let r = put_raw(&app, "/policy-fragments/f", "application/xml", frag.into()).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains("root:"), "{text}");
    assert_eq!(app.get("/policy-fragments/f").await.status(), 404);
    assert_eq!(revision(&app).await, rev);
}

#[tokio::test]
async fn deeply_nested_policy_documents_are_400() {
    let app = TestApp::spawn().await;
    api_a(&app).await;
    let rev = revision(&app).await;
    for depth in [1_000usize, 50_000] {
        let mut xml = String::from("<policies><inbound>");
        for _ in 0..depth {
            xml.push_str(r#"<choose><when condition="@(true)">"#);
        }
        for _ in 0..depth {
            xml.push_str("</when></choose>");
        }
        xml.push_str("</inbound></policies>");
        let r = put_raw(&app, "/apis/a/policy", "application/xml", xml.into_bytes()).await;
        let v = assert_mgmt_error(r, 400, "ValidationError").await;
        let msg = v["error"]["message"].as_str().unwrap().to_string();
        let details = v["error"]["details"].to_string();
        assert!(
            msg.contains("deep") || details.contains("deep"),
            "{depth}: {v}"
        );
    }
    // Deep nesting of unknown elements too.
    let xml = format!(
        "<policies><inbound>{}{}</inbound></policies>",
        "<x>".repeat(200_000),
        "</x>".repeat(200_000)
    );
    let r = put_raw(&app, "/apis/a/policy", "application/xml", xml.into_bytes()).await;
    assert_mgmt_error(r, 400, "ValidationError").await;
    assert_eq!(app.get("/apis/a/policy").await.status(), 404);
    assert_eq!(revision(&app).await, rev);
}

#[tokio::test]
async fn undecodable_policy_bytes_are_400() {
    let app = TestApp::spawn().await;
    api_a(&app).await;
    let rev = revision(&app).await;
    for body in [
        &b"\xff\xfe<policies/>"[..],
        b"<policies><inbound>\xc3\x28</inbound></policies>",
        b"",
        b"<policies",
        b"<policies><inbound></policies>",
    ] {
        let r = put_raw(&app, "/apis/a/policy", "application/xml", body.to_vec()).await;
        let got = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(got, 400, "{body:?}: {v}");
        assert!(v["error"]["code"].is_string(), "{v}");
    }
    assert_eq!(app.get("/apis/a/policy").await.status(), 404);
    assert_eq!(revision(&app).await, rev);
}

#[tokio::test]
async fn deep_openapi_documents_are_400() {
    let app = TestApp::spawn().await;
    // JSON nested far past the parser's limit.
    let mut deep = String::from(r#"{"openapi":"3.0.0","paths":{},"x":"#);
    deep.push_str(&"[".repeat(100_000));
    deep.push_str(&"]".repeat(100_000));
    deep.push('}');
    let r = app
        .put(
            "/apis/deep",
            json!({"format": "openapi+json", "value": deep, "path": "deep"}),
        )
        .await;
    assert_mgmt_error(r, 400, "ValidationError").await;
    // YAML flow sequences nested as deep.
    let yaml = format!(
        "openapi: 3.0.0\npaths: {{}}\nx: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let r = app
        .put(
            "/apis/deepy",
            json!({"format": "openapi", "value": yaml, "path": "deepy"}),
        )
        .await;
    assert_mgmt_error(r, 400, "ValidationError").await;
    // Block mappings nested as deep.
    let mut yaml = String::from("openapi: 3.0.0\npaths: {}\n");
    for i in 0..1_000 {
        yaml.push_str(&" ".repeat(i));
        yaml.push_str("x:\n");
    }
    let r = app
        .put(
            "/apis/deepm",
            json!({"format": "openapi", "value": yaml, "path": "deepm"}),
        )
        .await;
    assert_mgmt_error(r, 400, "ValidationError").await;
    assert_eq!(app.get_json("/apis").await["count"], 0);
    assert_eq!(revision(&app).await, 0);
}

#[tokio::test]
async fn invalid_if_match_headers_are_412_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.put_ok(
        "/apis/a",
        json!({"path": "a", "serviceUrl": "http://h", "displayName": "A"}),
    )
    .await;
    let before = app.get_json("/apis/a").await;
    let rev = revision(&app).await;
    let change = json!({"path": "a", "serviceUrl": "http://h", "displayName": "Changed"});
    for tag in [
        &b"garbage"[..],
        b"\"\"",
        b"W/",
        b",,,",
        b"\"a\", \"b\"",
        b"\xff\xfe",
    ] {
        let r = app
            .client
            .put(format!("{}/apis/a", app.mgmt))
            .bearer_auth(ADMIN)
            .header(
                "if-match",
                reqwest::header::HeaderValue::from_bytes(tag).unwrap(),
            )
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_mgmt_error(r, 412, "PreconditionFailed").await;
        let r = app
            .client
            .delete(format!("{}/apis/a", app.mgmt))
            .bearer_auth(ADMIN)
            .header(
                "if-match",
                reqwest::header::HeaderValue::from_bytes(tag).unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_mgmt_error(r, 412, "PreconditionFailed").await;
    }
    assert_eq!(app.get_json("/apis/a").await, before, "unchanged");
    assert_eq!(revision(&app).await, rev);
}

#[tokio::test]
async fn if_match_on_a_missing_resource_creates_nothing() {
    let app = TestApp::spawn().await;
    for tag in ["*", "\"0000000000000000\""] {
        let r = app
            .client
            .put(format!("{}/apis/ghost", app.mgmt))
            .bearer_auth(ADMIN)
            .header("if-match", tag)
            .json(&json!({"path": "ghost", "serviceUrl": "http://h"}))
            .send()
            .await
            .unwrap();
        assert_mgmt_error(r, 412, "PreconditionFailed").await;
    }
    assert_eq!(app.get("/apis/ghost").await.status(), 404);
    assert_eq!(revision(&app).await, 0);
}

/// Slowloris on the management and portal listeners (plain HTTP): a
/// client that sends no request, or a request's headers too slowly, is
/// closed after `header_read_timeout`; a prompt client is still served.
#[tokio::test]
async fn slow_or_silent_clients_are_closed_on_management_and_portal() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|s| {
        s.management.header_read_timeout = Duration::from_millis(400);
        s.portal.header_read_timeout = Duration::from_millis(400);
    })
    .await;
    for name in ["management", "portal"] {
        let addr = app.running_addr(name).unwrap();
        for first in [&b""[..], b"GET /mgmt/apis HTTP/1.1\r\nHost: x\r\nX-Slow: "] {
            let started = Instant::now();
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(first).await.unwrap();
            let mut buf = Vec::new();
            let r = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
            assert!(r.is_ok(), "{name} {first:?}: the connection was held open");
            let text = String::from_utf8_lossy(&buf);
            assert!(
                text.is_empty() || text.starts_with("HTTP/1.1 408"),
                "{name} {first:?}: {text}"
            );
            assert!(
                started.elapsed() >= Duration::from_millis(300),
                "{name} {first:?}: closed before the timeout"
            );
        }
    }
    // Prompt clients are served.
    let r = app
        .client
        .get(format!("{}/apis", app.mgmt))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(&app.portal).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

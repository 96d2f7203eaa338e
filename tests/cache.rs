//! Response and value caching through the real gateway: a counting backend
//! shows which calls reached it.

mod common;

use common::backend::{self, full};
use common::{assert_mgmt_error, TestApp};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn policy(app: &TestApp, path: &str, xml: &str) {
    let r = app.put_xml(path, xml).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "PUT {path}: {status} {body}");
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// A backend counting its calls: answers `call N` with `X-Call: N`; a
/// path ending in `/missing` is a 404, `/nostore` says `Cache-Control:
/// no-store`.
async fn counting_backend(app: &TestApp) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let addr = backend::spawn(move |req| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let path = req.uri().path().to_string();
            let mut r = hyper::Response::new(full(format!("call {n}")));
            r.headers_mut()
                .insert("x-call", n.to_string().parse().unwrap());
            r.headers_mut()
                .insert("content-type", "text/plain".parse().unwrap());
            if path.ends_with("/missing") {
                *r.status_mut() = hyper::StatusCode::NOT_FOUND;
            }
            if path.ends_with("/nostore") {
                r.headers_mut()
                    .insert("cache-control", "no-store".parse().unwrap());
            }
            r
        }
    })
    .await;
    app.api("c", "c", &format!("http://{addr}")).await;
    app.product("starter", &["c"], true).await;
    let key = app.subscription("s1", "/products/starter").await;
    (key, calls)
}

const CACHED: &str = r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" downstream-caching-type="public" /></inbound><outbound><base /><set-header name="X-Outbound" exists-action="override"><value>ran</value></set-header><cache-store duration="60" /></outbound></policies>"#;

#[tokio::test]
async fn a_hit_skips_the_backend_and_answers_the_stored_response() {
    let app = TestApp::spawn().await;
    let (key, calls) = counting_backend(&app).await;
    policy(&app, "/apis/c/policy", CACHED).await;
    let first = app.call("/c/items?a=1", Some(&key)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-call").as_deref(), Some("1"));
    assert_eq!(
        header(&first, "cache-control").as_deref(),
        Some("public, max-age=60, must-revalidate")
    );
    assert_eq!(first.text().await.unwrap(), "call 1");
    for _ in 0..3 {
        let r = app.call("/c/items?a=1", Some(&key)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-call").as_deref(), Some("1"));
        assert_eq!(header(&r, "content-type").as_deref(), Some("text/plain"));
        // Outbound runs on a hit.
        assert_eq!(header(&r, "x-outbound").as_deref(), Some("ran"));
        let cc = header(&r, "cache-control").unwrap();
        assert!(
            cc.starts_with("public, max-age=") && cc.ends_with(", must-revalidate"),
            "{cc}"
        );
        assert_eq!(r.text().await.unwrap(), "call 1");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Another URL is another entry.
    let r = app.call("/c/items?a=2", Some(&key)).await;
    assert_eq!(r.text().await.unwrap(), "call 2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn vary_by_header_and_query_parameter_separate_entries() {
    let app = TestApp::spawn().await;
    let (key, calls) = counting_backend(&app).await;
    policy(
        &app,
        "/apis/c/policy",
        r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false"><vary-by-header>Accept-Language</vary-by-header><vary-by-query-parameter>page</vary-by-query-parameter></cache-lookup></inbound><outbound><base /><cache-store duration="60" /></outbound></policies>"#,
    )
    .await;
    let get = |q: &'static str, lang: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            let r = app
                .client
                .get(format!("{}/c/list{q}", app.gw))
                .header("Ocp-Apim-Subscription-Key", key)
                .header("Accept-Language", lang)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    assert_eq!(get("?page=1", "en").await, "call 1");
    // A parameter not listed does not count.
    assert_eq!(get("?page=1&sort=x", "en").await, "call 1");
    assert_eq!(get("?page=2", "en").await, "call 2");
    assert_eq!(get("?page=1", "fr").await, "call 3");
    assert_eq!(get("?page=2", "en").await, "call 2");
    assert_eq!(get("?page=1", "fr").await, "call 3");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn vary_by_developer_separates_users() {
    let app = TestApp::spawn().await;
    let (_, calls) = counting_backend(&app).await;
    let mut keys = Vec::new();
    for u in ["ann", "bob"] {
        app.put_ok(
            &format!("/users/{u}"),
            json!({"email": format!("{u}@example.com")}),
        )
        .await;
        app.put_ok(
            &format!("/subscriptions/sub-{u}"),
            json!({"scope": "/products/starter", "ownerId": format!("/users/{u}"), "state": "active"}),
        )
        .await;
        keys.push(app.key_of(&format!("sub-{u}")).await);
    }
    policy(
        &app,
        "/apis/c/policy",
        r#"<policies><inbound><base /><cache-lookup vary-by-developer="true" vary-by-developer-groups="false" /></inbound><outbound><base /><cache-store duration="60" /></outbound></policies>"#,
    )
    .await;
    let body = |k: usize| {
        let app = &app;
        let key = keys[k].clone();
        async move { app.call("/c/me", Some(&key)).await.text().await.unwrap() }
    };
    assert_eq!(body(0).await, "call 1");
    assert_eq!(body(1).await, "call 2");
    assert_eq!(body(0).await, "call 1");
    assert_eq!(body(1).await, "call 2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Without vary-by-developer the two users share one entry.
    policy(
        &app,
        "/apis/c/policy",
        r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></inbound><outbound><base /><cache-store duration="60" /></outbound></policies>"#,
    )
    .await;
    assert_eq!(body(0).await, "call 3");
    assert_eq!(body(1).await, "call 3");
}

#[tokio::test]
async fn posts_errors_no_store_and_authorization_are_not_cached() {
    let app = TestApp::spawn().await;
    let (key, calls) = counting_backend(&app).await;
    policy(&app, "/apis/c/policy", CACHED).await;
    for _ in 0..2 {
        let r = app
            .client
            .post(format!("{}/c/items", app.gw))
            .header("Ocp-Apim-Subscription-Key", &key)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    for _ in 0..2 {
        assert_eq!(app.call("/c/missing", Some(&key)).await.status(), 404);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    for _ in 0..2 {
        assert_eq!(app.call("/c/nostore", Some(&key)).await.status(), 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    // A request with Authorization is private (allow-private-response-caching is false).
    for _ in 0..2 {
        let r = app
            .client
            .get(format!("{}/c/private", app.gw))
            .header("Ocp-Apim-Subscription-Key", &key)
            .header("Authorization", "Bearer abc")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn entries_expire_after_their_duration() {
    let app = TestApp::spawn().await;
    let (key, calls) = counting_backend(&app).await;
    policy(
        &app,
        "/apis/c/policy",
        r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></inbound><outbound><base /><cache-store duration="1" /></outbound></policies>"#,
    )
    .await;
    assert_eq!(
        app.call("/c/t", Some(&key)).await.text().await.unwrap(),
        "call 1"
    );
    assert_eq!(
        app.call("/c/t", Some(&key)).await.text().await.unwrap(),
        "call 1"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.call("/c/t", Some(&key)).await.text().await.unwrap(),
        "call 2"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_hit_survives_a_configuration_change() {
    let app = TestApp::spawn().await;
    let (key, calls) = counting_backend(&app).await;
    policy(&app, "/apis/c/policy", CACHED).await;
    assert_eq!(
        app.call("/c/s", Some(&key)).await.text().await.unwrap(),
        "call 1"
    );
    // An unrelated change publishes a new snapshot.
    policy(
        &app,
        "/products/starter/policy",
        r#"<policies><inbound><base /><set-header name="X-P" exists-action="override"><value>1</value></set-header></inbound></policies>"#,
    )
    .await;
    assert_eq!(
        app.call("/c/s", Some(&key)).await.text().await.unwrap(),
        "call 1"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn external_caching_without_an_external_cache_does_not_cache() {
    let app = TestApp::spawn().await;
    let (key, calls) = counting_backend(&app).await;
    policy(
        &app,
        "/apis/c/policy",
        r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" caching-type="external" /></inbound><outbound><base /><cache-store duration="60" /></outbound></policies>"#,
    )
    .await;
    for _ in 0..2 {
        assert_eq!(app.call("/c/e", Some(&key)).await.status(), 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn values_are_stored_looked_up_and_removed_across_requests() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base />
  <choose>
    <when condition="@(context.Request.Url.Query.GetValueOrDefault(&quot;op&quot;, &quot;&quot;) == &quot;store&quot;)">
      <cache-store-value key="@(&quot;greeting-&quot; + context.Request.Url.Query.GetValueOrDefault(&quot;id&quot;, &quot;&quot;))" value="@(context.Request.Url.Query.GetValueOrDefault(&quot;v&quot;, &quot;&quot;))" duration="60" caching-type="internal" />
    </when>
    <when condition="@(context.Request.Url.Query.GetValueOrDefault(&quot;op&quot;, &quot;&quot;) == &quot;remove&quot;)">
      <cache-remove-value key="@(&quot;greeting-&quot; + context.Request.Url.Query.GetValueOrDefault(&quot;id&quot;, &quot;&quot;))" />
    </when>
  </choose>
  <cache-lookup-value key="@(&quot;greeting-&quot; + context.Request.Url.Query.GetValueOrDefault(&quot;id&quot;, &quot;&quot;))" variable-name="greeting" default-value="none" />
  <return-response><set-status code="200" reason="OK" /><set-body>@((string)context.Variables[&quot;greeting&quot;])</set-body></return-response>
</inbound></policies>"#,
    )
    .await;
    let get = |q: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            let r = app.call(&format!("/echo/v?{q}"), Some(&key)).await;
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    assert_eq!(get("id=1").await, "none");
    assert_eq!(get("op=store&id=1&v=hello").await, "hello");
    assert_eq!(get("id=1").await, "hello");
    assert_eq!(get("id=2").await, "none");
    assert_eq!(get("op=remove&id=1").await, "none");
    assert_eq!(get("id=1").await, "none");
}

#[tokio::test]
async fn bad_cache_policies_are_refused() {
    let app = TestApp::spawn().await;
    app.standard().await;
    for (doc, fragment) in [
        (
            r#"<policies><inbound><cache-lookup vary-by-developer="false" /></inbound></policies>"#,
            "vary-by-developer-groups",
        ),
        (
            r#"<policies><inbound><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" size="3" /></inbound></policies>"#,
            "size",
        ),
        (
            r#"<policies><outbound><cache-store duration="soon" /></outbound></policies>"#,
            "duration",
        ),
        (
            r#"<policies><inbound><cache-store duration="5" /></inbound></policies>"#,
            "not allowed in <inbound>",
        ),
        (
            r#"<policies><inbound><cache-lookup-value key="k" variable-name="v" caching-type="disk" /></inbound></policies>"#,
            "caching-type",
        ),
    ] {
        let r = app.put_xml("/apis/echo/policy", doc).await;
        let v = assert_mgmt_error(r, 400, "ValidationError").await;
        assert!(v.to_string().contains(fragment), "{doc}: {v}");
    }
}

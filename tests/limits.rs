//! Rate limits, quotas and concurrency limits through the real gateway.
//! Timings use short renewal periods with generous slack: these machines
//! are noisy, so nothing asserts how long anything took.

mod common;

use common::backend::{self, full};
use common::{assert_gateway_error, TestApp};
use serde_json::Value;
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

/// Asserts a 429 from a rate limit; returns its `Retry-After` seconds.
async fn assert_rate_limited(r: reqwest::Response) -> u64 {
    assert_eq!(r.status(), 429);
    let secs: u64 = header(&r, "retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["statusCode"], 429);
    assert_eq!(
        v["message"],
        format!("Rate limit is exceeded. Try again in {secs} seconds.")
    );
    secs
}

async fn call_as(app: &TestApp, path: &str, key: &str, client: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{}", app.gw, path))
        .header("Ocp-Apim-Subscription-Key", key)
        .header("X-Client", client)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rate_limit_by_key_refuses_with_retry_after_and_reports_remaining() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><rate-limit-by-key calls="3" renewal-period="20" counter-key="@(context.Subscription.Id)" remaining-calls-header-name="X-Remaining" total-calls-header-name="X-Total" /></inbound></policies>"#,
    )
    .await;
    for left in ["2", "1", "0"] {
        let r = app.call("/echo/a", Some(&key)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-remaining").as_deref(), Some(left));
        assert_eq!(header(&r, "x-total").as_deref(), Some("3"));
    }
    let r = app.call("/echo/a", Some(&key)).await;
    assert_eq!(header(&r, "x-remaining").as_deref(), Some("0"));
    let secs = assert_rate_limited(r).await;
    // The first call leaves the 20 s window about 20 s after it was made.
    assert!((15..=20).contains(&secs), "Retry-After {secs}");
}

#[tokio::test]
async fn rate_limit_window_slides() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><rate-limit-by-key calls="2" renewal-period="3" counter-key="slide" /></inbound></policies>"#,
    )
    .await;
    assert_eq!(app.call("/echo/a", Some(&key)).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.call("/echo/a", Some(&key)).await.status(), 200);
    let secs = assert_rate_limited(app.call("/echo/a", Some(&key)).await).await;
    assert!((1..=3).contains(&secs), "Retry-After {secs}");
    // After the first call has left the window (3 s), one slot is free;
    // the second call is still inside it, so only one.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(app.call("/echo/a", Some(&key)).await.status(), 200);
    assert_rate_limited(app.call("/echo/a", Some(&key)).await).await;
}

#[tokio::test]
async fn increment_condition_counts_only_successes_and_keys_apart() {
    let app = TestApp::spawn().await;
    let addr = backend::spawn(|req| async move {
        let mut r = hyper::Response::new(full("{}"));
        if req.uri().path().ends_with("/fail") {
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        }
        r
    })
    .await;
    app.api("flaky", "flaky", &format!("http://{addr}")).await;
    app.product("starter", &["flaky"], true).await;
    let key = app.subscription("s1", "/products/starter").await;
    policy(
        &app,
        "/apis/flaky/policy",
        r#"<policies><inbound><base /><rate-limit-by-key calls="2" renewal-period="60" counter-key="@(context.Request.Headers.GetValueOrDefault(&quot;X-Client&quot;, &quot;anon&quot;))" increment-condition="@(context.Response.StatusCode == 200)" /></inbound></policies>"#,
    )
    .await;
    for _ in 0..5 {
        assert_eq!(call_as(&app, "/flaky/fail", &key, "a").await.status(), 500);
    }
    for _ in 0..2 {
        assert_eq!(call_as(&app, "/flaky/ok", &key, "a").await.status(), 200);
    }
    assert_rate_limited(call_as(&app, "/flaky/ok", &key, "a").await).await;
    assert_rate_limited(call_as(&app, "/flaky/fail", &key, "a").await).await;
    // Another key value has its own counter.
    for _ in 0..2 {
        assert_eq!(call_as(&app, "/flaky/ok", &key, "b").await.status(), 200);
    }
    assert_rate_limited(call_as(&app, "/flaky/ok", &key, "b").await).await;
}

#[tokio::test]
async fn counts_survive_configuration_changes() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><rate-limit-by-key calls="2" renewal-period="60" counter-key="survive" /></inbound></policies>"#,
    )
    .await;
    assert_eq!(app.call("/echo/a", Some(&key)).await.status(), 200);
    // A new snapshot between the calls.
    app.api("other", "other", &app.echo_url()).await;
    assert_eq!(app.call("/echo/a", Some(&key)).await.status(), 200);
    app.api("third", "third", &app.echo_url()).await;
    assert_rate_limited(app.call("/echo/a", Some(&key)).await).await;
}

#[tokio::test]
async fn rate_limit_counts_per_subscription_and_per_api() {
    let app = TestApp::spawn().await;
    let key1 = app.standard().await;
    app.api("other", "other", &app.echo_url()).await;
    let r = app
        .put("/products/starter/apis/other", serde_json::json!({}))
        .await;
    assert!(r.status().is_success());
    let key2 = app.subscription("s2", "/products/starter").await;
    policy(
        &app,
        "/products/starter/policy",
        r#"<policies><inbound><base /><rate-limit calls="3" renewal-period="60"><api name="echo" calls="1" renewal-period="60" /></rate-limit></inbound></policies>"#,
    )
    .await;
    assert_eq!(app.call("/echo/a", Some(&key1)).await.status(), 200);
    // The echo API allows one call per subscription ...
    assert_rate_limited(app.call("/echo/a", Some(&key1)).await).await;
    // ... the product three (the refused call did not count).
    assert_eq!(app.call("/other/a", Some(&key1)).await.status(), 200);
    assert_eq!(app.call("/other/a", Some(&key1)).await.status(), 200);
    assert_rate_limited(app.call("/other/a", Some(&key1)).await).await;
    // Another subscription has its own counters.
    assert_eq!(app.call("/echo/a", Some(&key2)).await.status(), 200);
    assert_eq!(app.call("/other/a", Some(&key2)).await.status(), 200);
}

#[tokio::test]
async fn quota_refuses_with_403_and_renews() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    policy(
        &app,
        "/products/starter/policy",
        r#"<policies><inbound><base /><quota calls="2" renewal-period="3" /></inbound></policies>"#,
    )
    .await;
    assert_eq!(app.call("/echo/a", Some(&key)).await.status(), 200);
    assert_eq!(app.call("/echo/a", Some(&key)).await.status(), 200);
    let r = app.call("/echo/a", Some(&key)).await;
    assert_eq!(r.status(), 403);
    let secs: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((1..=3).contains(&secs), "Retry-After {secs}");
    assert_gateway_error(
        r,
        403,
        &format!("Out of call volume quota. Quota will be replenished in 00:00:{secs:02}."),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(secs * 1000 + 300)).await;
    assert_eq!(app.call("/echo/a", Some(&key)).await.status(), 200);
}

#[tokio::test]
async fn quota_by_key_counts_bandwidth() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    // 1 KB: the first echoed response (a JSON page of the request) is
    // counted after it is sent; the next call is refused.
    policy(
        &app,
        "/apis/echo/policy",
        r#"<policies><inbound><base /><quota-by-key bandwidth="1" renewal-period="3600" counter-key="bw" /></inbound><outbound><base /><set-body>@(new string('x', 2048))</set-body></outbound></policies>"#,
    )
    .await;
    assert_eq!(app.call("/echo/a", Some(&key)).await.status(), 200);
    let r = app.call("/echo/a", Some(&key)).await;
    assert_eq!(r.status(), 403);
    assert!(header(&r, "retry-after").is_some());
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Out of bandwidth quota. Quota will be replenished in "),
        "{v}"
    );
}

#[tokio::test]
async fn limit_concurrency_refuses_when_full_and_frees_afterwards() {
    let app = TestApp::spawn().await;
    let addr = backend::spawn(|_req| async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        hyper::Response::new(full("{}"))
    })
    .await;
    app.api("slow", "slow", &format!("http://{addr}")).await;
    app.product("starter", &["slow"], true).await;
    let key = app.subscription("s1", "/products/starter").await;
    policy(
        &app,
        "/apis/slow/policy",
        r#"<policies><inbound><base /></inbound><backend><limit-concurrency key="slow" max-count="1"><forward-request /></limit-concurrency></backend></policies>"#,
    )
    .await;
    let gw = app.gw.clone();
    let client = app.client.clone();
    let k = key.clone();
    let first = tokio::spawn(async move {
        client
            .get(format!("{gw}/slow/a"))
            .header("Ocp-Apim-Subscription-Key", k)
            .send()
            .await
            .unwrap()
            .status()
    });
    // Wait until the first request holds the slot (it sleeps 1.5 s in the
    // backend); the second is refused at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = app.call("/slow/a", Some(&key)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(first.await.unwrap(), 200);
    // The slot was given back.
    assert_eq!(app.call("/slow/a", Some(&key)).await.status(), 200);
}

#[tokio::test]
async fn limit_concurrency_slot_freed_when_the_client_goes_away() {
    let app = TestApp::spawn().await;
    let addr = backend::spawn(|_req| async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        hyper::Response::new(full("{}"))
    })
    .await;
    app.api("slow", "slow", &format!("http://{addr}")).await;
    app.product("starter", &["slow"], true).await;
    let key = app.subscription("s1", "/products/starter").await;
    policy(
        &app,
        "/apis/slow/policy",
        r#"<policies><inbound><base /></inbound><backend><limit-concurrency key="gone" max-count="1"><forward-request /></limit-concurrency></backend></policies>"#,
    )
    .await;
    // A client that gives up after 300 ms.
    let r = app
        .client
        .get(format!("{}/slow/a", app.gw))
        .header("Ocp-Apim-Subscription-Key", &key)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.is_err());
    // Within a few seconds the slot is free again, however the request ended.
    let mut ok = false;
    for _ in 0..20 {
        if app.call("/slow/a", Some(&key)).await.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ok, "the slot was never given back");
}

//! The external cache tier: two gateways (two appliances, each with its
//! own data directory) configured with one real `redis-server` share
//! cached responses and values; `caching-type="internal"` stays per
//! gateway; entries expire in Redis; when Redis dies requests are still
//! answered by the backend (misses), never with a 500.

mod common;

use common::backend::{self, full};
use common::redis::RedisServer;
use common::TestApp;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A backend counting its calls: answers `call N` with `X-Call: N`.
async fn counting_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let addr = backend::spawn(move |_req| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let mut r = hyper::Response::new(full(format!("call {n}")));
            r.headers_mut()
                .insert("x-call", n.to_string().parse().unwrap());
            r.headers_mut()
                .insert("content-type", "text/plain".parse().unwrap());
            r
        }
    })
    .await;
    (addr, calls)
}

/// An appliance using the Redis at `url`, with API `c` on `backend` in the
/// starter product and `xml` as its policy; returns it and its key.
async fn gateway(url: &str, backend: SocketAddr, xml: &str) -> (TestApp, String) {
    let url = url.to_string();
    let app = TestApp::spawn_with(move |s| {
        s.redis.url = Some(turnpike::error::Secret::new(url));
        s.redis.timeout = Duration::from_millis(500);
    })
    .await;
    app.api("c", "c", &format!("http://{backend}")).await;
    app.product("starter", &["c"], true).await;
    let key = app.subscription("s1", "/products/starter").await;
    let r = app.put_xml("/apis/c/policy", xml).await;
    assert!(r.status().is_success(), "PUT policy: {}", r.status());
    (app, key)
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

async fn body(app: &TestApp, key: &str, path: &str) -> String {
    let r = app.call(path, Some(key)).await;
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// How many keys the Redis on `port` holds (`DBSIZE`).
fn dbsize(port: u16) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"DBSIZE\r\n").unwrap();
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).unwrap();
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    text.trim_start_matches(':').trim().parse().unwrap()
}

/// Waits until the Redis on `port` holds `n` keys: a response is stored in
/// the background after it is answered.
async fn wait_for_keys(port: u16, n: usize) {
    let t = Instant::now();
    while dbsize(port) < n {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "redis never held {n} keys"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const CACHED: &str = r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" downstream-caching-type="public" /></inbound><outbound><base /><cache-store duration="60" /></outbound></policies>"#;

#[tokio::test]
async fn a_response_stored_by_one_gateway_is_a_hit_on_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (backend, calls) = counting_backend().await;
    let (a, ka) = gateway(&redis.url(), backend, CACHED).await;
    let (b, kb) = gateway(&redis.url(), backend, CACHED).await;
    // caching-type defaults to prefer-external: with Redis, that is Redis.
    let first = a.call("/c/items?x=1", Some(&ka)).await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        header(&first, "cache-control").as_deref(),
        Some("public, max-age=60, must-revalidate")
    );
    assert_eq!(first.text().await.unwrap(), "call 1");
    wait_for_keys(redis.port, 1).await;
    // Gateway b never called the backend for it: a hit from Redis.
    let r = b.call("/c/items?x=1", Some(&kb)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-call").as_deref(), Some("1"));
    assert_eq!(header(&r, "content-type").as_deref(), Some("text/plain"));
    let cc = header(&r, "cache-control").unwrap();
    assert!(
        cc.starts_with("public, max-age=") && cc.ends_with(", must-revalidate"),
        "{cc}"
    );
    assert_eq!(r.text().await.unwrap(), "call 1");
    assert_eq!(body(&a, &ka, "/c/items?x=1").await, "call 1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Another URL is another entry, stored by b and found by a.
    assert_eq!(body(&b, &kb, "/c/items?x=2").await, "call 2");
    wait_for_keys(redis.port, 2).await;
    assert_eq!(body(&a, &ka, "/c/items?x=2").await, "call 2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

const VALUES: &str = r#"<policies><inbound><base />
  <choose>
    <when condition="@(context.Request.Url.Query.GetValueOrDefault(&quot;op&quot;, &quot;&quot;) == &quot;store&quot;)">
      <cache-store-value key="@(&quot;greeting-&quot; + context.Request.Url.Query.GetValueOrDefault(&quot;id&quot;, &quot;&quot;))" value="@(context.Request.Url.Query.GetValueOrDefault(&quot;v&quot;, &quot;&quot;))" duration="@(int.Parse(context.Request.Url.Query.GetValueOrDefault(&quot;d&quot;, &quot;60&quot;)))" caching-type="external" />
      <cache-store-value key="count" value="@(41 + 1)" duration="60" />
    </when>
    <when condition="@(context.Request.Url.Query.GetValueOrDefault(&quot;op&quot;, &quot;&quot;) == &quot;remove&quot;)">
      <cache-remove-value key="@(&quot;greeting-&quot; + context.Request.Url.Query.GetValueOrDefault(&quot;id&quot;, &quot;&quot;))" />
    </when>
  </choose>
  <cache-lookup-value key="@(&quot;greeting-&quot; + context.Request.Url.Query.GetValueOrDefault(&quot;id&quot;, &quot;&quot;))" variable-name="greeting" default-value="none" />
  <cache-lookup-value key="count" variable-name="count" default-value="@(0)" />
  <return-response><set-status code="200" reason="OK" /><set-body>@((string)context.Variables[&quot;greeting&quot;] + &quot;/&quot; + ((int)context.Variables[&quot;count&quot;] + 1))</set-body></return-response>
</inbound></policies>"#;

#[tokio::test]
async fn values_stored_by_one_gateway_are_found_by_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (backend, _) = counting_backend().await;
    let (a, ka) = gateway(&redis.url(), backend, VALUES).await;
    let (b, kb) = gateway(&redis.url(), backend, VALUES).await;
    assert_eq!(body(&b, &kb, "/c/v?id=1").await, "none/1");
    // Stored on a (awaited: the same request finds it) ...
    assert_eq!(
        body(&a, &ka, "/c/v?op=store&id=1&v=hello").await,
        "hello/43"
    );
    // ... found on b, the number still a number.
    assert_eq!(body(&b, &kb, "/c/v?id=1").await, "hello/43");
    assert_eq!(body(&b, &kb, "/c/v?id=2").await, "none/43");
    // Removed on b, gone on a.
    assert_eq!(body(&b, &kb, "/c/v?op=remove&id=1").await, "none/43");
    assert_eq!(body(&a, &ka, "/c/v?id=1").await, "none/43");
}

#[tokio::test]
async fn entries_expire_in_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (backend, calls) = counting_backend().await;
    let xml = r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" caching-type="external" /></inbound><outbound><base /><cache-store duration="1" /></outbound></policies>"#;
    let (a, ka) = gateway(&redis.url(), backend, xml).await;
    let (b, kb) = gateway(&redis.url(), backend, VALUES).await;
    assert_eq!(body(&a, &ka, "/c/t").await, "call 1");
    wait_for_keys(redis.port, 1).await;
    assert_eq!(body(&a, &ka, "/c/t").await, "call 1");
    assert_eq!(
        body(&b, &kb, "/c/v?op=store&id=9&v=brief&d=1").await,
        "brief/43"
    );
    assert_eq!(body(&b, &kb, "/c/v?id=9").await, "brief/43");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Redis dropped both keys (PX): the response and the value are misses.
    assert_eq!(dbsize(redis.port), 1, "only the 60 s count is left");
    assert_eq!(body(&a, &ka, "/c/t").await, "call 2");
    assert_eq!(body(&b, &kb, "/c/v?id=9").await, "none/43");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn internal_caching_is_not_shared() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (backend, calls) = counting_backend().await;
    let xml = r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" caching-type="internal" /></inbound><outbound><base /><cache-store duration="60" /></outbound></policies>"#;
    let (a, ka) = gateway(&redis.url(), backend, xml).await;
    let (b, kb) = gateway(&redis.url(), backend, xml).await;
    assert_eq!(body(&a, &ka, "/c/i").await, "call 1");
    assert_eq!(body(&b, &kb, "/c/i").await, "call 2");
    // Each gateway hits its own entry; nothing went to Redis.
    assert_eq!(body(&a, &ka, "/c/i").await, "call 1");
    assert_eq!(body(&b, &kb, "/c/i").await, "call 2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(dbsize(redis.port), 0);
}

#[tokio::test]
async fn a_redis_outage_makes_misses_not_errors() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (backend, calls) = counting_backend().await;
    let (a, ka) = gateway(&redis.url(), backend, CACHED).await;
    let (b, kb) = gateway(&redis.url(), backend, VALUES).await;
    assert_eq!(body(&a, &ka, "/c/o").await, "call 1");
    wait_for_keys(redis.port, 1).await;
    assert_eq!(body(&a, &ka, "/c/o").await, "call 1");
    assert_eq!(body(&b, &kb, "/c/v?op=store&id=1&v=hi").await, "hi/43");

    redis.kill();
    // Every request is answered: lookups miss (the backend answers),
    // stores are skipped, value lookups fall back to default-value.
    for i in 2..5 {
        assert_eq!(body(&a, &ka, "/c/o").await, format!("call {i}"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    for _ in 0..2 {
        assert_eq!(body(&b, &kb, "/c/v?op=store&id=1&v=hi").await, "none/1");
        assert_eq!(body(&b, &kb, "/c/v?id=1").await, "none/1");
    }

    // A Redis that accepts but never answers: bounded by the timeout.
    let stopped = RedisServer::start_on(redis.port);
    let (c, kc) = gateway(&stopped.url(), backend, CACHED).await;
    stopped.signal("STOP");
    let t = Instant::now();
    assert_eq!(body(&c, &kc, "/c/s").await, "call 5");
    assert_eq!(body(&c, &kc, "/c/s").await, "call 6");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    stopped.signal("CONT");
}

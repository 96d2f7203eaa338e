//! Rate limits and quotas shared through Redis: two gateways (two
//! appliances, each with its own data directory) configured with one real
//! `redis-server` enforce one limit between them; when Redis dies they
//! keep answering and count locally; when it returns they share again.

mod common;

use common::redis::RedisServer;
use common::TestApp;
use serde_json::Value;
use std::time::Duration;

/// An appliance counting in the Redis at `url`, with the echo API, the
/// starter product and `xml` as the API's policy; returns it and its key.
async fn gateway(url: &str, xml: &str) -> (TestApp, String) {
    let url = url.to_string();
    let app = TestApp::spawn_with(move |s| {
        s.redis.url = Some(turnpike::error::Secret::new(url));
        s.redis.timeout = Duration::from_millis(500);
    })
    .await;
    let key = app.standard().await;
    let r = app.put_xml("/apis/echo/policy", xml).await;
    assert!(r.status().is_success(), "PUT policy: {}", r.status());
    (app, key)
}

async fn call(app: &TestApp, key: &str, client: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/echo/a", app.gw))
        .header("Ocp-Apim-Subscription-Key", key)
        .header("X-Client", client)
        .send()
        .await
        .unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

const BY_CLIENT: &str = r#"<policies><inbound><base /><rate-limit-by-key calls="3" renewal-period="60" counter-key="@(context.Request.Headers.GetValueOrDefault(&quot;X-Client&quot;, &quot;anon&quot;))" remaining-calls-header-name="X-Remaining" /></inbound></policies>"#;

#[tokio::test]
async fn two_gateways_share_one_rate_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, ka) = gateway(&redis.url(), BY_CLIENT).await;
    let (b, kb) = gateway(&redis.url(), BY_CLIENT).await;
    // Three calls split across both gateways use up one shared limit.
    for (app, key, left) in [(&a, &ka, "2"), (&b, &kb, "1"), (&a, &ka, "0")] {
        let r = call(app, key, "alice").await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-remaining").as_deref(), Some(left));
    }
    for (app, key) in [(&b, &kb), (&a, &ka)] {
        let r = call(app, key, "alice").await;
        assert_eq!(r.status(), 429);
        let secs: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
        assert!((50..=60).contains(&secs), "Retry-After {secs}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["message"],
            format!("Rate limit is exceeded. Try again in {secs} seconds.")
        );
    }
    // Other keys are counted apart.
    assert_eq!(call(&b, &kb, "bob").await.status(), 200);
}

#[tokio::test]
async fn two_gateways_share_one_quota() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let xml = r#"<policies><inbound><base /><quota-by-key calls="3" renewal-period="3600" counter-key="@(context.Request.Headers.GetValueOrDefault(&quot;X-Client&quot;, &quot;anon&quot;))" /></inbound></policies>"#;
    let (a, ka) = gateway(&redis.url(), xml).await;
    let (b, kb) = gateway(&redis.url(), xml).await;
    for (app, key) in [(&a, &ka), (&b, &kb), (&b, &kb)] {
        assert_eq!(call(app, key, "carol").await.status(), 200);
    }
    let r = call(&a, &ka, "carol").await;
    assert_eq!(r.status(), 403);
    let secs: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&secs), "Retry-After {secs}");
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("Out of call volume quota. Quota will be replenished in "),
        "{v}"
    );
    assert_eq!(call(&b, &kb, "dave").await.status(), 200);
}

#[tokio::test]
async fn deferred_increments_reach_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Counted after the response, only for 200s.
    let xml = r#"<policies><inbound><base /><rate-limit-by-key calls="2" renewal-period="60" counter-key="shared" increment-condition="@(context.Response.StatusCode == 200)" /></inbound></policies>"#;
    let (a, ka) = gateway(&redis.url(), xml).await;
    let (b, kb) = gateway(&redis.url(), xml).await;
    assert_eq!(call(&a, &ka, "x").await.status(), 200);
    assert_eq!(call(&b, &kb, "x").await.status(), 200);
    // The increments are spawned after the responses: give them a moment.
    // Counting locally, gateway a would have one call of two left.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = call(&a, &ka, "x").await;
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_some());
}

#[tokio::test]
async fn redis_outage_falls_back_to_local_counting_then_shares_again() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (a, ka) = gateway(&redis.url(), BY_CLIENT).await;
    let (b, kb) = gateway(&redis.url(), BY_CLIENT).await;
    assert_eq!(call(&a, &ka, "eve").await.status(), 200);
    assert_eq!(call(&b, &kb, "eve").await.status(), 200);

    redis.kill();
    // Redis is gone: every request is still answered, never with a 500,
    // and gateway a counts on its own: its own 3 calls, then 429.
    for i in 0..3 {
        let r = call(&a, &ka, "eve").await;
        assert_eq!(r.status(), 200, "call {i} after the outage");
    }
    let r = call(&a, &ka, "eve").await;
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_some());
    // Gateway b counts apart from a while Redis is down.
    for _ in 0..3 {
        assert_eq!(call(&b, &kb, "eve").await.status(), 200);
    }
    assert_eq!(call(&b, &kb, "eve").await.status(), 429);

    // Redis comes back (empty): both gateways notice within seconds and
    // share counts again.
    let _redis = RedisServer::start_on(redis.port);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (app, key) in [(&a, &ka), (&b, &kb)] {
        let s = call(app, key, "warm-up").await.status();
        assert!(s == 200 || s == 429, "{s}");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (app, key) in [(&a, &ka), (&b, &kb), (&a, &ka)] {
        assert_eq!(call(app, key, "frank").await.status(), 200);
    }
    // A fourth call would be allowed by either gateway's own count (2 or
    // 1 of 3): the 429 comes from the shared one.
    assert_eq!(call(&b, &kb, "frank").await.status(), 429);
}

#[tokio::test]
async fn per_subscription_limits_with_api_limits_are_shared() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Both stores name their subscription s1: one subscription, two nodes.
    // The API's own limit (2) is the tighter one.
    let xml = r#"<policies><inbound><base /><rate-limit calls="10" renewal-period="60" remaining-calls-header-name="X-Remaining"><api id="echo" calls="2" renewal-period="30" /></rate-limit></inbound></policies>"#;
    let (a, ka) = gateway(&redis.url(), xml).await;
    let (b, kb) = gateway(&redis.url(), xml).await;
    for (app, key, left) in [(&a, &ka, "1"), (&b, &kb, "0")] {
        let r = call(app, key, "-").await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-remaining").as_deref(), Some(left));
    }
    let r = call(&a, &ka, "-").await;
    assert_eq!(r.status(), 429);
    let secs: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((20..=30).contains(&secs), "Retry-After {secs}");
}

/// The Redis store answers as the in-process one does for the same
/// sequence of checks (remaining calls, refusals, `Retry-After`, quota
/// windows, bandwidth counted after the response).
#[tokio::test]
async fn redis_and_local_counters_decide_alike() {
    use turnpike::policy::counters::{
        Counters, Quota, QuotaCheck, QuotaLimits, Rate, RateCheck, Window,
    };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut cfg = turnpike::Settings::defaults().redis;
    cfg.url = Some(turnpike::error::Secret::new(redis.url()));
    let shared = Counters::shared(turnpike::redis::Redis::from_config(&cfg).unwrap().unwrap());
    let local = Counters::local();
    let rate = |add: u64| {
        vec![RateCheck {
            key: "k".into(),
            limit: 5,
            period: Duration::from_secs(20),
            add,
        }]
    };
    // increment-count 2, 2, 1 fill the window; then 1 more is refused.
    for (add, record) in [(2, true), (2, true), (0, false), (1, true), (1, true)] {
        let r = shared.rate_all(&rate(add), record).await;
        let l = local.rate_all(&rate(add), record).await;
        match (&r[..], &l[..]) {
            ([Rate::Allowed { remaining: x }], [Rate::Allowed { remaining: y }]) => {
                assert_eq!(x, y, "add {add}")
            }
            ([Rate::Refused { retry_after: x }], [Rate::Refused { retry_after: y }]) => {
                let diff = x.as_millis().abs_diff(y.as_millis());
                assert!(diff < 1000, "{x:?} vs {y:?}");
                assert!(*x > Duration::from_secs(15), "{x:?}");
            }
            other => panic!("redis and local disagree: {other:?}"),
        }
    }
    // Quotas: 2 calls per hour-long window anchored at 0001-01-01.
    let q = |record: bool| {
        vec![QuotaCheck {
            key: "q".into(),
            limits: QuotaLimits {
                calls: Some(2),
                bytes: None,
            },
            window: Window {
                period: 3600.0,
                anchor: Some(-62_135_596_800.0),
            },
            calls: 1,
            record,
        }]
    };
    for _ in 0..3 {
        let r = shared.quota_all(&q(true)).await;
        let l = local.quota_all(&q(true)).await;
        match (&r[..], &l[..]) {
            ([Quota::Allowed], [Quota::Allowed]) => {}
            (
                [Quota::Refused {
                    bandwidth: false,
                    renews_in: Some(x),
                }],
                [Quota::Refused {
                    bandwidth: false,
                    renews_in: Some(y),
                }],
            ) => assert!(
                x.as_millis().abs_diff(y.as_millis()) < 2000,
                "{x:?} vs {y:?}"
            ),
            other => panic!("redis and local disagree: {other:?}"),
        }
    }
    // Bandwidth: 1 KB, 1500 bytes counted after a response, then refused.
    let bw = || {
        vec![QuotaCheck {
            key: "bw".into(),
            limits: QuotaLimits {
                calls: None,
                bytes: Some(1024),
            },
            window: Window {
                period: 0.0,
                anchor: None,
            },
            calls: 1,
            record: false,
        }]
    };
    assert_eq!(shared.quota_all(&bw()).await, vec![Quota::Allowed]);
    shared.quota_add("bw", bw()[0].window, 1, 1500);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        shared.quota_all(&bw()).await,
        vec![Quota::Refused {
            bandwidth: true,
            renews_in: None
        }]
    );
}

#[tokio::test]
async fn a_redis_that_stops_answering_times_out_to_local_counting() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, ka) = gateway(&redis.url(), BY_CLIENT).await;
    assert_eq!(call(&a, &ka, "gina").await.status(), 200);
    // Connected but silent: the call waits at most [redis] timeout, then
    // the gateway counts on its own (3 calls, then 429), never a 500.
    redis.signal("STOP");
    for i in 0..3 {
        assert_eq!(call(&a, &ka, "gina").await.status(), 200, "call {i}");
    }
    assert_eq!(call(&a, &ka, "gina").await.status(), 429);
    redis.signal("CONT");
}

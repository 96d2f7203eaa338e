//! Analytics through real sockets: a known traffic pattern through the
//! gateway, then every `GET /mgmt/reports/*` kind checked for exact counts,
//! consistent bandwidth and times, `byTime` buckets, filters, empty ranges,
//! refused queries, persistence across a restart; and a secondary's
//! aggregates reaching the primary with its region through heartbeats,
//! counted once when a heartbeat is sent again.

mod common;

use common::backend::{full, spawn};
use common::{assert_mgmt_error, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime};

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `from`/`to` covering the last ten minutes and the next one.
fn recent() -> String {
    let now = SystemTime::now();
    format!(
        "from={}&to={}",
        rfc3339(now - Duration::from_secs(600)),
        rfc3339(now + Duration::from_secs(60))
    )
}

async fn report(app: &TestApp, kind: &str, query: &str) -> Value {
    app.get_json(&format!("/reports/{kind}?{query}")).await
}

fn total(v: &Value) -> u64 {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["callCountTotal"].as_u64().unwrap())
        .sum()
}

fn sum(v: &Value, field: &str) -> u64 {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_u64().unwrap())
        .sum()
}

/// Polls `byApi` until it counts `want` calls (the flush runs in the
/// background).
async fn settle(app: &TestApp, query: &str, want: u64) -> Value {
    let started = Instant::now();
    loop {
        let v = report(app, "byApi", query).await;
        if total(&v) == want {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "reports never counted {want} calls: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn row<'a>(v: &'a Value, field: &str, id: &str) -> &'a Value {
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[field] == id)
        .unwrap_or_else(|| panic!("no row with {field} = {id}: {v}"))
}

/// min ≤ avg ≤ max and p50 ≤ p95 ≤ p99 ≤ max for every row with calls.
fn assert_times_consistent(v: &Value) {
    for r in v["value"].as_array().unwrap() {
        if r["callCountTotal"].as_u64().unwrap() == 0 {
            continue;
        }
        let f = |k: &str| r[k].as_f64().unwrap();
        assert!(f("apiTimeMin") <= f("apiTimeAvg") + 1e-9, "{r}");
        assert!(f("apiTimeAvg") <= f("apiTimeMax") + 1e-9, "{r}");
        assert!(f("apiTimeMax") > 0.0, "{r}");
        assert!(f("serviceTimeMin") <= f("serviceTimeAvg") + 1e-9, "{r}");
        assert!(f("serviceTimeAvg") <= f("serviceTimeMax") + 1e-9, "{r}");
        assert!(f("serviceTimeMax") <= f("apiTimeMax") + 1e-9, "{r}");
        assert!(f("apiTimeP50") <= f("apiTimeP95") + 1e-9, "{r}");
        assert!(f("apiTimeP95") <= f("apiTimeP99") + 1e-9, "{r}");
        assert!(f("apiTimeP99") <= f("apiTimeMax") + 1e-9, "{r}");
        assert!(f("apiTimeP50") >= f("apiTimeMin") - 1e-9, "{r}");
        let parts = ["Success", "Blocked", "Failed", "Other"]
            .iter()
            .map(|c| r[format!("callCount{c}")].as_u64().unwrap())
            .sum::<u64>();
        assert_eq!(parts, r["callCountTotal"].as_u64().unwrap(), "{r}");
    }
}

/// Alpha (ops ok, missing, boom, limited; product gold, subscription s1 of
/// alice) and beta (product silver, subscription s2 of bob). Returns the
/// two keys.
async fn configure(app: &TestApp) -> (String, String) {
    let backend = spawn(|req| async move {
        let status = match req.uri().path() {
            "/missing" => 404,
            "/boom" => 500,
            _ => 200,
        };
        let mut resp = hyper::Response::new(full("backend says hello"));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        resp
    })
    .await;
    let url = format!("http://{backend}");
    app.put_ok(
        "/apis/alpha",
        json!({"displayName": "Alpha API", "path": "alpha", "serviceUrl": url}),
    )
    .await;
    for (op, name) in [
        ("ok", "Get OK"),
        ("missing", "Get missing"),
        ("boom", "Boom"),
        ("limited", "Limited"),
    ] {
        app.put_ok(
            &format!("/apis/alpha/operations/{op}"),
            json!({"displayName": name, "method": "GET", "urlTemplate": format!("/{op}")}),
        )
        .await;
    }
    let r = app
        .put_xml(
            "/apis/alpha/operations/limited/policy",
            r#"<policies><inbound><base /><rate-limit-by-key calls="1" renewal-period="60" counter-key="limited" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    app.put_ok(
        "/apis/beta",
        json!({"displayName": "Beta API", "path": "beta", "serviceUrl": url}),
    )
    .await;
    app.put_ok(
        "/apis/beta/operations/all",
        json!({"displayName": "Everything", "method": "*", "urlTemplate": "/*"}),
    )
    .await;
    app.put_ok(
        "/users/alice",
        json!({"email": "alice@example.com", "firstName": "Alice", "lastName": "Liddell"}),
    )
    .await;
    app.put_ok("/users/bob", json!({"email": "bob@example.com"}))
        .await;
    app.product("gold", &["alpha"], true).await;
    app.product("silver", &["beta"], true).await;
    for (sid, scope, owner, name) in [
        ("s1", "/products/gold", "alice", "Alice's gold"),
        ("s2", "/products/silver", "bob", "Bob's silver"),
    ] {
        app.put_ok(
            &format!("/subscriptions/{sid}"),
            json!({"scope": scope, "state": "active", "ownerId": format!("/users/{owner}"), "displayName": name}),
        )
        .await;
    }
    (app.key_of("s1").await, app.key_of("s2").await)
}

/// 7×200, 3×404 (backend), 1×500 (backend), 2×401 (no key), 1×200 + 4×429
/// (rate limit) on alpha with s1; 3×200 on beta with s2: 21 calls.
async fn traffic(app: &TestApp, k1: &str, k2: &str) {
    let expect = |path: &'static str, key: Option<String>, status: u16, n: usize| async move {
        for _ in 0..n {
            let r = app.call(path, key.as_deref()).await;
            assert_eq!(r.status(), status, "{path}");
            r.bytes().await.unwrap();
        }
    };
    let k1 = Some(k1.to_string());
    expect("/alpha/ok", k1.clone(), 200, 7).await;
    expect("/alpha/missing", k1.clone(), 404, 3).await;
    expect("/alpha/boom", k1.clone(), 500, 1).await;
    expect("/alpha/ok", None, 401, 2).await;
    expect("/alpha/limited", k1.clone(), 200, 1).await;
    expect("/alpha/limited", k1.clone(), 429, 4).await;
    expect("/beta/anything", Some(k2.to_string()), 200, 3).await;
}

fn fast(s: &mut turnpike::Settings) {
    s.analytics.flush_interval = Duration::from_millis(100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_count_a_known_traffic_pattern_and_survive_a_restart() {
    let app = TestApp::spawn_with(fast).await;
    let (k1, k2) = configure(&app).await;
    traffic(&app, &k1, &k2).await;
    let range = recent();

    // byApi: APIM's classes (404 is "other", 400/5xx "failed", 401/403/429 "blocked").
    let by_api = settle(&app, &range, 21).await;
    assert_eq!(by_api["count"], 2);
    assert_eq!(by_api["nextLink"], Value::Null);
    let alpha = row(&by_api, "apiId", "/apis/alpha");
    assert_eq!(alpha["name"], "Alpha API");
    assert_eq!(alpha["callCountTotal"], 18);
    assert_eq!(alpha["callCountSuccess"], 8);
    assert_eq!(alpha["callCountBlocked"], 6);
    assert_eq!(alpha["callCountFailed"], 1);
    assert_eq!(alpha["callCountOther"], 3);
    let beta = row(&by_api, "apiId", "/apis/beta");
    assert_eq!(beta["name"], "Beta API");
    assert_eq!(beta["callCountTotal"], 3);
    assert_eq!(beta["callCountSuccess"], 3);
    // Ordered by calls, most first.
    assert_eq!(by_api["value"][0]["apiId"], "/apis/alpha");
    assert!(beta["bandwidth"].as_u64().unwrap() > 0);
    assert_times_consistent(&by_api);
    let bandwidth = sum(&by_api, "bandwidth");

    let by_op = report(&app, "byOperation", &range).await;
    let ok = row(&by_op, "operationId", "/apis/alpha/operations/ok");
    assert_eq!(ok["name"], "Get OK");
    assert_eq!(ok["apiId"], "/apis/alpha");
    assert_eq!(ok["callCountSuccess"], 7);
    assert_eq!(ok["callCountBlocked"], 2);
    assert_eq!(
        row(&by_op, "operationId", "/apis/alpha/operations/missing")["callCountOther"],
        3
    );
    let limited = row(&by_op, "operationId", "/apis/alpha/operations/limited");
    assert_eq!(limited["callCountSuccess"], 1);
    assert_eq!(limited["callCountBlocked"], 4);
    assert_eq!(total(&by_op), 21);
    assert_eq!(sum(&by_op, "bandwidth"), bandwidth);
    assert_times_consistent(&by_op);

    let by_product = report(&app, "byProduct", &range).await;
    assert_eq!(
        row(&by_product, "productId", "/products/gold")["callCountTotal"],
        16
    );
    assert_eq!(
        row(&by_product, "productId", "/products/silver")["callCountTotal"],
        3
    );
    let unkeyed = row(&by_product, "name", "(none)");
    assert_eq!(unkeyed["callCountTotal"], 2);
    assert_eq!(unkeyed["callCountBlocked"], 2);
    assert_eq!(total(&by_product), 21);
    assert_times_consistent(&by_product);

    let by_sub = report(&app, "bySubscription", &range).await;
    let s1 = row(&by_sub, "subscriptionId", "/subscriptions/s1");
    assert_eq!(s1["name"], "Alice's gold");
    assert_eq!(s1["callCountTotal"], 16);
    assert_eq!(
        row(&by_sub, "subscriptionId", "/subscriptions/s2")["callCountTotal"],
        3
    );
    assert_eq!(sum(&by_sub, "bandwidth"), bandwidth);

    let by_user = report(&app, "byUser", &range).await;
    let alice = row(&by_user, "userId", "/users/alice");
    assert_eq!(alice["name"], "Alice Liddell");
    assert_eq!(alice["callCountTotal"], 16);
    assert_eq!(row(&by_user, "userId", "/users/bob")["callCountTotal"], 3);
    assert_times_consistent(&by_user);

    let by_region = report(&app, "byRegion", &range).await;
    assert_eq!(by_region["count"], 1);
    assert_eq!(row(&by_region, "region", "default")["callCountTotal"], 21);

    // byTime: one-minute buckets over the range sum to the total.
    let by_time = report(&app, "byTime", &format!("{range}&interval=PT1M")).await;
    let buckets = by_time["value"].as_array().unwrap();
    assert!(buckets.len() >= 11, "{by_time}");
    assert!(buckets.iter().all(|b| b["interval"] == "PT1M"));
    assert!(buckets
        .windows(2)
        .all(|w| w[0]["timestamp"].as_str().unwrap() < w[1]["timestamp"].as_str().unwrap()));
    assert_eq!(total(&by_time), 21);
    assert_eq!(sum(&by_time, "bandwidth"), bandwidth);
    assert_times_consistent(&by_time);
    // And APIM's $filter form, with 15-minute buckets.
    let now = SystemTime::now();
    let filter = format!(
        "$filter=timestamp%20ge%20{}%20and%20timestamp%20le%20{}&interval=PT15M",
        rfc3339(now - Duration::from_secs(3600)),
        rfc3339(now + Duration::from_secs(60))
    );
    let quarter = report(&app, "byTime", &filter).await;
    assert_eq!(total(&quarter), 21);
    assert!(quarter["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["interval"] == "PT15M"));

    // Filters.
    let beta_only = report(&app, "byTime", &format!("{range}&interval=PT1M&apiId=beta")).await;
    assert_eq!(total(&beta_only), 3);
    let gold = report(
        &app,
        "byApi",
        &format!("{range}&$filter=productId%20eq%20'gold'"),
    )
    .await;
    assert_eq!(gold["count"], 1);
    assert_eq!(row(&gold, "apiId", "/apis/alpha")["callCountTotal"], 16);
    let bob = report(
        &app,
        "byOperation",
        &format!("{range}&userId=%2Fusers%2Fbob"),
    )
    .await;
    assert_eq!(total(&bob), 3);
    // Paging and ordering.
    let page = report(
        &app,
        "byOperation",
        &format!("{range}&$orderby=callCountTotal%20asc&$top=1&$skip=1"),
    )
    .await;
    assert_eq!(page["count"], by_op["count"]);
    assert_eq!(page["value"].as_array().unwrap().len(), 1);

    // A range without the traffic: no rows; byTime: zero buckets.
    let past = "from=2020-01-01T00:00:00Z&to=2020-01-01T01:00:00Z";
    let empty = report(&app, "byApi", past).await;
    assert_eq!(empty, json!({"value": [], "count": 0, "nextLink": null}));
    let zeros = report(&app, "byTime", &format!("{past}&interval=PT15M")).await;
    assert_eq!(zeros["count"], 5);
    assert_eq!(total(&zeros), 0);

    // Refused queries.
    for bad in [
        "",
        "from=2026-01-01T00:00:00Z",
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "from=nope&to=2026-01-01T00:00:00Z",
        "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&interval=PT90S",
        "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&interval=soon",
        "from=2000-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&interval=PT1M",
        "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&$orderby=shoeSize",
    ] {
        let r = app.get(&format!("/reports/byTime?{bad}")).await;
        assert_mgmt_error(r, 400, "ValidationError").await;
    }
    assert_mgmt_error(
        app.get(&format!("/reports/byColour?{range}")).await,
        404,
        "ResourceNotFound",
    )
    .await;
    let anonymous = app
        .client
        .get(format!("{}/reports/byApi?{range}", app.mgmt))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // Persisted: a restart on the same data directory reports the same.
    let before = report(&app, "byOperation", &range).await;
    let dir = app.stop().await;
    let settings = {
        let mut s = common::test_settings(dir.path());
        fast(&mut s);
        s
    };
    let app = TestApp::start(dir, settings).await;
    let after = report(&app, "byOperation", &range).await;
    assert_eq!(before, after);
    assert_eq!(total(&after), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondarys_aggregates_reach_the_primary_once() {
    let primary = TestApp::spawn_with(fast).await;
    primary.api("alpha", "alpha", &primary.echo_url()).await;
    primary
        .put_ok(
            "/apis/alpha",
            json!({"displayName": "Alpha API", "path": "alpha", "serviceUrl": primary.echo_url(), "subscriptionRequired": false}),
        )
        .await;
    let token = |gid: &'static str| {
        let primary = &primary;
        async move {
            primary
                .put_ok(
                    &format!("/gateways/{gid}"),
                    json!({"locationData": {"name": "West US"}}),
                )
                .await;
            let r = primary
                .client
                .post(format!("{}/gateways/{gid}/token", primary.mgmt))
                .bearer_auth(common::ADMIN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let west = token("west-1").await;

    let dir = tempfile::tempdir().unwrap();
    let mut s = common::test_settings(dir.path());
    s.management.admin_key = None;
    s.node.role = toml::Spanned::new(0..0, turnpike::config::Role::Secondary);
    s.node.region = "West US".into();
    s.cluster.primary = Some(primary.mgmt.trim_end_matches("/mgmt").to_string());
    s.cluster.gateway_id = Some("west-1".into());
    s.cluster.token = Some(turnpike::error::Secret::new(&west));
    s.cluster.heartbeat_interval = Duration::from_millis(200);
    s.cluster.poll_interval = Duration::from_millis(200);
    s.cluster.long_poll = false;
    let (_stop, never) = turnpike::shutdown::channel();
    let secondary = turnpike::run(s, turnpike::Options::default(), never)
        .await
        .unwrap();
    let gw = format!("http://{}", secondary.addr("gateway-http").unwrap());
    for _ in 0..5 {
        let r = primary
            .client
            .get(format!("{gw}/alpha/hello"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let range = recent();
    let started = Instant::now();
    let by_region = loop {
        let v = report(&primary, "byRegion", &range).await;
        if total(&v) >= 5 {
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let westr = row(&by_region, "region", "West US");
    assert_eq!(westr["callCountTotal"], 5);
    assert_eq!(westr["callCountSuccess"], 5);
    assert_eq!(by_region["count"], 1, "the primary served nothing itself");
    // More heartbeats go by: still counted once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let again = report(&primary, "byRegion", &range).await;
    assert_eq!(row(&again, "region", "West US")["callCountTotal"], 5);
    let by_api = report(&primary, "byApi", &range).await;
    assert_eq!(row(&by_api, "apiId", "/apis/alpha")["name"], "Alpha API");
    secondary.shutdown();
    secondary.wait().await;

    // A heartbeat sent twice (its answer lost) is counted once; the rows
    // take the sending gateway's region.
    let east = token("east-1").await;
    let minute = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60;
    let cell = json!({
        "count": 3, "success": 2, "blocked": 0, "failed": 1, "other": 0,
        "bytesIn": 0, "bytesOut": 30, "cacheHit": 0, "cacheMiss": 0,
        "apiUsSum": 3000, "apiUsMin": 500, "apiUsMax": 2000,
        "serviceCount": 3, "serviceUsSum": 1500, "serviceUsMin": 100, "serviceUsMax": 1000,
        "hist": [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    });
    let beat = json!({
        "gatewayId": "east-1", "region": "East Asia", "revision": 0, "version": "t",
        "uptimeSeconds": 1, "hostname": "h", "heartbeatIntervalSeconds": 1.0,
        "analytics": [{"sequence": 42, "rows": [{
            "minute": minute, "api": "alpha", "operation": "all", "product": "",
            "subscription": "", "user": "", "region": "somewhere else", "class": 2,
            "cell": cell
        }]}]
    });
    for _ in 0..3 {
        let r = primary
            .client
            .post(format!(
                "{}/cluster/v1/heartbeat",
                primary.mgmt.trim_end_matches("/mgmt")
            ))
            .header("authorization", format!("GatewayKey {east}"))
            .json(&beat)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let by_region = report(&primary, "byRegion", &range).await;
    let eastr = row(&by_region, "region", "East Asia");
    assert_eq!(eastr["callCountTotal"], 3);
    assert_eq!(eastr["callCountFailed"], 1);
    assert_eq!(eastr["bandwidth"], 30);
    assert_eq!(eastr["apiTimeAvg"], 1.0);
    assert_eq!(eastr["apiTimeMin"], 0.5);
    assert_eq!(eastr["apiTimeMax"], 2.0);
    assert_eq!(row(&by_region, "region", "West US")["callCountTotal"], 5);
    // A malformed batch is refused.
    let mut bad = beat.clone();
    bad["analytics"] = json!([{"sequence": "x"}]);
    let r = primary
        .client
        .post(format!(
            "{}/cluster/v1/heartbeat",
            primary.mgmt.trim_end_matches("/mgmt")
        ))
        .header("authorization", format!("GatewayKey {east}"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

//! `GET /metrics` through the real appliance: the exposition parses with a
//! strict text-format (0.0.4) parser, and counters move by exactly what
//! the requests sent did.

mod common;

use common::TestApp;
use std::collections::{BTreeMap, HashMap};

/// One sample: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn valid_name(n: &str, colon: bool) -> bool {
    let mut chars = n.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    match chars.next() {
        Some(c) if ok_first(c) => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

fn parse_value(v: &str) -> f64 {
    match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad sample value {v:?}")),
    }
}

/// Parses `{a="x",b="y"}` at the start of `s`; returns labels and the rest.
fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
    let mut labels = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 1;
    loop {
        if b[i] == b'}' {
            return (labels, &s[i + 1..]);
        }
        let eq = s[i..].find('=').expect("label without '='") + i;
        let name = &s[i..eq];
        assert!(valid_name(name, false), "bad label name {name:?}");
        assert_eq!(b[eq + 1], b'"', "label value must be quoted");
        let mut j = eq + 2;
        let mut value = String::new();
        loop {
            match b[j] {
                b'\\' => {
                    value.push(match b[j + 1] {
                        b'\\' => '\\',
                        b'"' => '"',
                        b'n' => '\n',
                        c => panic!("bad escape \\{}", c as char),
                    });
                    j += 2;
                }
                b'"' => break,
                b'\n' => panic!("raw newline in a label value"),
                _ => {
                    let c = s[j..].chars().next().unwrap();
                    value.push(c);
                    j += c.len_utf8();
                }
            }
        }
        assert!(
            labels.insert(name.to_string(), value).is_none(),
            "duplicate label {name}"
        );
        j += 1;
        match b[j] {
            b',' => i = j + 1,
            b'}' => i = j,
            c => panic!("unexpected {:?} after a label", c as char),
        }
    }
}

/// A strict parser: every line is `# HELP`, `# TYPE` or a sample; a
/// family's HELP and TYPE come once, before its samples; every sample
/// belongs to a declared family (histograms: `_bucket`/`_sum`/`_count`).
fn parse(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
    assert!(text.ends_with('\n'), "exposition must end with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped: HashMap<String, bool> = HashMap::new();
    let mut sampled: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        assert!(!line.is_empty(), "empty line");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(valid_name(name, true), "bad name {name}");
            assert!(
                helped.insert(name.into(), true).is_none(),
                "HELP twice: {name}"
            );
            assert!(
                !sampled.contains(&name.to_string()),
                "HELP after samples: {name}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut p = rest.split(' ');
            let (name, kind) = (p.next().unwrap(), p.next().unwrap());
            assert!(p.next().is_none(), "junk after TYPE: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad type {kind}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "TYPE twice: {name}"
            );
            assert!(
                !sampled.contains(&name.to_string()),
                "TYPE after samples: {name}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment line {line}");
        let end = line.find(['{', ' ']).expect("sample without value");
        let name = &line[..end];
        assert!(valid_name(name, true), "bad metric name {name}");
        let (labels, rest) = if line[end..].starts_with('{') {
            parse_labels(&line[end..])
        } else {
            (BTreeMap::new(), &line[end..])
        };
        let rest = rest.strip_prefix(' ').expect("space before the value");
        let mut parts = rest.split(' ');
        let value = parse_value(parts.next().unwrap());
        if let Some(ts) = parts.next() {
            ts.parse::<i64>().expect("timestamp");
        }
        assert!(parts.next().is_none(), "junk after sample: {line}");
        let family = [name.to_string()]
            .into_iter()
            .chain(
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .filter_map(|s| name.strip_suffix(s).map(str::to_string)),
            )
            .find(|f| types.contains_key(f))
            .unwrap_or_else(|| panic!("sample of an undeclared family: {name}"));
        let kind = &types[&family];
        if family != name {
            assert!(
                kind == "histogram" || kind == "summary",
                "{name}: suffix on a {kind}"
            );
        }
        if name.ends_with("_bucket") {
            assert!(labels.contains_key("le"), "bucket without le");
        }
        if kind == "counter" {
            assert!(value >= 0.0, "negative counter {line}");
        }
        if !sampled.contains(&family) {
            sampled.push(family);
        }
        samples.push(Sample {
            name: name.into(),
            labels,
            value,
        });
    }
    check_histograms(&samples, &types);
    (samples, types)
}

/// Buckets are cumulative, end with `+Inf`, which equals `_count`.
fn check_histograms(samples: &[Sample], types: &HashMap<String, String>) {
    for (family, kind) in types {
        if kind != "histogram" {
            continue;
        }
        let bucket = format!("{family}_bucket");
        let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in samples.iter().filter(|s| s.name == bucket) {
            let mut l = s.labels.clone();
            let le = parse_value(&l.remove("le").unwrap());
            series.entry(l).or_default().push((le, s.value));
        }
        for (labels, buckets) in series {
            assert!(buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
            let (le, last) = *buckets.last().unwrap();
            assert!(le.is_infinite(), "{family}: last bucket is not +Inf");
            let count = samples
                .iter()
                .find(|s| s.name == format!("{family}_count") && s.labels == labels)
                .expect("histogram _count");
            assert_eq!(count.value, last, "{family}: +Inf bucket != _count");
            assert!(samples
                .iter()
                .any(|s| s.name == format!("{family}_sum") && s.labels == labels));
        }
    }
}

async fn scrape(app: &TestApp) -> (String, Vec<Sample>) {
    // No admin key: Prometheus scrapes without one.
    let base = app.mgmt.trim_end_matches("/mgmt");
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    let (samples, _) = parse(&text);
    (text, samples)
}

/// The value of `name` whose labels include every pair of `want` (summed);
/// 0 when absent.
fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

#[tokio::test]
async fn counters_move_by_what_was_sent_and_labels_stay_bounded() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><base /><rate-limit-by-key calls="3" renewal-period="300" counter-key="@(context.Subscription.Id)" /><emit-metric name="calls" namespace="shop" value="2"><dimension name="Plan Tier" value="gold" /></emit-metric></inbound></policies>"#,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());

    let (_, before) = scrape(&app).await;
    let ok = [
        ("api", "echo"),
        ("operation", "all"),
        ("product", "starter"),
        ("status_class", "2xx"),
        ("region", "default"),
    ];
    let refused = [
        ("api", "echo"),
        ("operation", "all"),
        ("product", "starter"),
        ("status_class", "4xx"),
    ];
    let unmatched = [
        ("api", ""),
        ("operation", ""),
        ("product", ""),
        ("status_class", "4xx"),
    ];
    for _ in 0..3 {
        assert_eq!(app.call("/echo/items/42", Some(&key)).await.status(), 200);
    }
    // Refused before an API context exists: counted with api="".
    assert_eq!(app.call("/echo/items/42", None).await.status(), 401);
    assert_eq!(
        app.call("/no-such-api/secret-path", Some(&key))
            .await
            .status(),
        404
    );
    assert_eq!(app.call("/echo/items/42", Some(&key)).await.status(), 429);
    let (text, after) = scrape(&app).await;

    let delta = |name: &str, want: &[(&str, &str)]| -> f64 {
        value(&after, name, want) - value(&before, name, want)
    };
    assert_eq!(delta("turnpike_requests_total", &ok), 3.0);
    assert_eq!(delta("turnpike_requests_total", &refused), 1.0);
    assert_eq!(delta("turnpike_requests_total", &unmatched), 2.0);
    assert_eq!(delta("turnpike_request_duration_seconds_count", &ok), 3.0);
    let mut inf = ok.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(delta("turnpike_request_duration_seconds_bucket", &inf), 3.0);
    assert_eq!(delta("turnpike_backend_duration_seconds_count", &ok), 3.0);
    assert!(delta("turnpike_request_duration_seconds_sum", &ok) > 0.0);
    assert!(delta("turnpike_response_bytes_total", &ok) > 0.0);
    assert_eq!(
        delta(
            "turnpike_limit_rejections_total",
            &[("api", "echo"), ("policy", "rate-limit")]
        ),
        1.0
    );
    let custom = [
        ("namespace", "shop"),
        ("name", "calls"),
        ("dim_Plan_Tier", "gold"),
    ];
    assert_eq!(delta("turnpike_custom_metric_total", &custom), 6.0);
    assert_eq!(delta("turnpike_custom_metric_records_total", &custom), 3.0);

    // Node information.
    let build: Vec<_> = after
        .iter()
        .filter(|s| s.name == "turnpike_build_info")
        .collect();
    assert_eq!(build.len(), 1);
    assert_eq!(build[0].value, 1.0);
    assert_eq!(build[0].labels["version"], env!("CARGO_PKG_VERSION"));
    let revision = app.get_json("/revision").await["revision"]
        .as_f64()
        .unwrap();
    assert_eq!(value(&after, "turnpike_config_revision", &[]), revision);

    // Bounded labels: no key, no raw path anywhere.
    assert!(!text.contains(&key));
    assert!(!text.contains("secret-path"));
    assert!(!text.contains("items/42"));
    for s in &after {
        for v in s.labels.values() {
            assert!(!v.contains('/'), "label value looks like a path: {v}");
        }
    }
}

#[tokio::test]
async fn cache_lookups_count_hits_and_misses() {
    let app = TestApp::spawn().await;
    let key = app.standard().await;
    let r = app
        .put_xml(
            "/apis/echo/policy",
            r#"<policies><inbound><base /><cache-lookup vary-by-developer="false" vary-by-developer-groups="false" /></inbound><outbound><base /><cache-store duration="60" /></outbound></policies>"#,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    for _ in 0..3 {
        assert_eq!(app.call("/echo/cached", Some(&key)).await.status(), 200);
    }
    let (_, s) = scrape(&app).await;
    let n = |result| {
        value(
            &s,
            "turnpike_cache_lookups_total",
            &[("api", "echo"), ("result", result)],
        )
    };
    assert_eq!(n("miss"), 1.0);
    assert_eq!(n("hit"), 2.0);
}

#[test]
fn the_parser_refuses_malformed_expositions() {
    for bad in [
        "x 1\n",                                                          // undeclared family
        "# TYPE x counter\nx{a=\"b} 1\n",                                 // unterminated value
        "# TYPE x counter\nx{a=\"\\q\"} 1\n",                             // bad escape
        "# TYPE x counter\nx 1\n# TYPE x counter\n",                      // TYPE twice
        "# TYPE x counter\nx_bucket{le=\"1\"} 1\n",                       // suffix on a counter
        "# TYPE x histogram\nx_bucket{le=\"1\"} 1\nx_count 1\nx_sum 1\n", // no +Inf
    ] {
        let r = std::panic::catch_unwind(|| parse(bad));
        assert!(r.is_err(), "accepted: {bad:?}");
    }
    parse("# HELP x h\n# TYPE x counter\nx{a=\"q\\\"\\\\\\n\"} 1.5e3\n");
}

#[tokio::test]
async fn circuit_breaker_state_is_a_gauge() {
    use serde_json::json;
    let app = TestApp::spawn().await;
    let addr = common::backend::spawn(|_req| async {
        let mut r = hyper::Response::new(common::backend::full("down"));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
    .await;
    app.put_ok(
        "/backends/flaky",
        json!({"url": format!("http://{addr}"), "circuitBreaker": {"rules": [{
            "name": "five-hundreds",
            "failureCondition": {"count": 2, "interval": "PT1M", "statusCodeRanges": [{"min": 500, "max": 599}]},
            "tripDuration": "PT1H"
        }]}}),
    )
    .await;
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
    let r = app
        .put_xml(
            "/apis/svc/policy",
            r#"<policies><inbound><base /><set-backend-service backend-id="flaky" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#,
        )
        .await;
    assert!(r.status().is_success());
    let gauge = |s: &[Sample]| value(s, "turnpike_backend_circuit_open", &[("backend", "flaky")]);
    assert_eq!(app.call("/svc/x", None).await.status(), 500);
    let (_, s) = scrape(&app).await;
    assert!(s
        .iter()
        .any(|x| x.name == "turnpike_backend_circuit_open" && x.labels["backend"] == "flaky"));
    assert_eq!(gauge(&s), 0.0);
    assert_eq!(app.call("/svc/x", None).await.status(), 500);
    assert_eq!(app.call("/svc/x", None).await.status(), 503);
    let (_, s) = scrape(&app).await;
    assert_eq!(gauge(&s), 1.0);
}

#[tokio::test]
async fn metrics_listen_serves_a_secondary_with_its_cluster_ages() {
    use serde_json::json;
    let primary = TestApp::spawn_with(|s| {
        s.telemetry.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    // The primary's own listener serves /metrics, without cluster gauges.
    let addr = primary.running_addr("metrics").expect("metrics listener");
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (samples, _) = parse(&text);
    assert!(samples.iter().any(|s| s.name == "turnpike_build_info"));
    assert!(!text.contains("turnpike_cluster_"));

    primary
        .put_ok(
            "/gateways/west-1",
            json!({"locationData": {"name": "West US"}}),
        )
        .await;
    let r = primary
        .client
        .post(format!("{}/gateways/west-1/token", primary.mgmt))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<serde_json::Value>().await.unwrap()["value"]
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
    s.cluster.token = Some(turnpike::error::Secret::new(&token));
    s.cluster.heartbeat_interval = std::time::Duration::from_millis(200);
    s.cluster.poll_interval = std::time::Duration::from_millis(200);
    s.cluster.long_poll = false;
    s.telemetry.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let (stop, never) = turnpike::shutdown::channel();
    let secondary = turnpike::run(s, turnpike::Options::default(), never)
        .await
        .unwrap();
    let addr = secondary.addr("metrics").expect("metrics listener");
    let mut seen = false;
    for _ in 0..50 {
        let text = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (samples, _) = parse(&text);
        let sync = value(&samples, "turnpike_cluster_last_sync_age_seconds", &[]);
        let beat = value(&samples, "turnpike_cluster_heartbeat_age_seconds", &[]);
        if text.contains("turnpike_cluster_last_sync_age_seconds ")
            && text.contains("turnpike_cluster_heartbeat_age_seconds ")
        {
            assert!((0.0..60.0).contains(&sync), "{sync}");
            assert!((0.0..60.0).contains(&beat), "{beat}");
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "the secondary never reported its cluster ages");
    secondary.shutdown();
    drop(stop);
    drop(dir);
}

/// Scrapes until `done` holds for the samples (bodies end, and
/// connections close, just after the client has read the last byte).
async fn scrape_until(app: &TestApp, done: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let mut last = vec![];
    for _ in 0..200 {
        last = scrape(app).await.1;
        if done(&last) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    last
}

#[tokio::test]
async fn streamed_bytes_client_duration_and_upstream_connections() {
    use common::backend;
    let app = TestApp::spawn().await;
    // A body of unknown length (chunked), on a keep-alive connection.
    let streaming =
        backend::spawn(|_req| async move { hyper::Response::new(backend::generated(300_000)) })
            .await;
    // A backend that closes every connection after its response.
    let closing = backend::spawn(|_req| async move {
        let mut r = hyper::Response::new(backend::full("bye"));
        r.headers_mut()
            .insert("connection", "close".parse().unwrap());
        r
    })
    .await;
    app.api("stream", "stream", &format!("http://{streaming}"))
        .await;
    app.api("closing", "closing", &format!("http://{closing}"))
        .await;
    app.product("starter", &["stream", "closing"], true).await;
    let key = app.subscription("s1", "/products/starter").await;

    let (_, before) = scrape(&app).await;
    let series = [
        ("api", "stream"),
        ("operation", "all"),
        ("product", "starter"),
        ("status_class", "2xx"),
    ];
    for _ in 0..2 {
        let r = app.call("/stream/big", Some(&key)).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("content-length").is_none());
        assert_eq!(r.bytes().await.unwrap().len(), 300_000);
    }
    let delta = |after: &[Sample], name: &str, want: &[(&str, &str)]| -> f64 {
        value(after, name, want) - value(&before, name, want)
    };
    let after = scrape_until(&app, |s| {
        delta(s, "turnpike_client_duration_seconds_count", &series) >= 2.0
    })
    .await;
    // Bytes of unknown length are counted as they flow.
    assert_eq!(
        delta(&after, "turnpike_response_bytes_total", &series),
        600_000.0
    );
    assert_eq!(
        delta(&after, "turnpike_client_duration_seconds_count", &series),
        2.0
    );
    let mut inf = series.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        delta(&after, "turnpike_client_duration_seconds_bucket", &inf),
        2.0
    );
    assert!(delta(&after, "turnpike_client_duration_seconds_sum", &series) > 0.0);
    // The keep-alive backend's connection stays open in the pool.
    let s_host = streaming.to_string();
    let host = [("host", s_host.as_str())];
    let opened = value(&after, "turnpike_upstream_connections_opened_total", &host);
    let open = value(&after, "turnpike_upstream_connections", &host);
    assert!((1.0..=2.0).contains(&opened), "opened {opened}");
    assert!(open >= 1.0 && open <= opened, "open {open} of {opened}");

    // Each call to the closing backend opens a connection, which closes.
    let c_host = closing.to_string();
    let host = [("host", c_host.as_str())];
    for _ in 0..3 {
        let r = app.call("/closing/x", Some(&key)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "bye");
    }
    let after = scrape_until(&app, |s| {
        value(s, "turnpike_upstream_connections", &host) == 0.0
    })
    .await;
    assert_eq!(
        value(&after, "turnpike_upstream_connections_opened_total", &host),
        3.0
    );
    assert_eq!(value(&after, "turnpike_upstream_connections", &host), 0.0);
    // A known length is counted once, at header time.
    let closing_series = [("api", "closing"), ("status_class", "2xx")];
    assert_eq!(
        value(&after, "turnpike_response_bytes_total", &closing_series),
        9.0
    );
}

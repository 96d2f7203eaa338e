//! Cluster-mode figures: how fast a configuration change reaches a
//! secondary, and what the export costs at scale. Figures only, no
//! assertions on timing. Run with `cargo bench --bench cluster` (release;
//! about a minute).
//!
//! 1. Propagation. One primary and one secondary run in this process
//!    through `turnpike::run`, on `127.0.0.1:0`, with temp data dirs. The
//!    gateway registration and its token go through the management API,
//!    as an operator's would. An API (`/bench`, no subscription) has one
//!    operation `GET /x`, whose API-scope policy answers with
//!    `return-response` and a header `x-rev: N`. Each of the 100 changes
//!    (after a few warm-up ones) PUTs that policy with the next N; the clock
//!    starts just before the PUT and stops when the gateway answers with
//!    `x-rev: N` (both gateways are tried about every millisecond). The
//!    primary's own gateway is the baseline: the PUT (compile, persist,
//!    flush, publish) plus one request. Two secondaries' sync modes are
//!    measured, each on a fresh cluster: long-poll (`long_poll = true`,
//!    `poll_interval = "10s"`) and plain poll (`long_poll = false`,
//!    `poll_interval = "200ms"`). Changes are spaced by a random pause (up
//!    to 20 ms for long-poll, up to the interval for plain poll) so that
//!    they do not line up with the poll cycle.
//! 2. Export at scale. A `Catalog` built in memory (no HTTP): 10,000 APIs
//!    with 2 operations each, 100 products (each API in one), 100,000
//!    active subscriptions (90% product-scoped, 10% API-scoped) with random
//!    32-hex-digit keys. Measured: the export's JSON and gzip sizes, encode
//!    (`model::export::encode`), decode (`model::export::decode`), snapshot
//!    compile (`snapshot::compile`) and what a secondary spends applying a
//!    new revision (decode + compile; not the download or the backup
//!    write). Median of 3 runs each.

use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use turnpike::config::Role;
use turnpike::error::Secret;
use turnpike::model::{
    export, Api, Catalog, Change, Operation, Product, ProductState, Subscription, SubscriptionState,
};
use turnpike::shutdown;
use turnpike::{Options, Running, Settings};

const ADMIN: &str = "bench-admin-key-0123456789abcdef";
const GATEWAY_ID: &str = "west";
const CHANGES: usize = 100;
const WARMUP: usize = 3;
/// A change not seen by then counts as missed.
const GIVE_UP: Duration = Duration::from_secs(15);

const APIS: usize = 10_000;
const PRODUCTS: usize = 100;
const SUBSCRIPTIONS: usize = 100_000;
const RUNS: usize = 3;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let modes = [
        Mode {
            name: "long-poll",
            long_poll: true,
            interval: Duration::from_secs(10),
            max_pause: Duration::from_millis(20),
        },
        Mode {
            name: "plain poll",
            long_poll: false,
            interval: Duration::from_millis(200),
            max_pause: Duration::from_millis(200),
        },
    ];
    println!();
    println!(
        "Propagation of a configuration change: {CHANGES} policy PUTs per mode, \
         time from just before the PUT until the gateway serves it (ms)"
    );
    println!();
    println!(
        "{:<11} {:>8}  {:<17} {:>8} {:>8} {:>8} {:>7}",
        "sync", "interval", "measured at", "p50", "p99", "max", "missed"
    );
    for mode in &modes {
        let figures = rt.block_on(propagation(mode));
        for (at, samples) in [
            ("primary gateway", &figures.primary),
            ("secondary gateway", &figures.secondary),
        ] {
            let (p50, p99, max) = summary(samples);
            println!(
                "{:<11} {:>8}  {:<17} {:>8.1} {:>8.1} {:>8.1} {:>7}",
                mode.name,
                humantime::format_duration(mode.interval).to_string(),
                at,
                ms(p50),
                ms(p99),
                ms(max),
                CHANGES - samples.len()
            );
        }
    }
    drop(rt);
    println!();
    export_at_scale();
}

/// A secondary's sync mode.
struct Mode {
    name: &'static str,
    long_poll: bool,
    interval: Duration,
    /// Longest random pause between two changes.
    max_pause: Duration,
}

struct Figures {
    primary: Vec<Duration>,
    secondary: Vec<Duration>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50, p99 and max (nearest rank) of `samples`; zeros when empty.
fn summary(samples: &[Duration]) -> (Duration, Duration, Duration) {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let rank = |p: usize| -> Duration {
        if v.is_empty() {
            return Duration::ZERO;
        }
        let i = (p * v.len()).div_ceil(100).max(1) - 1;
        v[i.min(v.len() - 1)]
    };
    (rank(50), rank(99), rank(100))
}

/// A small xorshift generator: pauses and keys need spread, not quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, d: Duration) -> Duration {
        let n = d.as_micros() as u64;
        if n == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.next() % n)
    }

    fn hex32(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

fn base_settings(dir: &Path) -> Settings {
    let mut s = Settings::defaults();
    s.gateway.http = "127.0.0.1:0".parse().expect("address");
    s.management.listen = "127.0.0.1:0".parse().expect("address");
    s.portal.listen = "127.0.0.1:0".parse().expect("address");
    s.management.admin_key = Some(Secret::new(ADMIN));
    s.node.data_dir = dir.to_path_buf();
    s.node.shutdown_timeout = Duration::from_secs(5);
    s.telemetry.access_log = false;
    s
}

fn policy_xml(rev: usize) -> String {
    format!(
        r#"<policies><inbound><base /><return-response><set-status code="200" reason="OK" /><set-header name="x-rev" exists-action="override"><value>{rev}</value></set-header></return-response></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#
    )
}

/// A management call that must succeed; returns the JSON body (or null).
async fn mgmt(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut req = client.request(method, &url).bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("management call");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{url} -> {status}: {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

async fn put_policy(client: &reqwest::Client, mgmt: &str, rev: usize) {
    let resp = client
        .put(format!("{mgmt}/apis/bench/policy"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/xml")
        .body(policy_xml(rev))
        .send()
        .await
        .expect("policy PUT");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "policy PUT -> {status}: {text}");
}

/// The `x-rev` a gateway answers with, if it answers.
async fn served_rev(client: &reqwest::Client, url: &str) -> Option<usize> {
    let resp = client.get(url).send().await.ok()?;
    resp.headers().get("x-rev")?.to_str().ok()?.parse().ok()
}

async fn stop(running: Running) {
    running.shutdown();
    running.wait().await;
}

/// One fresh primary and secondary; `CHANGES` measured changes.
async fn propagation(mode: &Mode) -> Figures {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    let (_outside, never) = shutdown::channel();

    let primary_dir = tempfile::tempdir().expect("temp dir");
    let primary = turnpike::run(
        base_settings(primary_dir.path()),
        Options::default(),
        never.clone(),
    )
    .await
    .expect("primary starts");
    let mgmt_addr = primary.addr("management").expect("management listener");
    let mgmt_url = format!("http://{mgmt_addr}/mgmt");
    let primary_gw = format!(
        "http://{}/bench/x",
        primary.addr("gateway-http").expect("gateway listener")
    );

    use reqwest::Method;
    mgmt(
        &client,
        Method::PUT,
        format!("{mgmt_url}/gateways/{GATEWAY_ID}"),
        Some(json!({"locationData": {"name": "West US"}})),
    )
    .await;
    let token = mgmt(
        &client,
        Method::POST,
        format!("{mgmt_url}/gateways/{GATEWAY_ID}/token"),
        None,
    )
    .await["value"]
        .as_str()
        .expect("token value")
        .to_string();
    mgmt(
        &client,
        Method::PUT,
        format!("{mgmt_url}/apis/bench"),
        Some(json!({
            "displayName": "Bench",
            "path": "bench",
            "serviceUrl": "http://127.0.0.1:9",
            "subscriptionRequired": false
        })),
    )
    .await;
    mgmt(
        &client,
        Method::PUT,
        format!("{mgmt_url}/apis/bench/operations/x"),
        Some(json!({"displayName": "X", "method": "GET", "urlTemplate": "/x"})),
    )
    .await;
    put_policy(&client, &mgmt_url, 0).await;

    let secondary_dir = tempfile::tempdir().expect("temp dir");
    let mut s = base_settings(secondary_dir.path());
    s.node.role = toml::Spanned::new(0..0, Role::Secondary);
    s.node.region = "westus".into();
    s.cluster.primary = Some(format!("http://{mgmt_addr}"));
    s.cluster.gateway_id = Some(GATEWAY_ID.into());
    s.cluster.token = Some(Secret::new(token));
    s.cluster.long_poll = mode.long_poll;
    s.cluster.poll_interval = mode.interval;
    s.cluster.heartbeat_interval = Duration::from_secs(5);
    let secondary = turnpike::run(s, Options::default(), never)
        .await
        .expect("secondary starts");
    let secondary_gw = format!(
        "http://{}/bench/x",
        secondary.addr("gateway-http").expect("gateway listener")
    );

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut figures = Figures {
        primary: Vec::with_capacity(CHANGES),
        secondary: Vec::with_capacity(CHANGES),
    };
    for rev in 1..=WARMUP + CHANGES {
        tokio::time::sleep(rng.below(mode.max_pause)).await;
        let t0 = Instant::now();
        put_policy(&client, &mgmt_url, rev).await;
        let mut at_primary = None;
        let mut at_secondary = None;
        while t0.elapsed() < GIVE_UP {
            if at_primary.is_none() && served_rev(&client, &primary_gw).await == Some(rev) {
                at_primary = Some(t0.elapsed());
            }
            if at_secondary.is_none() && served_rev(&client, &secondary_gw).await == Some(rev) {
                at_secondary = Some(t0.elapsed());
            }
            if at_primary.is_some() && at_secondary.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if rev > WARMUP {
            figures.primary.extend(at_primary);
            figures.secondary.extend(at_secondary);
        }
    }

    drop(client);
    stop(secondary).await;
    stop(primary).await;
    figures
}

/// The scale catalog described in the header.
fn big_catalog() -> Catalog {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut c = Catalog::new();
    c.revision = 1;
    for p in 0..PRODUCTS {
        c.apply(&Change::Product(
            format!("product-{p:03}"),
            Some(Product {
                display_name: format!("Product {p}"),
                description: Some(format!("Plan number {p} of the bench catalog.")),
                terms: None,
                subscription_required: true,
                approval_required: false,
                subscriptions_limit: None,
                state: ProductState::Published,
            }),
        ));
    }
    for a in 0..APIS {
        let id = format!("api-{a:05}");
        c.apply(&Change::Api(
            id.clone(),
            Some(Api {
                display_name: format!("Service {a}"),
                description: Some(format!("Bench API number {a}.")),
                path: format!("services/svc-{a:05}"),
                service_url: Some(format!("http://backend-{}.internal:8080/v1", a % 50)),
                ..Api::default()
            }),
        ));
        for (op, template) in [("list", "/items"), ("get", "/items/{id}")] {
            c.apply(&Change::Operation(
                id.clone(),
                op.into(),
                Some(Operation {
                    display_name: format!("{op} items"),
                    method: "GET".into(),
                    url_template: template.into(),
                    description: None,
                    template_parameters: Vec::new(),
                    request: None,
                    responses: Vec::new(),
                    tags: Vec::new(),
                }),
            ));
        }
        c.apply(&Change::ProductApi(
            format!("product-{:03}", a % PRODUCTS),
            id,
            true,
        ));
    }
    for s in 0..SUBSCRIPTIONS {
        let scope = if s % 10 == 0 {
            format!("/apis/api-{:05}", s % APIS)
        } else {
            format!("/products/product-{:03}", s % PRODUCTS)
        };
        c.apply(&Change::Subscription(
            format!("sub-{s:06}"),
            Some(Subscription {
                scope,
                display_name: format!("Subscription {s}"),
                owner_id: None,
                state: SubscriptionState::Active,
                state_comment: None,
                allow_tracing: false,
                primary_key: Secret::new(rng.hex32()),
                secondary_key: Secret::new(rng.hex32()),
                created_date: "2025-01-01T00:00:00.000Z".into(),
                expiration_date: None,
            }),
        ));
    }
    c
}

/// Runs `f` `RUNS` times; the median duration and the last result.
fn median<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = std::hint::black_box(f());
        times.push(t.elapsed());
        last = Some(out);
    }
    times.sort_unstable();
    (times[RUNS / 2], last.expect("at least one run"))
}

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

fn export_at_scale() {
    let t = Instant::now();
    let catalog = big_catalog();
    let built = t.elapsed();
    let ops: usize = catalog.operations.values().map(|o| o.len()).sum();
    println!(
        "Export at scale: {} APIs, {} operations, {} products, {} subscriptions \
         (median of {RUNS} runs; catalog built in {:.0} ms)",
        catalog.apis.len(),
        ops,
        catalog.products.len(),
        catalog.subscriptions.len(),
        ms(built)
    );
    println!();

    let json = serde_json::to_vec(&catalog).expect("catalog serializes");
    let (encode, gz) = median(|| export::encode(&catalog));
    let (decode, back) = median(|| export::decode(&gz, export::MAX_EXPORT_BYTES));
    let back = back.expect("the export decodes");
    assert_eq!(back.subscriptions.len(), SUBSCRIPTIONS, "round trip");
    drop(back);
    let (compile, snap) = median(|| turnpike::snapshot::compile(&catalog));
    let snap = snap.expect("the catalog compiles");
    assert_eq!(snap.apis.len(), APIS, "every API compiled");
    drop(snap);
    let (apply, applied) = median(|| {
        let c = export::decode(&gz, export::MAX_EXPORT_BYTES).expect("the export decodes");
        turnpike::snapshot::compile(&c).map(|s| s.revision)
    });
    assert!(applied.is_ok(), "the decoded export compiles");

    let rows = [
        ("export JSON size", mb(json.len())),
        (
            "export gzip size",
            format!(
                "{} ({:.1}x smaller)",
                mb(gz.len()),
                json.len() as f64 / gz.len() as f64
            ),
        ),
        ("encode (JSON + gzip)", format!("{:.0} ms", ms(encode))),
        ("decode (gunzip + parse)", format!("{:.0} ms", ms(decode))),
        ("snapshot compile", format!("{:.0} ms", ms(compile))),
        (
            "apply on a secondary (decode + compile)",
            format!("{:.0} ms", ms(apply)),
        ),
    ];
    for (what, value) in rows {
        println!("{what:<40} {value:>24}");
    }
    println!();
}

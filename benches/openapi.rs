//! OpenAPI import figures: what a large definition costs to read and
//! convert, and to import end to end. Figures only, no assertions on
//! timing. Run with `cargo bench --bench openapi` (release; under a
//! minute).
//!
//! The definition is generated (`tests/common/large_spec.rs`): 520 paths
//! with a GET and a PUT each (1,040 operations), one schema of 40
//! documented properties per path referenced by both operations, shared
//! error responses; about 5 MB as pretty JSON, and the same document as
//! YAML.
//!
//! 1. Parse + convert: `openapi::import` alone (text → JSON value, `$ref`
//!    check, operations with inlined schemas and examples). Median of 5.
//! 2. What the write does with the result, without the disk: applying the
//!    changes to a copy of the catalog, encoding its records (the JSON that
//!    goes to sled) and compiling the snapshot. Median of 5.
//! 3. End to end: `PUT /mgmt/apis/large` with `format` and `value` through
//!    `turnpike::run` on `127.0.0.1:0` (body read, import, one store write
//!    with the snapshot compiled, flushed, published; `max_body_bytes`
//!    raised to 64 MiB). The first PUT creates the API; the next ones
//!    replace it (every operation rewritten). Median of 5 replacements.

#[path = "../tests/common/large_spec.rs"]
mod large_spec;

use serde_json::json;
use std::time::{Duration, Instant};
use turnpike::error::Secret;
use turnpike::model::{Api, Catalog, Change};
use turnpike::openapi::{import, Format};
use turnpike::{shutdown, Options, Settings};

const ADMIN: &str = "bench-admin-key-0123456789abcdef";
const PATHS: usize = 520;
const PROPS: usize = 40;
const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let json_doc = large_spec::large_spec(PATHS, PROPS);
    let value: serde_json::Value = serde_json::from_str(&json_doc).expect("generated JSON");
    let yaml_doc = yaml_serde::to_string(&value).expect("YAML");
    println!();
    println!(
        "OpenAPI import: {PATHS} paths, {} operations, {PROPS} properties per schema",
        PATHS * 2
    );
    println!();
    println!("{:<34} {:>10} {:>12}", "", "size (MB)", "median (ms)");
    for (name, format, doc) in [
        ("parse + convert, JSON", Format::OpenApiJson, &json_doc),
        ("parse + convert, YAML", Format::OpenApi, &yaml_doc),
    ] {
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            let imported = import(format, doc.as_bytes(), None).expect("imports");
            times.push(t.elapsed());
            assert_eq!(imported.operations.len(), PATHS * 2);
        }
        println!(
            "{name:<34} {:>10.2} {:>12}",
            doc.len() as f64 / 1e6,
            ms(median(times))
        );
    }

    let imported = import(Format::OpenApiJson, json_doc.as_bytes(), None).expect("imports");
    let mut catalog = Catalog::new();
    let mut changes = vec![
        Change::Api(
            "large".into(),
            Some(Api {
                path: "large".into(),
                ..Api::default()
            }),
        ),
        Change::ApiSpec("large".into(), Some(imported.spec.clone())),
    ];
    for (id, op) in &imported.operations {
        changes.push(Change::Operation(
            "large".into(),
            id.clone(),
            Some(op.clone()),
        ));
    }
    let (mut apply, mut encode, mut compile) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut next = catalog.clone();
        for c in &changes {
            next.apply(c);
        }
        apply.push(t.elapsed());
        let t = Instant::now();
        let bytes: usize = changes
            .iter()
            .filter_map(|c| c.record().1)
            .map(|v| v.len())
            .sum();
        encode.push(t.elapsed());
        let t = Instant::now();
        turnpike::snapshot::compile(&next).expect("compiles");
        compile.push(t.elapsed());
        if catalog.apis.is_empty() {
            println!("{:<34} {:>10.2}", "records written", bytes as f64 / 1e6);
        }
        catalog = next;
    }
    println!(
        "{:<34} {:>10} {:>12}",
        "apply to a catalog copy",
        "",
        ms(median(apply))
    );
    println!(
        "{:<34} {:>10} {:>12}",
        "encode the records",
        "",
        ms(median(encode))
    );
    println!(
        "{:<34} {:>10} {:>12}",
        "compile the snapshot",
        "",
        ms(median(compile))
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = Settings::defaults();
        s.gateway.http = "127.0.0.1:0".parse().expect("address");
        s.management.listen = "127.0.0.1:0".parse().expect("address");
        s.management.admin_key = Some(Secret::new(ADMIN));
        s.management.max_body_bytes = 64 * 1024 * 1024;
        s.node.data_dir = dir.path().to_path_buf();
        s.telemetry.access_log = false;
        let (trigger, never) = shutdown::channel();
        let running = turnpike::run(s, Options::default(), never)
            .await
            .expect("starts");
        let url = format!(
            "http://{}/mgmt/apis/large",
            running.addr("management").expect("management listener")
        );
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        for (name, format, doc) in [
            ("PUT import end to end, JSON", "openapi+json", &json_doc),
            ("PUT import end to end, YAML", "openapi", &yaml_doc),
        ] {
            let body =
                serde_json::to_vec(&json!({"format": format, "value": doc, "path": "large"}))
                    .expect("body");
            let mut times = Vec::new();
            for run in 0..=RUNS {
                let t = Instant::now();
                let r = client
                    .put(&url)
                    .bearer_auth(ADMIN)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("PUT");
                let status = r.status();
                let text = r.text().await.expect("answer");
                let took = t.elapsed();
                assert!(status.is_success(), "{status}: {text}");
                if run == 0 {
                    println!(
                        "{:<34} {:>10.2} {:>12}",
                        format!("{name} (create)"),
                        body.len() as f64 / 1e6,
                        ms(took)
                    );
                } else {
                    times.push(took);
                }
            }
            println!(
                "{:<34} {:>10.2} {:>12}",
                format!("{name} (replace)"),
                body.len() as f64 / 1e6,
                ms(median(times))
            );
        }
        trigger.fire();
        running.wait().await;
    });
    println!();
}

//! Seeds a data directory with a large configuration for the `scale`
//! variant of `benches/vs-nginx.sh` (`benches/support/catalog.rs`: the
//! bench API, product and subscription with `--key`, plus other APIs and
//! subscriptions up to `--apis` and `--subscriptions`). Written through the real store
//! (`Store::write`, sealed under `TURNPIKE_MASTER_KEY`, each batch
//! compiled into a snapshot as a management write would be) in batches of
//! 5,000 changes, so loading takes seconds instead of 110,000 writes.
//!
//! cargo run --release --example bench_seed -- --data DIR --apis 10000 \
//!     --subscriptions 100000 --service-url http://127.0.0.1:PORT --key KEY

use std::path::PathBuf;
use std::time::Instant;
use turnpike::model::Change;
use turnpike::store::Store;

#[path = "../benches/support/catalog.rs"]
mod catalog;

const BATCH: usize = 5_000;

fn main() {
    let mut data = None;
    let mut apis = 10_000usize;
    let mut subs = 100_000usize;
    let mut service = String::from("http://127.0.0.1:9");
    let mut key = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| die(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--data" => data = Some(PathBuf::from(value)),
            "--apis" => apis = value.parse().unwrap_or_else(|_| die("--apis: a number")),
            "--subscriptions" => {
                subs = value
                    .parse()
                    .unwrap_or_else(|_| die("--subscriptions: a number"))
            }
            "--service-url" => service = value,
            "--key" => key = value,
            other => die(&format!("unknown flag {other}")),
        }
    }
    let data = data.unwrap_or_else(|| die("--data DIR is required"));
    if key.len() < 16 {
        die("--key: at least 16 characters");
    }
    std::fs::create_dir_all(&data).unwrap_or_else(|e| die(&e.to_string()));
    let env = std::env::var_os("TURNPIKE_MASTER_KEY");
    let (master, _) =
        turnpike::store::master::resolve(env, None, &data).unwrap_or_else(|e| die(&e.to_string()));
    let store = Store::open_with(&data, &master).unwrap_or_else(|e| die(&e.to_string()));

    let changes = catalog::changes(apis, subs, &service, &key);
    let total = changes.len();
    let started = Instant::now();
    let mut batches = 0;
    let mut pending = changes.into_iter().peekable();
    while pending.peek().is_some() {
        let batch: Vec<Change> = pending.by_ref().take(BATCH).collect();
        store
            .write(
                move |_| Ok::<_, String>(batch),
                |next| {
                    turnpike::snapshot::compile(next)
                        .map(|_| ())
                        .map_err(|e| format!("{e:?}"))
                },
            )
            .unwrap_or_else(|e| die(&format!("write failed: {e:?}")));
        batches += 1;
    }
    let c = store.catalog();
    println!(
        "{} APIs, {} subscriptions, {} products: {total} changes in {batches} writes, {:.1} s",
        c.apis.len(),
        c.subscriptions.len(),
        c.products.len(),
        started.elapsed().as_secs_f64()
    );
}

fn die(msg: &str) -> ! {
    eprintln!("bench_seed: {msg}");
    std::process::exit(2)
}

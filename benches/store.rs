//! Store benchmarks with every record sealed (AES-256-GCM): opening a
//! store of a few thousand records (read, open, decode into the catalog),
//! a one-record write (seal, batch, flush), and the sealing itself per
//! record. The gateway never touches the store; these are management and
//! start-up costs. Figures only; run with `cargo bench --bench store`.

use std::time::Instant;
use turnpike::model::{Change, NamedValue};
use turnpike::store::seal::{MasterKey, Purpose};
use turnpike::store::Store;

const RECORDS: usize = 3000;

fn named_value(i: usize) -> Change {
    Change::NamedValue(
        format!("nv-{i}"),
        Some(NamedValue {
            display_name: format!("nv-{i}"),
            value: turnpike::error::Secret::new(format!("{i:0>200}")),
            secret: i < RECORDS / 2,
            tags: vec![],
        }),
    )
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = MasterKey::from_bytes([9; 32]);
    let store = Store::open_with(dir.path(), &key).expect("open");
    let t = Instant::now();
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(100) {
        let changes: Vec<Change> = chunk.iter().map(|&i| named_value(i)).collect();
        store
            .write::<(), ()>(|_| Ok(changes), |_| Ok(()))
            .map_err(|_| ())
            .expect("write");
    }
    println!(
        "store: {RECORDS} records written in 100-record writes: {:.1} ms",
        ms(t)
    );
    let n = 50;
    let t = Instant::now();
    for i in 0..n {
        let change = named_value(i);
        store
            .write::<(), ()>(|_| Ok(vec![change]), |_| Ok(()))
            .map_err(|_| ())
            .expect("write");
    }
    println!(
        "store: one-record write (seal, batch, flush), {RECORDS} records held: {:.2} ms",
        ms(t) / n as f64
    );
    drop(store);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let store = Store::open_with(dir.path(), &key).expect("reopen");
        best = best.min(ms(t));
        assert!(store.catalog().named_values.len() >= RECORDS);
    }
    println!("store: open with {RECORDS} sealed records (best of 5): {best:.1} ms");

    let sealer = key.sealer(Purpose::Store).expect("sealer");
    let value = vec![b'x'; 300];
    let rounds = 100_000;
    let t = Instant::now();
    for i in 0..rounds {
        let aad = format!("named-value/nv-{i}");
        let sealed = sealer.seal(aad.as_bytes(), &value).expect("seal");
        let opened = sealer.open(aad.as_bytes(), &sealed).expect("open");
        std::hint::black_box(opened);
    }
    println!(
        "seal + open of a 300-byte record: {:.2} µs",
        ms(t) * 1e3 / rounds as f64
    );
}

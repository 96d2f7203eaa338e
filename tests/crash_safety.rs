//! Crash safety of the real binary: `kill -9` at random moments while
//! management writes are in flight, then a restart on the same data
//! directory.
//!
//! 1. The store. Three writers PUT and DELETE named values, APIs and
//!    subscriptions (creates, updates, deletes, mixed) as fast as the
//!    management API acknowledges them; the process is killed with SIGKILL
//!    after a random delay and started again on the same data directory.
//!    Every write acknowledged with a 2xx must be there with the
//!    acknowledged content (every field the write set, checked against the
//!    write's sequence number), every acknowledged delete must stay
//!    deleted, the write that was in flight at the kill may have landed or
//!    not (but whole), the store must open cleanly and its revision must
//!    count every acknowledged write.
//! 2. The secondary's configuration backup. A primary changes a policy as
//!    fast as it can; its secondary applies each revision and writes its
//!    backup; the secondary is killed with SIGKILL after a random delay,
//!    then started with its primary out of reach: it must start from the
//!    backup (fail static) and serve a revision at least as new as the last
//!    backup it logged as written. A torn backup would refuse to start.
//!
//! Cycles: `TURNPIKE_CRASH_CYCLES` (default 5; the long mode is 50).
//! `TURNPIKE_CRASH_SEED` replays a run's random choices.

mod common;

use common::procs::{free_port, Proc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN: &str = "crash-admin-key-0123456789abcdef";
const WRITERS: usize = 3;
/// Keys per resource kind, spread over the writers.
const KEYS: usize = 8;

fn cycles() -> usize {
    std::env::var("TURNPIKE_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5)
}

/// xorshift64*: enough randomness for kill points, and replayable.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn seeded() -> (Rng, u64) {
        let seed = std::env::var("TURNPIKE_CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        (Rng(seed), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fork(&mut self) -> Rng {
        Rng(self.next() | 1)
    }
}

async fn start(
    dir: PathBuf,
    name: String,
    config: String,
    expect: &'static [&'static str],
) -> Proc {
    tokio::task::spawn_blocking(move || Proc::start(&dir, &name, &config, expect))
        .await
        .unwrap()
}

/// SIGKILL off the async threads (it waits for the exit).
async fn kill9(mut p: Proc) -> Proc {
    tokio::task::spawn_blocking(move || {
        p.kill9();
        p
    })
    .await
    .unwrap()
}

/// Starts the binary on `config` and SIGKILLs it `after` the spawn,
/// whatever it is doing by then.
async fn kill_during_startup(dir: &Path, config: &str, after: Duration) {
    let path = common::procs::write_config(dir, "startup", config);
    let log = std::fs::File::create(dir.join("startup.log")).unwrap();
    let mut child = std::process::Command::new(common::procs::BIN)
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    tokio::time::sleep(after).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(dir.join("startup.log")).unwrap_or_default();
    common::logscan::record("startup stderr", text.as_bytes());
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- the store

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    NamedValue,
    Api,
    Subscription,
}

#[derive(Clone, Copy, Debug)]
struct Key {
    kind: Kind,
    idx: usize,
}

impl Key {
    fn id(&self) -> String {
        match self.kind {
            Kind::NamedValue => format!("crash-nv-{}", self.idx),
            Kind::Api => format!("crash-api-{}", self.idx),
            Kind::Subscription => format!("crash-sub-{}", self.idx),
        }
    }

    fn path(&self) -> String {
        match self.kind {
            Kind::NamedValue => format!("/named-values/{}", self.id()),
            Kind::Api => format!("/apis/{}", self.id()),
            Kind::Subscription => format!("/subscriptions/{}", self.id()),
        }
    }

    fn sub_key(&self) -> String {
        format!("crash-sub-{}-primary-key-0123456789", self.idx)
    }

    /// The body of the write that makes this resource state `seq`: every
    /// field derives from `seq`, so a read tells which write it holds.
    fn body(&self, seq: u64) -> Value {
        let id = self.id();
        match self.kind {
            Kind::NamedValue => json!({
                "displayName": id,
                "value": format!("value-of-{id}-{seq:010}"),
                "secret": seq.is_multiple_of(4),
            }),
            Kind::Api => json!({
                "displayName": format!("api {seq}"),
                "path": format!("crash/{id}"),
                "serviceUrl": format!("http://127.0.0.1:9/v{seq}"),
                "subscriptionRequired": seq.is_multiple_of(2),
            }),
            Kind::Subscription => json!({
                "scope": "/apis",
                "displayName": format!("sub {seq}"),
                "state": if seq.is_multiple_of(2) { "active" } else { "suspended" },
                "primaryKey": self.sub_key(),
            }),
        }
    }
}

/// What one key holds: `None` absent, `Some(seq)` written by write `seq`.
type State = Option<u64>;

#[derive(Clone, Debug)]
struct Slot {
    key: Key,
    /// The last acknowledged state.
    acked: State,
    /// The write in flight when the process died (outcome unknown).
    pending: Option<State>,
}

enum Failure {
    /// No answer: the process is gone.
    Gone(String),
    /// An answer other than the expected success.
    Status(String),
}

struct Mgmt {
    client: reqwest::Client,
    base: String,
}

impl Mgmt {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/mgmt{path}", self.base))
            .bearer_auth(ADMIN)
    }

    /// Performs the write that takes `key` to `to`.
    async fn write(&self, key: &Key, to: State) -> Result<(), Failure> {
        let path = key.path();
        let (req, what) = match to {
            Some(seq) => {
                let body = key.body(seq);
                common::logscan::json(&format!("PUT {path}"), &body);
                (self.req(reqwest::Method::PUT, &path).json(&body), "PUT")
            }
            None => (self.req(reqwest::Method::DELETE, &path), "DELETE"),
        };
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::Gone(format!("{what} {path}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::Gone(format!("{what} {path}: {e}")))?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure::Status(format!("{what} {path}: {status} {text}")))
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.req(reqwest::Method::GET, path).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str) -> Value {
        let r = self.req(reqwest::Method::POST, path).send().await.unwrap();
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        let v: Value = r.json().await.unwrap();
        common::logscan::json(&format!("POST {path}"), &v);
        v
    }

    async fn revision(&self) -> u64 {
        self.get("/revision").await.1["revision"].as_u64().unwrap()
    }

    /// Reads `key` back and checks that every field belongs to one write.
    async fn observe(&self, key: &Key) -> State {
        let path = key.path();
        let (status, v) = self.get(&path).await;
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "GET {path}: {v}");
        let seq_after = |s: &str, prefix: &str| -> u64 {
            s.strip_prefix(prefix)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{path}: {s:?} is no value this test wrote"))
        };
        let seq = match key.kind {
            Kind::NamedValue => {
                let value = self.post(&format!("{path}/listValue")).await["value"]
                    .as_str()
                    .unwrap()
                    .to_string();
                seq_after(&value, &format!("value-of-{}-", key.id()))
            }
            Kind::Api => seq_after(v["serviceUrl"].as_str().unwrap(), "http://127.0.0.1:9/v"),
            Kind::Subscription => {
                let secrets = self.post(&format!("{path}/listSecrets")).await;
                assert_eq!(secrets["primaryKey"], key.sub_key(), "{path}");
                seq_after(v["displayName"].as_str().unwrap(), "sub ")
            }
        };
        // Every other field is the one the same write set: no torn record.
        let want = key.body(seq);
        for (field, expected) in want.as_object().unwrap() {
            let secret_value = key.kind == Kind::NamedValue && field == "value";
            if field == "primaryKey" || secret_value {
                continue;
            }
            assert_eq!(&v[field], expected, "{path} field {field}: {v}");
        }
        Some(seq)
    }

    /// The ids of this test's resources under `list`.
    async fn ids(&self, list: &str) -> Vec<String> {
        let (status, v) = self.get(list).await;
        assert_eq!(status, 200, "GET {list}");
        let mut ids: Vec<String> = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["id"].as_str())
            .filter(|id| id.starts_with("crash-"))
            .map(str::to_string)
            .collect();
        ids.sort();
        ids
    }
}

struct WriterReport {
    slots: Vec<Slot>,
    acked: u64,
}

/// Writes until the process dies; a failure before the kill is a bug.
async fn writer(
    mgmt: Arc<Mgmt>,
    mut slots: Vec<Slot>,
    mut rng: Rng,
    seq: Arc<AtomicU64>,
    killed: Arc<AtomicBool>,
) -> WriterReport {
    let mut acked = 0;
    loop {
        let i = rng.below(slots.len() as u64) as usize;
        let slot = &mut slots[i];
        let to = match slot.acked {
            None => Some(seq.fetch_add(1, Ordering::Relaxed)),
            Some(_) if rng.below(10) < 3 => None,
            Some(_) => Some(seq.fetch_add(1, Ordering::Relaxed)),
        };
        slot.pending = Some(to);
        match mgmt.write(&slot.key, to).await {
            Ok(()) => {
                slot.acked = to;
                slot.pending = None;
                acked += 1;
            }
            Err(Failure::Gone(e)) => {
                assert!(
                    killed.load(Ordering::SeqCst),
                    "a write failed before the kill: {e}"
                );
                return WriterReport { slots, acked };
            }
            Err(Failure::Status(e)) => {
                if killed.load(Ordering::SeqCst) {
                    // An answer cut short by the kill.
                    return WriterReport { slots, acked };
                }
                panic!("a write was refused: {e}");
            }
        }
    }
}

fn primary_config(data: &Path) -> String {
    format!(
        "[node]\ndata_dir = \"{}\"\nshutdown_timeout = \"2s\"\n\
         [gateway]\nhttp = \"127.0.0.1:0\"\n\
         [management]\nlisten = \"127.0.0.1:0\"\nadmin_key = \"{ADMIN}\"\n\
         [portal]\nlisten = \"127.0.0.1:0\"\n\
         [telemetry]\naccess_log = false\n",
        data.display()
    )
}

/// Log lines that mean the store did not open cleanly.
fn assert_clean_open(p: &Proc) {
    let log = p.log_text().to_lowercase();
    for bad in ["corrupt", "panicked", "cannot be opened", "recovered"] {
        assert!(!log.contains(bad), "{bad:?} in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let cycles = cycles();
    let (mut rng, seed) = Rng::seeded();
    println!("crash safety (store): {cycles} cycles, TURNPIKE_CRASH_SEED={seed}");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let config = primary_config(&dir.join("data"));
    let mut slots: Vec<Slot> = [Kind::NamedValue, Kind::Api, Kind::Subscription]
        .into_iter()
        .flat_map(|kind| (0..KEYS).map(move |idx| Key { kind, idx }))
        .map(|key| Slot {
            key,
            acked: None,
            pending: None,
        })
        .collect();
    let seq = Arc::new(AtomicU64::new(1));
    let (mut total_acked, mut total_unsure, mut landed_unsure) = (0u64, 0u64, 0u64);
    let mut deletes_checked = 0u64;
    let started = Instant::now();
    let mut proc = start(
        dir.clone(),
        "turnpike-0".into(),
        config.clone(),
        &["management"],
    )
    .await;
    for cycle in 1..=cycles {
        let mgmt = Arc::new(Mgmt {
            client: client(),
            base: proc.url("management"),
        });
        let rev0 = mgmt.revision().await;
        let killed = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let mine: Vec<Slot> = slots
                .iter()
                .filter(|s| s.key.idx % WRITERS == w)
                .cloned()
                .collect();
            tasks.push(tokio::spawn(writer(
                mgmt.clone(),
                mine,
                rng.fork(),
                seq.clone(),
                killed.clone(),
            )));
        }
        let delay = Duration::from_millis(20 + rng.below(1500));
        tokio::time::sleep(delay).await;
        killed.store(true, Ordering::SeqCst);
        proc = kill9(proc).await;
        let mut acked = 0;
        slots.clear();
        for t in tasks {
            let r = t.await.unwrap();
            acked += r.acked;
            slots.extend(r.slots);
        }
        drop(proc);

        // Now and then, also a kill during start-up (store recovery,
        // key files, listeners), before the verified restart.
        let early = (rng.below(3) == 0).then(|| Duration::from_millis(rng.below(300)));
        if let Some(after) = early {
            kill_during_startup(&dir, &config, after).await;
        }

        // Restart on the same data directory.
        proc = start(
            dir.clone(),
            format!("turnpike-{cycle}"),
            config.clone(),
            &["management"],
        )
        .await;
        assert_clean_open(&proc);
        let mgmt = Mgmt {
            client: client(),
            base: proc.url("management"),
        };
        let unsure = slots.iter().filter(|s| s.pending.is_some()).count() as u64;
        let mut landed = 0;
        for slot in &mut slots {
            let seen = mgmt.observe(&slot.key).await;
            let ok = seen == slot.acked || Some(seen) == slot.pending;
            assert!(
                ok,
                "cycle {cycle} (seed {seed}): {} holds {seen:?}; acknowledged {:?}, in flight {:?}",
                slot.key.path(),
                slot.acked,
                slot.pending
            );
            if slot.pending.is_some() && seen != slot.acked {
                landed += 1;
            }
            if seen.is_none() {
                deletes_checked += 1;
            }
            slot.acked = seen;
            slot.pending = None;
        }
        // Nothing else: the lists hold exactly the present keys.
        for (kind, list) in [
            (Kind::NamedValue, "/named-values"),
            (Kind::Api, "/apis"),
            (Kind::Subscription, "/subscriptions"),
        ] {
            let mut want: Vec<String> = slots
                .iter()
                .filter(|s| s.key.kind == kind && s.acked.is_some())
                .map(|s| s.key.id())
                .collect();
            want.sort();
            assert_eq!(mgmt.ids(list).await, want, "cycle {cycle}: {list}");
        }
        // The revision counts every acknowledged write, and at most the
        // ones in flight besides.
        let rev1 = mgmt.revision().await;
        assert!(
            rev1 >= rev0 + acked && rev1 <= rev0 + acked + unsure,
            "cycle {cycle}: revision {rev0} -> {rev1} after {acked} acknowledged writes \
             ({unsure} in flight)"
        );
        let early = early
            .map(|d| format!(", then {} ms into a start", d.as_millis()))
            .unwrap_or_default();
        println!(
            "  cycle {cycle}: killed after {} ms{early}; {acked} writes acknowledged, all \
             present; {unsure} in flight ({landed} landed); revision {rev0} -> {rev1}",
            delay.as_millis()
        );
        total_acked += acked;
        total_unsure += unsure;
        landed_unsure += landed;
    }
    println!(
        "crash safety (store): {cycles} kill -9 cycles, {total_acked} acknowledged writes all \
         present with their content ({deletes_checked} absent keys checked), {total_unsure} \
         in-flight writes at the kills ({landed_unsure} landed whole), {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(total_acked > 0, "no write was acknowledged");
    let stopped = tokio::task::spawn_blocking(move || proc.stop())
        .await
        .unwrap();
    assert_eq!(stopped.map(|s| s.success()), Some(true));
}

// --------------------------------------------------------- the backup file

fn versioned_policy(version: u64) -> String {
    format!(
        r#"<policies>
  <inbound>
    <base />
    <return-response>
      <set-status code="200" reason="OK" />
      <set-header name="x-version" exists-action="override"><value>{version}</value></set-header>
    </return-response>
  </inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
  <on-error><base /></on-error>
</policies>"#
    )
}

fn secondary_config(data: &Path, primary: &str, token: &str) -> String {
    let gid = token.split('&').next().unwrap();
    format!(
        "[node]\nrole = \"secondary\"\nregion = \"West US\"\ndata_dir = \"{}\"\n\
         shutdown_timeout = \"2s\"\n\
         [gateway]\nhttp = \"127.0.0.1:0\"\n\
         [cluster]\nprimary = \"{primary}\"\ngateway_id = \"{gid}\"\ntoken = \"{token}\"\n\
         poll_interval = \"10s\"\nheartbeat_interval = \"1s\"\nbackup = true\n\
         [telemetry]\naccess_log = false\n",
        data.display()
    )
}

/// The log without its colour escapes (`ESC [ ... m`).
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for e in chars.by_ref() {
                if e.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The revision of the last "configuration backup written" line.
fn last_backup_written(log: &str) -> Option<u64> {
    log.lines()
        .filter(|l| l.contains("configuration backup written"))
        .filter_map(revision_in)
        .next_back()
}

/// `revision=N` or `revision: N` in a log line.
fn revision_in(line: &str) -> Option<u64> {
    let at = line.find("revision")? + "revision".len();
    let digits: String = line[at..]
        .trim_start_matches(['=', ':', ' ', '"'])
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// `x-version` served on `gw` (`None`: not serving yet).
async fn served_version(client: &reqwest::Client, gw: &str) -> Option<u64> {
    let r = client.get(format!("{gw}/pinned/x")).send().await.ok()?;
    if r.status() != 200 {
        return None;
    }
    r.headers().get("x-version")?.to_str().ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_secondarys_backup_survives_kill_9() {
    let cycles = cycles();
    let (mut rng, seed) = Rng::seeded();
    println!("crash safety (backup): {cycles} cycles, TURNPIKE_CRASH_SEED={seed}");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let primary = start(
        dir.clone(),
        "primary".into(),
        primary_config(&dir.join("primary-data")),
        &["management"],
    )
    .await;
    let mgmt = Arc::new(Mgmt {
        client: client(),
        base: primary.url("management"),
    });
    let put = |path: &str, body: Value| {
        let req = mgmt.req(reqwest::Method::PUT, path).json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }
    };
    put(
        "/apis/pinned",
        json!({"path": "pinned", "subscriptionRequired": false}),
    )
    .await;
    put(
        "/apis/pinned/operations/x",
        json!({"method": "GET", "urlTemplate": "/x"}),
    )
    .await;
    put(
        "/gateways/west-1",
        json!({"locationData": {"name": "West US"}}),
    )
    .await;
    let token = mgmt.post("/gateways/west-1/token").await;
    let token = token["value"].as_str().unwrap().to_string();
    common::logscan::secret("gateway token", &token);

    // The primary changes the policy as fast as it acknowledges writes.
    let stop = Arc::new(AtomicBool::new(false));
    let version = Arc::new(AtomicU64::new(0));
    let churn = {
        let (mgmt, stop, version) = (mgmt.clone(), stop.clone(), version.clone());
        tokio::spawn(async move {
            let mut v = 0;
            while !stop.load(Ordering::Relaxed) {
                v += 1;
                let r = mgmt
                    .req(reqwest::Method::PUT, "/apis/pinned/policy")
                    .header("content-type", "application/xml")
                    .body(versioned_policy(v))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.text().await.unwrap());
                version.store(v, Ordering::SeqCst);
            }
        })
    };

    let data = dir.join("west-data");
    let online = secondary_config(&data, &mgmt.base, &token);
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let offline = secondary_config(&data, &unreachable, &token);
    let client = client();
    let started = Instant::now();
    let mut backups_written = 0usize;
    for cycle in 1..=cycles {
        let west = start(
            dir.clone(),
            format!("west-{cycle}"),
            online.clone(),
            &["gateway-http"],
        )
        .await;
        let gw = west.url("gateway-http");
        let t = Instant::now();
        while served_version(&client, &gw).await.is_none() {
            assert!(t.elapsed() < Duration::from_secs(10), "{}", west.log_text());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = Duration::from_millis(100 + rng.below(1400));
        tokio::time::sleep(delay).await;
        let west = kill9(west).await;
        let log = plain(&west.log_text());
        let floor = last_backup_written(&log)
            .unwrap_or_else(|| panic!("no backup written before the kill:\n{log}"));
        backups_written += log.matches("configuration backup written").count();

        // Restarted with the primary out of reach: from the backup.
        let fallback = start(
            dir.clone(),
            format!("west-offline-{cycle}"),
            offline.clone(),
            &["gateway-http"],
        )
        .await;
        let log = plain(&fallback.log_text());
        let line = log
            .lines()
            .find(|l| l.contains("serving the configuration backup"))
            .unwrap_or_else(|| panic!("cycle {cycle}: not serving the backup:\n{log}"));
        let from_backup = revision_in(line).unwrap_or_else(|| panic!("no revision in {line:?}"));
        assert!(
            from_backup >= floor,
            "cycle {cycle}: the backup holds revision {from_backup}, older than the last one \
             written ({floor})"
        );
        assert!(
            !log.to_lowercase().contains("corrupt"),
            "cycle {cycle}:\n{log}"
        );
        let served = served_version(&client, &fallback.url("gateway-http"))
            .await
            .unwrap_or_else(|| panic!("cycle {cycle}: the backup is not served"));
        let acked = version.load(Ordering::SeqCst);
        assert!(
            (1..=acked + 1).contains(&served),
            "cycle {cycle}: served version {served}, the primary acknowledged up to {acked}"
        );
        println!(
            "  cycle {cycle}: killed after {} ms; last backup logged: revision {floor}; \
             restarted offline from revision {from_backup} (policy v{served} of {acked})",
            delay.as_millis()
        );
        drop(kill9(fallback).await);
    }
    stop.store(true, Ordering::Relaxed);
    churn.await.unwrap();
    println!(
        "crash safety (backup): {cycles} kill -9 cycles, {backups_written} backups written, \
         every restart served its backup, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(primary);
}

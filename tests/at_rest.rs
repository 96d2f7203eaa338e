//! Secrets at rest: known secrets written through the management API are
//! found in no file under the data directory (sled's files included),
//! before and after a `kill -9`, and still work afterwards; a wrong or
//! malformed master key stops start-up with exit 2 and a clear message;
//! a store written in clear by an earlier build is migrated; a
//! secondary's configuration backup holds no secret and still serves.

mod common;

use common::backend;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_turnpike");
const ADMIN: &str = "at-rest-admin-key-0123456789";
const KEY_HEX: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const NV_SECRET: &str = "nv-secret-7f3a9c1e5b2d";
const SUB_PRIMARY: &str = "subprimary0a1b2c3d4e5f60718293";
const SUB_SECONDARY: &str = "subsecondary9f8e7d6c5b4a3928";
const BACKEND_SECRET: &str = "backend-cred-91e2d3c4b5a6f7";

/// Every file under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(p);
            }
        }
    }
    hits
}

fn assert_no_secret_in(dir: &Path, secrets: &[String]) {
    let mut files = 0;
    count_files(dir, &mut files);
    assert!(files >= 2, "the data directory has its files ({files})");
    for s in secrets {
        let hits = files_containing(dir, s);
        assert!(hits.is_empty(), "a secret lies in clear in {hits:?}");
    }
}

fn count_files(dir: &Path, n: &mut usize) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            count_files(&p, n);
        } else {
            *n += 1;
        }
    }
}

/// A `turnpike serve` process.
struct Served {
    child: Child,
    listeners: Vec<(String, String)>,
    stderr: PathBuf,
}

impl Served {
    fn url(&self, name: &str) -> String {
        let addr = &self.listeners.iter().find(|(n, _)| n == name).unwrap().1;
        format!("http://{addr}")
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = std::fs::read(&self.stderr).unwrap_or_default();
        common::logscan::record("turnpike serve stderr", &text);
    }
}

/// Starts `turnpike serve --config CONFIG` (with `TURNPIKE_MASTER_KEY` set
/// to `env_key` when given). `Ok` once the management listener is
/// announced; `Err((status, stderr))` when it exits first.
fn serve(dir: &Path, config: &Path, env_key: Option<&str>) -> Result<Served, (ExitStatus, String)> {
    let stderr_path = dir.join(format!(
        "stderr-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg("--config")
        .arg(config)
        .current_dir(dir)
        .env_remove("TURNPIKE_MASTER_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    common::logscan::secret("master key", KEY_HEX);
    if let Some(k) = env_key {
        common::logscan::secret("TURNPIKE_MASTER_KEY", k);
        cmd.env("TURNPIKE_MASTER_KEY", k);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut listeners = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let parts: Vec<&str> = line.split_whitespace().collect();
                if let ["listening", name, addr] = parts[..] {
                    listeners.push((name.to_string(), addr.to_string()));
                    if name == "management" {
                        std::thread::spawn(move || for _ in rx {});
                        return Ok(Served {
                            child,
                            listeners,
                            stderr: stderr_path,
                        });
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                let text = std::fs::read_to_string(&stderr_path).unwrap();
                common::logscan::record("turnpike serve stderr", text.as_bytes());
                return Err((status, text));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("turnpike neither started nor exited");
            }
        }
    }
}

fn config(dir: &Path, node_extra: &str) -> PathBuf {
    common::logscan::secret("admin key", ADMIN);
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[node]\ndata_dir = \"{}\"\nshutdown_timeout = \"2s\"\n{node_extra}\n\
             [gateway]\nhttp = \"127.0.0.1:0\"\n\
             [management]\nlisten = \"127.0.0.1:0\"\nadmin_key = \"{ADMIN}\"\n\
             [portal]\nlisten = \"127.0.0.1:0\"\n\
             [telemetry]\naccess_log = false\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

struct Admin {
    client: reqwest::Client,
    /// `http://host:port/mgmt`.
    base: String,
    key: &'static str,
}

impl Admin {
    fn new(mgmt: &str) -> Admin {
        Admin {
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: format!("{mgmt}/mgmt"),
            key: ADMIN,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        common::logscan::json(&format!("{method} {path}"), &body);
        let resp = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        let v = serde_json::from_str(&text).unwrap_or(Value::Null);
        common::logscan::json(&format!("{method} {path}"), &v);
        v
    }

    async fn put(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::PUT, path, body).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, path, body).await
    }
}

/// A backend answering with the two headers the gateway adds.
async fn header_backend() -> String {
    let addr = backend::spawn(|req| async move {
        let h = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let body = json!({"nv": h("x-nv"), "cred": h("x-cred")}).to_string();
        http::Response::new(backend::full(body))
    })
    .await;
    format!("http://{addr}")
}

/// A self-signed certificate and its private key, as PEM; and one line of
/// the key's base64 (what would show in a file holding the key in clear).
fn certificate() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["client.test".to_string()]).unwrap();
    let key_pem = c.signing_key.serialize_pem();
    let key_line = key_pem
        .lines()
        .find(|l| !l.starts_with("-----") && l.len() >= 40)
        .unwrap()
        .to_string();
    (format!("{}{}", c.cert.pem(), key_pem), key_line)
}

/// Writes the secrets through the management API; returns a gateway token.
async fn seed(admin: &Admin, backend_url: &str, pem: &str) -> String {
    admin
        .put(
            "/named-values/nv1",
            json!({"displayName": "nv1", "value": NV_SECRET, "secret": true}),
        )
        .await;
    admin
        .put(
            "/backends/b1",
            json!({"url": backend_url, "credentials": {"header": {"x-cred": [BACKEND_SECRET]}}}),
        )
        .await;
    admin
        .put(
            "/apis/vault",
            json!({"displayName": "vault", "path": "vault", "serviceUrl": backend_url}),
        )
        .await;
    admin
        .put(
            "/apis/vault/operations/all",
            json!({"method": "*", "urlTemplate": "/*"}),
        )
        .await;
    let policy = r#"<policies><inbound><base />
<set-header name="x-nv" exists-action="override"><value>{{nv1}}</value></set-header>
<set-backend-service backend-id="b1" />
</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#;
    let r = admin
        .client
        .put(format!("{}/apis/vault/policy", admin.base))
        .bearer_auth(admin.key)
        .header("content-type", "application/xml")
        .body(policy)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    admin
        .put(
            "/products/p1",
            json!({"displayName": "p1", "state": "published", "subscriptionRequired": true}),
        )
        .await;
    admin.put("/products/p1/apis/vault", json!({})).await;
    admin
        .put(
            "/subscriptions/s1",
            json!({"scope": "/products/p1", "state": "active",
                   "primaryKey": SUB_PRIMARY, "secondaryKey": SUB_SECONDARY}),
        )
        .await;
    admin.put("/certificates/c1", json!({ "pem": pem })).await;
    admin
        .put("/gateways/g1", json!({"locationData": {"name": "west"}}))
        .await;
    admin.post("/gateways/g1/token", json!({})).await["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The secrets work: the subscription key authenticates, the named value
/// and the backend credential reach the backend, the gateway token
/// (signed with the stored gateway key) is accepted.
async fn assert_secrets_work(served: &Served, token: &str) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for key in [SUB_PRIMARY, SUB_SECONDARY] {
        let r = client
            .get(format!("{}/vault/x", served.url("gateway-http")))
            .header("Ocp-Apim-Subscription-Key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"nv": NV_SECRET, "cred": BACKEND_SECRET}));
    }
    let r = client
        .get(format!("{}/vault/x", served.url("gateway-http")))
        .header("Ocp-Apim-Subscription-Key", "not-the-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(format!("{}/cluster/v1/config", served.url("management")))
        .header("Authorization", format!("GatewayKey {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the gateway token is still accepted");
}

/// The gateway signing keys as stored (read with the store API while no
/// process holds the store).
fn gateway_keys(data: &Path, hex_key: &str) -> Vec<String> {
    let key = turnpike::store::seal::MasterKey::parse(hex_key).unwrap();
    let store = turnpike::store::Store::open_with(data, &key).unwrap();
    let keys = &store.catalog().gateway_keys["g1"];
    vec![
        keys.primary.expose().to_string(),
        keys.secondary.expose().to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_lies_in_the_data_dir_and_a_wrong_key_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keys").join("master.key");
    std::fs::create_dir_all(key_file.parent().unwrap()).unwrap();
    std::fs::write(&key_file, format!("{KEY_HEX}\n")).unwrap();
    let cfg = config(
        dir.path(),
        &format!("master_key_file = \"{}\"", key_file.display()),
    );
    let data = dir.path().join("data");
    let backend_url = header_backend().await;
    let (pem, key_line) = certificate();

    let served = serve(dir.path(), &cfg, None).unwrap();
    let admin = Admin::new(&served.url("management"));
    let token = seed(&admin, &backend_url, &pem).await;
    assert_secrets_work(&served, &token).await;
    // kill -9 right after the last acknowledged write.
    served.kill9();

    assert!(!data.join("master.key").exists(), "the key stays outside");
    let mut secrets = vec![
        NV_SECRET.to_string(),
        SUB_PRIMARY.to_string(),
        SUB_SECONDARY.to_string(),
        BACKEND_SECRET.to_string(),
        key_line,
        KEY_HEX.to_string(),
    ];
    secrets.extend(gateway_keys(&data, KEY_HEX));
    assert_no_secret_in(&data, &secrets);

    // Restarted: every secret still works.
    let served = serve(dir.path(), &cfg, None).unwrap();
    assert_secrets_work(&served, &token).await;
    served.kill9();
    assert_no_secret_in(&data, &secrets);

    // A wrong master key (the environment wins over the file): exit 2, a
    // clear message, never the key.
    let wrong = "5e".repeat(32);
    let (status, stderr) = serve(dir.path(), &cfg, Some(&wrong)).err().unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("was encrypted with a different master key"),
        "{stderr}"
    );
    assert!(stderr.contains("TURNPIKE_MASTER_KEY"), "{stderr}");
    assert!(
        !stderr.contains(&wrong) && !stderr.contains(KEY_HEX),
        "{stderr}"
    );

    // A malformed one: exit 2, named, not echoed.
    let (status, stderr) = serve(dir.path(), &cfg, Some("my-passphrase-123"))
        .err()
        .unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("TURNPIKE_MASTER_KEY"), "{stderr}");
    assert!(stderr.contains("64 hex digits"), "{stderr}");
    assert!(!stderr.contains("my-passphrase-123"), "{stderr}");

    // A configured key file that is missing: exit 2.
    let missing = config(dir.path(), "master_key_file = \"/nonexistent/master.key\"");
    let (status, stderr) = serve(dir.path(), &missing, None).err().unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");

    // The right key in the environment wins over that missing file, and
    // the store is unchanged by the refused starts.
    let served = serve(dir.path(), &missing, Some(KEY_HEX)).unwrap();
    assert_secrets_work(&served, &token).await;
    served.kill9();
    assert_no_secret_in(&data, &secrets);
}

/// Writes a store the way builds before sealing did: records in clear.
fn write_clear_store(data: &Path) {
    use turnpike::model::{Catalog, Change, NamedValue};
    let mut catalog = Catalog::new();
    catalog.apply(&Change::NamedValue(
        "nv1".into(),
        Some(NamedValue {
            display_name: "nv1".into(),
            value: turnpike::error::Secret::new(NV_SECRET),
            secret: true,
            tags: vec![],
        }),
    ));
    let db = sled::open(data.join("store")).unwrap();
    let tree = db.open_tree("config").unwrap();
    for (k, v) in catalog.records() {
        tree.insert(k.as_bytes(), v).unwrap();
    }
    tree.insert(
        "!meta/schema",
        &turnpike::model::SCHEMA_VERSION.to_be_bytes(),
    )
    .unwrap();
    tree.insert("!meta/revision", &3u64.to_be_bytes()).unwrap();
    db.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_in_clear_is_migrated_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_clear_store(&data);
    std::fs::write(
        data.join("portal.key"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    assert!(
        !files_containing(&data, NV_SECRET).is_empty(),
        "the fixture is clear"
    );

    // No key configured: {data_dir}/master.key is generated (0600).
    let cfg = config(dir.path(), "");
    let served = serve(dir.path(), &cfg, None).unwrap();
    let admin = Admin::new(&served.url("management"));
    let v = admin.post("/named-values/nv1/listValue", json!({})).await;
    assert_eq!(v["value"], NV_SECRET);
    assert_eq!(
        admin
            .send(reqwest::Method::GET, "/revision", json!({}))
            .await["revision"],
        3
    );
    served.kill9();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_no_secret_in(
        &data,
        &[
            NV_SECRET.to_string(),
            "0123456789abcdef0123456789abcdef".to_string(),
        ],
    );
    assert!(!data.join("store.clear-old").exists());
    let served = serve(dir.path(), &cfg, None).unwrap();
    let admin = Admin::new(&served.url("management"));
    let v = admin.post("/named-values/nv1/listValue", json!({})).await;
    assert_eq!(v["value"], NV_SECRET);
    served.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_backup_holds_no_secret_and_still_serves() {
    use turnpike::config::Role;
    let primary = common::TestApp::spawn().await;
    let backend_url = header_backend().await;
    let admin = Admin {
        client: primary.client.clone(),
        base: primary.mgmt.clone(),
        key: common::ADMIN,
    };
    let (pem, key_line) = certificate();
    let token = seed(&admin, &backend_url, &pem).await;

    let dir = tempfile::tempdir().unwrap();
    let primary_url = primary.mgmt.trim_end_matches("/mgmt").to_string();
    let secondary_settings = || {
        let mut s = turnpike::Settings::defaults();
        s.node.role = toml::Spanned::new(0..0, Role::Secondary);
        s.node.data_dir = dir.path().to_path_buf();
        s.node.shutdown_timeout = Duration::from_secs(2);
        s.gateway.http = "127.0.0.1:0".parse().unwrap();
        s.cluster.primary = Some(primary_url.clone());
        s.cluster.gateway_id = Some("g1".into());
        s.cluster.token = Some(turnpike::error::Secret::new(token.clone()));
        s
    };
    let (_t, never) = turnpike::shutdown::channel();
    let running = turnpike::run(secondary_settings(), Default::default(), never.clone())
        .await
        .unwrap();
    let backup = dir.path().join("config-backup.gz");
    assert!(backup.exists());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let gw = format!("http://{}", running.addr("gateway-http").unwrap());
    let call = |gw: String| {
        let client = client.clone();
        async move {
            client
                .get(format!("{gw}/vault/x"))
                .header("Ocp-Apim-Subscription-Key", SUB_PRIMARY)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(call(gw.clone()).await.status(), 200);
    running.shutdown();
    running.wait().await;
    assert_no_secret_in(
        dir.path(),
        &[
            NV_SECRET.to_string(),
            SUB_PRIMARY.to_string(),
            SUB_SECONDARY.to_string(),
            BACKEND_SECRET.to_string(),
            key_line,
        ],
    );
    // The backup is gzip sealed: no gzip magic after the header line.
    let bytes = std::fs::read(&backup).unwrap();
    let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
    assert!(bytes.starts_with(b"turnpike-config-backup 2 "));
    assert_ne!(&bytes[nl + 1..nl + 3], b"\x1f\x8b");

    // The primary goes away: the secondary starts from its sealed backup
    // and the secrets in it still work.
    let _primary_dir = primary.stop().await;
    let running = turnpike::run(secondary_settings(), Default::default(), never)
        .await
        .unwrap();
    assert!(matches!(
        running.origin,
        Some(turnpike::cluster::Origin::Backup { .. })
    ));
    let gw = format!("http://{}", running.addr("gateway-http").unwrap());
    let r = call(gw).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"nv": NV_SECRET, "cred": BACKEND_SECRET}));
    running.shutdown();
    running.wait().await;
}

#[test]
fn init_writes_a_private_master_key_file_outside_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("etc");
    let out = common::logscan::output(
        "turnpike init",
        Command::new(BIN)
            .args(["init", "--dir", target.to_str().unwrap()])
            .current_dir(dir.path()),
    );
    assert!(out.status.success(), "{out:?}");
    let settings = turnpike::Settings::load(&target.join("config.toml")).unwrap();
    let file = settings.node.master_key_file.unwrap();
    assert!(file.is_absolute(), "{}", file.display());
    assert_eq!(file, target.canonicalize().unwrap().join("master.key"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(turnpike::store::seal::MasterKey::parse(&text).is_ok());
    common::logscan::secret("generated master key", &text);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(text.trim()), "the key is never printed");
}

//! Log capture and the suite-wide secret scan.
//!
//! Every test process that starts a [`super::TestApp`] installs (once) a
//! global `tracing` subscriber at `trace` for the appliance's own targets
//! (`turnpike::*` and the `access` log), `info` for the rest, formatting
//! each event twice, pretty and JSON, into
//! `{CARGO_TARGET_TMPDIR}/test-logs/<binary>-<pid>.log`. The stdout and
//! stderr of the real binary started by the tests are appended to the
//! same file ([`record`]).
//!
//! Every secret the harness creates or sees (the admin key, subscription
//! keys in any management response, secret named values, passwords,
//! client secrets, private-key PEM lines, gateway tokens, the master key,
//! secrets in a spawned binary's configuration) is appended to
//! `<binary>-<pid>.secrets` as one JSON line `{"what", "value"}`
//! ([`secret`]).
//!
//! `tests/log_scan.rs::captured_logs_hold_no_registered_secret` (ignored
//! by plain `cargo test`; `.ci/run` runs it after the suite) reads every
//! capture and every registered secret and fails on any occurrence: the
//! whole value, or, for values of 16 characters or more, their first 12
//! characters (a truncated key is still a leak; a 4-character hint is
//! not).

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Shortest value worth registering: shorter ones match by chance.
pub const MIN_LEN: usize = 8;
/// Length of the prefix that is also searched for in long secrets.
pub const PREFIX: usize = 12;

/// Where captures and secrets go.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-logs")
}

struct Capture {
    log: Arc<std::fs::File>,
    log_path: PathBuf,
    secrets: Mutex<(std::fs::File, std::collections::HashSet<String>)>,
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let dir = dir();
        std::fs::create_dir_all(&dir).unwrap();
        let exe = std::env::current_exe().unwrap();
        let stem = exe
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("test")
            .to_string();
        // `cli-0a1b2c3d` -> `cli`: the binary's name without cargo's hash.
        let name = match stem.rsplit_once('-') {
            Some((n, h)) if h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
                n.to_string()
            }
            _ => stem,
        };
        let base = format!("{name}-{}", std::process::id());
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap()
        };
        let log_path = dir.join(format!("{base}.log"));
        Capture {
            log: Arc::new(open(&log_path)),
            secrets: Mutex::new((
                open(&dir.join(format!("{base}.secrets"))),
                Default::default(),
            )),
            log_path,
        }
    })
}

/// This process's capture file.
pub fn log_path() -> PathBuf {
    capture().log_path.clone()
}

/// Installs the capturing subscriber (once per process).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let c = capture();
        let filter = tracing_subscriber::EnvFilter::new(format!(
            "info,turnpike=trace,{}=trace",
            turnpike::telemetry::ACCESS_TARGET
        ));
        let pretty = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(c.log.clone());
        let json = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(c.log.clone());
        let sub = tracing_subscriber::registry()
            .with(filter)
            .with(pretty)
            .with(json);
        // A test binary that set its own subscriber first keeps it.
        let _ = tracing::subscriber::set_global_default(sub);
    });
}

/// Registers `value` (described by `what`) as a secret that must never
/// appear in a capture. Values shorter than [`MIN_LEN`] are ignored.
pub fn secret(what: &str, value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_LEN {
        return;
    }
    let c = capture();
    let mut g = c.secrets.lock().unwrap_or_else(|e| e.into_inner());
    if g.1.insert(value.to_string()) {
        let mut line = serde_json::to_vec(&serde_json::json!({"what": what, "value": value}))
            .unwrap_or_default();
        line.push(b'\n');
        let _ = g.0.write_all(&line);
    }
}

/// Registers the base64 lines of every private-key block in `pem`.
pub fn private_key_pem(what: &str, pem: &str) {
    let mut inside = false;
    for line in pem.lines() {
        let l = line.trim();
        if l.starts_with("-----BEGIN") && l.contains("PRIVATE KEY") {
            inside = true;
        } else if l.starts_with("-----END") {
            inside = false;
        } else if inside && l.len() >= 40 {
            secret(what, l);
        }
    }
}

/// JSON field names whose string values are secrets.
const SECRET_FIELDS: &[&str] = &[
    "primaryKey",
    "secondaryKey",
    "password",
    "clientSecret",
    "client_secret",
    "parameter",
    "admin_key",
    "adminKey",
    "token",
    "pfx",
    "data",
];

/// Registers the secrets in a management request or response body: the
/// fields in [`SECRET_FIELDS`], a named value's `value` when `secret` is
/// true, a token response's `value`, and private-key PEM text anywhere.
pub fn json(what: &str, v: &Value) {
    match v {
        Value::Object(m) => {
            let is_secret = m.get("secret") == Some(&Value::Bool(true));
            let is_token = m.contains_key("expiry") && m.len() <= 3;
            for (k, x) in m {
                if let Value::String(s) = x {
                    if SECRET_FIELDS.contains(&k.as_str())
                        || (k == "value" && (is_secret || is_token))
                    {
                        secret(&format!("{what} {k}"), s);
                    }
                }
                json(what, x);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| json(what, x)),
        Value::String(s) if s.contains("PRIVATE KEY-----") => private_key_pem(what, s),
        _ => {}
    }
}

/// Registers the secrets in a policy document: the text of `<key>`
/// elements (signing and decryption keys) and the values of `password`,
/// `client-secret` and `secret` attributes, unless they are expressions
/// or named-value references.
pub fn policy_xml(what: &str, xml: &str) {
    static PATTERNS: OnceLock<[regex::Regex; 2]> = OnceLock::new();
    let [elem, attr] = PATTERNS.get_or_init(|| {
        [
            regex::Regex::new(r"<key(?:\s[^>]*)?>([^<]+)</key>").unwrap(),
            regex::Regex::new(r#"\s(?:password|client-secret|secret)="([^"]+)""#).unwrap(),
        ]
    });
    for re in [elem, attr] {
        for c in re.captures_iter(xml) {
            let v = c[1].trim();
            if !v.starts_with('@') && !v.starts_with("{{") {
                secret(&format!("{what} policy"), v);
            }
        }
    }
}

/// Registers secrets in a TOML configuration text (as a spawned binary
/// reads it): `admin_key`, `token`, `client_secret`, and a password in a
/// URL's user info.
pub fn config(what: &str, text: &str) {
    fn walk(what: &str, v: &toml::Value) {
        match v {
            toml::Value::Table(t) => {
                for (k, x) in t {
                    if let toml::Value::String(s) = x {
                        if ["admin_key", "token", "client_secret"].contains(&k.as_str()) {
                            secret(&format!("{what} {k}"), s);
                        }
                        if let Some((userinfo, _)) =
                            s.split_once("://").and_then(|(_, r)| r.split_once('@'))
                        {
                            if let Some((_, pw)) = userinfo.split_once(':') {
                                secret(&format!("{what} {k} password"), pw);
                            }
                        }
                    }
                    walk(what, x);
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|x| walk(what, x)),
            _ => {}
        }
    }
    if let Ok(v) = text.parse::<toml::Value>() {
        walk(what, &v);
    }
}

/// Appends output of a spawned process (`label` names it) to the capture.
pub fn record(label: &str, text: &[u8]) {
    let mut f: &std::fs::File = &capture().log;
    let mut buf = format!("==== {label}\n").into_bytes();
    buf.extend_from_slice(text);
    if !buf.ends_with(b"\n") {
        buf.push(b'\n');
    }
    let _ = f.write_all(&buf);
}

/// What an in-process appliance writes as logs besides its events: the
/// access-log file and the file loggers' directory (`{data_dir}/logs`).
pub fn written_logs(s: &turnpike::Settings) -> Vec<PathBuf> {
    let data = &s.node.data_dir;
    let mut v = vec![data.join("logs")];
    if let Some(f) = &s.telemetry.access_log_file {
        v.push(data.join(f));
    }
    v
}

/// Appends the files in `paths` (a directory: its files, recursively) to
/// the capture.
pub fn record_files(paths: &[PathBuf]) {
    for p in paths {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                let mut inner: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
                inner.sort();
                record_files(&inner);
            }
        } else if let Ok(text) = std::fs::read(p) {
            record(&format!("file {}", p.display()), &text);
        }
    }
}

/// `cmd.output()`, with stdout and stderr recorded under `label`.
pub fn output(label: &str, cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    record(&format!("{label} stdout"), &out.stdout);
    record(&format!("{label} stderr"), &out.stderr);
    out
}

/// One registered secret found in a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    pub line: usize,
    pub what: String,
    /// The first 4 characters of the secret and `…`.
    pub hint: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} ({}) appears in the log",
            self.file.display(),
            self.line,
            self.what,
            self.hint
        )
    }
}

/// What is searched for: each needle and the secret it belongs to.
pub struct Needles {
    pattern: Option<regex::bytes::Regex>,
    owner: BTreeMap<Vec<u8>, (String, String)>,
}

impl Needles {
    /// Needles for `secrets` (`(what, value)` pairs).
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Needles {
        let mut owner = BTreeMap::new();
        for (what, value) in secrets {
            let hint: String = value.chars().take(4).collect::<String>() + "…";
            let mut add = |n: &str| {
                owner
                    .entry(n.as_bytes().to_vec())
                    .or_insert_with(|| (what.to_string(), hint.clone()));
            };
            add(value);
            // `{id}&{expiry}&{signature}` tokens (gateway and debug tokens)
            // start with a public id that logs name on purpose: the secret
            // part is the signature.
            let secret = match value.rsplit_once('&') {
                Some((_, sig)) if sig.chars().count() >= 8 => {
                    add(sig);
                    sig
                }
                _ => value,
            };
            if secret.chars().count() >= 16 {
                add(&secret.chars().take(PREFIX).collect::<String>());
            }
        }
        let alternation: Vec<String> = owner
            .keys()
            .map(|k| regex::escape(&String::from_utf8_lossy(k)))
            .collect();
        let pattern = (!alternation.is_empty()).then(|| {
            regex::bytes::RegexBuilder::new(&alternation.join("|"))
                .size_limit(1 << 30)
                .dfa_size_limit(1 << 30)
                .build()
                .unwrap()
        });
        Needles { pattern, owner }
    }

    /// The needles found in `text` (a capture read from `file`).
    pub fn scan(&self, file: &Path, text: &[u8]) -> Vec<Finding> {
        let Some(p) = &self.pattern else {
            return vec![];
        };
        let mut found = vec![];
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            for m in p.find_iter(line) {
                if let Some((what, hint)) = self.owner.get(m.as_bytes()) {
                    found.push(Finding {
                        file: file.to_path_buf(),
                        line: i + 1,
                        what: what.clone(),
                        hint: hint.clone(),
                    });
                }
            }
        }
        found
    }
}

/// Every secret registered in `dir`'s `*.secrets` files.
pub fn registered(dir: &Path) -> Vec<(String, String)> {
    let mut out = vec![];
    for f in files(dir, "secrets") {
        for line in std::fs::read_to_string(&f).unwrap_or_default().lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                if let (Some(w), Some(s)) = (v["what"].as_str(), v["value"].as_str()) {
                    out.push((w.to_string(), s.to_string()));
                }
            }
        }
    }
    out
}

/// The files in `dir` ending in `.{ext}`, sorted.
pub fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Registers the secrets in `settings` an in-process appliance starts with.
pub fn settings(s: &turnpike::Settings) {
    if let Some(k) = &s.management.admin_key {
        secret("[management] admin_key", k.expose());
    }
    if let Some(t) = &s.cluster.token {
        secret("[cluster] token", t.expose());
    }
    if let Some(c) = &s.identity.client_secret {
        secret("[identity] client_secret", c.expose());
    }
    if let Some(u) = &s.redis.url {
        config("[redis] url", &format!("url = {:?}", u.expose()));
    }
}

/// The files an in-process appliance may generate its master key and
/// admin key into.
pub fn key_files(s: &turnpike::Settings) -> Vec<PathBuf> {
    let data = &s.node.data_dir;
    vec![
        s.node
            .master_key_file
            .clone()
            .unwrap_or_else(|| data.join("master.key")),
        data.join("admin.key"),
    ]
}

/// Registers the keys in `files` (see [`key_files`]) once they exist.
pub fn master_key(files: &[PathBuf]) {
    for f in files {
        if let Ok(text) = std::fs::read_to_string(f) {
            secret(&format!("key file {}", f.display()), &text);
        }
    }
}

/// Reads a management response, registers the secrets in its JSON body,
/// and hands back an equal response.
pub async fn response(what: &str, r: reqwest::Response) -> reqwest::Response {
    let status = r.status();
    let version = r.version();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
        json(what, &v);
    }
    let mut b = http::Response::builder().status(status).version(version);
    if let Some(h) = b.headers_mut() {
        *h = headers;
    }
    reqwest::Response::from(b.body(body).unwrap())
}

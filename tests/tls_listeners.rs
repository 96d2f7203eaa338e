//! TLS on the management and portal listeners, cluster trust
//! (`[cluster] ca_cert`), `turnpike init --ca`, and the rule that the
//! configuration export goes over TLS (or to a loopback peer) only. Real
//! sockets on 127.0.0.1:0, the real `run(...)` or the real binary, and a
//! tokio-rustls client that trusts only the CA the test made.

mod common;

use bytes::Bytes;
use common::procs::{Proc, BIN};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use turnpike::shutdown::{self, Trigger};
use turnpike::{Options, Running, Settings};

const ADMIN: &str = common::ADMIN;

/// A CA under `dir/tls` and the node certificate it issued
/// (`tls/gateway.crt|key`) for localhost and 127.0.0.1.
fn make_ca(dir: &Path) -> turnpike::tls::ca::Issued {
    let (cert, key) = turnpike::tls::default_paths(dir);
    turnpike::tls::ca::create(
        dir,
        &cert,
        &key,
        vec!["localhost".into(), "127.0.0.1".into()],
    )
    .unwrap()
}

/// A client trusting only the CA certificate at `ca`.
fn client_config(ca: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let roots = turnpike::tls::ca::root_store(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// One HTTPS request (HTTP/2 when ALPN chose it): status, headers, body.
async fn https(
    config: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (http::StatusCode, http::HeaderMap, http::Version, Bytes) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(config.clone())
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("https://localhost:{}{path}", addr.port()))
        .header("host", format!("localhost:{}", addr.port()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let payload = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let req = req.body(Full::new(payload)).unwrap();
    let resp = if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, parts.version, bytes)
}

/// The management API over TLS with the admin key.
struct Mgmt {
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
}

impl Mgmt {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Bearer {ADMIN}");
        let (status, _, _, bytes) = https(
            &self.config,
            self.addr,
            method,
            &format!("/mgmt{path}"),
            &[("authorization", &auth)],
            body,
        )
        .await;
        (
            status.as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.send(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// An API at `/{id}` (subscription required: a keyless call is 401).
    async fn api(&self, id: &str) {
        self.ok(
            "PUT",
            &format!("/apis/{id}"),
            Some(json!({"displayName": id, "path": id, "serviceUrl": "http://127.0.0.1:9"})),
        )
        .await;
        self.ok(
            "PUT",
            &format!("/apis/{id}/operations/all"),
            Some(json!({"method": "*", "urlTemplate": "/*"})),
        )
        .await;
    }

    /// Registers gateway `gid` and returns a fresh token for it.
    async fn token(&self, gid: &str) -> String {
        self.ok(
            "PUT",
            &format!("/gateways/{gid}"),
            Some(json!({"locationData": {"name": "West"}})),
        )
        .await;
        let t = self
            .ok("POST", &format!("/gateways/{gid}/token"), Some(json!({})))
            .await;
        t["value"].as_str().unwrap().to_string()
    }
}

/// A running appliance and the trigger that stops it.
struct Node {
    running: Running,
    _stop: Trigger,
}

async fn start(settings: Settings) -> Result<Node, turnpike::app::StartError> {
    let (stop, signal) = shutdown::channel();
    let running = turnpike::run(settings, Options::default(), signal).await?;
    Ok(Node {
        running,
        _stop: stop,
    })
}

impl Node {
    fn addr(&self, name: &str) -> SocketAddr {
        self.running.addr(name).unwrap()
    }

    async fn stop(self) {
        self.running.shutdown();
        self.running.wait().await;
    }
}

/// A primary in `dir` whose management listener speaks TLS with the node
/// certificate of the CA made there.
fn tls_primary_settings(dir: &Path) -> Settings {
    let mut s = common::test_settings(dir);
    s.management.tls_cert = Some(PathBuf::from("tls/gateway.crt"));
    s.management.tls_key = Some(PathBuf::from("tls/gateway.key"));
    s.portal.enabled = false;
    s
}

/// A secondary of `primary` in `dir`, trusting `ca_cert`.
fn secondary_settings(dir: &Path, primary: &str, token: &str, ca_cert: &str) -> Settings {
    let mut s = common::test_settings(dir);
    s.management.admin_key = None;
    s.node.role = toml::Spanned::new(0..0, turnpike::config::Role::Secondary);
    s.cluster.primary = Some(primary.to_string());
    s.cluster.gateway_id = Some("west".into());
    s.cluster.token = Some(turnpike::error::Secret::new(token));
    s.cluster.poll_interval = Duration::from_millis(200);
    s.cluster.heartbeat_interval = Duration::from_millis(200);
    s.cluster.long_poll = false;
    s.cluster.ca_cert = Some(PathBuf::from(ca_cert));
    s
}

#[tokio::test]
async fn management_over_tls_answers_and_refuses_plain_http_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let issued = make_ca(dir.path());
    let node = start(tls_primary_settings(dir.path())).await.unwrap();
    let addr = node.addr("management");

    // HTTP/2 by ALPN, and HTTP/1.1 when that is all the client speaks.
    for (alpn, version) in [
        (&[&b"h2"[..], b"http/1.1"][..], http::Version::HTTP_2),
        (&[&b"http/1.1"[..]][..], http::Version::HTTP_11),
    ] {
        let config = client_config(&issued.ca_cert, alpn);
        let auth = format!("Bearer {ADMIN}");
        let (status, _, v, body) = https(
            &config,
            addr,
            "GET",
            "/mgmt/revision",
            &[("authorization", &auth)],
            None,
        )
        .await;
        assert_eq!(status, 200, "{body:?}");
        assert_eq!(v, version);
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert!(json["revision"].is_u64(), "{json}");
    }

    // Plain HTTP on the TLS port: a readable 400 saying to use https.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /mgmt/revision HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("HTTPS only"), "{answer}");

    // A broken handshake and a silent client do not stop the listener.
    let mut junk = tokio::net::TcpStream::connect(addr).await.unwrap();
    junk.write_all(&[0x16, 3, 1, 0, 4, 0xff, 0, 0, 0])
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), junk.read_to_end(&mut sink)).await;
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let config = client_config(&issued.ca_cert, &[b"http/1.1"]);
    let (status, _, _, _) = https(&config, addr, "GET", "/mgmt/revision", &[], None).await;
    assert_eq!(status, 401, "still serving after the bad clients");

    // A client that does not trust this CA gets no session.
    let other = tempfile::tempdir().unwrap();
    let stranger = make_ca(other.path());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let refused = TlsConnector::from(client_config(&stranger.ca_cert, &[]))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(refused.is_err(), "a certificate from another CA is refused");
    node.stop().await;
}

#[tokio::test]
async fn portal_over_tls_sets_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let issued = make_ca(dir.path());
    let mut s = common::test_settings(dir.path());
    s.portal.tls_cert = Some(PathBuf::from("tls/gateway.crt"));
    s.portal.tls_key = Some(PathBuf::from("tls/gateway.key"));
    let node = start(s).await.unwrap();
    let config = client_config(&issued.ca_cert, &[b"http/1.1"]);
    let (status, headers, _, _) =
        https(&config, node.addr("portal"), "GET", "/signin", &[], None).await;
    assert_eq!(status, 200);
    let cookies: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(!cookies.is_empty(), "the portal sets its CSRF cookie");
    for c in &cookies {
        assert!(c.ends_with("; Secure") || c.contains("; Secure;"), "{c}");
    }
    // The management listener stayed on plain HTTP.
    let mgmt = node.addr("management");
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{mgmt}/mgmt/revision"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    node.stop().await;

    // Without TLS, no `Secure` (a browser would drop it over http).
    let plain = tempfile::tempdir().unwrap();
    let node = start(common::test_settings(plain.path())).await.unwrap();
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}/signin", node.addr("portal")))
        .send()
        .await
        .unwrap();
    let c = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(!c.contains("Secure"), "{c}");
    node.stop().await;
}

#[tokio::test]
async fn a_secondary_trusting_the_ca_follows_a_tls_primary() {
    let pdir = tempfile::tempdir().unwrap();
    let issued = make_ca(pdir.path());
    let primary = start(tls_primary_settings(pdir.path())).await.unwrap();
    let addr = primary.addr("management");
    let mgmt = Mgmt {
        config: client_config(&issued.ca_cert, &[b"http/1.1"]),
        addr,
    };
    mgmt.api("first").await;
    let token = mgmt.token("west").await;

    // The CA copied into the secondary's data dir: a relative ca_cert.
    let sdir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(sdir.path().join("tls")).unwrap();
    std::fs::copy(&issued.ca_cert, sdir.path().join("tls/ca.crt")).unwrap();
    let url = format!("https://127.0.0.1:{}", addr.port());
    let secondary = start(secondary_settings(sdir.path(), &url, &token, "tls/ca.crt"))
        .await
        .unwrap();
    assert_eq!(
        secondary.running.origin,
        Some(turnpike::cluster::Origin::Primary)
    );
    let gw = secondary.addr("gateway-http");
    assert_eq!(
        common::gateway_status(gw, "/first/x").await,
        401,
        "first API served"
    );
    assert_eq!(common::gateway_status(gw, "/second/x").await, 404);

    // A change on the primary arrives over TLS.
    mgmt.api("second").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while common::gateway_status(gw, "/second/x").await != 401 {
        assert!(Instant::now() < deadline, "the change never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And the primary hears its heartbeats.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let g = mgmt.ok("GET", "/gateways/west", None).await;
        if g["status"] == "connected" {
            break;
        }
        assert!(Instant::now() < deadline, "never connected: {g}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    secondary.stop().await;
    primary.stop().await;
}

#[tokio::test]
async fn a_secondary_trusting_another_ca_refuses_the_primary() {
    let pdir = tempfile::tempdir().unwrap();
    let issued = make_ca(pdir.path());
    let primary = start(tls_primary_settings(pdir.path())).await.unwrap();
    let addr = primary.addr("management");
    let mgmt = Mgmt {
        config: client_config(&issued.ca_cert, &[b"http/1.1"]),
        addr,
    };
    mgmt.api("first").await;
    let token = mgmt.token("west").await;
    let url = format!("https://127.0.0.1:{}", addr.port());

    // The real binary, another CA, no backup: it refuses to start and says
    // why, naming the primary.
    let sdir = tempfile::tempdir().unwrap();
    let stranger = make_ca(&sdir.path().join("other"));
    let config = format!(
        "[node]\nrole = \"secondary\"\ndata_dir = {data:?}\n\n\
         [gateway]\nhttp = \"127.0.0.1:0\"\n\n\
         [cluster]\nprimary = \"{url}\"\ngateway_id = \"west\"\ntoken = \"{token}\"\n\
         ca_cert = {ca:?}\nbackup = false\n",
        data = sdir.path().display().to_string(),
        ca = stranger.ca_cert.display().to_string(),
    );
    let run_dir = sdir.path().to_path_buf();
    // Off the runtime: the primary serves on this test's thread.
    let (status, log) =
        tokio::task::spawn_blocking(move || Proc::run_to_exit(&run_dir, "west", &config))
            .await
            .unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("NOT TRUSTED"), "{log}");
    assert!(log.contains(&url), "{log}");
    assert!(log.contains("not trusted"), "{log}");
    // The token never reached the primary.
    let g = mgmt.ok("GET", "/gateways/west", None).await;
    assert_eq!(g["lastConfigRequest"], Value::Null, "{g}");

    // Fail-static: a secondary with a backup from a trusted run keeps
    // serving it and applies nothing from the untrusted primary.
    let bdir = tempfile::tempdir().unwrap();
    let ca = issued.ca_cert.display().to_string();
    let trusted = start(secondary_settings(bdir.path(), &url, &token, &ca))
        .await
        .unwrap();
    trusted.stop().await;
    let other = stranger.ca_cert.display().to_string();
    let secondary = start(secondary_settings(bdir.path(), &url, &token, &other))
        .await
        .unwrap();
    match &secondary.running.origin {
        Some(turnpike::cluster::Origin::Backup { reason }) => {
            assert!(reason.contains("not trusted"), "{reason}")
        }
        o => panic!("expected the backup, got {o:?}"),
    }
    let gw = secondary.addr("gateway-http");
    assert_eq!(common::gateway_status(gw, "/first/x").await, 401);
    mgmt.api("second").await;
    // Several polls' worth: nothing is applied.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(common::gateway_status(gw, "/second/x").await, 404);
    secondary.stop().await;
    primary.stop().await;
}

#[tokio::test]
async fn a_bad_listener_key_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path());
    std::fs::write(
        dir.path().join("tls/gateway.key"),
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = match start(tls_primary_settings(dir.path())).await {
        Ok(_) => panic!("started with a bad key"),
        Err(e) => e.to_string(),
    };
    assert!(e.starts_with("management.tls: "), "{e}");
    assert!(e.contains("gateway.key"), "{e}");
    assert!(!e.contains("c2VjcmV0"), "{e}");
    // The binary exits 2 on it.
    let config = format!(
        "[node]\ndata_dir = {data:?}\n[gateway]\nhttp = \"127.0.0.1:0\"\n\
         [management]\nlisten = \"127.0.0.1:0\"\nadmin_key = \"{ADMIN}\"\n\
         tls_cert = \"tls/gateway.crt\"\ntls_key = \"tls/gateway.key\"\n\
         [portal]\nenabled = false\n",
        data = dir.path().display().to_string()
    );
    let (status, log) = Proc::run_to_exit(dir.path(), "bad", &config);
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("management.tls: "), "{log}");
    assert!(log.contains("gateway.key"), "{log}");
    assert!(!log.contains("c2VjcmV0"), "{log}");
}

#[tokio::test]
async fn init_ca_writes_a_ca_and_a_node_certificate_that_chains_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::logscan::output(
        "turnpike init --ca",
        std::process::Command::new(BIN)
            .args(["init", "--ca", "--dir"])
            .arg(dir.path()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("ca.crt"), "{stdout}");
    let tls = dir.path().join("data/tls");
    for f in ["ca.crt", "ca.key", "gateway.crt", "gateway.key"] {
        assert!(tls.join(f).is_file(), "{f} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["ca.key", "gateway.key", "../../config.toml"] {
            let mode = std::fs::metadata(tls.join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    let ca_pem = std::fs::read_to_string(tls.join("ca.crt")).unwrap();
    assert!(!ca_pem.contains("PRIVATE KEY"));

    // The generated configuration runs (on port 0) with management and
    // portal on TLS, and a client trusting only the CA gets through.
    let mut s = Settings::load(&dir.path().join("config.toml")).unwrap();
    assert_eq!(
        s.management.tls_cert.as_deref(),
        Some(Path::new("tls/gateway.crt"))
    );
    assert!(s.portal.tls_cert.is_some());
    s.node.data_dir = dir.path().join("data");
    s.gateway.http = "127.0.0.1:0".parse().unwrap();
    s.gateway.https = Some(toml::Spanned::new(0..0, "127.0.0.1:0".parse().unwrap()));
    s.management.listen = "127.0.0.1:0".parse().unwrap();
    s.portal.listen = "127.0.0.1:0".parse().unwrap();
    let key = s.management.admin_key.clone().unwrap();
    let node = start(s).await.unwrap();
    let config = client_config(&tls.join("ca.crt"), &[b"http/1.1"]);
    let auth = format!("Bearer {}", key.expose());
    let (status, _, _, body) = https(
        &config,
        node.addr("management"),
        "GET",
        "/mgmt/revision",
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body:?}");
    for listener in ["portal", "gateway-https"] {
        let tcp = tokio::net::TcpStream::connect(node.addr(listener))
            .await
            .unwrap();
        TlsConnector::from(config.clone())
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap_or_else(|e| panic!("{listener}: {e}"));
    }
    node.stop().await;

    // A second `init --ca` into a fresh directory that already holds a CA
    // refuses, and writes no configuration pointing at it.
    let again = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(again.path().join("data/tls")).unwrap();
    std::fs::copy(tls.join("ca.crt"), again.path().join("data/tls/ca.crt")).unwrap();
    let out = common::logscan::output(
        "turnpike init --ca",
        std::process::Command::new(BIN)
            .args(["init", "--ca", "--dir"])
            .arg(again.path()),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert!(!again.path().join("config.toml").exists());
}

/// A local address that is not loopback (this host's own), if it has one.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn the_export_goes_over_plain_http_only_to_loopback_peers() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("SKIPPED: this host has no non-loopback address");
        return;
    };
    // Plain HTTP from a non-loopback peer: 403 naming the fix.
    let dir = tempfile::tempdir().unwrap();
    let mut s = common::test_settings(dir.path());
    s.management.listen = SocketAddr::new(ip, 0);
    s.portal.enabled = false;
    let node = start(s).await.unwrap();
    let base = format!("http://{}", node.addr("management"));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    client
        .put(format!("{base}/mgmt/gateways/west"))
        .bearer_auth(ADMIN)
        .json(&json!({"locationData": {"name": "West"}}))
        .send()
        .await
        .unwrap();
    let token: Value = client
        .post(format!("{base}/mgmt/gateways/west/token"))
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["value"].as_str().unwrap().to_string();
    let r = client
        .get(format!("{base}/cluster/v1/config"))
        .header("authorization", format!("GatewayKey {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NotSupported", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("tls_cert/tls_key"), "{message}");
    assert!(message.contains("allow_plaintext_export"), "{message}");
    node.stop().await;

    // The explicit opt-out serves it.
    let mut s = common::test_settings(dir.path());
    s.management.listen = SocketAddr::new(ip, 0);
    s.portal.enabled = false;
    s.cluster.allow_plaintext_export = true;
    let node = start(s).await.unwrap();
    let r = client
        .get(format!(
            "http://{}/cluster/v1/config",
            node.addr("management")
        ))
        .header("authorization", format!("GatewayKey {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    node.stop().await;

    // Over TLS, from the same non-loopback peer: served.
    let tdir = tempfile::tempdir().unwrap();
    let (cert, key) = turnpike::tls::default_paths(tdir.path());
    let issued = turnpike::tls::ca::create(
        tdir.path(),
        &cert,
        &key,
        vec!["localhost".into(), ip.to_string()],
    )
    .unwrap();
    let mut s = tls_primary_settings(tdir.path());
    s.management.listen = SocketAddr::new(ip, 0);
    let node = start(s).await.unwrap();
    let mgmt = Mgmt {
        config: client_config(&issued.ca_cert, &[b"http/1.1"]),
        addr: node.addr("management"),
    };
    let token = mgmt.token("west").await;
    let auth = format!("GatewayKey {token}");
    let (status, _, _, _) = https(
        &mgmt.config,
        mgmt.addr,
        "GET",
        "/cluster/v1/config",
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    node.stop().await;
}

#[tokio::test]
async fn cluster_join_with_ca_cert_writes_a_trusting_secondary() {
    let pdir = tempfile::tempdir().unwrap();
    let issued = make_ca(pdir.path());
    let primary = start(tls_primary_settings(pdir.path())).await.unwrap();
    let url = format!("https://127.0.0.1:{}", primary.addr("management").port());
    let work = tempfile::tempdir().unwrap();
    let join = |ca: Option<PathBuf>| {
        let (url, cwd) = (url.clone(), work.path().to_path_buf());
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(BIN);
            cmd.current_dir(&cwd)
                .args(["cluster", "join", "--primary", &url, "--admin-key", ADMIN])
                .args(["--gateway-id", "west", "--region", "West"])
                .args(["--http", "127.0.0.1:0", "--output", "west.toml"]);
            if let Some(ca) = ca {
                cmd.arg("--ca-cert").arg(ca);
            }
            common::logscan::output("turnpike cluster join", &mut cmd)
        })
    };
    // Without the CA the join refuses the primary's certificate.
    let out = join(None).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not trusted"), "{err}");
    assert!(!work.path().join("west.toml").exists());

    let out = join(Some(issued.ca_cert.clone())).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let path = work.path().join("west.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("ca_cert = "), "{text}");
    let mut s = Settings::load(&path).unwrap();
    assert!(s.cluster.ca_cert.as_ref().unwrap().is_absolute());
    s.node.data_dir = work.path().join("data-west");
    let secondary = start(s).await.unwrap();
    assert_eq!(
        secondary.running.origin,
        Some(turnpike::cluster::Origin::Primary)
    );
    secondary.stop().await;
    primary.stop().await;
}

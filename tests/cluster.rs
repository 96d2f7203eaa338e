//! Cluster mode with real processes: one primary and two secondaries
//! ("West US", "East Asia"), each a separate OS process of the real binary,
//! on loopback. One scenario walks through the behaviours DESIGN.md §8
//! promises, in order, printing what it measures.

mod common;

use common::procs::{free_port, Proc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ADMIN: &str = "cluster-admin-key-0123456789";
/// Long enough that plain polling could not explain a fast propagation.
const POLL: &str = "5s";
const HEARTBEAT: &str = "300ms";

struct Admin {
    client: reqwest::Client,
    base: String,
}

impl Admin {
    fn new(mgmt: &str) -> Admin {
        Admin {
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: format!("{mgmt}/mgmt"),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn put(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put_xml(&self, path: &str, xml: String) {
        let resp = self
            .client
            .put(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/xml")
            .body(xml)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert!(
            status.is_success(),
            "{status} {}",
            resp.text().await.unwrap()
        );
    }

    async fn revision(&self) -> u64 {
        self.get("/revision").await["revision"].as_u64().unwrap()
    }

    /// Registers gateway `gid` and mints a token for it.
    async fn token(&self, gid: &str, region: &str, expiry: Option<&str>) -> String {
        self.put(
            &format!("/gateways/{gid}"),
            json!({"locationData": {"name": region}}),
        )
        .await;
        let body = match expiry {
            Some(e) => json!({ "expiry": e }),
            None => json!({}),
        };
        self.post(&format!("/gateways/{gid}/token"), body).await["value"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// The regional routing policy of the seed, plus a version header the
/// test moves to observe propagation.
fn regional_policy(echo: &str, version: &str) -> String {
    format!(
        r#"<policies>
  <inbound>
    <base />
    <choose>
      <when condition='@(context.Deployment.Region == "West US")'>
        <set-backend-service base-url="{echo}/west" />
      </when>
      <when condition='@(context.Deployment.Region == "East Asia")'>
        <set-backend-service base-url="{echo}/east" />
      </when>
      <otherwise>
        <set-backend-service base-url="{echo}/default" />
      </otherwise>
    </choose>
  </inbound>
  <backend><base /></backend>
  <outbound>
    <base />
    <set-header name="x-config-version" exists-action="override">
      <value>{version}</value>
    </set-header>
    <set-header name="x-gateway" exists-action="override">
      <value>@(context.Deployment.GatewayId)</value>
    </set-header>
  </outbound>
  <on-error><base /></on-error>
</policies>"#
    )
}

fn primary_config(dir: &Path, mgmt_port: u16) -> String {
    format!(
        "[node]\nregion = \"Central\"\ndata_dir = \"{}\"\nshutdown_timeout = \"2s\"\n\
         [gateway]\nhttp = \"127.0.0.1:0\"\n\
         [management]\nlisten = \"127.0.0.1:{mgmt_port}\"\nadmin_key = \"{ADMIN}\"\n\
         [portal]\nlisten = \"127.0.0.1:0\"\n\
         [telemetry]\naccess_log = false\n",
        dir.join("primary-data").display()
    )
}

fn secondary_config(
    dir: &Path,
    name: &str,
    region: &str,
    primary: &str,
    token: &str,
    backup: bool,
) -> String {
    let gid = token.split('&').next().unwrap();
    format!(
        "[node]\nrole = \"secondary\"\nregion = \"{region}\"\ndata_dir = \"{}\"\n\
         shutdown_timeout = \"2s\"\n\
         [gateway]\nhttp = \"127.0.0.1:0\"\n\
         [cluster]\nprimary = \"{primary}\"\ngateway_id = \"{gid}\"\ntoken = \"{token}\"\n\
         poll_interval = \"{POLL}\"\nheartbeat_interval = \"{HEARTBEAT}\"\nbackup = {backup}\n\
         [telemetry]\naccess_log = false\n",
        dir.join(format!("{name}-data")).display()
    )
}

async fn start(dir: PathBuf, name: &str, config: String, expect: &'static [&'static str]) -> Proc {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || Proc::start(&dir, &name, &config, expect))
        .await
        .unwrap()
}

/// One call through a gateway: (status, echo path the backend saw,
/// x-config-version).
async fn call(client: &reqwest::Client, gw: &str) -> (u16, String, String) {
    let resp = match client.get(format!("{gw}/regional/hello")).send().await {
        Ok(r) => r,
        Err(e) => return (0, e.to_string(), String::new()),
    };
    let status = resp.status().as_u16();
    let version = resp
        .headers()
        .get("x-config-version")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["path"].as_str().unwrap_or("").to_string(),
        version,
    )
}

/// Polls `gw` until it serves `version`; returns how long that took.
async fn until_version(
    client: &reqwest::Client,
    gw: &str,
    version: &str,
    within: Duration,
) -> Duration {
    let t = Instant::now();
    loop {
        let (status, _, v) = call(client, gw).await;
        if status == 200 && v == version {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < within,
            "{gw} did not serve {version} within {within:?} (last: {status} {v:?})"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn status_probe(client: &reqwest::Client, gw: &str) -> u16 {
    client
        .get(format!("{gw}/status-0123456789abcdef"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `GET /mgmt/gateways` entry for `gid`.
async fn gateway_entry(admin: &Admin, gid: &str) -> Value {
    let list = admin.get("/gateways").await;
    list["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == gid)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_and_two_secondaries_as_separate_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (_echo_stop, echo_rx) = turnpike::shutdown::channel();
    let echo = format!(
        "http://{}",
        turnpike::app::echo::spawn(echo_rx).await.unwrap()
    );

    // The primary comes back on the same management address after a kill.
    let port = free_port();
    let mut primary = start(
        dir.clone(),
        "primary",
        primary_config(&dir, port),
        &["gateway-http", "management"],
    )
    .await;
    let primary_url = primary.url("management");
    let admin = Admin::new(&primary_url);
    admin
        .put(
            "/apis/regional",
            json!({"displayName": "Regional", "path": "regional", "serviceUrl": echo,
                   "subscriptionRequired": false}),
        )
        .await;
    admin
        .put(
            "/apis/regional/operations/hello",
            json!({"displayName": "Hello", "method": "GET", "urlTemplate": "/hello"}),
        )
        .await;
    admin
        .put_xml("/apis/regional/policy", regional_policy(&echo, "v1"))
        .await;
    let west_token = admin.token("west-us-1", "West US", None).await;
    let east_token = admin.token("east-asia-1", "East Asia", None).await;
    let lonely_token = admin.token("no-backup-1", "West US", None).await;

    let west_cfg = secondary_config(&dir, "west", "West US", &primary_url, &west_token, true);
    let east_cfg = secondary_config(&dir, "east", "East Asia", &primary_url, &east_token, true);
    let mut west = start(dir.clone(), "west", west_cfg.clone(), &["gateway-http"]).await;
    let east = start(dir.clone(), "east", east_cfg, &["gateway-http"]).await;
    assert!(
        !west.listeners.contains_key("management"),
        "a secondary serves no management API"
    );
    let (primary_gw, mut west_gw, east_gw) = (
        primary.url("gateway-http"),
        west.url("gateway-http"),
        east.url("gateway-http"),
    );

    // 1. Each region's traffic goes to its own backend.
    for (gw, expected) in [
        (&west_gw, "/west/hello"),
        (&east_gw, "/east/hello"),
        (&primary_gw, "/default/hello"),
    ] {
        let (status, path, version) = call(&client, gw).await;
        assert_eq!(
            (status, path.as_str(), version.as_str()),
            (200, expected, "v1")
        );
    }
    println!("1. regional routing: West US -> /west, East Asia -> /east, primary -> /default");

    // 8. The primary lists both secondaries with their applied revision.
    let rev = admin.revision().await;
    let t = Instant::now();
    loop {
        let w = gateway_entry(&admin, "west-us-1").await;
        let e = gateway_entry(&admin, "east-asia-1").await;
        if w["status"] == "connected" && e["status"] == "connected" {
            assert_eq!(w["revision"], rev, "{w}");
            assert_eq!(e["revision"], rev, "{e}");
            assert_eq!(w["region"], "West US");
            assert_eq!(e["region"], "East Asia");
            assert_eq!(w["lag"], 0);
            assert_eq!(w["configSource"], "primary");
            assert!(w["lastHeartbeat"].is_string());
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{w} {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("8. GET /mgmt/gateways: both connected at revision {rev}");

    // 2. A change reaches both secondaries within one long-poll round.
    let t0 = Instant::now();
    admin
        .put_xml("/apis/regional/policy", regional_policy(&echo, "v2"))
        .await;
    let write = t0.elapsed();
    let (w, e) = tokio::join!(
        until_version(&client, &west_gw, "v2", Duration::from_secs(5)),
        until_version(&client, &east_gw, "v2", Duration::from_secs(5)),
    );
    println!(
        "2. propagation after the write was acknowledged: West US {:.1} ms, East Asia {:.1} ms \
         (write {:.1} ms, poll interval {POLL})",
        w.as_secs_f64() * 1e3,
        e.as_secs_f64() * 1e3,
        write.as_secs_f64() * 1e3
    );

    // 3. kill -9 of the primary: both secondaries keep answering.
    primary.kill9();
    let t = Instant::now();
    let mut served = 0;
    while t.elapsed() < Duration::from_secs(2) {
        for (gw, expected) in [(&west_gw, "/west/hello"), (&east_gw, "/east/hello")] {
            let (status, path, version) = call(&client, gw).await;
            assert_eq!(
                (status, path.as_str(), version.as_str()),
                (200, expected, "v2"),
                "a secondary stopped serving after the primary died"
            );
            served += 1;
        }
    }
    assert!(west.wait_for_log("lost the primary", Duration::from_secs(10)));
    println!("3. primary killed: {served} requests answered by the secondaries, all 200");

    // 4. Restarted during the outage: with a backup it serves the last
    //    configuration; without one it refuses to start, naming the primary.
    assert_eq!(west.stop().map(|s| s.success()), Some(true));
    west = start(dir.clone(), "west", west_cfg.clone(), &["gateway-http"]).await;
    west_gw = west.url("gateway-http");
    assert!(
        west.wait_for_log("serving the configuration backup", Duration::from_secs(5)),
        "{}",
        west.log_text()
    );
    let (status, path, version) = call(&client, &west_gw).await;
    assert_eq!(
        (status, path.as_str(), version.as_str()),
        (200, "/west/hello", "v2")
    );
    let lonely_dir = dir.clone();
    let lonely_cfg = secondary_config(
        &dir,
        "lonely",
        "West US",
        &primary_url,
        &lonely_token,
        false,
    );
    let (exit, log) =
        tokio::task::spawn_blocking(move || Proc::run_to_exit(&lonely_dir, "lonely", &lonely_cfg))
            .await
            .unwrap();
    assert!(!exit.success(), "{log}");
    assert!(log.contains(&primary_url), "{log}");
    assert!(log.contains("backup = false"), "{log}");
    println!("4. restart without the primary: from backup -> serves v2; backup = false -> {exit}");

    // 5. The primary returns (same store, same address); a change made on
    //    it reaches both secondaries.
    primary = start(
        dir.clone(),
        "primary",
        primary_config(&dir, port),
        &["gateway-http", "management"],
    )
    .await;
    let t0 = Instant::now();
    admin
        .put_xml("/apis/regional/policy", regional_policy(&echo, "v3"))
        .await;
    let (w, e) = tokio::join!(
        until_version(&client, &west_gw, "v3", Duration::from_secs(20)),
        until_version(&client, &east_gw, "v3", Duration::from_secs(20)),
    );
    println!(
        "5. primary back: v3 reached West US in {:.0} ms, East Asia in {:.0} ms (since the write: {:.0} ms)",
        w.as_secs_f64() * 1e3,
        e.as_secs_f64() * 1e3,
        t0.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    loop {
        let w = gateway_entry(&admin, "west-us-1").await;
        if w["status"] == "connected" && w["configSource"] == "primary" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{w}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 6. disableGateway for East Asia: that node's probe says 503, then 200.
    assert_eq!(status_probe(&client, &east_gw).await, 200);
    admin
        .put("/locations/East%20Asia", json!({"disableGateway": true}))
        .await;
    let t = Instant::now();
    while status_probe(&client, &east_gw).await != 503 {
        assert!(t.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status_probe(&client, &west_gw).await, 200);
    admin
        .put("/locations/East%20Asia", json!({"disableGateway": false}))
        .await;
    while status_probe(&client, &east_gw).await != 200 {
        assert!(t.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("6. disableGateway East Asia: 503 on that node only, then 200 again");

    // 7. Tokens: a revoked (regenerated key) and an expired token are
    //    refused, loudly, and those secondaries keep serving.
    admin
        .post(
            "/gateways/west-us-1/regenerateKey",
            json!({"keyType": "primary"}),
        )
        .await;
    assert!(
        west.wait_for_log("REFUSED THIS GATEWAY", Duration::from_secs(15)),
        "{}",
        west.log_text()
    );
    assert!(west.log_text().contains("signature"), "{}", west.log_text());
    let expiry =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(3))
            .to_string();
    let short_token = admin.token("east-asia-2", "East Asia", Some(&expiry)).await;
    let short_cfg = secondary_config(&dir, "short", "East Asia", &primary_url, &short_token, true);
    let short = start(dir.clone(), "short", short_cfg, &["gateway-http"]).await;
    let short_gw = short.url("gateway-http");
    until_version(&client, &short_gw, "v3", Duration::from_secs(5)).await;
    assert!(
        short.wait_for_log("REFUSED THIS GATEWAY'S TOKEN", Duration::from_secs(20)),
        "{}",
        short.log_text()
    );
    assert!(
        short.log_text().contains("expired at"),
        "{}",
        short.log_text()
    );
    admin
        .put_xml("/apis/regional/policy", regional_policy(&echo, "v4"))
        .await;
    until_version(&client, &east_gw, "v4", Duration::from_secs(10)).await;
    for (gw, expected) in [(&west_gw, "/west/hello"), (&short_gw, "/east/hello")] {
        let (status, path, version) = call(&client, gw).await;
        assert_eq!(
            (status, path.as_str(), version.as_str()),
            (200, expected, "v3"),
            "a refused secondary keeps serving its last configuration"
        );
    }
    println!("7. revoked and expired tokens refused; both secondaries still serve v3");

    let final_rev = admin.revision().await;
    let e = gateway_entry(&admin, "east-asia-1").await;
    println!("   final: primary revision {final_rev}, East Asia gateway {e}");
    assert_eq!(primary.stop().map(|s| s.success()), Some(true));
}

//! Test harness: the whole appliance in-process on `127.0.0.1:0`, a temp
//! data directory, the built-in echo backend, and a small client.
#![allow(dead_code)]

pub mod backend;
pub mod chrome;
pub mod large_spec;
pub mod logscan;
pub mod portal;
pub mod procs;
pub mod redis;

use serde_json::{json, Value};
use std::net::SocketAddr;
use turnpike::shutdown::{self, Trigger};
use turnpike::{Options, Running, Settings};

pub const ADMIN: &str = "test-admin-key-0123456789abcdef";

pub struct TestApp {
    pub gw: String,
    pub mgmt: String,
    /// The developer portal's base URL.
    pub portal: String,
    pub client: reqwest::Client,
    pub echo: SocketAddr,
    pub dir: Option<tempfile::TempDir>,
    running: Option<Running>,
    _echo_stop: Trigger,
    /// The access-log file and logger files the scan reads at the end.
    written_logs: Vec<std::path::PathBuf>,
}

pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::defaults();
    s.gateway.http = "127.0.0.1:0".parse().unwrap();
    s.management.listen = "127.0.0.1:0".parse().unwrap();
    s.portal.listen = "127.0.0.1:0".parse().unwrap();
    s.management.admin_key = Some(turnpike::error::Secret::new(ADMIN));
    s.node.data_dir = dir.to_path_buf();
    s.node.shutdown_timeout = std::time::Duration::from_secs(5);
    s
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(f: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = test_settings(dir.path());
        f(&mut settings);
        TestApp::start(dir, settings).await
    }

    pub async fn start(dir: tempfile::TempDir, settings: Settings) -> TestApp {
        logscan::install();
        logscan::settings(&settings);
        let key_files = logscan::key_files(&settings);
        let written_logs = logscan::written_logs(&settings);
        let (_t, never) = shutdown::channel();
        std::mem::forget(_t);
        let running = turnpike::run(settings, Options::default(), never)
            .await
            .unwrap();
        let (echo_stop, echo_rx) = shutdown::channel();
        let echo = turnpike::app::echo::spawn(echo_rx).await.unwrap();
        logscan::master_key(&key_files);
        TestApp {
            gw: format!("http://{}", running.addr("gateway-http").unwrap()),
            mgmt: format!("http://{}/mgmt", running.addr("management").unwrap()),
            portal: format!("http://{}", running.addr("portal").unwrap()),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            echo,
            dir: Some(dir),
            running: Some(running),
            _echo_stop: echo_stop,
            written_logs,
        }
    }

    /// Stops the appliance (drains, flushes) and returns its data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.shutdown();
            r.wait().await;
        }
        logscan::record_files(&std::mem::take(&mut self.written_logs));
        self.dir.take().unwrap()
    }

    /// The bound address of listener `name` (e.g. `gateway-https`).
    pub fn running_addr(&self, name: &str) -> Option<SocketAddr> {
        self.running.as_ref()?.addr(name)
    }

    /// The gateway's custom metrics and loggers.
    pub fn telemetry(&self) -> std::sync::Arc<turnpike::telemetry::Telemetry> {
        self.running.as_ref().unwrap().telemetry.clone()
    }

    /// The persisted traffic aggregates (analytics on).
    pub fn analytics(&self) -> Option<std::sync::Arc<turnpike::analytics::AnalyticsDb>> {
        self.running.as_ref()?.analytics()
    }

    pub fn echo_url(&self) -> String {
        format!("http://{}", self.echo)
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.mgmt, path))
            .bearer_auth(ADMIN)
    }

    pub async fn put(&self, path: &str, body: Value) -> reqwest::Response {
        logscan::json(&format!("PUT {path}"), &body);
        let r = self
            .req(reqwest::Method::PUT, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        logscan::response(&format!("PUT {path}"), r).await
    }

    pub async fn put_xml(&self, path: &str, xml: &str) -> reqwest::Response {
        logscan::policy_xml(&format!("PUT {path}"), xml);
        let r = self
            .req(reqwest::Method::PUT, path)
            .header("content-type", "application/xml")
            .body(xml.to_string())
            .send()
            .await
            .unwrap();
        logscan::response(&format!("PUT {path}"), r).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let r = self.req(reqwest::Method::GET, path).send().await.unwrap();
        logscan::response(&format!("GET {path}"), r).await
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.req(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        let r = self.req(reqwest::Method::POST, path).send().await.unwrap();
        logscan::response(&format!("POST {path}"), r).await
    }

    /// PUT that must succeed; returns the body.
    pub async fn put_ok(&self, path: &str, body: Value) -> Value {
        let r = self.put(path, body).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "PUT {path} -> {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert!(r.status().is_success(), "GET {path} -> {}", r.status());
        r.json().await.unwrap()
    }

    /// The primary key of subscription `sid`.
    pub async fn key_of(&self, sid: &str) -> String {
        let r = self
            .post(&format!("/subscriptions/{sid}/listSecrets"))
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["primaryKey"].as_str().unwrap().to_string()
    }

    /// An API `id` at `path` on `service_url` with one catch-all operation
    /// per method `*`.
    pub async fn api(&self, id: &str, path: &str, service_url: &str) {
        self.put_ok(
            &format!("/apis/{id}"),
            json!({"displayName": id, "path": path, "serviceUrl": service_url}),
        )
        .await;
        self.put_ok(
            &format!("/apis/{id}/operations/all"),
            json!({"method": "*", "urlTemplate": "/*"}),
        )
        .await;
    }

    /// A published product `id` holding `apis`.
    pub async fn product(&self, id: &str, apis: &[&str], subscription_required: bool) {
        self.put_ok(
            &format!("/products/{id}"),
            json!({"displayName": id, "state": "published", "subscriptionRequired": subscription_required}),
        )
        .await;
        for a in apis {
            let r = self
                .put(&format!("/products/{id}/apis/{a}"), json!({}))
                .await;
            assert!(r.status().is_success(), "link {id}/{a}: {}", r.status());
        }
    }

    /// An active subscription `sid` with `scope`; returns its primary key.
    pub async fn subscription(&self, sid: &str, scope: &str) -> String {
        self.put_ok(
            &format!("/subscriptions/{sid}"),
            json!({"scope": scope, "state": "active"}),
        )
        .await;
        self.key_of(sid).await
    }

    /// echo API + starter product + an active product subscription: the key.
    pub async fn standard(&self) -> String {
        self.api("echo", "echo", &self.echo_url()).await;
        self.product("starter", &["echo"], true).await;
        self.subscription("s1", "/products/starter").await
    }

    /// GET through the gateway with an optional subscription key header.
    pub async fn call(&self, path: &str, key: Option<&str>) -> reqwest::Response {
        let mut r = self.client.get(format!("{}{}", self.gw, path));
        if let Some(k) = key {
            r = r.header("Ocp-Apim-Subscription-Key", k);
        }
        r.send().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.shutdown();
        }
        logscan::record_files(&self.written_logs);
    }
}

/// Asserts an APIM gateway error body.
/// The status of a keyless GET through a gateway's plain listener at
/// `gw` (another process's, or a node started apart from a `TestApp`).
pub async fn gateway_status(gw: SocketAddr, path: &str) -> u16 {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{gw}{path}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub async fn assert_gateway_error(resp: reqwest::Response, status: u16, message: &str) {
    assert_eq!(resp.status(), status);
    assert!(resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v, json!({"statusCode": status, "message": message}));
}

/// Asserts a management error body with `code`; returns it.
pub async fn assert_mgmt_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    let got = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(got, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(v["error"]["details"].is_array(), "{v}");
    v
}

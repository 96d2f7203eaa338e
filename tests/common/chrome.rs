//! Headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, fantoccini as the client). Where they are missing the
//! browser tests skip loudly — except under CI (`CI=true`), where a missing
//! browser is a failure.

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Chrome {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

/// Starts chromedriver and a fresh headless Chromium session, or `None`
/// (after a loud message) when they are not installed outside CI.
pub async fn start() -> Option<Chrome> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        let msg =
            "chromium/chromedriver not installed: apt-get install -y chromium chromium-driver";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg} (required under CI)");
        }
        eprintln!("\n!!!!!!!! SKIPPING BROWSER TEST: {msg} !!!!!!!!\n");
        return None;
    }
    let port = super::procs::free_port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().unwrap();
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let caps = caps.as_object().unwrap().clone();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start a Chromium session: {e}"),
        }
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("portal-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    Some(Chrome {
        client,
        driver,
        _profile: profile,
        shots,
    })
}

impl Chrome {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no element {selector}: {e}"))
    }

    pub async fn fill(&self, selector: &str, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let e = self.css(selector).await;
            let done = match e.clear().await {
                Ok(()) => e.send_keys(text).await,
                Err(err) => Err(err),
            };
            match done {
                Ok(()) => return,
                Err(err) if is_stale(&err) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(err) => panic!("fill {selector}: {err}"),
            }
        }
    }

    /// Clicks the element `selector` names. A click that lands while the
    /// previous page is being replaced finds a stale element: find it again
    /// on the new page rather than fail.
    pub async fn click(&self, selector: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.css(selector).await.click().await {
                Ok(_) => return,
                Err(e) if is_stale(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("click {selector}: {e}"),
            }
        }
    }

    pub async fn text(&self, selector: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.css(selector).await.text().await {
                Ok(t) => return t,
                Err(e) if is_stale(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("text of {selector}: {e}"),
            }
        }
    }

    pub async fn page(&self) -> String {
        self.client.source().await.unwrap()
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Waits until the browser is on `target` (path, and query when it
    /// has one): a click returns before the page it leads to has loaded.
    pub async fn wait_url(&self, target: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.client.current_url().await.unwrap();
            let now = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            };
            if now == target {
                return;
            }
            assert!(Instant::now() < deadline, "still on {now}, not {target}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a full-window screenshot as `target/portal-screenshots/{name}.png`.
    pub async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// True when a WebDriver command failed because the page it was aimed at
/// was replaced under it.
fn is_stale(e: &fantoccini::error::CmdError) -> bool {
    matches!(
        e,
        fantoccini::error::CmdError::Standard(w)
            if w.error == fantoccini::error::ErrorStatus::StaleElementReference
    )
}

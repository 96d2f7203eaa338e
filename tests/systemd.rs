//! The binary under a service manager: the `sd_notify` protocol
//! (`READY=1` after the listeners and the configuration, on a primary and
//! on a secondary, `STOPPING=1` on SIGTERM, `WATCHDOG=1` pings), SIGHUP re-reading the configuration, and the unit files in
//! `packaging/` (checked by `systemd-analyze verify` and for the directives
//! the packaging relies on).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_turnpike");

/// A config on loopback port 0 with a fixed admin key.
fn write_config(dir: &Path, telemetry: &str) -> PathBuf {
    let path = dir.join("c.toml");
    let text = config_text(telemetry, "127.0.0.1:0");
    common::logscan::config("c.toml", &text);
    std::fs::write(&path, text).unwrap();
    path
}

fn config_text(telemetry: &str, gateway: &str) -> String {
    format!(
        "[node]\nshutdown_timeout = \"2s\"\n[gateway]\nhttp = \"{gateway}\"\n[management]\n\
         listen = \"127.0.0.1:0\"\nadmin_key = \"{}\"\n[portal]\nlisten = \"127.0.0.1:0\"\n\
         [telemetry]\naccess_log = false\n{telemetry}",
        common::ADMIN
    )
}

/// `turnpike serve` with `NOTIFY_SOCKET` bound by the test; stdout and
/// stderr lines arrive on one channel, tagged.
struct Notified {
    child: Child,
    socket: UnixDatagram,
    lines: mpsc::Receiver<(&'static str, String)>,
    seen: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
}

impl Notified {
    fn start(dir: &Path) -> Notified {
        Notified::start_with(dir, None, &[])
    }

    /// With `stdout_file`, stdout goes to that file (written before any
    /// notification is sent, so readable in order) instead of the channel.
    fn start_with(dir: &Path, stdout_file: Option<&Path>, envs: &[(&str, &str)]) -> Notified {
        let sock_dir = tempfile::tempdir().unwrap();
        let sock_path = sock_dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&sock_path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--config", "c.toml"])
            .current_dir(dir)
            .env("NOTIFY_SOCKET", &sock_path)
            .env_remove("TURNPIKE_LOG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .envs(envs.iter().copied())
            .stdout(match stdout_file {
                Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
                None => Stdio::piped(),
            })
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let mut streams: Vec<(&'static str, Box<dyn std::io::Read + Send>)> =
            vec![("stderr", Box::new(child.stderr.take().unwrap()))];
        if let Some(out) = child.stdout.take() {
            streams.push(("stdout", Box::new(out)));
        }
        for (tag, stream) in streams {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    common::logscan::record(&format!("turnpike serve {tag}"), line.as_bytes());
                    if tx.send((tag, line)).is_err() {
                        break;
                    }
                }
            });
        }
        Notified {
            child,
            socket,
            lines: rx,
            seen: vec![],
            _dir: sock_dir,
        }
    }

    /// Collects the output lines that arrived so far.
    fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }

    /// Waits for an output line containing `needle` on `tag`.
    fn wait_line(&mut self, tag: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((_, l)) = self
                .seen
                .iter()
                .find(|(t, l)| *t == tag && l.contains(needle))
            {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("no {tag} line with {needle:?}; got {:?}", self.seen),
            }
        }
    }

    fn saw(&mut self, tag: &str, needle: &str) -> bool {
        self.drain();
        self.seen
            .iter()
            .any(|(t, l)| *t == tag && l.contains(needle))
    }

    /// The next notification datagram, or `None` after `within`.
    fn next_message(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("turnpike exited ({status}); output {:?}", self.seen);
            }
        }
        None
    }

    /// Waits for the notification carrying `state` (e.g. `READY=1`).
    fn wait_message(&mut self, state: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .next_message(left)
                .unwrap_or_else(|| panic!("no {state} notification"));
            if msg.lines().any(|l| l == state) {
                return msg;
            }
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
    }

    fn exit_status(&mut self) -> std::process::ExitStatus {
        for _ in 0..400 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("turnpike did not exit");
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn addr_of(line: &str) -> String {
    line.rsplit(' ').next().unwrap().to_string()
}

async fn status(gw: &str) -> u16 {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{gw}/status-0123456789abcdef"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn register_keys(dir: &Path) {
    common::logscan::master_key(&[dir.join("data/master.key")]);
}

#[tokio::test]
async fn ready_comes_after_the_listeners_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "");
    let out = dir.path().join("stdout.txt");
    let mut served = Notified::start_with(dir.path(), Some(&out), &[]);
    let ready = served.wait_message("READY=1");
    // Written before READY=1 was sent: in the file when it arrives.
    let printed = std::fs::read_to_string(&out).unwrap();
    common::logscan::record("turnpike serve stdout", printed.as_bytes());
    let listening = |name: &str| {
        printed
            .lines()
            .find(|l| l.starts_with(&format!("listening {name} ")))
            .map(addr_of)
            .unwrap_or_else(|| panic!("READY=1 before `listening {name}`: {printed:?}"))
    };
    let gw = listening("gateway-http");
    listening("management");
    listening("portal");
    assert!(
        ready
            .lines()
            .any(|l| l == format!("MAINPID={}", served.child.id())),
        "{ready}"
    );
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("STATUS=") && l.contains(&format!("gateway-http {gw}"))),
        "{ready}"
    );
    // Ready means serving.
    assert_eq!(status(&gw).await, 200);
    // Nothing else is announced while it runs.
    assert_eq!(served.next_message(Duration::from_millis(300)), None);

    served.signal("TERM");
    let stopping = served.wait_message("STOPPING=1");
    assert!(stopping.contains("STATUS="), "{stopping}");
    let exit = served.exit_status();
    assert!(exit.success(), "{exit}");
    register_keys(dir.path());
}

#[tokio::test]
async fn watchdog_pings_when_the_unit_sets_one() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "");
    // WatchdogSec=1s: pings every 0.5 s.
    let mut served = Notified::start_with(dir.path(), None, &[("WATCHDOG_USEC", "1000000")]);
    served.wait_message("READY=1");
    for _ in 0..3 {
        let ping = served.wait_message("WATCHDOG=1");
        assert_eq!(ping.trim(), "WATCHDOG=1");
    }
    served.signal("TERM");
    served.wait_message("STOPPING=1");
    assert!(served.exit_status().success());
    register_keys(dir.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secondary_is_ready_once_it_has_its_primarys_configuration() {
    let app = common::TestApp::spawn().await;
    let primary = app.mgmt.trim_end_matches("/mgmt").to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        common::logscan::output(
            "turnpike cluster",
            Command::new(BIN)
                .args(["cluster", "join", "--primary", &primary, "--admin-key"])
                .arg(common::ADMIN)
                .args(["--gateway-id", "west", "--region", "West Europe"])
                .args(["--http", "127.0.0.1:0", "--output", "c.toml"])
                .current_dir(&d),
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("c.toml")).unwrap();
    common::logscan::config("c.toml", &text);

    let mut served = Notified::start(dir.path());
    let ready = served.wait_message("READY=1");
    let gw = addr_of(&served.wait_line("stdout", "listening gateway-http "));
    assert!(ready.contains(&format!("gateway-http {gw}")), "{ready}");
    assert!(!served.saw("stdout", "listening management"));
    assert_eq!(status(&gw).await, 200);
    served.signal("TERM");
    served.wait_message("STOPPING=1");
    assert!(served.exit_status().success());
}

#[tokio::test]
async fn no_notify_socket_no_notification() {
    // Without NOTIFY_SOCKET the appliance starts and stops as before.
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "");
    let mut child = Command::new(BIN)
        .args(["serve", "--config", "c.toml"])
        .current_dir(dir.path())
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("listening management") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "no listening line");
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    register_keys(dir.path());
}

#[tokio::test]
async fn sighup_applies_the_log_level_and_names_what_needs_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "log_level = \"warn\"\n");
    let mut served = Notified::start(dir.path());
    served.wait_message("READY=1");
    let gw = addr_of(&served.wait_line("stdout", "listening gateway-http "));
    // At warn, start-up's info lines are filtered out.
    served.drain();
    assert!(
        !served
            .seen
            .iter()
            .any(|(t, l)| *t == "stderr" && l.contains("INFO")),
        "{:?}",
        served.seen
    );

    // info, and another gateway port: the level applies, the port waits
    // for a restart.
    std::fs::write(
        &config,
        config_text("log_level = \"info\"\n", "127.0.0.1:1"),
    )
    .unwrap();
    served.signal("HUP");
    let reloading = served.wait_message("RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    served.wait_message("READY=1");
    served.wait_line("stderr", "telemetry.log_level applied");
    let restart = served.wait_line("stderr", "gateway.http changed; it needs a restart");
    assert!(
        !restart.contains("127.0.0.1:1"),
        "values are not logged: {restart}"
    );
    served.wait_line("stderr", "configuration reloaded");
    assert!(!served.saw("stderr", "telemetry.access_log changed"));
    // Still on the old port.
    assert_eq!(status(&gw).await, 200);

    // An invalid file is refused with FILE:LINE and changes nothing.
    std::fs::write(&config, "[gateway]\n\nbogus = 1\n").unwrap();
    served.signal("HUP");
    served.wait_message("READY=1");
    let refused = served.wait_line("stderr", "configuration reload refused");
    assert!(refused.contains("c.toml:3: "), "{refused}");
    assert_eq!(status(&gw).await, 200);
    assert_eq!(
        served.child.try_wait().unwrap(),
        None,
        "still running after a bad reload"
    );

    served.signal("TERM");
    served.wait_message("STOPPING=1");
    assert!(served.exit_status().success());
    register_keys(dir.path());
}

// ---- the unit files ----

fn packaging(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging")
        .join(name)
}

/// `(section, key, value)` per assignment, in order.
fn directives(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = vec![];
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{line}"));
        out.push((section.clone(), k.trim().into(), v.trim().into()));
    }
    out
}

fn value<'a>(d: &'a [(String, String, String)], key: &str) -> Vec<&'a str> {
    d.iter()
        .filter(|(s, k, _)| s == "Service" && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

/// The duration `TimeoutStopSec` must exceed: the default
/// `[node] shutdown_timeout`.
fn default_drain() -> Duration {
    turnpike::Settings::defaults().node.shutdown_timeout
}

fn check_unit(name: &str, state_dir: &str, config: &str) {
    let text = std::fs::read_to_string(packaging(name)).unwrap();
    let d = directives(&text);
    for (key, want) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("Restart", "on-failure"),
        ("User", "turnpike"),
        ("StateDirectory", state_dir),
        ("ConfigurationDirectory", "turnpike"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("LimitNOFILE", "1048576"),
    ] {
        assert_eq!(value(&d, key), vec![want], "{name}: {key}");
    }
    assert_eq!(
        value(&d, "SystemCallFilter"),
        vec!["@system-service", "~@privileged @resources"],
        "{name}"
    );
    assert_eq!(
        value(&d, "ExecStart"),
        vec![format!("/usr/bin/turnpike serve --config {config}").as_str()],
        "{name}"
    );
    let stop: u64 = value(&d, "TimeoutStopSec")[0].parse().unwrap();
    assert!(
        Duration::from_secs(stop) >= default_drain() + Duration::from_secs(5),
        "{name}: TimeoutStopSec={stop} leaves no margin over the drain"
    );
    assert!(
        d.iter()
            .any(|(s, k, v)| s == "Install" && k == "WantedBy" && v == "multi-user.target"),
        "{name}"
    );
}

#[test]
fn the_units_carry_every_directive() {
    check_unit("turnpike.service", "turnpike", "/etc/turnpike/config.toml");
    check_unit("turnpike@.service", "turnpike/%i", "/etc/turnpike/%i.toml");
}

/// `systemd-analyze verify` on copies whose ExecStart is the built binary
/// (verify checks that it exists). Missing tool: skipped, but a failure
/// under CI=true.
#[test]
fn systemd_analyze_verifies_the_units() {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is missing (Debian package systemd); .ci/run installs it"
        );
        eprintln!("SKIPPED: systemd-analyze not found; the unit files were not verified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["turnpike.service", "turnpike@.service"] {
        let text = std::fs::read_to_string(packaging(name)).unwrap();
        assert!(text.contains("/usr/bin/turnpike "));
        std::fs::write(
            dir.path().join(name),
            text.replace("/usr/bin/turnpike ", &format!("{BIN} ")),
        )
        .unwrap();
    }
    for unit in ["turnpike.service", "turnpike@west.service"] {
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.path().join(unit))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Unknown keys and bad values are warnings ("..., ignoring"), not
        // failures: any line about our units fails the test.
        let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("turnpike")).collect();
        assert!(out.status.success() && ours.is_empty(), "{unit}: {stderr}");
    }
    // The check can fail: a unit with a typo is reported.
    let bad = dir.path().join("bad.service");
    std::fs::write(
        &bad,
        std::fs::read_to_string(dir.path().join("turnpike.service"))
            .unwrap()
            .replace("ProtectHome=yes", "ProtectHomes=yes"),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ProtectHomes"),
        "a misspelt key went unnoticed"
    );
}

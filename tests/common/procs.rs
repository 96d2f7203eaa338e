//! The real binary as a separate OS process: start it with a configuration
//! file, learn its listeners from its `listening <name> <addr>` lines, read
//! its log, kill it (politely or with SIGKILL).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_turnpike");

/// A free loopback port (bound, read, released): for a process that must
/// come back on the same address after a restart.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running `turnpike serve`.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub listeners: HashMap<String, SocketAddr>,
    pub log: PathBuf,
}

/// Writes `config` to `dir/<name>.toml` and returns the path.
pub fn write_config(dir: &Path, name: &str, config: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    super::logscan::config(&format!("{name}.toml"), config);
    path
}

fn command(prefix: &[&str], config: &Path, log: &Path) -> Command {
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    cmd.arg("serve")
        .arg("--config")
        .arg(config)
        .env("TURNPIKE_LOG", "info,turnpike=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    cmd
}

impl Proc {
    /// Starts `turnpike serve --config <dir>/<name>.toml` and waits until
    /// it has announced every listener in `expect`.
    pub fn start(dir: &Path, name: &str, config: &str, expect: &[&str]) -> Proc {
        Proc::start_with(&[], dir, name, config, expect)
    }

    /// The same, with the binary run under `prefix` (e.g. `ip netns exec NS`).
    pub fn start_with(
        prefix: &[&str],
        dir: &Path,
        name: &str,
        config: &str,
        expect: &[&str],
    ) -> Proc {
        let path = write_config(dir, name, config);
        let log = dir.join(format!("{name}.log"));
        let mut child = command(prefix, &path, &log).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let label = format!("{name} stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                super::logscan::record(&label, line.as_bytes());
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut listeners = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !expect.iter().all(|e| listeners.contains_key(*e)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let mut parts = line.split_whitespace();
                    if let (Some("listening"), Some(n), Some(a)) =
                        (parts.next(), parts.next(), parts.next())
                    {
                        listeners.insert(n.to_string(), a.parse().unwrap());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    panic!(
                        "{name} did not announce {expect:?} (exit {status:?}); log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in rx {});
        Proc {
            name: name.to_string(),
            child: Some(child),
            listeners,
            log,
        }
    }

    /// Runs `turnpike serve` to its exit (it is expected to refuse to
    /// start); returns the exit status and its stderr.
    pub fn run_to_exit(dir: &Path, name: &str, config: &str) -> (ExitStatus, String) {
        let path = write_config(dir, name, config);
        let log = dir.join(format!("{name}.log"));
        let mut child = command(&[], &path, &log).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{name} kept running; it should have refused to start");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        super::logscan::record(&format!("{name} stderr"), text.as_bytes());
        (status, text)
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.listeners[listener]
    }

    /// `http://<addr of listener>`.
    pub fn url(&self, listener: &str) -> String {
        format!("http://{}", self.addr(listener))
    }

    /// Everything the process has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to `within`) until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.log_text().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.record_log();
        }
    }

    /// Appends what the process logged to the suite's capture.
    fn record_log(&self) {
        super::logscan::record(&format!("{} stderr", self.name), self.log_text().as_bytes());
    }

    /// SIGTERM and wait for the exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                self.record_log();
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let s = c.wait().ok();
                self.record_log();
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

//! A throw-away `redis-server` per test: its own free loopback port, its
//! own temp directory, no persistence, killed on drop. Without
//! `redis-server` on the machine a test skips with a loud message, except
//! under CI (`CI=true`), where that is a failure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

/// Whether `redis-server` can run here. Prints why a test skips; panics
/// under CI, where the server must be installed (`.ci/run` installs it).
pub fn available() -> bool {
    let ok = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("redis-server is not installed, and CI=true requires it (apt-get install redis-server)");
        }
        eprintln!(
            "\n*** SKIPPED: redis-server is not installed (apt-get install redis-server) ***\n"
        );
    }
    ok
}

/// Whether something on `port` answers `PING` with `+PONG`.
pub fn pings(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl RedisServer {
    /// A server on a free port, or `None` (after [`available`]'s message)
    /// when `redis-server` is missing.
    pub fn start() -> Option<RedisServer> {
        if !available() {
            return None;
        }
        Some(RedisServer::start_on(super::procs::free_port()))
    }

    /// A server on `port` (a restart on the same address).
    pub fn start_on(port: u16) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = RedisServer {
            port,
            child: Some(child),
            _dir: dir,
        };
        let t = Instant::now();
        while !pings(port) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "redis-server on port {port} did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server: a stopped server
    /// accepts connections but never answers.
    pub fn signal(&self, signal: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args([format!("-{signal}"), c.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill -{signal} redis-server");
        }
    }

    /// Kills the server and waits for it to exit.
    pub fn kill(&mut self) {
        self.signal("CONT");
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

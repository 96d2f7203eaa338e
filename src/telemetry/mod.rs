//! Logging setup and the shared log vocabulary.
//!
//! Owns: the `tracing` subscriber (pretty or JSON, `RUST_LOG`-style filters
//! through `TURNPIKE_LOG` or `RUST_LOG`, default `info`; access records on
//! stdout, everything else on stderr), and the access-log
//! target name, the build's version string, and the gateway's request
//! counters. Fields first, then the message; never a secret.

use crate::config::{log_filter, LogFormat};
use tracing_subscriber::EnvFilter;

/// Target of the one event per gateway request.
pub const ACCESS_TARGET: &str = "access";

/// Version string: package version and git commit.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("TURNPIKE_GIT_COMMIT"),
    ")"
);

/// Requests the gateway answered, since start (a secondary reports the
/// difference in every heartbeat). Relaxed atomics: counts, not ordering.
#[derive(Debug, Default)]
pub struct RequestStats {
    total: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

impl RequestStats {
    /// Counts one answered request with `status`.
    pub fn record(&self, status: u16) {
        use std::sync::atomic::Ordering::Relaxed;
        self.total.fetch_add(1, Relaxed);
        if status >= 500 {
            self.failed.fetch_add(1, Relaxed);
        }
    }

    /// `(total, failed)` so far.
    pub fn read(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.total.load(Relaxed), self.failed.load(Relaxed))
    }
}

/// Installs the global subscriber. Calling it twice is harmless (the second
/// call does nothing), so tests may start several appliances.
pub fn init(format: LogFormat) {
    init_with(format, "info");
}

/// Swaps the installed subscriber's filter (see [`set_log_filter`]).
type FilterSetter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

static FILTER: std::sync::OnceLock<FilterSetter> = std::sync::OnceLock::new();

/// The log filter from the environment (`TURNPIKE_LOG`, else `RUST_LOG`),
/// which takes precedence over `[telemetry] log_level`.
pub fn env_log_filter() -> Option<String> {
    std::env::var("TURNPIKE_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .filter(|f| !f.trim().is_empty())
}

/// [`init`] with `[telemetry] log_level` as the filter when the environment
/// sets none. The filter stays reloadable ([`set_log_filter`]).
pub fn init_with(format: LogFormat, level: &str) {
    let filter = env_log_filter()
        .and_then(|f| log_filter(&f).ok())
        .or_else(|| log_filter(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a pipe, a file or the
    // journal gets plain text (and `NO_COLOR` turns them off anyway).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(split_writer());
    match format {
        LogFormat::Pretty => {
            let builder = builder.with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = FILTER.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }
        LogFormat::Json => {
            let builder = builder.json().flatten_event(true).with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = FILTER.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }
    }
}

/// Replaces the log filter of the subscriber [`init_with`] installed
/// (`RUST_LOG` syntax). An invalid filter changes nothing.
pub fn set_log_filter(spec: &str) -> Result<(), String> {
    let filter = log_filter(spec)?;
    let set = FILTER
        .get()
        .ok_or_else(|| "the log subscriber is not reloadable".to_string())?;
    set(filter)
}

/// Where events go: access records (target [`ACCESS_TARGET`]) to stdout,
/// the diagnostic log to stderr.
fn split_writer() -> impl for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static {
    use tracing_subscriber::fmt::writer::MakeWriterExt;
    std::io::stdout
        .with_filter(|m: &tracing::Metadata<'_>| m.target() == ACCESS_TARGET)
        .or_else(std::io::stderr)
}

pub mod access;
pub mod flow;
pub mod inspector;
pub mod loggers;
pub mod otlp;
pub mod prometheus;
pub mod registry;
pub mod tally;

/// What policies record into at run time: custom metrics and loggers.
/// Owned by the gateway (not the snapshot), so it survives configuration
/// changes.
#[derive(Debug, Default)]
pub struct Telemetry {
    pub metrics: registry::Registry,
    pub loggers: loggers::Loggers,
    /// The gateway's own metrics (`GET /metrics`).
    pub prometheus: prometheus::Metrics,
}

impl Telemetry {
    /// Telemetry whose file loggers write under `{data_dir}/logs/`.
    pub fn new(data_dir: std::path::PathBuf) -> Telemetry {
        Telemetry {
            metrics: registry::Registry::default(),
            loggers: loggers::Loggers::new(data_dir),
            prometheus: prometheus::Metrics::default(),
        }
    }
}

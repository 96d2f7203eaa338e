//! Logging setup and the shared log vocabulary.
//!
//! Owns: the `tracing` subscriber (pretty or JSON, `RUST_LOG`-style filters
//! through `TURNPIKE_LOG` or `RUST_LOG`, default `info`), and the access-log
//! target name. Fields first, then the message; never a secret.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Target of the one event per gateway request.
pub const ACCESS_TARGET: &str = "access";

/// Installs the global subscriber. Calling it twice is harmless (the second
/// call does nothing), so tests may start several appliances.
pub fn init(format: LogFormat) {
    let filter = std::env::var("TURNPIKE_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

//! Configuration re-read on SIGHUP (`systemctl reload`).
//!
//! Owns: comparing the file on disk with the configuration in force, key
//! by key, applying what is safe to change live and naming every other
//! changed key as needing a restart. Applied live: `[telemetry] log_level`
//! (the log filter; unless `TURNPIKE_LOG` / `RUST_LOG` set it). Everything
//! else (listeners, TLS, data and store paths, cluster, timeouts, access
//! log) is read once at start-up by the services that own it, so changing
//! it live is not done. A file that does not load (`FILE:LINE: message`)
//! changes nothing: the appliance keeps running on what it has. Values are
//! never logged, only key names (some are secrets).

use crate::config::Settings;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Keys applied without a restart.
pub const LIVE_KEYS: &[&str] = &["telemetry.log_level"];

/// What one re-read did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Changed keys applied now.
    pub applied: Vec<String>,
    /// Changed keys that take effect at the next start.
    pub restart: Vec<String>,
    /// Why the file was refused (`FILE:LINE: message`), if it was.
    pub refused: Option<String>,
}

/// The configuration file in force and its keys, flattened (`section.key`).
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    in_force: BTreeMap<String, toml::Value>,
}

impl Reloader {
    /// Remembers `text`, the content of `path` the appliance started with.
    pub fn new(path: &Path, text: &str) -> Reloader {
        Reloader {
            path: path.to_path_buf(),
            in_force: flatten(text),
        }
    }

    /// Re-reads the file, applies the live keys and logs the outcome.
    pub fn reload(&mut self) -> Outcome {
        let file = self.path.display().to_string();
        let outcome = match std::fs::read_to_string(&self.path) {
            Err(e) => Outcome {
                refused: Some(format!("{file}: cannot read the configuration file: {e}")),
                ..Outcome::default()
            },
            Ok(text) => match Settings::parse(&file, &text) {
                Err(e) => Outcome {
                    refused: Some(e.to_string()),
                    ..Outcome::default()
                },
                Ok(settings) => self.apply(&settings, flatten(&text)),
            },
        };
        log(&file, &outcome);
        outcome
    }

    fn apply(&mut self, settings: &Settings, new: BTreeMap<String, toml::Value>) -> Outcome {
        let mut outcome = Outcome::default();
        let keys: std::collections::BTreeSet<&String> =
            self.in_force.keys().chain(new.keys()).collect();
        let changed: Vec<String> = keys
            .into_iter()
            .filter(|k| self.in_force.get(*k) != new.get(*k))
            .cloned()
            .collect();
        for key in changed {
            if !LIVE_KEYS.contains(&key.as_str()) {
                outcome.restart.push(key);
                continue;
            }
            // telemetry.log_level, the one live key.
            if let Some(env) = crate::telemetry::env_log_filter() {
                tracing::warn!(
                    filter = %env,
                    "telemetry.log_level changed but TURNPIKE_LOG/RUST_LOG set the filter; kept"
                );
                continue;
            }
            let level = &settings.telemetry.log_level;
            match crate::telemetry::set_log_filter(level) {
                Ok(()) => {
                    tracing::info!(log_level = %level, "telemetry.log_level applied");
                    match new.get(&key) {
                        Some(v) => self.in_force.insert(key.clone(), v.clone()),
                        None => self.in_force.remove(&key),
                    };
                    outcome.applied.push(key);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "telemetry.log_level could not be applied");
                    outcome.restart.push(key);
                }
            }
        }
        outcome
    }
}

fn log(file: &str, outcome: &Outcome) {
    if let Some(error) = &outcome.refused {
        tracing::error!(
            "configuration reload refused, still running on the previous configuration: {error}"
        );
        return;
    }
    for key in &outcome.restart {
        tracing::warn!(key = %key, "configuration reload: {key} changed; it needs a restart to take effect");
    }
    tracing::info!(
        file,
        applied = outcome.applied.len(),
        needs_restart = outcome.restart.len(),
        "configuration reloaded"
    );
}

/// `section.key` (nested tables joined with `.`) → value; an unparsable
/// text gives no keys (the caller parsed it already).
fn flatten(text: &str) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                other => {
                    out.insert(key, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        walk("", &table, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reloader(text: &str) -> (tempfile::TempDir, PathBuf, Reloader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        let r = Reloader::new(&path, text);
        (dir, path, r)
    }

    #[test]
    fn changed_keys_are_sorted_into_live_and_restart() {
        let (_d, path, mut r) = reloader("[gateway]\nhttp = \"127.0.0.1:1\"\n");
        std::fs::write(
            &path,
            "[gateway]\nhttp = \"127.0.0.1:2\"\n[node]\nregion = \"x\"\n",
        )
        .unwrap();
        let o = r.reload();
        assert_eq!(o.restart, vec!["gateway.http", "node.region"]);
        assert!(o.refused.is_none());
        // Still reported next time: not in force yet.
        assert_eq!(r.reload().restart, vec!["gateway.http", "node.region"]);
    }

    #[test]
    fn an_invalid_file_is_refused_with_its_line() {
        let (_d, path, mut r) = reloader("");
        std::fs::write(&path, "[gateway]\n\nbogus = 1\n").unwrap();
        let o = r.reload();
        let e = o.refused.unwrap();
        assert!(e.contains("c.toml:3: "), "{e}");
        assert!(o.restart.is_empty() && o.applied.is_empty());
    }

    #[test]
    fn an_unchanged_file_changes_nothing() {
        let (_d, _p, mut r) = reloader("[telemetry]\nlog_level = \"info\"\n");
        assert_eq!(r.reload(), Outcome::default());
    }
}

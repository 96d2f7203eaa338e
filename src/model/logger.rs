//! The logger resource (`/mgmt/loggers/{id}`): where `log-to-eventhub`
//! writes when there is no Azure Event Hub.
//!
//! Owns: the [`Logger`] type (`loggerType` `file` | `http` | `stdout`,
//! `description`, `settings`), its validation, and its conversion into
//! the runtime's [`SinkConfig`]. `settings` is one flat object whose keys
//! are checked against the type: `file` takes `path` (relative, resolved
//! under `{data_dir}/logs/`, no `..`), `maxBytes` (rotation size, default
//! 10 MiB) and `maxFiles` (rotated files kept, default 5); `http` takes
//! `url`, `headers` (secret values: never shown by GET), `batchSize`
//! (default 100), `flushIntervalMs` (default 1000) and `timeoutMs`
//! (default 10000); `stdout` takes none.

use crate::error::{Detail, Secret};
use crate::telemetry::loggers::SinkConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path};
use std::time::Duration;

/// Default rotation size of a file logger.
pub const DEFAULT_MAX_BYTES: u64 = 10 << 20;
/// Default number of rotated files a file logger keeps.
pub const DEFAULT_MAX_FILES: u32 = 5;

/// A logger (`/mgmt/loggers/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Logger {
    /// `file`, `http` or `stdout`.
    pub logger_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub settings: LoggerSettings,
}

/// The settings of every logger type (each type takes its own keys).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoggerSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Secret values: GET shows them as "", and a PUT that sends "" keeps
    /// the stored value of that header.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

const FILE_KEYS: &[&str] = &["path", "maxBytes", "maxFiles"];
const HTTP_KEYS: &[&str] = &[
    "url",
    "headers",
    "batchSize",
    "flushIntervalMs",
    "timeoutMs",
];

impl LoggerSettings {
    /// The keys that are set (JSON names).
    fn present(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let pairs: [(&'static str, bool); 8] = [
            ("path", self.path.is_some()),
            ("maxBytes", self.max_bytes.is_some()),
            ("maxFiles", self.max_files.is_some()),
            ("url", self.url.is_some()),
            ("headers", !self.headers.is_empty()),
            ("batchSize", self.batch_size.is_some()),
            ("flushIntervalMs", self.flush_interval_ms.is_some()),
            ("timeoutMs", self.timeout_ms.is_some()),
        ];
        for (k, set) in pairs {
            if set {
                out.push(k);
            }
        }
        out
    }
}

fn range(details: &mut Vec<Detail>, key: &str, v: Option<u64>, min: u64, max: u64) {
    if let Some(v) = v {
        if v < min || v > max {
            details.push(Detail::new(
                format!("settings.{key}"),
                format!("must be between {min} and {max}"),
            ));
        }
    }
}

impl Logger {
    /// Checks the logger on its own; problems go to `details`.
    pub fn normalize(&mut self, details: &mut Vec<Detail>) {
        if let Some(d) = &self.description {
            if d.chars().count() > 2000 {
                details.push(Detail::new("description", "at most 2000 characters"));
            }
        }
        let allowed: &[&str] = match self.logger_type.as_str() {
            "file" => FILE_KEYS,
            "http" => HTTP_KEYS,
            "stdout" => &[],
            "azureEventHub" | "applicationInsights" | "azureMonitor" => {
                details.push(Detail::new(
                    "loggerType",
                    format!(
                        "'{}' sends to an Azure service, which this gateway cannot reach; use file, http or stdout",
                        self.logger_type
                    ),
                ));
                return;
            }
            other => {
                details.push(Detail::new(
                    "loggerType",
                    format!("must be file, http or stdout, not '{other}'"),
                ));
                return;
            }
        };
        for key in self.settings.present() {
            if !allowed.contains(&key) {
                details.push(Detail::new(
                    format!("settings.{key}"),
                    format!("is not a setting of a {} logger", self.logger_type),
                ));
            }
        }
        let s = &self.settings;
        match self.logger_type.as_str() {
            "file" => {
                match s.path.as_deref() {
                    None | Some("") => {
                        details.push(Detail::new("settings.path", "is required"));
                    }
                    Some(p) => {
                        let path = Path::new(p);
                        let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
                        if !plain || p.len() > 255 || p.ends_with('/') || p.contains('\\') {
                            details.push(Detail::new(
                                "settings.path",
                                "must be a relative file path (resolved under the data directory's logs/) without '..', at most 255 characters",
                            ));
                        }
                    }
                }
                range(details, "maxBytes", s.max_bytes, 1024, 1 << 40);
                range(details, "maxFiles", s.max_files.map(u64::from), 0, 100);
            }
            "http" => {
                match s.url.as_deref() {
                    None => details.push(Detail::new("settings.url", "is required")),
                    Some(u) => match u.parse::<http::Uri>() {
                        Ok(uri)
                            if matches!(uri.scheme_str(), Some("http" | "https"))
                                && uri.authority().is_some()
                                && u.len() <= 2000 => {}
                        _ => details.push(Detail::new(
                            "settings.url",
                            "must be an absolute http:// or https:// URL of at most 2000 characters",
                        )),
                    },
                }
                for (name, value) in &s.headers {
                    if name.parse::<http::HeaderName>().is_err() {
                        details.push(Detail::new(
                            format!("settings.headers.{name}"),
                            "must be a valid HTTP header name",
                        ));
                    } else if http::HeaderValue::from_str(value.expose()).is_err() {
                        details.push(Detail::new(
                            format!("settings.headers.{name}"),
                            "the value is not a valid HTTP header value",
                        ));
                    }
                }
                range(details, "batchSize", s.batch_size.map(u64::from), 1, 10_000);
                range(details, "flushIntervalMs", s.flush_interval_ms, 10, 600_000);
                range(details, "timeoutMs", s.timeout_ms, 100, 300_000);
            }
            _ => {}
        }
    }

    /// What the runtime runs for this logger (`None` for an invalid one).
    pub fn sink(&self) -> Option<SinkConfig> {
        let s = &self.settings;
        Some(match self.logger_type.as_str() {
            "file" => SinkConfig::File {
                path: s.path.clone()?,
                max_bytes: s.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
                max_files: s.max_files.unwrap_or(DEFAULT_MAX_FILES),
            },
            "http" => SinkConfig::Http {
                url: s.url.clone()?,
                headers: s
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                batch_size: s.batch_size.unwrap_or(100) as usize,
                flush_interval: Duration::from_millis(s.flush_interval_ms.unwrap_or(1000)),
                timeout: Duration::from_millis(s.timeout_ms.unwrap_or(10_000)),
            },
            "stdout" => SinkConfig::Stdout,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: serde_json::Value) -> Vec<String> {
        let mut l: Logger = serde_json::from_value(v).unwrap();
        let mut d = Vec::new();
        l.normalize(&mut d);
        d.iter().map(|d| format!("{d:?}")).collect()
    }

    #[test]
    fn validates_per_type() {
        assert!(
            check(serde_json::json!({"loggerType": "file", "settings": {"path": "a/b.log"}}))
                .is_empty()
        );
        assert!(check(serde_json::json!({"loggerType": "stdout"})).is_empty());
        assert_eq!(
            check(serde_json::json!({"loggerType": "file", "settings": {"path": "../x"}})).len(),
            1
        );
        assert_eq!(
            check(serde_json::json!({"loggerType": "file", "settings": {"path": "/etc/x"}})).len(),
            1
        );
        assert_eq!(check(serde_json::json!({"loggerType": "file", "settings": {"path": "x", "url": "http://a"}})).len(), 1);
        assert_eq!(
            check(serde_json::json!({"loggerType": "http", "settings": {}})).len(),
            1
        );
        assert_eq!(
            check(serde_json::json!({"loggerType": "azureEventHub"})).len(),
            1
        );
        assert_eq!(check(serde_json::json!({"loggerType": "kafka"})).len(), 1);
        assert!(serde_json::from_value::<Logger>(
            serde_json::json!({"loggerType": "file", "settings": {"bogus": 1}})
        )
        .is_err());
    }
}

//! The TOML configuration file: its types, defaults and validation.
//!
//! Owns: parsing `config.toml` (DESIGN.md §4) into [`Settings`], with
//! `deny_unknown_fields` everywhere and errors rendered as `FILE:LINE: message`.
//! Every key has a default except a secondary's `[cluster]` `primary`,
//! `gateway_id` and `token`; `config.example.toml` documents each one.
//!
//! Imports nothing from the rest of the crate but `error`.

use crate::error::Secret;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration, as read from the file (or defaults).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub node: Node,
    pub gateway: Gateway,
    pub management: Management,
    pub portal: Portal,
    pub cluster: Cluster,
    pub redis: Redis,
    pub telemetry: Telemetry,
    pub cache: CacheSettings,
    pub identity: Identity,
    pub dapr: Dapr,
    pub analytics: Analytics,
}

/// The node's role in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Holds the store, serves management and portal.
    #[default]
    Primary,
    /// Follows a primary; serves only the gateway.
    Secondary,
}

/// `[node]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Node {
    pub role: toml::Spanned<Role>,
    /// Reported as `context.Deployment.Region`; selects `/mgmt/locations/{region}`.
    pub region: String,
    /// Reported as `context.Deployment.ServiceName`.
    pub service_name: String,
    pub data_dir: PathBuf,
    /// How long shutdown waits for in-flight requests before closing them.
    #[serde(deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// File holding the master key that seals secrets at rest (64 hex
    /// digits or base64 of 32 bytes). Relative paths: to the working
    /// directory, like `data_dir`. `TURNPIKE_MASTER_KEY` wins over it;
    /// with neither, `{data_dir}/master.key` is generated on first start.
    pub master_key_file: Option<PathBuf>,
    /// Runtime threads serving requests. 0 (the default): one per core the
    /// process may run on (its CPU affinity counts). With one, the runtime
    /// runs everything on a single thread and skips cross-thread
    /// scheduling, the fastest choice on one core.
    pub worker_threads: usize,
}

/// The most `[node] worker_threads` accepts.
pub const MAX_WORKER_THREADS: usize = 1024;

impl Node {
    /// The number of runtime threads to start: `worker_threads`, or one
    /// per core available to the process when it is 0.
    pub fn runtime_threads(&self) -> usize {
        match self.worker_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl Default for Node {
    fn default() -> Self {
        Node {
            role: toml::Spanned::new(0..0, Role::Primary),
            region: "default".into(),
            service_name: "turnpike".into(),
            data_dir: PathBuf::from("./data"),
            shutdown_timeout: Duration::from_secs(30),
            master_key_file: None,
            worker_threads: 0,
        }
    }
}

/// `[gateway]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gateway {
    /// Plain-HTTP listener.
    pub http: SocketAddr,
    /// HTTPS listener (needs a certificate); not enabled by default.
    pub https: Option<toml::Spanned<SocketAddr>>,
    /// PEM certificate chain for `https` (relative paths: under
    /// `node.data_dir`). Absent: `{data_dir}/tls/gateway.crt`, self-signed
    /// on first start.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert` (relative paths: under
    /// `node.data_dir`). Absent: `{data_dir}/tls/gateway.key`.
    pub tls_key: Option<PathBuf>,
    /// Ask (never require) HTTPS clients for a certificate in the
    /// handshake, for `context.Request.Certificate` and
    /// `validate-client-certificate`.
    pub negotiate_client_certificate: bool,
    /// Time allowed to open a TCP (and TLS) connection to a backend.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Time allowed for a backend to send its response headers (APIM's
    /// `forward-request` default timeout is 300 s).
    #[serde(deserialize_with = "duration")]
    pub backend_timeout: Duration,
    /// Idle keep-alive connections kept per backend host.
    pub pool_max_idle_per_host: usize,
    /// Largest HTTP/1.1 request line plus headers, and largest HTTP/2
    /// header list, in bytes (at least 8192); more is answered with 431.
    pub max_header_bytes: usize,
    /// Most header fields in an HTTP/1.1 request; more is answered with 431.
    pub max_headers: usize,
    /// Time a client gets to send a request's headers (and, on the plain
    /// listener, its first bytes); then the connection is closed.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
    /// Concurrent streams one HTTP/2 client connection may open.
    pub max_concurrent_streams: u32,
    /// HTTP/2 streams a client may reset before the gateway served them
    /// (rapid reset); past it the connection gets GOAWAY.
    pub max_pending_reset_streams: usize,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            http: SocketAddr::from(([0, 0, 0, 0], 8080)),
            https: None,
            tls_cert: None,
            tls_key: None,
            negotiate_client_certificate: false,
            connect_timeout: Duration::from_secs(10),
            backend_timeout: Duration::from_secs(300),
            pool_max_idle_per_host: 256,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(30),
            max_concurrent_streams: 200,
            max_pending_reset_streams: 20,
        }
    }
}

/// `[management]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Management {
    pub listen: SocketAddr,
    /// Bearer token for `/mgmt`. When absent, a primary generates one into
    /// `data_dir/admin.key` on first start.
    pub admin_key: Option<Secret>,
    /// Where the admin key is read from (generated on first start when
    /// missing) when `admin_key` is absent; relative paths: under
    /// `node.data_dir`. Default `admin.key`. Packages keep it in
    /// `/etc/turnpike/admin.key`.
    pub admin_key_file: Option<PathBuf>,
    /// Largest request body the management API reads, in bytes.
    pub max_body_bytes: usize,
    /// Longest expiry `POST /mgmt/gateways/{gid}/token` grants (the
    /// default expiry is 30 days, or this when shorter).
    #[serde(deserialize_with = "duration")]
    pub gateway_token_max_lifetime: Duration,
    /// PEM certificate chain: when set (with `tls_key`), the management
    /// listener (and the cluster endpoints) speak HTTPS only. Relative
    /// paths: under `node.data_dir`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert` (relative: under `node.data_dir`).
    pub tls_key: Option<PathBuf>,
    /// Time a client gets to send a request's headers, and a new
    /// connection its first request; then the connection is closed.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
}

impl Default for Management {
    fn default() -> Self {
        Management {
            listen: SocketAddr::from(([127, 0, 0, 1], 8001)),
            admin_key: None,
            admin_key_file: None,
            max_body_bytes: 4 * 1024 * 1024,
            gateway_token_max_lifetime: Duration::from_secs(30 * 24 * 3600),
            tls_cert: None,
            tls_key: None,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// `[portal]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Portal {
    pub listen: SocketAddr,
    pub enabled: bool,
    /// Anonymous visitors are sent to the sign-in page.
    pub require_sign_in: bool,
    /// The gateway's public base URL shown to developers (default: the
    /// portal's host name on the gateway's port).
    pub gateway_url: Option<String>,
    /// How long a portal sign-in lasts.
    #[serde(deserialize_with = "duration")]
    pub session_lifetime: Duration,
    /// PEM certificate chain: when set (with `tls_key`), the portal speaks
    /// HTTPS only and its cookies are `Secure`. Relative paths: under
    /// `node.data_dir`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert` (relative: under `node.data_dir`).
    pub tls_key: Option<PathBuf>,
    /// Time a client gets to send a request's headers, and a new
    /// connection its first request; then the connection is closed.
    #[serde(deserialize_with = "duration")]
    pub header_read_timeout: Duration,
}

impl Default for Portal {
    fn default() -> Self {
        Portal {
            listen: SocketAddr::from(([0, 0, 0, 0], 8002)),
            enabled: true,
            require_sign_in: false,
            gateway_url: None,
            session_lifetime: Duration::from_secs(12 * 3600),
            tls_cert: None,
            tls_key: None,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// `[cluster]` (secondaries only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    pub primary: Option<String>,
    pub gateway_id: Option<String>,
    pub token: Option<Secret>,
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    #[serde(deserialize_with = "duration")]
    pub heartbeat_interval: Duration,
    pub backup: bool,
    /// Ask the primary to hold each poll open until the configuration
    /// changes (at most `poll_interval`), so changes arrive at once.
    pub long_poll: bool,
    /// Secondary: PEM CA certificate(s) the primary's certificate must
    /// chain to (then only these are trusted). Unset: an `https` primary
    /// is verified against the public web roots. Relative: under
    /// `node.data_dir`.
    pub ca_cert: Option<PathBuf>,
    /// Primary: serve the configuration export (which carries secrets)
    /// over plain HTTP to non-loopback peers too. Off: only over TLS, or
    /// to a loopback peer.
    pub allow_plaintext_export: bool,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            primary: None,
            gateway_id: None,
            token: None,
            poll_interval: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(60),
            backup: true,
            long_poll: true,
            ca_cert: None,
            allow_plaintext_export: false,
        }
    }
}

/// `[redis]` (optional shared counters and cache).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Redis {
    /// `redis://[:password@]host:port[/db]`; a `Secret` because it may
    /// carry a password. Unset: counters stay in-process.
    pub url: Option<Secret>,
    /// How long one Redis call may take before the gateway counts locally.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Prepended to every key the gateway writes.
    pub key_prefix: String,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            url: None,
            timeout: Duration::from_millis(250),
            key_prefix: "turnpike:".into(),
        }
    }
}

/// `[cache]` (the gateway's response and value cache).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Capacity of the in-process cache, in bytes (keys, headers, bodies).
    pub internal_max_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            internal_max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[identity]`: where `authentication-managed-identity` gets its tokens.
/// An OAuth2 token endpoint with client credentials (any provider), or an
/// Azure IMDS-compatible endpoint; none by default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    /// OAuth2 token endpoint (client-credentials grant).
    pub token_endpoint: Option<String>,
    pub client_id: Option<String>,
    /// Never logged or shown.
    pub client_secret: Option<Secret>,
    /// Azure Instance Metadata Service-compatible token URL, used when no
    /// `token_endpoint` is set.
    pub imds_endpoint: Option<String>,
}

/// `[dapr]`: the Dapr sidecar the Dapr policies call (`publish-to-dapr`,
/// `invoke-dapr-binding`, `set-backend-service dapr-app-id`). None by
/// default: those policies are then compile errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dapr {
    /// The sidecar's HTTP API, like `http://127.0.0.1:3500`.
    pub sidecar_url: Option<String>,
}

/// `[analytics]`: per-minute traffic aggregates behind `/mgmt/reports/*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Analytics {
    /// Record and keep aggregates (a secondary sends its own to the primary).
    pub enabled: bool,
    /// Days of aggregates kept (whole minutes older than this are pruned).
    pub retention_days: u32,
    /// Most bytes the stored aggregates take; the oldest minutes go first.
    pub max_bytes: u64,
    /// How often recorded minutes are written to the store (a primary) or
    /// queued for the next heartbeat (a secondary).
    #[serde(deserialize_with = "duration")]
    pub flush_interval: Duration,
    /// Distinct keys (api, operation, product, subscription, user, status
    /// class) kept per minute in memory; more are counted under `(other)`.
    pub max_keys_per_minute: usize,
}

impl Default for Analytics {
    fn default() -> Self {
        Analytics {
            enabled: true,
            retention_days: 30,
            max_bytes: 256 * 1024 * 1024,
            flush_interval: Duration::from_secs(5),
            max_keys_per_minute: 10_000,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// `[telemetry]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    pub log_format: LogFormat,
    /// The log filter (`RUST_LOG` syntax: a level, or `level,target=level`
    /// directives); `TURNPIKE_LOG` / `RUST_LOG` override it. Applied live
    /// on SIGHUP.
    pub log_level: String,
    /// One log event per gateway request (target `access`).
    pub access_log: bool,
    /// Access events as JSON lines in this file (relative: under
    /// `node.data_dir`) instead of log events.
    pub access_log_file: Option<PathBuf>,
    /// The access event's path includes the query string.
    pub access_log_query: bool,
    /// The request id header: kept from the client when valid, else
    /// generated; sent to the backend and echoed on the response.
    pub request_id_header: String,
    /// A listener of its own for `GET /metrics` (the management listener
    /// serves it too, on a primary); the only way a secondary exposes it.
    pub metrics_listen: Option<SocketAddr>,
    /// OTLP/HTTP collector base URL (`/v1/traces`, `/v1/metrics` are
    /// appended); absent: no OTLP export.
    pub otlp_endpoint: Option<String>,
    /// Headers sent with every export (e.g. a SaaS collector's API key).
    /// Secrets: never logged.
    pub otlp_headers: std::collections::BTreeMap<String, Secret>,
    /// Share of new traces sampled (0..=1); a client's `traceparent`
    /// decides for the traces it continues (parent-based).
    pub otlp_sample_ratio: f64,
    /// The resource's `service.name`.
    pub otlp_service_name: String,
    /// How often queued spans are sent (sooner when 512 are queued).
    #[serde(deserialize_with = "duration")]
    pub otlp_export_interval: Duration,
    /// How often the metrics are exported; `0s`: traces only.
    #[serde(deserialize_with = "duration")]
    pub otlp_metrics_interval: Duration,
    /// How many API inspector traces the gateway keeps in memory (the
    /// oldest go first; also capped at 16 MiB). 0 turns the inspector off.
    pub trace_ring_size: usize,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            log_format: LogFormat::Pretty,
            log_level: "info".into(),
            access_log: true,
            access_log_file: None,
            access_log_query: false,
            request_id_header: "x-request-id".into(),
            metrics_listen: None,
            otlp_endpoint: None,
            otlp_headers: Default::default(),
            otlp_sample_ratio: 1.0,
            otlp_service_name: "turnpike".into(),
            otlp_export_interval: Duration::from_secs(5),
            otlp_metrics_interval: Duration::from_secs(60),
            trace_ring_size: 100,
        }
    }
}

/// A configuration error, rendered `FILE:LINE: message` (`FILE: message`
/// when no line applies, e.g. the file cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Settings::parse(&file, &text)
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Settings, ConfigError> {
        let settings: Settings = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            ConfigError {
                file: file.to_string(),
                line,
                message: e.message().trim().to_string(),
            }
        })?;
        settings.validate(file, text)?;
        Ok(settings)
    }

    /// Cross-key checks that serde cannot express.
    fn validate(&self, file: &str, text: &str) -> Result<(), ConfigError> {
        let at = |offset: usize, message: String| ConfigError {
            file: file.to_string(),
            line: line_of(text, offset),
            message,
        };
        if *self.node.role.get_ref() == Role::Secondary {
            let role_at = self.node.role.span().start;
            for (key, missing) in [
                ("primary", self.cluster.primary.is_none()),
                ("gateway_id", self.cluster.gateway_id.is_none()),
                ("token", self.cluster.token.is_none()),
            ] {
                if missing {
                    return Err(at(
                        role_at,
                        format!("role = \"secondary\" needs [cluster] {key}"),
                    ));
                }
            }
        }
        if let Some(primary) = &self.cluster.primary {
            let ok = primary
                .parse::<http::Uri>()
                .ok()
                .filter(|u| {
                    matches!(u.scheme_str(), Some("http" | "https"))
                        && u.authority().is_some()
                        && u.query().is_none()
                })
                .is_some();
            if !ok {
                return Err(at(
                    find_key(text, "primary"),
                    format!(
                        "cluster.primary must be the primary's management URL, like \"http://primary.example:8001\" (got {primary:?})"
                    ),
                ));
            }
        }
        if let Some(gid) = &self.cluster.gateway_id {
            let ok = !gid.is_empty()
                && gid.len() <= 80
                && gid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(at(
                    find_key(text, "gateway_id"),
                    "cluster.gateway_id: 1-80 letters, digits, '.', '_' or '-'".into(),
                ));
            }
        }
        if let (Some(gid), Some(token)) = (&self.cluster.gateway_id, &self.cluster.token) {
            // The token names its gateway (`<gatewayId>&<expiry>&<sig>`).
            let named = token.expose().split('&').next().unwrap_or("");
            if named != gid {
                return Err(at(
                    find_key(text, "token"),
                    format!(
                        "cluster.token was minted for gateway {named:?}, not for \
                         cluster.gateway_id {gid:?}"
                    ),
                ));
            }
        }
        for (key, value, min) in [
            (
                "poll_interval",
                self.cluster.poll_interval,
                Duration::from_millis(10),
            ),
            (
                "heartbeat_interval",
                self.cluster.heartbeat_interval,
                Duration::from_millis(10),
            ),
            (
                "gateway_token_max_lifetime",
                self.management.gateway_token_max_lifetime,
                Duration::from_secs(1),
            ),
        ] {
            if value < min {
                return Err(at(
                    find_key(text, key),
                    format!("{key} must be at least {}", humantime::format_duration(min)),
                ));
            }
        }
        for (key, value, min) in [
            ("max_header_bytes", self.gateway.max_header_bytes, 8192),
            ("max_headers", self.gateway.max_headers, 1),
            (
                "max_concurrent_streams",
                self.gateway.max_concurrent_streams as usize,
                1,
            ),
        ] {
            if value < min {
                return Err(at(
                    find_key_in(text, "gateway", key),
                    format!("gateway.{key} must be at least {min}"),
                ));
            }
        }
        for (table, value) in [
            ("gateway", self.gateway.header_read_timeout),
            ("management", self.management.header_read_timeout),
            ("portal", self.portal.header_read_timeout),
        ] {
            if value < Duration::from_millis(10) {
                return Err(at(
                    find_key_in(text, table, "header_read_timeout"),
                    format!("{table}.header_read_timeout must be at least 10ms"),
                ));
            }
        }
        if self.gateway.tls_cert.is_some() != self.gateway.tls_key.is_some() {
            let key = if self.gateway.tls_cert.is_some() {
                "tls_cert"
            } else {
                "tls_key"
            };
            return Err(at(
                find_key(text, key),
                "gateway.tls_cert and gateway.tls_key go together: set both or neither".into(),
            ));
        }
        for (section, cert, key) in [
            (
                "management",
                &self.management.tls_cert,
                &self.management.tls_key,
            ),
            ("portal", &self.portal.tls_cert, &self.portal.tls_key),
        ] {
            if cert.is_some() != key.is_some() {
                let given = if cert.is_some() {
                    "tls_cert"
                } else {
                    "tls_key"
                };
                return Err(at(
                    find_key_in(text, section, given),
                    format!(
                        "{section}.tls_cert and {section}.tls_key go together: set both or neither"
                    ),
                ));
            }
        }
        if let Some(key) = &self.management.admin_key {
            if key.expose().len() < 16 {
                return Err(at(
                    find_key(text, "admin_key"),
                    "management.admin_key must be at least 16 characters".into(),
                ));
            }
        }
        if self.telemetry.trace_ring_size > 10_000 {
            return Err(at(
                find_key(text, "trace_ring_size"),
                "telemetry.trace_ring_size must be at most 10000".into(),
            ));
        }
        if self.cache.internal_max_bytes == 0 {
            return Err(at(
                find_key(text, "internal_max_bytes"),
                "cache.internal_max_bytes must be greater than 0".into(),
            ));
        }
        let http_url = |u: &str| {
            u.parse::<http::Uri>().ok().is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
            })
        };
        for (key, value) in [
            ("token_endpoint", &self.identity.token_endpoint),
            ("imds_endpoint", &self.identity.imds_endpoint),
        ] {
            if let Some(u) = value {
                if !http_url(u) {
                    return Err(at(
                        find_key(text, key),
                        format!("identity.{key} must be an absolute http(s) URL (got {u:?})"),
                    ));
                }
            }
        }
        if let Some(u) = &self.dapr.sidecar_url {
            let plain = u
                .parse::<http::Uri>()
                .ok()
                .is_some_and(|p| p.query().is_none() && matches!(p.path(), "" | "/"));
            if !http_url(u) || !plain {
                return Err(at(
                    find_key(text, "sidecar_url"),
                    format!(
                        "dapr.sidecar_url must be an absolute http(s) URL without a path, like \"http://127.0.0.1:3500\" (got {u:?})"
                    ),
                ));
            }
        }
        if self.identity.token_endpoint.is_some()
            && (self.identity.client_id.is_none() || self.identity.client_secret.is_none())
        {
            return Err(at(
                find_key(text, "token_endpoint"),
                "identity.token_endpoint needs identity.client_id and identity.client_secret"
                    .into(),
            ));
        }
        if let Some(url) = &self.redis.url {
            let u = url.expose();
            let parsed = ::redis::IntoConnectionInfo::into_connection_info(u).is_ok();
            if !u.starts_with("redis://") || u.len() <= "redis://".len() || !parsed {
                return Err(at(
                    find_key(text, "url"),
                    "redis.url must look like \"redis://host:port\" or \"redis://host:port/db\" \
                     (rediss:// is not available in this build)"
                        .into(),
                ));
            }
        }
        if self.redis.timeout < Duration::from_millis(1) {
            return Err(at(
                find_key(text, "timeout"),
                "redis.timeout must be at least 1ms".into(),
            ));
        }
        if self
            .management
            .admin_key_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(at(
                find_key(text, "admin_key_file"),
                "management.admin_key_file must name a file (or be left out)".into(),
            ));
        }
        if self.node.worker_threads > MAX_WORKER_THREADS {
            return Err(at(
                find_key(text, "worker_threads"),
                format!(
                    "node.worker_threads must be at most {MAX_WORKER_THREADS} (0: one per core)"
                ),
            ));
        }
        if self
            .node
            .master_key_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(at(
                find_key(text, "master_key_file"),
                "node.master_key_file must name a file (or be left out)".into(),
            ));
        }
        if self
            .telemetry
            .access_log_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(at(
                find_key(text, "access_log_file"),
                "telemetry.access_log_file must name a file (or be left out)".into(),
            ));
        }
        if http::HeaderName::try_from(self.telemetry.request_id_header.as_str()).is_err() {
            return Err(at(
                find_key(text, "request_id_header"),
                format!(
                    "telemetry.request_id_header must be an HTTP header name (got {:?})",
                    self.telemetry.request_id_header
                ),
            ));
        }
        if self.analytics.retention_days == 0 {
            return Err(at(
                find_key_in(text, "analytics", "retention_days"),
                "analytics.retention_days must be at least 1".into(),
            ));
        }
        if self.analytics.max_bytes < 1024 * 1024 {
            return Err(at(
                find_key_in(text, "analytics", "max_bytes"),
                "analytics.max_bytes must be at least 1048576 (1 MiB)".into(),
            ));
        }
        if self.analytics.flush_interval < Duration::from_millis(10)
            || self.analytics.flush_interval > Duration::from_secs(3600)
        {
            return Err(at(
                find_key_in(text, "analytics", "flush_interval"),
                "analytics.flush_interval must be between 10ms and 1h".into(),
            ));
        }
        if self.analytics.max_keys_per_minute == 0 {
            return Err(at(
                find_key_in(text, "analytics", "max_keys_per_minute"),
                "analytics.max_keys_per_minute must be at least 1".into(),
            ));
        }
        if let Err((key, message)) = otlp_check(&self.telemetry) {
            return Err(at(find_key_in(text, "telemetry", key), message));
        }
        if let Err(message) = log_filter_check(&self.telemetry.log_level) {
            return Err(at(find_key_in(text, "telemetry", "log_level"), message));
        }
        if self.management.max_body_bytes == 0 {
            return Err(at(
                find_key(text, "max_body_bytes"),
                "management.max_body_bytes must be greater than 0".into(),
            ));
        }
        Ok(())
    }

    /// The configuration a node runs on when no file is given.
    pub fn defaults() -> Settings {
        Settings::default()
    }
}

/// Longest `[telemetry] log_level` accepted.
pub const MAX_LOG_FILTER: usize = 512;

/// Checks `[telemetry] log_level`: a valid filter whose bare words are
/// levels (a bare `debg` would otherwise silently name a target).
pub fn log_filter_check(spec: &str) -> Result<(), String> {
    // Field filters compile to regular expressions: bound what one costs.
    if spec.len() > MAX_LOG_FILTER {
        return Err(format!(
            "telemetry.log_level is longer than {MAX_LOG_FILTER} characters"
        ));
    }
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if !directive.contains('=')
            && !directive.contains('[')
            && !LEVELS.contains(&directive.to_ascii_lowercase().as_str())
        {
            return Err(format!(
                "telemetry.log_level: {directive:?} is not a level (trace, debug, info, warn, \
                 error, off) nor a target=level directive"
            ));
        }
    }
    log_filter(spec)
        .map(|_| ())
        .map_err(|e| format!("telemetry.log_level: {e}"))
}

/// A log filter (`RUST_LOG` syntax) as the process builds it, from the
/// configuration, `TURNPIKE_LOG` / `RUST_LOG` or a reload. Span field
/// values match literally, never as regular expressions: compiling a
/// field pattern into an automaton can take minutes for a few hundred
/// characters (a fuzzed `log_level` of 401 bytes did), and that would
/// hang start-up or a SIGHUP.
///
/// Each directive is trimmed here first: tracing-subscriber's parser
/// walks a directive's trimmed text but slices the untrimmed one with
/// those offsets, which panics when leading white space comes before a
/// multi-byte character (a fuzzed `log_level`).
pub fn log_filter(spec: &str) -> Result<tracing_subscriber::EnvFilter, String> {
    let directives: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    tracing_subscriber::EnvFilter::builder()
        .with_regex(false)
        .parse(directives.join(","))
        .map_err(|e| e.to_string())
}

/// Checks the `[telemetry] otlp_*` keys: `Err((key, message))`. A
/// header's value is never quoted (it is a secret).
fn otlp_check(t: &Telemetry) -> Result<(), (&'static str, String)> {
    if let Some(e) = &t.otlp_endpoint {
        let ok = e
            .parse::<http::Uri>()
            .ok()
            .filter(|u| {
                matches!(u.scheme_str(), Some("http" | "https"))
                    && u.authority().is_some_and(|a| !a.as_str().contains('@'))
                    && u.query().is_none()
            })
            .is_some();
        if !ok {
            return Err((
                "otlp_endpoint",
                format!(
                    "telemetry.otlp_endpoint must be an http(s) URL without credentials or query \
                     (got {e:?})"
                ),
            ));
        }
    }
    if !(0.0..=1.0).contains(&t.otlp_sample_ratio) {
        return Err((
            "otlp_sample_ratio",
            format!(
                "telemetry.otlp_sample_ratio must be between 0 and 1 (got {})",
                t.otlp_sample_ratio
            ),
        ));
    }
    if t.otlp_service_name.trim().is_empty() {
        return Err((
            "otlp_service_name",
            "telemetry.otlp_service_name must not be empty".into(),
        ));
    }
    if t.otlp_export_interval.is_zero() {
        return Err((
            "otlp_export_interval",
            "telemetry.otlp_export_interval must be greater than 0".into(),
        ));
    }
    for (name, value) in &t.otlp_headers {
        if http::HeaderName::try_from(name.as_str()).is_err() {
            return Err((
                "otlp_headers",
                format!("telemetry.otlp_headers: {name:?} is not an HTTP header name"),
            ));
        }
        if http::HeaderValue::try_from(value.expose()).is_err() {
            return Err((
                "otlp_headers",
                format!(
                    "telemetry.otlp_headers: the value of {name:?} is not a valid header value"
                ),
            ));
        }
    }
    Ok(())
}

/// 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Byte offset of the first line that assigns `key`, or 0.
fn find_key(text: &str, key: &str) -> usize {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            return offset;
        }
        offset += line.len();
    }
    0
}

/// Byte offset of the line that assigns `key` inside `[section]`, or of
/// the first line that assigns it anywhere, or 0.
fn find_key_in(text: &str, section: &str, key: &str) -> usize {
    let header = format!("[{section}]");
    let mut offset = 0;
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with('[') {
            inside = t.trim_end().starts_with(&header);
        } else if inside && t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            return offset;
        }
        offset += line.len();
    }
    find_key(text, key)
}

/// Parses a humantime duration (`"10s"`, `"200ms"`, `"1h 30m"`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_tls_pairs_and_cluster_trust() {
        let s = Settings::parse(
            "c.toml",
            "[management]\ntls_cert = \"m.crt\"\ntls_key = \"m.key\"\n\
             [portal]\ntls_cert = \"p.crt\"\ntls_key = \"p.key\"\n\
             [cluster]\nca_cert = \"tls/ca.crt\"\nallow_plaintext_export = true\n",
        )
        .unwrap();
        assert_eq!(s.management.tls_key.unwrap(), PathBuf::from("m.key"));
        assert_eq!(s.portal.tls_cert.unwrap(), PathBuf::from("p.crt"));
        assert_eq!(s.cluster.ca_cert.unwrap(), PathBuf::from("tls/ca.crt"));
        assert!(s.cluster.allow_plaintext_export);
        assert!(!Settings::defaults().cluster.allow_plaintext_export);
        let e = Settings::parse(
            "c.toml",
            "[gateway]\ntls_cert = \"g.crt\"\ntls_key = \"g.key\"\n\n[portal]\ntls_cert = \"p.crt\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(
            e.message.contains("portal.tls_cert and portal.tls_key"),
            "{e}"
        );
        let e = Settings::parse("c.toml", "[management]\ntls_key = \"k\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("management.tls_cert"), "{e}");
        let e = Settings::parse("c.toml", "[cluster]\nca_cert = 3\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn https_and_tls_paths() {
        let s = Settings::parse(
            "c.toml",
            "[gateway]\nhttps = \"127.0.0.1:8443\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
        )
        .unwrap();
        assert_eq!(s.gateway.https.unwrap().get_ref().port(), 8443);
        assert_eq!(s.gateway.tls_key.unwrap(), PathBuf::from("k.pem"));
        let e = Settings::parse("c.toml", "[gateway]\n\ntls_cert = \"c.pem\"\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:3: "), "{e}");
        assert!(e.to_string().contains("tls_key"), "{e}");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let s = Settings::parse("c.toml", "").unwrap();
        assert_eq!(s.gateway.http.port(), 8080);
        assert_eq!(s.management.listen.to_string(), "127.0.0.1:8001");
        assert_eq!(s.cluster.poll_interval, Duration::from_secs(10));
        assert_eq!(*s.node.role.get_ref(), Role::Primary);
    }

    #[test]
    fn trace_ring_size_is_checked() {
        let s = Settings::parse("c.toml", "").unwrap();
        assert_eq!(s.telemetry.trace_ring_size, 100);
        let s = Settings::parse("c.toml", "[telemetry]\ntrace_ring_size = 0\n").unwrap();
        assert_eq!(s.telemetry.trace_ring_size, 0);
        let e = Settings::parse("c.toml", "[telemetry]\n\ntrace_ring_size = 10001\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = Settings::parse("c.toml", "[telemetry]\ntrace_ring_size = -1\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn cache_section_is_checked() {
        let s = Settings::parse("c.toml", "").unwrap();
        assert_eq!(s.cache.internal_max_bytes, 64 << 20);
        let s = Settings::parse("c.toml", "[cache]\ninternal_max_bytes = 1024\n").unwrap();
        assert_eq!(s.cache.internal_max_bytes, 1024);
        let e = Settings::parse("c.toml", "[cache]\nsize = 1\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = Settings::parse("c.toml", "[cache]\n\ninternal_max_bytes = 0\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = Settings::parse("c.toml", "[cache]\ninternal_max_bytes = \"big\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn analytics_keys_are_checked() {
        let d = Settings::defaults().analytics;
        assert!(d.enabled);
        assert_eq!(d.retention_days, 30);
        assert_eq!(d.flush_interval, Duration::from_secs(5));
        let s = Settings::parse(
            "c.toml",
            "[analytics]\nenabled = false\nretention_days = 7\nmax_bytes = 2000000\nflush_interval = \"200ms\"\n",
        )
        .unwrap();
        assert!(!s.analytics.enabled);
        assert_eq!(s.analytics.retention_days, 7);
        assert_eq!(s.analytics.flush_interval, Duration::from_millis(200));
        let e = Settings::parse("c.toml", "[analytics]\n\nretention_days = 0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:3: analytics.retention_days must be at least 1"
        );
        let e = Settings::parse("c.toml", "[analytics]\nmax_bytes = 10\n").unwrap_err();
        assert!(
            e.to_string().starts_with("c.toml:2: analytics.max_bytes"),
            "{e}"
        );
        let e = Settings::parse("c.toml", "[analytics]\nretention = 3\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:2:"), "{e}");
        let e = Settings::parse("c.toml", "[analytics]\nenabled = \"yes\"\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:2:"), "{e}");
    }

    #[test]
    fn metrics_listen_is_an_address() {
        let s = Settings::parse(
            "c.toml",
            "[telemetry]\nmetrics_listen = \"127.0.0.1:9464\"\n",
        )
        .unwrap();
        assert_eq!(
            s.telemetry.metrics_listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:9464")
        );
        let e = Settings::parse("c.toml", "[telemetry]\n\nmetrics_listen = 9464\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(Settings::defaults().telemetry.metrics_listen.is_none());
    }

    #[test]
    fn otlp_keys_are_checked() {
        let d = Settings::defaults().telemetry;
        assert!(d.otlp_endpoint.is_none());
        assert_eq!(d.otlp_sample_ratio, 1.0);
        assert_eq!(d.otlp_service_name, "turnpike");
        let s = Settings::parse(
            "c.toml",
            "[telemetry]\notlp_endpoint = \"http://collector:4318\"\notlp_sample_ratio = 0.25\n\
             otlp_metrics_interval = \"0s\"\notlp_headers = { \"x-api-key\" = \"hunter2\" }\n",
        )
        .unwrap();
        assert_eq!(s.telemetry.otlp_sample_ratio, 0.25);
        assert!(!format!("{s:?}").contains("hunter2"));
        for (text, line, needle) in [
            (
                "[telemetry]\n\notlp_endpoint = \"collector:4318\"\n",
                3,
                "otlp_endpoint",
            ),
            (
                "[telemetry]\notlp_endpoint = \"ftp://c\"\n",
                2,
                "otlp_endpoint",
            ),
            (
                "[telemetry]\notlp_endpoint = \"http://u:p@c\"\n",
                2,
                "otlp_endpoint",
            ),
            (
                "[telemetry]\n\notlp_sample_ratio = 1.5\n",
                3,
                "between 0 and 1",
            ),
            (
                "[telemetry]\notlp_sample_ratio = -0.1\n",
                2,
                "between 0 and 1",
            ),
            ("[telemetry]\notlp_sample_ratio = \"all\"\n", 2, ""),
            (
                "[telemetry]\notlp_service_name = \" \"\n",
                2,
                "otlp_service_name",
            ),
            (
                "[telemetry]\notlp_export_interval = \"0s\"\n",
                2,
                "otlp_export_interval",
            ),
            (
                "[telemetry]\notlp_metrics_interval = \"soon\"\n",
                2,
                "invalid duration",
            ),
            (
                "[telemetry]\notlp_headers = { \"x-key\" = \"a\\nb\" }\n",
                2,
                "x-key",
            ),
        ] {
            let e = Settings::parse("c.toml", text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e.to_string().starts_with("c.toml:"), "{e}");
        }
        let e = Settings::parse(
            "c.toml",
            "[telemetry]\notlp_headers = { \"bad name\" = \"s3cret\" }\n",
        )
        .unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn telemetry_access_keys_are_checked() {
        let s = Settings::parse("c.toml", "").unwrap();
        assert_eq!(s.telemetry.request_id_header, "x-request-id");
        assert!(s.telemetry.access_log_file.is_none());
        assert!(!s.telemetry.access_log_query);
        let s = Settings::parse(
            "c.toml",
            "[telemetry]\naccess_log_file = \"logs/access.jsonl\"\naccess_log_query = true\nrequest_id_header = \"X-Correlation-Id\"\n",
        )
        .unwrap();
        assert_eq!(
            s.telemetry.access_log_file.as_deref(),
            Some(Path::new("logs/access.jsonl"))
        );
        assert!(s.telemetry.access_log_query);
        let e = Settings::parse("c.toml", "[telemetry]\n\naccess_log_file = \"\"\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:3: "), "{e}");
        let e = Settings::parse(
            "c.toml",
            "[telemetry]\nrequest_id_header = \"bad header\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("c.toml:2: "), "{e}");
        let e = Settings::parse("c.toml", "[telemetry]\naccess_log_query = \"yes\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    /// A fuzzed configuration (config_toml timeout) whose log_level held
    /// field filters that took seconds to compile into regexes.
    #[test]
    fn fuzz_config_toml_slow_log_filter() {
        let filter = format!(
            "inf[otz{}{{z.zzt[[[[[[zn=4{}{}]z=zhe",
            "z".repeat(40),
            "l".repeat(60),
            ".".repeat(400)
        );
        let text = format!("[telemetry]\nlog_level = {filter:?}\n");
        let e = Settings::parse("c.toml", &text).unwrap_err();
        assert!(e.message.contains("longer than 512"), "{e}");
        // At the limit, the worst field filter still compiles quickly.
        let filter = format!("a[{{f={}}}]", "[[[[z]]]]l.".repeat(45));
        assert!(filter.len() <= MAX_LOG_FILTER);
        let started = std::time::Instant::now();
        let _ = log_filter_check(&filter);
        println!("512-character field filter: {:?}", started.elapsed());
    }

    /// A fuzzed configuration (config_toml timeout) whose 390-character
    /// log_level, under the length limit, held a span field pattern
    /// that took minutes to compile as a regular expression. Field
    /// values now match literally (their `Debug` form), never as
    /// patterns: the fuzzed filter is checked like any other, and a
    /// value with regex metacharacters matches only itself.
    #[test]
    fn fuzz_config_toml_field_pattern_is_literal() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use tracing_subscriber::layer::SubscriberExt;

        let filter = format!(
            "info[...``1```{{#n= e{}*{}{}{}@abl man{}$%rrq}}i{{s_s{}i=..%..",
            "O".repeat(25),
            "O".repeat(30),
            ".".repeat(88),
            "O".repeat(19),
            "%".repeat(60),
            ".".repeat(37)
        );
        assert!(filter.len() < MAX_LOG_FILTER);
        let text = format!("[telemetry]\nlog_level = {filter:?}\n");
        let _ = Settings::parse("c.toml", &text);

        struct Count(Arc<AtomicUsize>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
            fn on_event(
                &self,
                _: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let seen = Arc::new(AtomicUsize::new(0));
        let spec = r#"warn,[s{f="a.c"}]=debug"#;
        let subscriber = tracing_subscriber::registry()
            .with(log_filter(spec).unwrap())
            .with(Count(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            // The value is compared with the field's `Debug` form (hence
            // the quotes): `abc` is not `a.c`, whatever `.` means to a
            // regular expression.
            tracing::warn_span!("s", f = "abc").in_scope(|| tracing::debug!("pattern"));
            tracing::warn_span!("s", f = "a.c").in_scope(|| tracing::debug!("literal"));
        });
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    /// A fuzzed configuration (config_toml crash): white space before a
    /// multi-byte character in a directive panicked inside
    /// tracing-subscriber's parser. Now a clear error, and the same
    /// directive without the junk still parses.
    #[test]
    fn fuzz_config_toml_leading_space_multibyte() {
        let text = "[telemetry]\nlog_level =\"         wx3e\u{d9}\u{da}WWWWWWWW=q..%.\t\"\n";
        let e = Settings::parse("c.toml", text).unwrap_err();
        assert!(e.message.contains("telemetry.log_level"), "{e}");
        assert!(log_filter(" \u{e9}t\u{e9}=debug").is_ok());
        assert!(log_filter("  info ,  turnpike::gateway=debug ").is_ok());
        let text = "[telemetry]\nlog_level = \" warn, access=off \"\n";
        assert!(Settings::parse("c.toml", text).is_ok());
    }

    #[test]
    fn log_level_is_a_checked_filter() {
        assert_eq!(
            Settings::parse("c.toml", "").unwrap().telemetry.log_level,
            "info"
        );
        for ok in [
            "debug",
            "warn,turnpike::gateway=debug",
            "info,access=off",
            "TRACE",
        ] {
            let s = Settings::parse("c.toml", &format!("[telemetry]\nlog_level = {ok:?}\n"))
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(s.telemetry.log_level, ok);
        }
        for bad in ["debg", "info,x=loud"] {
            let e = Settings::parse("c.toml", &format!("[telemetry]\n\nlog_level = {bad:?}\n"))
                .unwrap_err();
            assert!(
                e.to_string().starts_with("c.toml:3: telemetry.log_level"),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let e = Settings::parse("c.toml", "[node]\nregion = \"x\"\nbogus = 1\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.to_string().starts_with("c.toml:3: "), "{e}");
        assert!(e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn bad_types_and_values_are_located() {
        let e = Settings::parse("c.toml", "[gateway]\n\nhttp = 12\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = Settings::parse("c.toml", "[cluster]\npoll_interval = \"soon\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("duration"), "{e}");
        let e = Settings::parse("c.toml", "[node]\nrole = \"leader\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn gateway_limits_are_checked() {
        let s = Settings::parse(
            "c.toml",
            "[gateway]\nmax_header_bytes = 16384\nmax_headers = 20\nheader_read_timeout = \"2s\"\nmax_concurrent_streams = 8\nmax_pending_reset_streams = 4\n",
        )
        .unwrap();
        assert_eq!(s.gateway.max_header_bytes, 16384);
        assert_eq!(s.gateway.max_headers, 20);
        assert_eq!(s.gateway.header_read_timeout, Duration::from_secs(2));
        assert_eq!(s.gateway.max_concurrent_streams, 8);
        assert_eq!(s.gateway.max_pending_reset_streams, 4);
        for (bad, needle) in [
            ("max_header_bytes = 100", "at least 8192"),
            ("max_headers = 0", "at least 1"),
            ("max_concurrent_streams = 0", "at least 1"),
            ("header_read_timeout = \"1ms\"", "at least 10ms"),
            ("max_headers = \"many\"", "invalid type"),
        ] {
            let e = Settings::parse("c.toml", &format!("[gateway]\n\n{bad}\n")).unwrap_err();
            assert_eq!(e.line, 3, "{bad}: {e}");
            assert!(e.message.contains(needle), "{bad}: {e}");
        }
        for table in ["management", "portal"] {
            let text = format!("[{table}]\n\nheader_read_timeout = \"5ms\"\n");
            let e = Settings::parse("c.toml", &text).unwrap_err();
            assert_eq!(e.line, 3, "{e}");
            assert!(
                e.message.contains(&format!("{table}.header_read_timeout")),
                "{e}"
            );
        }
    }

    #[test]
    fn dapr_sidecar_url_is_checked() {
        let s = Settings::parse(
            "c.toml",
            "[dapr]\nsidecar_url = \"http://127.0.0.1:3500\"\n",
        )
        .unwrap();
        assert_eq!(s.dapr.sidecar_url.as_deref(), Some("http://127.0.0.1:3500"));
        assert!(Settings::parse("c.toml", "")
            .unwrap()
            .dapr
            .sidecar_url
            .is_none());
        for bad in ["localhost:3500", "ftp://h:1", "http://h:1/v1.0"] {
            let e = Settings::parse("c.toml", &format!("[dapr]\n\nsidecar_url = {bad:?}\n"))
                .unwrap_err();
            assert_eq!(e.line, 3, "{bad}: {e}");
            assert!(e.message.contains("dapr.sidecar_url"), "{e}");
        }
        let e = Settings::parse("c.toml", "[dapr]\nsidecar = \"http://h:1\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn identity_keys_are_checked() {
        let ok = "[identity]\ntoken_endpoint = \"http://idp:9/token\"\nclient_id = \"gw\"\nclient_secret = \"s3cret\"\n";
        let s = Settings::parse("c.toml", ok).unwrap();
        assert_eq!(s.identity.client_id.as_deref(), Some("gw"));
        assert!(!format!("{:?}", s.identity).contains("s3cret"));
        let e = Settings::parse("c.toml", &ok.replace("http://idp:9/token", "idp")).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = Settings::parse(
            "c.toml",
            "[identity]\n\ntoken_endpoint = \"http://idp/t\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("client_secret"), "{e}");
        let e = Settings::parse("c.toml", "[identity]\nclient_secret = 5\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn secondary_needs_cluster_keys() {
        let e = Settings::parse("c.toml", "\n[node]\nrole = \"secondary\"\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("primary"), "{e}");
    }

    #[test]
    fn cluster_keys_are_checked() {
        let base = "[node]\nrole = \"secondary\"\n[cluster]\n";
        let ok = format!(
            "{base}primary = \"http://p:8001\"\ngateway_id = \"west\"\ntoken = \"west&1&abc\"\n"
        );
        let s = Settings::parse("c.toml", &ok).unwrap();
        assert!(s.cluster.long_poll);
        for (text, line, needle) in [
            (ok.replace("http://p:8001", "p:8001"), 4, "management URL"),
            (
                ok.replace("west&1", "east&1"),
                6,
                "minted for gateway \"east\"",
            ),
            (ok.replace("\"west\"", "\"we st\""), 5, "gateway_id"),
            (format!("{ok}poll_interval = \"0s\"\n"), 7, "at least"),
        ] {
            let e = Settings::parse("c.toml", &text).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn redis_keys_are_checked() {
        let s = Settings::parse(
            "c.toml",
            "[redis]\nurl = \"redis://:pw-secret@127.0.0.1:6379/2\"\ntimeout = \"100ms\"\n",
        )
        .unwrap();
        assert_eq!(s.redis.timeout, Duration::from_millis(100));
        assert_eq!(s.redis.key_prefix, "turnpike:");
        assert!(!format!("{s:?}").contains("pw-secret"));
        for (text, line, needle) in [
            ("[redis]\n\nurl = \"http://x:1\"\n", 3, "redis://"),
            ("[redis]\nurl = \"rediss://x:1\"\n", 2, "rediss"),
            ("[redis]\nurl = \"redis://x:port\"\n", 2, "redis://"),
            ("[redis]\ntimeout = \"0s\"\n", 2, "at least"),
            ("[redis]\nhost = \"x\"\n", 2, "host"),
        ] {
            let e = Settings::parse("c.toml", text).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn master_key_file_is_checked() {
        let s = Settings::parse(
            "c.toml",
            "[node]\nmaster_key_file = \"/etc/tp/master.key\"\n",
        )
        .unwrap();
        assert_eq!(
            s.node.master_key_file,
            Some(PathBuf::from("/etc/tp/master.key"))
        );
        assert!(Settings::parse("c.toml", "")
            .unwrap()
            .node
            .master_key_file
            .is_none());
        let e = Settings::parse("c.toml", "[node]\n\nmaster_key_file = \"\"\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = Settings::parse("c.toml", "[node]\nmaster_key_file = 5\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = Settings::parse("c.toml", "[node]\nmaster_key = \"x\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn worker_threads_is_checked() {
        let s = Settings::parse("c.toml", "[node]\nworker_threads = 1\n").unwrap();
        assert_eq!(s.node.worker_threads, 1);
        assert_eq!(s.node.runtime_threads(), 1);
        let s = Settings::parse("c.toml", "").unwrap();
        assert_eq!(s.node.worker_threads, 0);
        assert!(s.node.runtime_threads() >= 1);
        let e = Settings::parse("c.toml", "[node]\n\nworker_threads = 5000\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("at most 1024"), "{e}");
        let e = Settings::parse("c.toml", "[node]\nworker_threads = -1\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = Settings::parse("c.toml", "[node]\nworker_threads = \"2\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn admin_key_file_is_checked() {
        let s = Settings::parse(
            "c.toml",
            "[management]\nadmin_key_file = \"/etc/turnpike/admin.key\"\n",
        )
        .unwrap();
        assert_eq!(
            s.management.admin_key_file,
            Some(PathBuf::from("/etc/turnpike/admin.key"))
        );
        assert!(Settings::default().management.admin_key_file.is_none());
        let e = Settings::parse("c.toml", "[management]\n\nadmin_key_file = \"\"\n").unwrap_err();
        assert!(e.to_string().contains("c.toml:3:"), "{e}");
        let e = Settings::parse("c.toml", "[management]\nadmin_key_file = 5\n").unwrap_err();
        assert!(e.to_string().contains("c.toml:2"), "{e}");
    }

    #[test]
    fn admin_key_is_not_debug_printed() {
        let s = Settings::parse(
            "c.toml",
            "[management]\nadmin_key = \"0123456789abcdefXYZ\"\n",
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("0123456789abcdefXYZ"));
    }
}

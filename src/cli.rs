//! The command line (DESIGN.md §3): argument parsing and the `serve`,
//! `init`, `policy check`, `expr eval`, `cluster join` and `version` verbs. Wiring only; the work is in `app`.

use crate::app::{self, Options};
use crate::config::{ConfigError, Settings};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

pub use crate::telemetry::VERSION;

#[derive(Parser, Debug)]
#[command(name = "turnpike", version = VERSION, about = "A self-hosted API management appliance")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the appliance (gateway and management API).
    Serve {
        /// Configuration file (TOML); built-in defaults when absent.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Data directory; overrides [node] data_dir.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Seed a demo API, product and subscription on an empty store.
        #[arg(long)]
        demo: bool,
    },
    /// Write a config.toml with a freshly generated admin key (and HTTPS on,
    /// with a self-signed certificate under data/tls).
    Init {
        /// Directory to write into.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Also create a private CA (data/tls/ca.crt, ca.key) that issues
        /// this node's certificate, and turn TLS on for the management and
        /// portal listeners; secondaries trust it with [cluster] ca_cert.
        #[arg(long)]
        ca: bool,
    },
    /// Work with policy documents.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Work with policy expressions.
    Expr {
        #[command(subcommand)]
        command: ExprCommand,
    },
    /// Cluster mode helpers.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Register a secondary gateway on a running primary, mint its token and
    /// write its configuration file; then start it with
    /// `turnpike serve --config FILE`. Running it again mints a new token.
    Join {
        /// The primary's management URL.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8001")]
        primary: String,
        /// File holding the primary's admin key (e.g. its data/admin.key).
        #[arg(long, value_name = "FILE", conflicts_with = "admin_key")]
        admin_key_file: Option<PathBuf>,
        /// The primary's admin key (prefer --admin-key-file or
        /// TURNPIKE_ADMIN_KEY: command lines are visible to other users).
        #[arg(
            long,
            value_name = "KEY",
            env = "TURNPIKE_ADMIN_KEY",
            hide_env_values = true
        )]
        admin_key: Option<String>,
        /// The gateway's id on the primary.
        #[arg(long, value_name = "ID")]
        gateway_id: String,
        /// Its region (context.Deployment.Region).
        #[arg(long, value_name = "NAME")]
        region: String,
        /// Its gateway listener.
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
        http: std::net::SocketAddr,
        /// Its data directory (configuration backup); default ./data-<ID>.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Where to write its configuration; default ./<ID>.toml.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The CA the primary's certificate chains to (e.g. its
        /// data/tls/ca.crt from `init --ca`): trusted for this call and
        /// written to the secondary's [cluster] ca_cert.
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ExprCommand {
    /// Evaluate one `@(...)` or `@{...}` expression and print the result as
    /// JSON; exits 1 with `error: ...` on a compile or runtime error.
    Eval {
        #[arg(value_name = "EXPR", allow_hyphen_values = true)]
        expr: String,
        /// Sample context (JSON, DESIGN.md §7).
        #[arg(long, value_name = "FILE")]
        context: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Check policy documents (or fragments): prints `FILE: ok`, or one
    /// `FILE:LINE:COL: error: MESSAGE` line per problem; exits 1 if any.
    Check {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("turnpike {VERSION}");
            ExitCode::SUCCESS
        }
        Command::Init { dir, ca } => init(&dir, ca),
        Command::Policy {
            command: PolicyCommand::Check { files },
        } => policy_check(&files),
        Command::Expr {
            command: ExprCommand::Eval { expr, context },
        } => expr_eval(&expr, context.as_deref()),
        Command::Serve {
            config,
            data_dir,
            demo,
        } => serve(config, data_dir, demo),
        Command::Cluster {
            command:
                ClusterCommand::Join {
                    primary,
                    admin_key_file,
                    admin_key,
                    gateway_id,
                    region,
                    http,
                    data_dir,
                    output,
                    ca_cert,
                },
        } => {
            let key = match (admin_key_file, admin_key) {
                (Some(path), _) => match std::fs::read_to_string(&path) {
                    Ok(k) => k.trim().to_string(),
                    Err(e) => return fail(format!("cannot read {}: {e}", path.display()), 2),
                },
                (None, Some(k)) => k,
                (None, None) => {
                    return fail(
                        "the primary's admin key is needed: --admin-key-file FILE (or TURNPIKE_ADMIN_KEY)",
                        2,
                    )
                }
            };
            let join = Join {
                data_dir: data_dir.unwrap_or_else(|| PathBuf::from(format!("./data-{gateway_id}"))),
                output: output.unwrap_or_else(|| PathBuf::from(format!("{gateway_id}.toml"))),
                primary,
                admin_key: key,
                gateway_id,
                region,
                http,
                ca_cert,
            };
            cluster_join(join)
        }
    }
}

struct Join {
    primary: String,
    admin_key: String,
    gateway_id: String,
    region: String,
    http: std::net::SocketAddr,
    data_dir: PathBuf,
    output: PathBuf,
    ca_cert: Option<PathBuf>,
}

/// TOML basic string: quoted, with `\` and `"` escaped.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn cluster_join(j: Join) -> ExitCode {
    use crate::cluster::client::admin_call;
    use http::Method;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}"), 1),
    };
    let primary = j.primary.trim_end_matches('/').to_string();
    let gid = j.gateway_id.clone();
    // The CA by absolute path: the secondary reads it relative to its own
    // data_dir otherwise.
    let ca_cert = match &j.ca_cert {
        None => None,
        Some(p) => match std::fs::canonicalize(p) {
            Ok(abs) => Some(abs),
            Err(e) => return fail(format!("cannot read {}: {e}", p.display()), 2),
        },
    };
    let roots = match &ca_cert {
        None => None,
        Some(p) => match crate::tls::ca::root_store(p) {
            Ok(r) => Some(r),
            Err(e) => return fail(e, 2),
        },
    };
    let called = runtime.block_on(async {
        let put = admin_call(
            &primary,
            &j.admin_key,
            Method::PUT,
            &format!("/mgmt/gateways/{gid}"),
            serde_json::json!({ "locationData": { "name": j.region } }),
            roots.clone(),
        )
        .await?;
        if !put.0.is_success() {
            return Ok(put);
        }
        admin_call(
            &primary,
            &j.admin_key,
            Method::POST,
            &format!("/mgmt/gateways/{gid}/token"),
            serde_json::json!({}),
            roots,
        )
        .await
    });
    let token = match called {
        Err(e) => return fail(format!("the primary {primary}: {e}"), 1),
        Ok((status, body)) if !status.is_success() => {
            let message = body
                .pointer("/error/message")
                .and_then(|m| m.as_str())
                .unwrap_or("");
            return fail(
                format!("the primary {primary} answered {status}: {message}"),
                1,
            );
        }
        Ok((_, body)) => match body["value"].as_str() {
            Some(t) => t.to_string(),
            None => return fail(format!("the primary {primary} sent no token"), 1),
        },
    };
    let text = format!(
        "# A secondary gateway of {primary}, written by `turnpike cluster join`.\n\
         # Start it with: turnpike serve --config {output}\n\
         # The token expires; run `turnpike cluster join` again for a new one.\n\n\
         [node]\nrole = \"secondary\"\nregion = {region}\ndata_dir = {data_dir}\n\n\
         [gateway]\nhttp = \"{http}\"\n\n\
         [cluster]\nprimary = {primary_q}\ngateway_id = {gid_q}\ntoken = {token}\n\
         poll_interval = \"10s\"\nheartbeat_interval = \"60s\"\nbackup = true\n{trust}",
        trust = ca_cert
            .map(|p| format!("ca_cert = {}\n", toml_string(&p.display().to_string())))
            .unwrap_or_default(),
        output = j.output.display(),
        region = toml_string(&j.region),
        data_dir = toml_string(&j.data_dir.display().to_string()),
        http = j.http,
        primary_q = toml_string(&primary),
        gid_q = toml_string(&gid),
        token = toml_string(&token),
    );
    if let Err(e) = app::write_private(&j.output, text.as_bytes()) {
        return fail(format!("cannot write {}: {e}", j.output.display()), 1);
    }
    println!(
        "registered gateway {gid} ({}) on {primary}; wrote {} (token inside, mode 0600)\n\
         start it with: turnpike serve --config {}",
        j.region,
        j.output.display(),
        j.output.display()
    );
    ExitCode::SUCCESS
}

fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

fn init(dir: &std::path::Path, ca: bool) -> ExitCode {
    let path = dir.join("config.toml");
    if path.exists() {
        return fail(
            format!("{} already exists; not overwriting it", path.display()),
            1,
        );
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(format!("cannot create {}: {e}", dir.display()), 1);
    }
    let key = match crate::error::random_hex(32) {
        Ok(k) => k,
        Err(e) => return fail(e, 1),
    };
    // The CA first: when it cannot be made, no configuration points at it.
    let issued = match ca.then(|| init_ca(&dir.join("data"))) {
        None => None,
        Some(Ok(issued)) => Some(issued),
        Some(Err(e)) => return fail(e, 1),
    };
    let mgmt_tls = if ca { INIT_CA_TLS } else { "" };
    let gateway_cert = if ca {
        "Certificate issued by data/tls/ca.crt"
    } else {
        "Self-signed certificate"
    };
    // The master key sealing secrets at rest: beside this file, outside
    // the data directory, named by its absolute path.
    let master_file = std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .join(crate::store::master::DEFAULT_FILE);
    match crate::store::master::create_key_file(&master_file) {
        Ok(true) => println!("wrote {} (master key, mode 0600)", master_file.display()),
        Ok(false) => println!("kept the existing {}", master_file.display()),
        Err(e) => return fail(e, 1),
    }
    let master_line = format!(
        "# Seals secrets at rest; back it up: without it the store cannot be read.\n\
         master_key_file = {}\n",
        toml_string(&master_file.display().to_string())
    );
    let text = format!(
        "# turnpike configuration, written by `turnpike init`.\n\
         # Every key and its default: config.example.toml.\n\n\
         [node]\nrole = \"primary\"\nregion = \"default\"\ndata_dir = \"./data\"\n{master_line}\n\
         [gateway]\nhttp = \"0.0.0.0:8080\"\n\
         # {gateway_cert}: data/tls/gateway.crt (set tls_cert/tls_key for your own).\n\
         https = \"0.0.0.0:8443\"\n\n\
         [management]\nlisten = \"127.0.0.1:8001\"\n\
         # Bearer token for /mgmt. Keep this file private (mode 0600).\n\
         admin_key = \"{key}\"\n{mgmt_tls}\n\
         [telemetry]\nlog_format = \"pretty\"\naccess_log = true\n"
    );
    if let Err(e) = app::write_private(&path, text.as_bytes()) {
        return fail(format!("cannot write {}: {e}", path.display()), 1);
    }
    println!("wrote {} (admin key inside, mode 0600)", path.display());
    let (cert, key) = crate::tls::default_paths(&dir.join("data"));
    if let Some(issued) = issued {
        announce_ca(&issued);
        return ExitCode::SUCCESS;
    }
    match crate::tls::ensure_self_signed(&cert, &key) {
        Ok(true) => println!(
            "wrote {} and {} (self-signed for localhost and this host)",
            cert.display(),
            key.display()
        ),
        Ok(false) => println!("kept the existing {}", cert.display()),
        Err(e) => return fail(e, 1),
    }
    ExitCode::SUCCESS
}

/// What `init --ca` adds to `[management]` (and the `[portal]` section):
/// both listeners on HTTPS with the CA-issued node certificate.
const INIT_CA_TLS: &str = "# HTTPS with the node certificate issued by data/tls/ca.crt \
(secondaries trust that CA\n# with [cluster] ca_cert; use https:// primary URLs).\n\
tls_cert = \"tls/gateway.crt\"\ntls_key = \"tls/gateway.key\"\n\n\
[portal]\nlisten = \"0.0.0.0:8002\"\ntls_cert = \"tls/gateway.crt\"\ntls_key = \"tls/gateway.key\"\n";

/// `init --ca`: the CA and the node certificate it issues (shared by the
/// gateway's HTTPS, management and portal listeners).
fn init_ca(data_dir: &std::path::Path) -> Result<crate::tls::ca::Issued, String> {
    let (cert, key) = crate::tls::default_paths(data_dir);
    crate::tls::ca::create(data_dir, &cert, &key, crate::tls::default_names())
}

fn announce_ca(issued: &crate::tls::ca::Issued) {
    println!(
        "wrote {} and {} (a private CA; keep the key offline if you can)",
        issued.ca_cert.display(),
        issued.ca_key.display()
    );
    println!(
        "wrote {} and {} (issued by that CA for localhost and this host)",
        issued.cert.display(),
        issued.key.display()
    );
    println!(
        "secondaries trust it with: [cluster] ca_cert = {}",
        toml_string(&issued.ca_cert.display().to_string())
    );
}

/// `turnpike expr eval EXPR [--context FILE]`.
fn expr_eval(src: &str, context: Option<&std::path::Path>) -> ExitCode {
    use crate::expr;
    let ctx = match context {
        // Without a sample: a GET request and nothing else.
        None => expr::Ctx::from_sample(&serde_json::json!({"request": {}})).unwrap_or_default(),
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => return fail(format!("cannot read {}: {e}", path.display()), 1),
            };
            let json: serde_json::Value = match serde_json::from_str(&text) {
                Ok(j) => j,
                Err(e) => {
                    return fail(
                        format!("{}:{}:{}: {e}", path.display(), e.line(), e.column()),
                        1,
                    )
                }
            };
            match expr::Ctx::from_sample(&json) {
                Ok(c) => c,
                Err(e) => return fail(format!("{}: {e}", path.display()), 1),
            }
        }
    };
    let src = src.trim();
    let compiled = match expr::compile(src, 0) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                let (_, col) = crate::policy::line_col(src, e.span.start);
                eprintln!("error: 1:{col}: {}", e.message);
            }
            return ExitCode::from(1);
        }
    };
    match compiled.eval(&ctx, expr::Limits::default()) {
        Ok(v) => {
            let json = expr::value::to_serde(&v);
            println!("{}", serde_json::to_string(&json).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{}: {}", e.kind, e.message), 1),
    }
}

/// `turnpike policy check FILE...`: shape, the policy catalogue and
/// expression syntax; `{{named values}}` and fragment ids are taken as
/// resolvable.
fn policy_check(files: &[PathBuf]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut all_ok = true;
    for file in files {
        let name = file.display();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                all_ok = false;
                let _ = writeln!(out, "{name}: error: cannot read the file: {e}");
                continue;
            }
        };
        match crate::policy::check_any(&text) {
            Ok(()) => {
                let _ = writeln!(out, "{name}: ok");
            }
            Err(problems) => {
                all_ok = false;
                for p in problems {
                    let _ = writeln!(out, "{name}:{}:{}: error: {}", p.line, p.col, p.message);
                }
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn load(config: Option<PathBuf>) -> Result<Settings, ConfigError> {
    match config {
        Some(path) => Settings::load(&path),
        None => Ok(Settings::defaults()),
    }
}

fn serve(config: Option<PathBuf>, data_dir: Option<PathBuf>, demo: bool) -> ExitCode {
    // The text read at start-up is what SIGHUP compares the file with.
    let started_with = config
        .as_ref()
        .map(|p| (p.clone(), std::fs::read_to_string(p).unwrap_or_default()));
    let mut settings = match load(config) {
        Ok(s) => s,
        Err(e) => return fail(e, 2),
    };
    if let Some(dir) = data_dir {
        settings.node.data_dir = dir;
    }
    crate::telemetry::init_with(settings.telemetry.log_format, &settings.telemetry.log_level);
    let runtime = match runtime_for(&settings.node).build() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}"), 1),
    };
    let threads = settings.node.runtime_threads();
    runtime.block_on(async move {
        tracing::info!(worker_threads = threads, "runtime started");
        let (trigger, shutdown) = crate::shutdown::channel();
        let watchdog = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received; draining");
            app::systemd::stopping();
            trigger.fire();
        });
        spawn_reload_on_hangup(started_with, shutdown.clone());
        let running = match app::run(settings, Options { demo }, shutdown).await {
            Ok(r) => r,
            // An unusable certificate is a configuration mistake: exit 2.
            Err(e @ app::StartError::Tls(_)) => return fail(e, 2),
            Err(e @ app::StartError::TlsFile { .. }) => return fail(e, 2),
            // A missing or wrong master key is a configuration mistake too.
            Err(e @ app::StartError::MasterKey(_)) => return fail(e, 2),
            Err(e) => return fail(e, 1),
        };
        announce(&running);
        app::systemd::ready(&ready_status(&running));
        tokio::spawn(app::systemd::watchdog(watchdog));
        running.wait().await;
        ExitCode::SUCCESS
    })
}

/// The runtime `serve` runs on: `[node] worker_threads` threads, or one per
/// available core. With one thread the single-threaded scheduler is used:
/// no work stealing, no cross-thread wake-ups (measured in BENCHMARKS.md).
fn runtime_for(node: &crate::config::Node) -> tokio::runtime::Builder {
    let threads = node.runtime_threads();
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder.enable_all();
    builder
}

/// The `STATUS=` sent with `READY=1`: the listeners.
fn ready_status(running: &app::Running) -> String {
    let listeners: Vec<String> = running
        .listeners
        .iter()
        .map(|(name, addr)| format!("{name} {addr}"))
        .collect();
    format!("serving; listening {}", listeners.join(", "))
}

/// SIGHUP re-reads the configuration file (`app::reload`) until shutdown;
/// without a file there is nothing to re-read.
fn spawn_reload_on_hangup(
    started_with: Option<(PathBuf, String)>,
    mut shutdown: crate::shutdown::Shutdown,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload is off");
                return;
            }
        };
        let mut reloader =
            started_with.map(|(path, text)| app::reload::Reloader::new(&path, &text));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = hangup.recv() => if got.is_none() { return },
                    _ = shutdown.wait() => return,
                }
                let Some(reloader) = reloader.as_mut() else {
                    tracing::warn!("SIGHUP: started without --config; nothing to re-read");
                    continue;
                };
                tracing::info!("SIGHUP: re-reading the configuration");
                app::systemd::reloading();
                let outcome = reloader.reload();
                app::systemd::reloaded(if outcome.refused.is_some() {
                    "serving; the last reload was refused (see the log)"
                } else if outcome.restart.is_empty() {
                    "serving; configuration reloaded"
                } else {
                    "serving; reloaded, some changes need a restart (see the log)"
                });
            }
        });
    }
    #[cfg(not(unix))]
    {
        let _ = (started_with, shutdown);
    }
}

/// Prints the listener lines (the contract: `listening <name> <addr>`),
/// the admin key's whereabouts and the demo's ready-made call.
fn announce(running: &app::Running) {
    let mut out = std::io::stdout().lock();
    for (name, addr) in &running.listeners {
        let _ = writeln!(out, "listening {name} {addr}");
    }
    if let Some(path) = &running.admin_key_file {
        let verb = if running.admin_key_generated {
            "generated"
        } else {
            "read"
        };
        let _ = writeln!(out, "admin key {verb}: {}", path.display());
    }
    if let (Some(demo), Some(gw)) = (&running.demo, running.addr("gateway-http")) {
        let host = if gw.ip().is_unspecified() {
            format!("127.0.0.1:{}", gw.port())
        } else {
            gw.to_string()
        };
        let _ = writeln!(
            out,
            "demo {}: subscription key {}",
            if demo.seeded { "seeded" } else { "ready" },
            demo.key
        );
        let _ = writeln!(
            out,
            "try: curl -H \"Ocp-Apim-Subscription-Key: {}\" http://{host}/echo/hello?name=world",
            demo.key
        );
        if let Some(path) = &demo.admin_password_file {
            let _ = writeln!(
                out,
                "demo portal admin: admin@example.com, password in {}",
                path.display()
            );
        }
    }
    let _ = out.flush();
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

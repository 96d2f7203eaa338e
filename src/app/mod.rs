//! Wiring and lifecycle: the only place that decides what runs, in which
//! order, and how it stops.
//!
//! [`run`] starts a primary or a secondary. A primary opens the store,
//! makes sure an admin key exists, seeds the demo when asked, compiles and
//! publishes the first snapshot, binds every listener (port 0 allowed) and
//! spawns the services. A secondary gets its first configuration from its
//! primary (or its backup), binds the gateway and spawns the sync and
//! heartbeat loops. [`Running::wait`] drains the services after the
//! shutdown signal and flushes the store.

pub mod analytics;
pub mod cert_expiry;
pub mod demo;
pub mod echo;
pub mod reload;
pub mod systemd;

use crate::config::{Role, Settings};
use crate::error::{random_hex, Secret};
use crate::gateway::Gateway;
use crate::mgmt::{self, MgmtState};
use crate::shutdown::{self, Shutdown, Trigger};
use crate::snapshot::{compile_with, SnapshotHandle};
use crate::store::Store;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use demo::DemoInfo;

/// Start-up options that are not configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Seed the demo (on an empty store) and run the echo backend.
    pub demo: bool,
}

/// Why the appliance could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot bind {name} on {addr}: {source}")]
    Bind {
        name: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {path}: {source}")]
    AdminKey {
        path: String,
        source: std::io::Error,
    },
    #[error("the stored configuration does not compile: {0}")]
    Compile(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("demo: {0}")]
    Demo(String),
    /// The HTTPS listener's certificate or key is unusable.
    #[error("gateway.https: {0}")]
    Tls(String),
    /// A secondary has no configuration to serve.
    #[error("{0}")]
    Cluster(String),
    /// No usable master key, or the store was sealed with another one.
    #[error("{0}")]
    MasterKey(String),
    /// A listener's certificate or key (`management.tls`, `portal.tls`),
    /// or `cluster.ca_cert`, is unusable.
    #[error("{section}: {message}")]
    TlsFile {
        section: &'static str,
        message: String,
    },
}

/// A started appliance.
pub struct Running {
    /// `(name, address)` per listener, in the order they were bound:
    /// `gateway-http`, `gateway-https` (when set), then `management`
    /// (primary only).
    pub listeners: Vec<(&'static str, SocketAddr)>,
    /// Where the generated admin key was written (first start without
    /// `admin_key` in the configuration), else `None`.
    pub admin_key_file: Option<PathBuf>,
    /// Whether that key file was created by this start.
    pub admin_key_generated: bool,
    /// The admin key in force (a secondary has none: no management API).
    pub admin_key: Option<Secret>,
    /// Where a secondary's first configuration came from.
    pub origin: Option<crate::cluster::Origin>,
    /// The echo backend's address (demo mode).
    pub echo: Option<SocketAddr>,
    /// What the demo seeded (demo mode).
    pub demo: Option<DemoInfo>,
    /// The gateway's custom metrics (`emit-metric`, token metrics, trace
    /// counts) and loggers, readable in process.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    store: Option<Arc<Store>>,
    /// The gateway's aggregates and where they are written (a primary
    /// with analytics on).
    analytics: Option<(
        Arc<crate::analytics::Recorder>,
        Arc<crate::analytics::AnalyticsDb>,
    )>,
    tasks: Vec<JoinHandle<()>>,
    trigger: Trigger,
    grace: std::time::Duration,
}

impl Running {
    /// The bound address of listener `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
    }

    /// The persisted traffic aggregates (a primary with analytics on).
    pub fn analytics(&self) -> Option<Arc<crate::analytics::AnalyticsDb>> {
        self.analytics.as_ref().map(|(_, db)| db.clone())
    }

    /// Fires the shutdown (as the signal passed to [`run`] would).
    pub fn shutdown(&self) {
        self.trigger.fire();
    }

    /// Waits for the shutdown signal, then for every service to stop, bounded
    /// by the configured grace period; then flushes the store.
    pub async fn wait(self) {
        // The grace period starts when shutdown is signalled, not before.
        self.trigger.subscribe().wait().await;
        let mut tasks = self.tasks;
        let all = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(self.grace + std::time::Duration::from_secs(1), all)
            .await
            .is_err()
        {
            tracing::warn!("services did not stop within the grace period; closing");
            for t in &tasks {
                t.abort();
            }
        }
        if let Some((recorder, db)) = self.analytics.clone() {
            let flushed = tokio::task::spawn_blocking(move || {
                analytics::flush(&recorder, &db);
                db.flush()
            })
            .await;
            if !matches!(flushed, Ok(Ok(()))) {
                tracing::error!("the last analytics flush on shutdown failed");
            }
        }
        let Some(store) = self.store.clone() else {
            tracing::info!("stopped");
            return;
        };
        let flushed = tokio::task::spawn_blocking(move || store.flush()).await;
        match flushed {
            Ok(Ok(())) => tracing::info!("store flushed; stopped"),
            Ok(Err(e)) => tracing::error!(error = %e, "store flush on shutdown failed"),
            Err(e) => tracing::error!(error = %e, "store flush task failed"),
        }
    }
}

/// Reads the admin key from `path`, or generates one there (mode 0600).
fn admin_key_file(path: &Path) -> Result<(Secret, bool), StartError> {
    secret_file(path)
}

/// Reads a secret kept in a private file, generating it (256 bits, hex,
/// 0600, durably) on first start. Returns whether it was generated.
fn secret_file(path: &Path) -> Result<(Secret, bool), StartError> {
    let err = |source| StartError::AdminKey {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok((Secret::new(text.trim()), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let key = random_hex(32).map_err(|e| StartError::AdminKey {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    write_private(path, format!("{key}\n").as_bytes()).map_err(err)?;
    Ok((Secret::new(key), true))
}

pub use crate::durable::write_private;

/// Resolves the master key that seals secrets at rest:
/// `TURNPIKE_MASTER_KEY`, else `[node] master_key_file`, else
/// `{data_dir}/master.key` (generated on first start).
fn master_key(settings: &Settings) -> Result<crate::store::seal::MasterKey, StartError> {
    use crate::store::master::{self, KeySource};
    let (key, source) = master::resolve(
        std::env::var_os(master::ENV),
        settings.node.master_key_file.as_deref(),
        &settings.node.data_dir,
    )
    .map_err(|e| StartError::MasterKey(e.to_string()))?;
    match source {
        KeySource::Env => tracing::info!("master key from {}", master::ENV),
        KeySource::File(path) => tracing::info!(path = %path.display(), "master key file"),
        KeySource::DataDir { path, generated } => tracing::info!(
            path = %path.display(),
            generated,
            "master key in the data directory; in production keep it elsewhere \
             ([node] master_key_file or TURNPIKE_MASTER_KEY)"
        ),
    }
    Ok(key)
}

/// Binds the HTTPS listener when `gateway.https` is set: loads (or, with
/// no paths configured, generates on first start) the certificate and key.
/// Certificates are chosen by SNI from the custom hostnames of the
/// snapshot in service (`/mgmt/hostnames`); the configured or generated
/// pair answers names no hostname covers.
async fn bind_https(
    settings: &Settings,
    snapshot: &Arc<SnapshotHandle>,
) -> Result<Option<(TcpListener, SocketAddr, Arc<crate::tls::sni::SniAcceptor>)>, StartError> {
    let Some(addr) = settings.gateway.https.as_ref().map(|a| *a.get_ref()) else {
        return Ok(None);
    };
    let data_dir = &settings.node.data_dir;
    let (cert, key) = match (&settings.gateway.tls_cert, &settings.gateway.tls_key) {
        (Some(c), Some(k)) => (data_dir.join(c), data_dir.join(k)),
        _ => {
            let (cert, key) = crate::tls::default_paths(data_dir);
            if crate::tls::ensure_self_signed(&cert, &key).map_err(StartError::Tls)? {
                tracing::info!(
                    cert = %cert.display(),
                    key = %key.display(),
                    "generated a self-signed gateway certificate"
                );
            } else {
                tracing::info!(cert = %cert.display(), "using the gateway certificate");
            }
            (cert, key)
        }
    };
    let acceptor = crate::tls::sni::SniAcceptor::new(
        &cert,
        &key,
        settings.gateway.negotiate_client_certificate,
        snapshot.clone(),
    )
    .map_err(StartError::Tls)?;
    let listener = bind("gateway-https", addr).await?;
    let local = local(&listener, addr);
    Ok(Some((listener, local, Arc::new(acceptor))))
}

/// The TLS acceptor for the management or portal listener when its
/// `tls_cert`/`tls_key` are set (paths relative to the data directory).
fn listener_tls(
    settings: &Settings,
    section: &'static str,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
) -> Result<Option<tokio_rustls::TlsAcceptor>, StartError> {
    let (Some(cert), Some(key)) = (cert, key) else {
        return Ok(None);
    };
    let data_dir = &settings.node.data_dir;
    let config = crate::tls::server_config(&data_dir.join(cert), &data_dir.join(key))
        .map_err(|message| StartError::TlsFile { section, message })?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(config)))
}

async fn bind(name: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { name, addr, source })
}

/// Starts the appliance. Returns once every listener is bound; the services
/// run until `shutdown` fires (or [`Running::shutdown`] is called).
pub async fn run(
    settings: Settings,
    options: Options,
    shutdown: Shutdown,
) -> Result<Running, StartError> {
    let data_dir = settings.node.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    if *settings.node.role.get_ref() == Role::Secondary {
        if options.demo {
            return Err(StartError::Unsupported(
                "--demo seeds a primary's store; a secondary serves its primary's configuration"
                    .into(),
            ));
        }
        return run_secondary(settings, shutdown).await;
    }
    run_primary(settings, options, shutdown, data_dir).await
}

/// Relays the outside `shutdown` to a fresh internal trigger (which
/// [`Running::shutdown`] also fires); the relay task is the first task.
fn relay(mut shutdown: Shutdown) -> (Trigger, Shutdown, JoinHandle<()>) {
    let (trigger, internal) = shutdown::channel();
    let relay = trigger.clone();
    let mut fired = internal.clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.wait() => relay.fire(),
            _ = fired.wait() => {}
        }
    });
    (trigger, internal, task)
}

/// A secondary: first configuration, gateway listener, sync and heartbeats.
async fn run_secondary(settings: Settings, shutdown: Shutdown) -> Result<Running, StartError> {
    let master = master_key(&settings)?;
    let follower = Arc::new(
        crate::cluster::Follower::new(&settings)
            .map_err(|message| StartError::TlsFile {
                section: "cluster.ca_cert",
                message,
            })?
            .with_master_key(master),
    );
    let (first, origin) = follower.bootstrap().await.map_err(StartError::Cluster)?;
    let revision = first.revision;
    let snapshot = Arc::new(SnapshotHandle::with_options(
        first,
        crate::snapshot::Options::from_settings(&settings),
    ));
    let (trigger, internal, relay_task) = relay(shutdown);
    let mut tasks = Started(vec![relay_task]);
    let grace = settings.node.shutdown_timeout;
    let stats = Arc::new(crate::telemetry::RequestStats::default());

    let gw_listener = bind("gateway-http", settings.gateway.http).await?;
    let mut listeners = vec![("gateway-http", local(&gw_listener, settings.gateway.http))];
    let https = bind_https(&settings, &snapshot).await?;
    let gateway = Arc::new(Gateway::new(&settings, snapshot.clone(), stats.clone()));
    if let Some(recorder) = gateway.analytics() {
        follower.set_analytics(recorder);
    }
    let telemetry = gateway.telemetry();
    let breakers_of = gateway.clone();
    let ages_of = follower.clone();
    let scrape = mgmt::metrics::Scrape {
        telemetry: telemetry.clone(),
        snapshot: snapshot.clone(),
        region: settings.node.region.clone(),
        breakers: Arc::new(move || breakers_of.breaker_states()),
        ages: Some(Arc::new(move || ages_of.ages())),
    };
    otlp_metrics(&Arc::downgrade(&gateway), &scrape);
    metrics_listener(&settings, scrape, &internal, &mut listeners, &mut tasks.0).await?;
    if let Some((listener, addr, acceptor)) = https {
        listeners.push(("gateway-https", addr));
        tasks.push(tokio::spawn(gateway.clone().serve_https(
            listener,
            acceptor,
            internal.clone(),
            grace,
        )));
    }
    tasks.push(tokio::spawn(gateway.serve(
        gw_listener,
        internal.clone(),
        grace,
    )));
    tasks.push(tokio::spawn(
        follower.clone().sync(snapshot.clone(), internal.clone()),
    ));
    tasks.push(tokio::spawn(follower.clone().heartbeats(
        snapshot,
        stats,
        internal.clone(),
    )));
    tracing::info!(
        primary = %follower.primary(),
        region = %settings.node.region,
        revision,
        "turnpike started as a secondary"
    );
    Ok(Running {
        listeners,
        admin_key_file: None,
        admin_key_generated: false,
        admin_key: None,
        origin: Some(origin),
        echo: None,
        demo: None,
        store: None,
        analytics: None,
        telemetry,
        tasks: tasks.keep(),
        trigger,
        grace,
    })
}

async fn run_primary(
    settings: Settings,
    options: Options,
    shutdown: Shutdown,
    data_dir: PathBuf,
) -> Result<Running, StartError> {
    let (admin_key, admin_key_file_path, generated) = match &settings.management.admin_key {
        Some(k) => (k.clone(), None, false),
        None => {
            let path = match &settings.management.admin_key_file {
                Some(file) => data_dir.join(file),
                None => data_dir.join("admin.key"),
            };
            let (k, generated) = admin_key_file(&path)?;
            (k, Some(path), generated)
        }
    };

    let master = master_key(&settings)?;
    let dir = data_dir.clone();
    let key = master.clone();
    let store = tokio::task::spawn_blocking(move || Store::open_with(&dir, &key))
        .await
        .map_err(|e| StartError::Unsupported(format!("store open task failed: {e}")))?
        .map_err(|e| match e {
            e @ crate::store::StoreError::WrongKey { .. } => StartError::MasterKey(e.to_string()),
            e => StartError::Store(e),
        })?;
    let store = Arc::new(store);
    let analytics_db = match settings.analytics.enabled {
        true => Some(Arc::new(
            crate::analytics::AnalyticsDb::open(&store)
                .map_err(|e| StartError::Unsupported(format!("analytics: {e}")))?,
        )),
        false => None,
    };
    let compile_options = crate::snapshot::Options::from_settings(&settings);
    let first = compile_with(&store.catalog(), &compile_options).map_err(|problems| {
        StartError::Compile(
            problems
                .iter()
                .map(|d| format!("{}: {}", d.target, d.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let snapshot = Arc::new(SnapshotHandle::with_options(first, compile_options));

    // One internal trigger fans the outside signal out to every service.
    let (trigger, internal, relay_task) = relay(shutdown);
    let mut tasks = Started(vec![relay_task]);

    let mgmt_state = MgmtState {
        store: store.clone(),
        snapshot: snapshot.clone(),
        admin_key: admin_key.clone(),
        max_body: settings.management.max_body_bytes,
        cluster: Arc::new(
            mgmt::cluster::ClusterSide::new(
                internal.clone(),
                settings.management.gateway_token_max_lifetime,
            )
            .with_plaintext_export(settings.cluster.allow_plaintext_export),
        ),
        analytics: analytics_db.clone(),
        traces: Arc::new(crate::telemetry::inspector::TraceRing::new(
            settings.telemetry.trace_ring_size,
        )),
    };

    let (echo, demo) = if options.demo {
        let echo = echo::spawn(internal.clone())
            .await
            .map_err(|e| StartError::Demo(format!("cannot start the echo backend: {e}")))?;
        let info = demo::prepare(&mgmt_state, echo, &data_dir)
            .await
            .map_err(|e| StartError::Demo(e.to_string()))?;
        (Some(echo), info)
    } else {
        (None, None)
    };

    let grace = settings.node.shutdown_timeout;
    let mut listeners = Vec::new();

    // Listener keys are checked before anything is bound or spawned.
    let mgmt_tls = listener_tls(
        &settings,
        "management.tls",
        &settings.management.tls_cert,
        &settings.management.tls_key,
    )?;

    let gw_listener = bind("gateway-http", settings.gateway.http).await?;
    listeners.push(("gateway-http", local(&gw_listener, settings.gateway.http)));
    let https = bind_https(&settings, &snapshot).await?;
    let stats = Arc::new(crate::telemetry::RequestStats::default());
    let gateway = Arc::new(
        Gateway::new(&settings, snapshot.clone(), stats).with_traces(mgmt_state.traces.clone()),
    );
    let analytics = gateway.analytics().zip(analytics_db);
    let telemetry = gateway.telemetry();
    let breakers_of = gateway.clone();
    let otlp_of = Arc::downgrade(&gateway);
    if let Some((listener, addr, acceptor)) = https {
        listeners.push(("gateway-https", addr));
        tasks.push(tokio::spawn(gateway.clone().serve_https(
            listener,
            acceptor,
            internal.clone(),
            grace,
        )));
    }
    tasks.push(tokio::spawn(gateway.serve(
        gw_listener,
        internal.clone(),
        grace,
    )));

    if settings.cluster.allow_plaintext_export {
        tracing::warn!(
            "[cluster] allow_plaintext_export = true: the configuration export (with its \
             secrets) goes over plain HTTP to any secondary"
        );
    }
    let mgmt_listener = bind("management", settings.management.listen).await?;
    listeners.push((
        "management",
        local(&mgmt_listener, settings.management.listen),
    ));
    let cluster_side = mgmt_state.cluster.clone();
    let scrape = mgmt::metrics::Scrape {
        telemetry: telemetry.clone(),
        snapshot: snapshot.clone(),
        region: settings.node.region.clone(),
        breakers: Arc::new(move || breakers_of.breaker_states()),
        ages: None,
    };
    otlp_metrics(&otlp_of, &scrape);
    metrics_listener(
        &settings,
        scrape.clone(),
        &internal,
        &mut listeners,
        &mut tasks.0,
    )
    .await?;
    let router = mgmt::router(mgmt_state).merge(mgmt::metrics::router(scrape));
    let mut mgmt_shutdown = internal.clone();
    tasks.push(tokio::spawn(crate::tls::accept::serve(
        "management",
        mgmt_listener,
        mgmt_tls,
        router,
        settings.management.header_read_timeout,
        async move { mgmt_shutdown.wait().await },
        grace,
    )));

    let expiry_store = store.clone();
    tasks.push(tokio::spawn(cert_expiry::watch(
        move || expiry_store.catalog(),
        internal.clone(),
    )));

    if settings.portal.enabled {
        let portal_key = data_dir.join("portal.key");
        let (key, _) =
            crate::store::master::sealed_secret_file(&portal_key, &master).map_err(|e| {
                StartError::DataDir {
                    path: portal_key.display().to_string(),
                    source: std::io::Error::other(e),
                }
            })?;
        let portal_tls = listener_tls(
            &settings,
            "portal.tls",
            &settings.portal.tls_cert,
            &settings.portal.tls_key,
        )?;
        let portal_listener = bind("portal", settings.portal.listen).await?;
        listeners.push(("portal", local(&portal_listener, settings.portal.listen)));
        let gateway_addr = listeners
            .iter()
            .find(|(n, _)| *n == "gateway-http")
            .map(|(_, a)| *a)
            .unwrap_or(settings.gateway.http);
        let view_store = store.clone();
        let state = crate::portal::PortalState::new(crate::portal::PortalOptions {
            store: store.clone(),
            snapshot: snapshot.clone(),
            key,
            settings: settings.portal.clone(),
            gateway_addr,
            gateways: Arc::new(move || mgmt::gateways::views(&cluster_side, &view_store.catalog())),
            secure: portal_tls.is_some(),
            analytics: analytics.as_ref().map(|(_, db)| db.clone()),
        });
        let mut portal_shutdown = internal.clone();
        tasks.push(tokio::spawn(crate::tls::accept::serve(
            "portal",
            portal_listener,
            portal_tls,
            crate::portal::router(state),
            settings.portal.header_read_timeout,
            async move { portal_shutdown.wait().await },
            grace,
        )));
    }

    // Last, once nothing else can fail: the flush task holds the store.
    if let Some((recorder, db)) = analytics.clone() {
        tasks.push(tokio::spawn(analytics::run(
            recorder,
            db,
            settings.analytics.clone(),
            internal.clone(),
        )));
    }

    tracing::info!(
        revision = store.revision(),
        apis = store.catalog().apis.len(),
        "turnpike started"
    );
    Ok(Running {
        listeners,
        admin_key_file: admin_key_file_path,
        admin_key_generated: generated,
        admin_key: Some(admin_key),
        origin: None,
        echo,
        demo,
        store: Some(store),
        analytics,
        telemetry,
        tasks: tasks.keep(),
        trigger,
        grace,
    })
}

/// Exports the `/metrics` series over OTLP when `[telemetry]
/// otlp_endpoint` is set.
/// The exporter lives in the gateway: the render holds it weakly.
fn otlp_metrics(gateway: &std::sync::Weak<Gateway>, scrape: &mgmt::metrics::Scrape) {
    if let Some(otlp) = gateway.upgrade().and_then(|g| g.otlp()) {
        let weak = gateway.clone();
        let scrape = mgmt::metrics::Scrape {
            breakers: Arc::new(move || {
                weak.upgrade()
                    .map(|g| g.breaker_states())
                    .unwrap_or_default()
            }),
            ..scrape.clone()
        };
        otlp.export_metrics(Arc::new(move || mgmt::metrics::text(&scrape)));
    }
}

/// Binds `[telemetry] metrics_listen` when set and serves `GET /metrics` on it.
/// The tasks a start has spawned so far. A start that fails after spawning
/// some (a listener that cannot bind, a bad listener key) must not leave
/// them running: they hold the store (its lock) and bound sockets, so an
/// in-process caller could not start again. Dropping this aborts them;
/// [`Started::keep`] hands them to [`Running`].
struct Started(Vec<JoinHandle<()>>);

impl Started {
    fn push(&mut self, task: JoinHandle<()>) {
        self.0.push(task);
    }

    fn keep(mut self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

async fn metrics_listener(
    settings: &Settings,
    scrape: mgmt::metrics::Scrape,
    shutdown: &Shutdown,
    listeners: &mut Vec<(&'static str, SocketAddr)>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), StartError> {
    let Some(addr) = settings.telemetry.metrics_listen else {
        return Ok(());
    };
    let listener = bind("metrics", addr).await?;
    listeners.push(("metrics", local(&listener, addr)));
    tasks.push(tokio::spawn(mgmt::metrics::serve(
        listener,
        scrape,
        shutdown.clone(),
    )));
    Ok(())
}

fn local(l: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    l.local_addr().unwrap_or(fallback)
}

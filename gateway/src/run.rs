//! The gateway's composition root. `prepare` wires one gateway from its parts (a control
//! link, a store, keys); `upgate serve` hands it in-process parts, and [`run`] (`upgate
//! gateway`) builds them from a gateway config alone: the control plane's address and this
//! gateway's credential. A gateway never reads the control plane's data directory.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use upgate_config::{Config, ControlLinkConfig};

use crate::control_link::client::RemoteControl;
use crate::control_link::ControlLink;
use crate::keys::{GatewayKeys, KeyHolder};
use crate::metrics::Metrics;
use crate::ratelimit::FailureLimiter;
use crate::scanner::{Scanner, ScannerStatus};
use crate::server::{serve_plain, ConnLimiter, PublicServer};
use crate::storage::ObjectStore;
use crate::upload::sweep;
use crate::{fd_budget, tls, Gateway};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Something on disk or in the key material is not usable.
    #[error("{0}")]
    Setup(String),
    /// The configuration cannot work on this machine (exit 64: the operator must change it).
    #[error("{0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

pub fn setup(e: impl std::fmt::Display) -> RunError {
    RunError::Setup(e.to_string())
}

/// What a gateway is made of, apart from its configuration.
pub struct Parts {
    pub control: Arc<dyn ControlLink>,
    pub store: Arc<dyn ObjectStore>,
    /// `None` for a gateway run apart before its control plane answered: it listens, and
    /// answers 503 to callers and "not ready" to load balancers until the keys arrive.
    pub keys: Option<GatewayKeys>,
    pub metrics: Metrics,
    /// The gateway's own directory: its spool and, without configured TLS files, its
    /// self-signed certificate.
    pub dir: PathBuf,
}

/// A gateway ready to serve: its state, and its public listener bound.
pub struct Prepared {
    pub gateway: Arc<Gateway>,
    pub scanner: Arc<Scanner>,
    server: PublicServer,
    listener: TcpListener,
    /// The listener came from the service manager, which keeps it across restarts: on
    /// shutdown, stop accepting, so new connections wait in its queue for the successor.
    handed_over: bool,
    /// The public certificate, renewed in place on SIGHUP.
    certificate: Arc<tls::Certificate>,
    hangups: tokio::signal::unix::Signal,
}

/// Raises the open-file limit and fits the connection cap under it (see `fd_budget`).
pub fn descriptors(config: &Config) -> Result<fd_budget::Budget, RunError> {
    let budget = fd_budget::plan(config.gateway.max_connections).map_err(RunError::Config)?;
    if let Some(from) = budget.raised_from {
        tracing::info!(
            from,
            to = budget.limit,
            "raised the open-file limit to its hard limit"
        );
    }
    if budget.max_connections < config.gateway.max_connections {
        tracing::warn!(
            configured = config.gateway.max_connections,
            lowered_to = budget.max_connections,
            open_file_limit = budget.limit,
            "gateway.max_connections lowered to fit the open-file limit; raise LimitNOFILE (or ulimit -n) to allow more"
        );
    }
    Ok(budget)
}

pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr).await.map_err(|source| RunError::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// Sweeps the spool, proves the scanner, loads TLS, binds the public listener.
pub async fn prepare(
    config: &Config,
    budget: &fd_budget::Budget,
    parts: Parts,
) -> Result<Prepared, RunError> {
    let spool_dir = parts.dir.join("spool");
    let swept = sweep(&spool_dir).map_err(setup)?;
    if swept > 0 {
        tracing::info!(swept, "removed unfinished uploads left by a previous run");
    }
    let scanner = Arc::new(Scanner::new(
        &config.scanner,
        config.uploads.max_file_bytes,
        parts.metrics.clone(),
    ));
    match scanner.start(config.scanner.timeout).await {
        ScannerStatus::Off => tracing::warn!(
            "SCANNING IS OFF: no clamd is configured ([scanner] clamd), uploads are stored WITHOUT a virus scan"
        ),
        ScannerStatus::Up(proof) => {
            tracing::info!(engine = proof.engine(), depth = proof.depth(), "scanner ready, canaries detected")
        }
        ScannerStatus::Down(why) => {
            tracing::error!(%why, "scanner configured but not trusted: uploads will be refused until it is")
        }
    }
    let tls_files = match &config.gateway.tls {
        Some(files) => files.clone(),
        None => tls::ensure_self_signed(&parts.dir).map_err(setup)?,
    };
    let (tls_config, certificate) = tls::reloadable_config(&tls_files).map_err(setup)?;
    if let Some(at) = tls::expires_at(&tls_files.cert_file) {
        parts.metrics.tls_expiry.set(at);
    }
    // Installed now, before anyone can know our pid from a running service: SIGHUP's
    // default action would end the process.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| setup(format!("cannot handle SIGHUP: {e}")))?;
    let gateway = Arc::new(Gateway {
        keys: KeyHolder::new(parts.keys),
        draining: Default::default(),
        disk: crate::disk::DiskWatch::new(&parts.dir, config.gateway.min_free_disk),
        control: parts.control,
        store: parts.store,
        scanner: scanner.clone(),
        metrics: parts.metrics,
        spool_dir,
        pace: crate::body::Pace {
            idle: config.gateway.body_idle_timeout,
            min_rate: config.gateway.min_upload_rate,
            grace: config.gateway.upload_rate_grace,
        },
        decoders: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )),
        link_failures: FailureLimiter::new(
            u32::try_from(config.gateway.link_failures_per_minute).unwrap_or(u32::MAX),
            Duration::from_secs(60),
        ),
        control_health: Default::default(),
        tus: Default::default(),
        max_file_bytes: config.uploads.max_file_bytes,
        opened: Default::default(),
        quarantine: config.scanner.on_unavailable == upgate_config::OnScannerUnavailable::Quarantine,
    });
    let (listener, handed_over) = match crate::service_manager::inherited_listener()
        .map_err(RunError::Config)?
    {
        Some(listener) => {
            let addr = listener.local_addr().ok();
            if addr != Some(config.gateway.listen) {
                tracing::info!(
                    configured = %config.gateway.listen,
                    "gateway.listen is not used: the service manager's socket decides where callers connect"
                );
            }
            let listener = TcpListener::from_std(listener).map_err(|source| RunError::Bind {
                addr: format!("{addr:?}"),
                source,
            })?;
            (listener, true)
        }
        None => (bind(config.gateway.listen).await?, false),
    };
    let server = PublicServer {
        tls: tls_config,
        limiter: ConnLimiter::new(budget.max_connections, config.gateway.max_connections_per_ip),
        handshake_timeout: config.gateway.handshake_timeout,
        header_timeout: config.gateway.header_timeout,
    };
    Ok(Prepared {
        gateway,
        scanner,
        server,
        listener,
        handed_over,
        certificate,
        hangups,
    })
}

impl Prepared {
    /// Serves callers until `shutdown` resolves, then drains the uploads in flight.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        // Abandoned resumable uploads go within a minute of their expiry, spool and slot.
        let sweeper = tokio::spawn({
            let gw = self.gateway.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    gw.tus.drop_expired(&gw.control, crate::sys::now());
                }
            }
        });
        let reloader = tokio::spawn(reload_on_hangup(
            self.hangups,
            self.certificate,
            self.gateway.metrics.clone(),
        ));
        self.server
            .run(self.listener, self.handed_over, self.gateway, shutdown)
            .await;
        sweeper.abort();
        reloader.abort();
    }
}

/// Reloads the public certificate at every SIGHUP (`systemctl reload`, after a renewal):
/// new handshakes get the new pair, uploads in flight keep their connections.
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    cert: Arc<tls::Certificate>,
    metrics: Metrics,
) {
    while hangups.recv().await.is_some() {
        crate::service_manager::reloading();
        let reloaded = cert.reload();
        crate::service_manager::reloaded();
        match reloaded {
            Ok(expires_at) => {
                if let Some(at) = expires_at {
                    metrics.tls_expiry.set(at);
                }
                tracing::info!(
                    cert_file = %cert.files().cert_file.display(),
                    expires_at,
                    "SIGHUP: reloaded the TLS certificate"
                );
            }
            Err(e) => tracing::error!(
                error = %e,
                "SIGHUP: could not reload the TLS certificate; the one loaded before is still served"
            ),
        }
    }
}

/// Serves the monitoring listener for a gateway until `stop` resolves.
pub async fn monitor(listener: TcpListener, gw: Arc<Gateway>, stop: impl Future<Output = ()>) {
    serve_plain(
        listener,
        move |req| {
            let gw = gw.clone();
            async move {
                // Free disk as of this request (a scrape): one statvfs.
                if let Ok(free) = gw.disk.free() {
                    gw.metrics.disk_free.set(i64::try_from(free).unwrap_or(i64::MAX));
                }
                let readiness = || gw.readiness();
                crate::monitor::handle(&gw.metrics, readiness, req).await
            }
        },
        stop,
    )
    .await
}

fn read_credential(path: &Path) -> Result<String, RunError> {
    upgate_config::read_secret_file(path)
        .map_err(|e| RunError::Config(format!("gateway.credential_file: {e}")))
}

fn remote(link: &ControlLinkConfig) -> Result<RemoteControl, RunError> {
    let ca = match &link.ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| RunError::Config(format!("gateway.control_ca_file {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let credential = read_credential(&link.credential_file)?;
    RemoteControl::new(&link.url, ca.as_deref(), &credential).map_err(RunError::Config)
}

/// Asks the control plane for the keys every `every`: picks up rotations, and tells
/// readiness whether the control plane answers. Until the first set arrives it asks sooner
/// (from 200 ms, doubling up to `every`), so a gateway started before its control plane
/// serves within moments of it coming up.
pub async fn refresh_keys(gw: Arc<Gateway>, every: Duration) {
    let mut waiting = Duration::from_millis(200).min(every);
    loop {
        let fetched = gw.control.keys().await.map_err(|e| e.to_string());
        let had = gw.keys.current();
        match fetched.and_then(|set| GatewayKeys::from_set(&set)) {
            Ok(keys) => {
                let changed = had.is_none_or(|now| {
                    now.links.current().id() != keys.links.current().id()
                        || now.storage != keys.storage
                        || now.links.ids() != keys.links.ids()
                });
                if changed {
                    tracing::info!(
                        link_key = keys.links.current().id(),
                        storage_key = keys.storage.key_id,
                        "picked up new keys from the control plane"
                    );
                    gw.keys.replace(keys);
                }
                gw.control_health.up();
            }
            Err(e) if had.is_none() => {
                tracing::warn!(error = %e, "waiting for the control plane to hand out keys");
                gw.control_health.down(e);
            }
            Err(e) => {
                tracing::warn!(error = %e, "the control plane does not answer");
                gw.control_health.down(e);
            }
        }
        let pause = if gw.keys.current().is_some() {
            every
        } else {
            let pause = waiting;
            waiting = (waiting * 2).min(every);
            pause
        };
        tokio::time::sleep(pause).await;
    }
}

/// `upgate gateway`: one gateway apart from the control plane, until `shutdown` resolves.
pub async fn run(
    config: Config,
    store: Arc<dyn ObjectStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let link = config.gateway.control.clone().ok_or_else(|| {
        RunError::Config(
            "`upgate gateway` needs gateway.control_url and gateway.credential_file in its config".into(),
        )
    })?;
    let budget = descriptors(&config)?;
    let dir = config.data_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| setup(format!("{}: {e}", dir.display())))?;
    let control: Arc<dyn ControlLink> = Arc::new(remote(&link)?);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let watch_shutdown = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let metrics = Metrics::new();
    let prepared = prepare(
        &config,
        &budget,
        Parts {
            control,
            store,
            keys: None,
            metrics,
            dir: dir.clone(),
        },
    )
    .await?;
    let gateway = prepared.gateway.clone();
    // Not ready until the refresher below brings the first keys.
    gateway
        .control_health
        .down("waiting for the control plane to hand out keys".into());
    let ops_metrics = bind(config.metrics.listen).await?;
    let refresher = tokio::spawn(refresh_keys(gateway.clone(), link.key_refresh));
    let (monitor_stop, monitor_stopped) = tokio::sync::oneshot::channel::<()>();
    let monitor_task = tokio::spawn(monitor(ops_metrics, gateway.clone(), async move {
        let _ = monitor_stopped.await;
    }));
    tracing::info!(
        gateway = %config.gateway.public_url,
        control = %link.url,
        metrics = %format!("http://{}/metrics", config.metrics.listen),
        "upgate gateway is running"
    );
    crate::service_manager::ready();
    let (serve_stop, serve_stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(prepared.serve(async move {
        let _ = serve_stopped.await;
    }));
    let _ = stop_rx.wait_for(|s| *s).await;
    // Readiness turns false before the listener drains, so load balancers move on.
    gateway.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    crate::service_manager::stopping();
    tracing::info!("shutting down");
    let _ = serve_stop.send(());
    let _ = serving.await;
    refresher.abort();
    let _ = monitor_stop.send(());
    let _ = monitor_task.await;
    let _ = watch_shutdown.await;
    Ok(())
}

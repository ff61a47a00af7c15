//! Wiring the embedded default: both planes in one process on one data directory.
//! Order matters: keys and store first (so a bad data dir fails before we listen), then
//! listeners, then the banner that tells the operator what is (not) protected.

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use upgate_config::Config;
use upgate_gateway::fd_budget;
use upgate_gateway::keys::load_gateway_keys;
use upgate_gateway::metrics::Metrics;
use upgate_gateway::ratelimit::FailureLimiter;
use upgate_gateway::scanner::{Scanner, ScannerStatus};
use upgate_gateway::server::{serve_plain, ConnLimiter, PublicServer};
use upgate_gateway::storage::{LocalStore, ObjectStore};
use upgate_gateway::upload::{sweep, MAX_FILE_BYTES};
use upgate_gateway::{tls, Gateway};

use crate::api::Api;
use crate::db::SledKv;
use crate::keys::{ensure_keys, load_control_keys};
use crate::service::{InProcess, Service};

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

fn setup(e: impl std::fmt::Display) -> RunError {
    RunError::Setup(e.to_string())
}

/// Creates the data directory (owner-only) and keys; opens the store.
pub fn open_service(config: &Config, metrics: Metrics) -> Result<Arc<Service>, RunError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = &config.data_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| setup(format!("{}: {e}", dir.display())))?;
    ensure_keys(dir).map_err(setup)?;
    let keys = load_control_keys(dir).map_err(setup)?;
    let db = SledKv::open(&dir.join("meta")).map_err(|e| {
        setup(format!(
            "cannot open the metadata store in {} ({e}); is another upgate using this data directory?",
            dir.display()
        ))
    })?;
    let sms = crate::sms::from_config(&config.sms, dir);
    let service = Service::new(
        Arc::new(db),
        config.plans.clone(),
        keys,
        sms,
        config.gateway.public_url.clone(),
        metrics,
        config.sms_limits,
    );
    // Tokens made before the per-account index existed become listable and revocable.
    service.index_tokens().map_err(|p| setup(p.detail))?;
    // Calls stored in the first layout (id lists on the call record) move to the per-call
    // trees, once.
    service.migrate_calls().map_err(|p| setup(p.detail))?;
    Ok(Arc::new(service))
}

/// Raises the open-file limit and fits the connection cap under it (see `fd_budget`).
fn descriptors(config: &Config) -> Result<fd_budget::Budget, RunError> {
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

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr).await.map_err(|source| RunError::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// Runs both planes until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let budget = descriptors(&config)?;
    let dir = config.data_dir.clone();
    let metrics = Metrics::new();
    let service = open_service(&config, metrics.clone())?;
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(&dir.join("objects")).map_err(setup)?);
    let spool_dir = dir.join("spool");
    let swept = sweep(&spool_dir).map_err(setup)?;
    if swept > 0 {
        tracing::info!(swept, "removed unfinished uploads left by a previous run");
    }
    match service.sweep_orphans(&*store).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed stored objects that no file record names"),
        Err(p) => return Err(setup(p.detail)),
    }
    let scanner = Arc::new(Scanner::new(&config.scanner, MAX_FILE_BYTES, metrics.clone()));
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
    service.set_scan_depth({
        let scanner = scanner.clone();
        move || scanner.proven_depth()
    });
    let tls_files = match &config.gateway.tls {
        Some(files) => files.clone(),
        None => tls::ensure_self_signed(&dir).map_err(setup)?,
    };
    let tls_config = tls::server_config(&tls_files).map_err(setup)?;
    let gateway = Arc::new(Gateway {
        keys: load_gateway_keys(&dir).map_err(setup)?,
        draining: Default::default(),
        disk: upgate_gateway::disk::DiskWatch::new(&dir, config.gateway.min_free_disk),
        control: Arc::new(InProcess(service.clone())),
        store: store.clone(),
        scanner: scanner.clone(),
        metrics: metrics.clone(),
        spool_dir,
        pace: upgate_gateway::body::Pace {
            idle: config.gateway.body_idle_timeout,
            min_rate: config.gateway.min_upload_rate,
            grace: config.gateway.upload_rate_grace,
        },
        decoders: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )),
        link_failures: FailureLimiter::new(
            u32::try_from(config.gateway.link_failures_per_minute).unwrap_or(u32::MAX),
            std::time::Duration::from_secs(60),
        ),
    });

    let public = bind(config.gateway.listen).await?;
    let control = bind(config.control.listen).await?;
    let ops_metrics = bind(config.metrics.listen).await?;
    let ops_socket = crate::ops::bind(&dir).map_err(setup)?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let server = PublicServer {
        tls: tls_config,
        limiter: ConnLimiter::new(budget.max_connections, config.gateway.max_connections_per_ip),
        handshake_timeout: config.gateway.handshake_timeout,
        header_timeout: config.gateway.header_timeout,
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(server.run(public, gateway.clone(), stopped()));
    let api = Api {
        service: service.clone(),
        store,
    };
    tasks.spawn(serve_plain(
        control,
        move |req| api.clone().handle(req),
        stopped(),
    ));
    // The monitoring listener outlives the others' drain: readiness must say "draining"
    // until the last upload in flight is done, not go silent.
    let (monitor_stop, monitor_stopped) = tokio::sync::oneshot::channel::<()>();
    let gw = gateway.clone();
    let monitor = tokio::spawn(serve_plain(
        ops_metrics,
        move |req| crate::monitor::handle(gw.clone(), req),
        async move {
            let _ = monitor_stopped.await;
        },
    ));
    tasks.spawn({
        let svc = service.clone();
        let stop = stopped();
        async move {
            tokio::select! {
                _ = crate::ops::serve(ops_socket, svc) => {}
                _ = stop => {}
            }
        }
    });
    tracing::info!(
        gateway = %config.gateway.public_url,
        control = %format!("http://{}", config.control.listen),
        metrics = %format!("http://{}/metrics", config.metrics.listen),
        data_dir = %dir.display(),
        "upgate is running"
    );
    // The banner is for a person at a terminal; JSON logs must stay one object per line,
    // and the event above carries the same facts.
    let banner = config.log.format == upgate_config::LogFormat::Text;
    if banner {
        eprintln!(
            "upgate is running\n  gateway (callers):  {}\n  control API:        http://{}\n  metrics and health: http://{}/metrics\n  data directory:     {}",
            config.gateway.public_url,
            config.control.listen,
            config.metrics.listen,
            dir.display()
        );
    }
    if banner && matches!(scanner.status(), ScannerStatus::Off) {
        eprintln!(
            "  WARNING: scanning is OFF (no clamd configured): uploads are stored without a virus scan"
        );
    }
    shutdown.await;
    // Readiness turns false before the listeners begin to drain, so load balancers move on.
    gateway.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = stop_tx.send(true);
    tracing::info!("shutting down");
    while tasks.join_next().await.is_some() {}
    let _ = monitor_stop.send(());
    let _ = monitor.await;
    let _ = std::fs::remove_file(crate::ops::socket_path(Path::new(&dir)));
    Ok(())
}

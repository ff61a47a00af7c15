//! Wiring the control plane: with a gateway in one process on one data directory (`serve`,
//! the embedded default), or alone with the internal API for gateways run apart (`control`).
//! Order matters: keys and store first (so a bad data dir fails before we listen), then
//! listeners, then the banner that tells the operator what is (not) protected.

use std::path::Path;
use std::sync::Arc;

use upgate_config::Config;
use upgate_gateway::control_link::ControlLink;
use upgate_gateway::keys::GatewayKeys;
use upgate_gateway::metrics::Metrics;
use upgate_gateway::run::{bind, descriptors, prepare, Parts};
use upgate_gateway::scanner::ScannerStatus;
use upgate_gateway::server::{serve_plain, serve_private};
use upgate_gateway::storage::s3::{LifecycleState, S3Settings};
use upgate_gateway::storage::{LocalStore, ObjectStore, S3Store};
use upgate_gateway::tls;

use crate::api::Api;
use crate::db::SledKv;
use crate::keys::{ensure_keys, KeyRing};
use crate::service::{InProcess, Service};

pub use upgate_gateway::run::{setup, RunError};

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
    let keys = KeyRing::load(dir).map_err(setup)?;
    let db = SledKv::open(&dir.join("meta")).map_err(|e| {
        setup(format!(
            "cannot open the metadata store in {} ({e}); is another upgate using this data directory?",
            dir.display()
        ))
    })?;
    let sms = crate::sms::from_config(&config.sms, dir, &config.gateway.public_url);
    // Opening brings the store's layout up to date: tokens made before the per-account
    // index existed are indexed, calls of the first layout move to the per-call trees.
    let repos = crate::repo::Repos::sled(Arc::new(db)).map_err(setup)?;
    let service = Service::new(
        repos,
        config.plans.clone(),
        keys,
        sms,
        config.gateway.public_url.clone(),
        metrics,
        config.sms_limits,
    );
    service.set_lease_ttl(config.control.internal.lease_ttl);
    service.set_max_file_bytes(config.uploads.max_file_bytes);
    service.set_console_url(config.control.console_url.clone());
    Ok(Arc::new(service))
}

/// With gateways run apart, an object this young may be one a gateway is about to record.
const ORPHAN_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The configured storage backend. An S3 bucket gets its lifecycle rule checked (and
/// installed when absent) before anything is written to it.
pub async fn open_store(config: &Config) -> Result<Arc<dyn ObjectStore>, RunError> {
    match &config.storage {
        upgate_config::StorageConfig::Local { .. } => {
            Ok(Arc::new(LocalStore::open(&config.objects_dir()).map_err(setup)?))
        }
        upgate_config::StorageConfig::S3(s3) => {
            let secret = upgate_config::read_secret_file(&s3.secret_access_key_file)
                .map_err(|e| RunError::Config(format!("storage.s3.secret_access_key_file: {e}")))?;
            let store = S3Store::open(S3Settings {
                endpoint: s3.endpoint.clone(),
                region: s3.region.clone(),
                bucket: s3.bucket.clone(),
                path_style: s3.path_style,
                access_key_id: s3.access_key_id.clone(),
                secret_access_key: zeroize::Zeroizing::new(secret),
            })
            .map_err(|e| RunError::Config(format!("storage.s3: {e}")))?;
            match store.ensure_lifecycle().await {
                Ok(LifecycleState::Present) => {}
                Ok(LifecycleState::Installed) => tracing::info!(
                    bucket = %s3.bucket,
                    "installed a lifecycle rule that removes multipart uploads left unfinished for a day"
                ),
                // Not fatal: the bucket may be down now (readiness says so) or the key may
                // lack the permission; uploads work, only crash leftovers would stay.
                Err(e) => {
                    tracing::warn!(bucket = %s3.bucket, error = %e, "could not check the bucket's lifecycle rule")
                }
            }
            Ok(Arc::new(store))
        }
    }
}

/// Removes objects no record names (an upload that died between storing and recording)
/// and older than `grace`.
async fn sweep_orphans(
    service: &Service,
    store: &dyn ObjectStore,
    grace: std::time::Duration,
) -> Result<(), RunError> {
    match service.sweep_orphans(store, grace).await {
        Ok(0) => Ok(()),
        Ok(n) => {
            tracing::info!(removed = n, "removed stored objects that no file record names");
            Ok(())
        }
        Err(e) => Err(setup(e)),
    }
}

/// A one-shot stop signal that many tasks can wait for.
#[derive(Clone)]
struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}

/// The control API and the operator socket, until `stop`.
async fn spawn_control_api(
    config: &Config,
    service: &Arc<Service>,
    store: Arc<dyn ObjectStore>,
    tasks: &mut tokio::task::JoinSet<()>,
    stop: &Stop,
    streams: usize,
) -> Result<(), RunError> {
    let control = bind(config.control.listen).await?;
    service
        .metrics
        .control_routes(&crate::api::route::Route::TEMPLATES);
    let ops_socket = crate::ops::bind(&config.data_dir).map_err(setup)?;
    let api = Api {
        service: service.clone(),
        store,
        streams: crate::api::events::Streams::new(config.control.event_heartbeat, streams, stop.0.clone()),
    };
    // Webhooks: the dispatcher follows the event log on its own task.
    service.set_webhooks(config.webhooks);
    match crate::webhooks::worker::Dispatcher::new(service.repos(), config.webhooks, service.metrics.clone())
    {
        Ok(dispatcher) => {
            let stop = stop.stopped();
            tasks.spawn(async move {
                tokio::select! {
                    _ = dispatcher.run() => {}
                    _ = stop => {}
                }
            });
        }
        Err(e) => {
            tracing::error!(error = %e, "the webhook client could not be built; webhooks are not delivered")
        }
    }
    tasks.spawn({
        let svc = service.clone();
        let stop = stop.stopped();
        async move {
            tokio::select! {
                _ = svc.count_held(std::time::Duration::from_secs(30)) => {}
                _ = stop => {}
            }
        }
    });
    // Links expire by the clock; this writes their events (and ends their calls' streams).
    tasks.spawn({
        let svc = service.clone();
        let stop = stop.stopped();
        async move {
            tokio::select! {
                _ = svc.sweep_expired_links() => {}
                _ = stop => {}
            }
        }
    });
    tasks.spawn(upgate_gateway::server::serve_plain_with(
        control,
        streams,
        move |req| api.clone().handle(req),
        stop.stopped(),
    ));
    tasks.spawn({
        let svc = service.clone();
        let stop = stop.stopped();
        async move {
            tokio::select! {
                _ = crate::ops::serve(ops_socket, svc) => {}
                _ = stop => {}
            }
        }
    });
    Ok(())
}

/// The rescan of files kept in quarantine, until `stop`: with a clamd configured only
/// (without one nothing could scan them; the commit of a held file then says so).
fn spawn_rescan(
    config: &Config,
    service: &Arc<Service>,
    scanner: Arc<upgate_gateway::scanner::Scanner>,
    store: Arc<dyn ObjectStore>,
    tasks: &mut tokio::task::JoinSet<()>,
    stop: &Stop,
) -> Result<(), RunError> {
    if config.scanner.clamd.is_none() {
        return Ok(());
    }
    let rescan = crate::rescan::Rescan::new(
        service.clone(),
        scanner,
        store,
        &config.data_dir,
        config.gateway.min_free_disk,
    )
    .map_err(setup)?;
    let stop = stop.stopped();
    tasks.spawn(async move {
        tokio::select! {
            _ = rescan.run() => {}
            _ = stop => {}
        }
    });
    Ok(())
}

/// Whether objects are on this machine's disk (backups carry them then).
pub fn is_local(config: &Config) -> bool {
    matches!(config.storage, upgate_config::StorageConfig::Local { .. })
}

/// The retention worker, until `stop`.
fn spawn_retention(
    config: &Config,
    service: &Arc<Service>,
    tasks: &mut tokio::task::JoinSet<()>,
    stop: &Stop,
) {
    let (worker, stop) = (
        crate::retention::run(service.clone(), config.control.retention_interval),
        stop.stopped(),
    );
    tasks.spawn(async move {
        tokio::select! {
            _ = worker => {}
            _ = stop => {}
        }
    });
}

/// The event streams the open-file limit leaves room for, up to the configured cap.
fn event_streams(config: &Config, limit: u64, needs: u64) -> usize {
    let wanted = config.control.max_event_streams;
    let fits = upgate_gateway::fd_budget::streams_fit(limit, needs, wanted);
    if fits < wanted {
        tracing::warn!(
            max_event_streams = wanted,
            lowered_to = fits,
            open_file_limit = limit,
            "the open-file limit leaves room for fewer event streams than configured; raise LimitNOFILE (or ulimit -n)"
        );
    }
    fits
}

/// How often the in-process gateway takes the current keys (a rotation by the operator).
const IN_PROCESS_KEY_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs both planes until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let budget = descriptors(&config)?;
    let dir = config.data_dir.clone();
    let metrics = Metrics::new();
    let service = open_service(&config, metrics.clone())?;
    let store = open_store(&config).await?;
    service.set_objects(store.clone(), is_local(&config));
    // No gateway runs but ours, and it has not started: every unrecorded object is an orphan.
    sweep_orphans(&service, &*store, std::time::Duration::ZERO).await?;
    let control: Arc<dyn ControlLink> = Arc::new(InProcess(service.clone()));
    // The gateway's keys come the way a remote gateway's do: from the control link.
    let keys = control.keys().await.map_err(setup)?;
    let prepared = prepare(
        &config,
        &budget,
        Parts {
            control,
            store: store.clone(),
            keys: Some(GatewayKeys::from_set(&keys).map_err(setup)?),
            metrics: metrics.clone(),
            dir: dir.clone(),
        },
    )
    .await?;
    let (gateway, scanner) = (prepared.gateway.clone(), prepared.scanner.clone());
    service.set_scan_depth({
        let scanner = scanner.clone();
        move || scanner.proven_depth()
    });
    let ops_metrics = bind(config.metrics.listen).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = Stop(stop_rx);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(prepared.serve(stop.stopped()));
    // Rotations reach the in-process gateway the way they reach remote ones.
    let refresher = tokio::spawn(upgate_gateway::run::refresh_keys(
        gateway.clone(),
        IN_PROCESS_KEY_REFRESH,
    ));
    let streams = event_streams(
        &config,
        budget.limit,
        upgate_gateway::fd_budget::needed(budget.max_connections),
    );
    spawn_rescan(
        &config,
        &service,
        scanner.clone(),
        store.clone(),
        &mut tasks,
        &stop,
    )?;
    spawn_retention(&config, &service, &mut tasks, &stop);
    spawn_control_api(&config, &service, store, &mut tasks, &stop, streams).await?;
    // The monitoring listener outlives the others' drain: readiness must say "draining"
    // until the last upload in flight is done, not go silent.
    let (monitor_stop, monitor_stopped) = tokio::sync::oneshot::channel::<()>();
    let monitor = tokio::spawn(upgate_gateway::run::monitor(
        ops_metrics,
        gateway.clone(),
        async move {
            let _ = monitor_stopped.await;
        },
    ));
    banner(&config, None);
    upgate_gateway::service_manager::ready();
    if config.log.format == upgate_config::LogFormat::Text && matches!(scanner.status(), ScannerStatus::Off) {
        eprintln!(
            "  WARNING: scanning is OFF (no clamd configured): uploads are stored without a virus scan"
        );
    }
    shutdown.await;
    // Readiness turns false before the listeners begin to drain, so load balancers move on.
    gateway.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    upgate_gateway::service_manager::stopping();
    let _ = stop_tx.send(true);
    tracing::info!("shutting down");
    while tasks.join_next().await.is_some() {}
    refresher.abort();
    let _ = monitor_stop.send(());
    let _ = monitor.await;
    let _ = std::fs::remove_file(crate::ops::socket_path(Path::new(&dir)));
    Ok(())
}

/// The names a self-signed internal certificate is made for: the listen address when it is
/// a specific one, and the host's name.
fn internal_names(config: &Config) -> Vec<String> {
    let mut names = Vec::new();
    let ip = config.control.internal.listen.ip();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            names.push(host.to_string());
        }
    }
    names
}

/// The internal API's TLS: the operator's files, or a self-signed pair in the data
/// directory whose certificate gateways then trust (`gateway.control_ca_file`).
fn internal_tls(config: &Config) -> Result<(Arc<rustls::ServerConfig>, std::path::PathBuf), RunError> {
    let files = match &config.control.internal.tls {
        Some(files) => files.clone(),
        // Valid for the address gateways dial and this machine's name, besides localhost.
        None => tls::ensure_self_signed_for(&config.data_dir.join("internal"), &internal_names(config))
            .map_err(setup)?,
    };
    Ok((tls::server_config(&files).map_err(setup)?, files.cert_file))
}

/// Runs the control plane alone, with the internal API for gateways, until `shutdown`.
pub async fn control(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let dir = config.data_dir.clone();
    let (limit, raised_from) = upgate_gateway::fd_budget::raise().map_err(RunError::Config)?;
    if let Some(from) = raised_from {
        tracing::info!(from, to = limit, "raised the open-file limit to its hard limit");
    }
    let needed = upgate_gateway::fd_budget::needed_by_control();
    if limit < needed {
        tracing::warn!(
            open_file_limit = limit,
            needed,
            "the open-file limit is below what the internal API may use at its connection cap; raise LimitNOFILE (or ulimit -n)"
        );
    }
    let metrics = Metrics::new();
    let service = open_service(&config, metrics.clone())?;
    let store = open_store(&config).await?;
    service.set_objects(store.clone(), is_local(&config));
    // A storage failure at start must not keep the control plane down: sweep in the background.
    tokio::spawn({
        let (service, store) = (service.clone(), store.clone());
        async move {
            if let Err(e) = sweep_orphans(&service, &*store, ORPHAN_GRACE).await {
                tracing::warn!(error = %e, "the sweep of unrecorded objects failed; it runs again at the next start");
            }
        }
    });
    let (internal_tls, internal_cert) = internal_tls(&config)?;
    let internal = bind(config.control.internal.listen).await?;
    let ops_metrics = bind(config.metrics.listen).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = Stop(stop_rx);
    let mut tasks = tokio::task::JoinSet::new();
    let streams = event_streams(&config, limit, needed);
    if config.scanner.clamd.is_some() {
        // Gateways scan uploads; this one scans what they kept in quarantine.
        let scanner = Arc::new(upgate_gateway::scanner::Scanner::new(
            &config.scanner,
            config.uploads.max_file_bytes,
            metrics.clone(),
        ));
        // Proved in the background: a clamd that hangs must not hold up the APIs.
        tokio::spawn({
            let (scanner, wait) = (scanner.clone(), config.scanner.timeout);
            async move {
                scanner.start(wait).await;
            }
        });
        spawn_rescan(&config, &service, scanner, store.clone(), &mut tasks, &stop)?;
    }
    spawn_retention(&config, &service, &mut tasks, &stop);
    spawn_control_api(&config, &service, store, &mut tasks, &stop, streams).await?;
    tasks.spawn({
        let svc = service.clone();
        serve_private(
            internal,
            Some(internal_tls),
            move |req| crate::internal_api::handle(svc.clone(), req),
            stop.stopped(),
        )
    });
    tasks.spawn({
        let metrics = metrics.clone();
        serve_plain(
            ops_metrics,
            move |req| {
                let metrics = metrics.clone();
                async move {
                    let ready = || async { (true, serde_json::json!({"ready": true})) };
                    upgate_gateway::monitor::handle(&metrics, ready, req).await
                }
            },
            stop.stopped(),
        )
    });
    tracing::info!(
        internal_api = %format!("https://{}", config.control.internal.listen),
        internal_certificate = %internal_cert.display(),
        "internal API for gateways is listening"
    );
    banner(&config, Some(&internal_cert));
    upgate_gateway::service_manager::ready();
    shutdown.await;
    upgate_gateway::service_manager::stopping();
    let _ = stop_tx.send(true);
    tracing::info!("shutting down");
    while tasks.join_next().await.is_some() {}
    let _ = std::fs::remove_file(crate::ops::socket_path(Path::new(&dir)));
    Ok(())
}

/// What runs where, for the operator at a terminal (JSON logs carry the same facts).
fn banner(config: &Config, internal_cert: Option<&Path>) {
    tracing::info!(
        gateway = %config.gateway.public_url,
        control = %format!("http://{}", config.control.listen),
        metrics = %format!("http://{}/metrics", config.metrics.listen),
        data_dir = %config.data_dir.display(),
        "upgate is running"
    );
    if config.log.format != upgate_config::LogFormat::Text {
        return;
    }
    match internal_cert {
        None => eprintln!(
            "upgate is running\n  gateway (callers):  {}\n  control API:        http://{}\n  metrics and health: http://{}/metrics\n  data directory:     {}",
            config.gateway.public_url,
            config.control.listen,
            config.metrics.listen,
            config.data_dir.display()
        ),
        Some(cert) => eprintln!(
            "upgate control plane is running\n  control API:        http://{}\n  internal API:       https://{} (certificate {})\n  metrics and health: http://{}/metrics\n  data directory:     {}",
            config.control.listen,
            config.control.internal.listen,
            cert.display(),
            config.metrics.listen,
            config.data_dir.display()
        ),
    }
}

/// Runs one gateway apart (`upgate gateway`): its store from the config, everything else
/// from the control plane.
pub async fn gateway(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let store = open_store(&config).await?;
    upgate_gateway::run::run(config, store, shutdown).await
}

/// `upgate store migrate --from local --to s3`: the objects directory (`from`, default
/// data_dir/objects) into the bucket `[storage]` names.
pub async fn migrate_store(config: &Config, from: Option<&Path>) -> Result<crate::migrate::Report, RunError> {
    if !matches!(config.storage, upgate_config::StorageConfig::S3(_)) {
        return Err(RunError::Config(
            "the destination is the bucket in [storage]: set storage.backend = \"s3\" and its [storage.s3] keys".into(),
        ));
    }
    let from_dir = from.map_or_else(|| config.data_dir.join("objects"), Path::to_path_buf);
    if !from_dir.is_dir() {
        return Err(RunError::Config(format!(
            "{} is not a directory",
            from_dir.display()
        )));
    }
    let source = LocalStore::open(&from_dir).map_err(setup)?;
    let destination = open_store(config).await?;
    // Scratch copies beside the source: the same disk, which has room for its files.
    let scratch = from_dir.join(".migrate");
    let report = crate::migrate::migrate(&source, &*destination, &scratch)
        .await
        .map_err(RunError::Setup)?;
    let _ = std::fs::remove_dir(&scratch);
    Ok(report)
}

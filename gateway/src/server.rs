//! Listeners. The public one: TCP accept -> connection caps -> TLS handshake under a deadline
//! -> HTTP/1.1 with a header-read timeout -> routes. The caps sit before the handshake so a
//! flood costs us no crypto; the timer must be set or hyper's header timeout is off.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::state::Gateway;

/// Largest request head we read; beyond it hyper answers 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// On shutdown, requests in flight (an upload being scanned) get this long to finish;
/// idle keep-alive connections are closed at once.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Waits for watched connections to finish their requests, at most `SHUTDOWN_GRACE`.
async fn drain(graceful: GracefulShutdown) {
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing the remaining connections");
    }
}

/// Caps on open connections, overall and per client address.
pub struct ConnLimiter {
    global: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_ip: usize,
}

/// Holds a connection's place; gives it back on drop.
pub struct ConnGuard {
    _permit: OwnedSemaphorePermit,
    ip: IpAddr,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut map = self.per_ip.lock().expect("per-ip lock");
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl ConnLimiter {
    pub fn new(max: usize, max_per_ip: usize) -> ConnLimiter {
        ConnLimiter {
            global: Arc::new(Semaphore::new(max)),
            per_ip: Arc::default(),
            max_per_ip,
        }
    }

    /// A place for one more connection from `ip`, or which cap refused it.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnGuard, &'static str> {
        let permit = self.global.clone().try_acquire_owned().map_err(|_| "global")?;
        let mut map = self.per_ip.lock().expect("per-ip lock");
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err("per_ip");
        }
        *n += 1;
        Ok(ConnGuard {
            _permit: permit,
            ip,
            per_ip: self.per_ip.clone(),
        })
    }
}

/// The next connection. Accept errors (EMFILE and friends) back off instead of spinning.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(pair) => return pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The one accept loop: accepts until `shutdown`, then goes on accepting while the
/// connections already open drain (at most `SHUTDOWN_GRACE`), so that a health check during
/// a drain gets a prompt "not ready" rather than a hang. Connections accepted while draining
/// are not waited for. A listener `handed_over` by the service manager outlives us: then
/// nothing more is accepted after `shutdown`, and new connections wait in its queue for the
/// process that comes next.
async fn accept_loop(
    listener: TcpListener,
    handed_over: bool,
    shutdown: impl Future<Output = ()>,
    mut serve: impl FnMut(TcpStream, SocketAddr, Option<Watcher>),
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            (tcp, peer) = accept(&listener) => serve(tcp, peer, Some(graceful.watcher())),
        }
    }
    let drained = drain(graceful);
    if handed_over {
        drop(listener);
        return drained.await;
    }
    tokio::pin!(drained);
    loop {
        tokio::select! {
            () = &mut drained => return,
            (tcp, peer) = accept(&listener) => serve(tcp, peer, None),
        }
    }
}

/// Serves one hyper connection, watched by the drain when it was accepted before shutdown.
async fn watched<C: GracefulConnection>(conn: C, watcher: Option<Watcher>) -> Result<(), C::Error> {
    match watcher {
        Some(watcher) => watcher.watch(conn).await,
        None => conn.await,
    }
}

pub struct PublicServer {
    pub tls: Arc<rustls::ServerConfig>,
    pub limiter: ConnLimiter,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
}

impl PublicServer {
    /// Serves until `shutdown` resolves, then drains.
    pub async fn run(
        self,
        listener: TcpListener,
        handed_over: bool,
        gw: Arc<Gateway>,
        shutdown: impl Future<Output = ()>,
    ) {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
        let this = Arc::new(self);
        accept_loop(listener, handed_over, shutdown, |tcp, peer, watcher| {
            let client = crate::ratelimit::client_key(peer.ip());
            let guard = match this.limiter.admit(client) {
                Ok(guard) => guard,
                Err(reason) => {
                    gw.metrics.connections_refused.with_label_values(&[reason]).inc();
                    return;
                }
            };
            let (gw, this, acceptor) = (gw.clone(), this.clone(), acceptor.clone());
            tokio::spawn(async move {
                let _guard = guard;
                gw.metrics.connections.inc();
                let (wire, meter) = crate::record_meter::wire(tcp);
                let tls = match tokio::time::timeout(this.handshake_timeout, acceptor.accept(wire)).await {
                    Ok(Ok(tls)) => Some(tls),
                    Ok(Err(_)) => None,
                    Err(_) => {
                        gw.metrics
                            .connections_refused
                            .with_label_values(&["handshake"])
                            .inc();
                        None
                    }
                };
                if let Some(tls) = tls {
                    let gw = gw.clone();
                    let service = service_fn(move |req: Request<Incoming>| {
                        let gw = gw.clone();
                        async move { Ok::<_, Infallible>(crate::routes::handle(gw, req, client).await) }
                    });
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(this.header_timeout)
                        .max_buf_size(MAX_HEAD_BYTES)
                        .serve_connection(TokioIo::new(crate::record_meter::plain(tls, meter)), service);
                    if let Err(e) = watched(conn, watcher).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                gw.metrics.connections.dec();
            });
        })
        .await
    }
}

/// A plain-HTTP loopback listener (control API, metrics): same hyper settings, no TLS.
pub async fn serve_plain<F, Fut>(listener: TcpListener, handler: F, shutdown: impl Future<Output = ()>)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>>
        + Send
        + 'static,
{
    serve_plain_with(listener, 0, handler, shutdown).await
}

/// A plain listener that also holds `long_lived` connections above its usual cap: the
/// control API's event streams, each of which keeps its connection for as long as it runs.
pub async fn serve_plain_with<F, Fut>(
    listener: TcpListener,
    long_lived: usize,
    handler: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>>
        + Send
        + 'static,
{
    let cap = crate::fd_budget::PLAIN_MAX_CONNECTIONS + long_lived;
    serve_capped(listener, None, ConnLimiter::new(cap, cap), handler, shutdown).await
}

/// A private listener (loopback API, metrics; with `tls`, the internal API gateways call):
/// same hyper settings as the public one, a small connection cap, handshakes bounded.
pub async fn serve_private<F, Fut>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>>
        + Send
        + 'static,
{
    // Private, but still capped: its connections are part of the descriptor budget. The
    // plain listeners are on loopback (one address for every client); the internal API,
    // with TLS, may face a network, so it also caps each address.
    use crate::fd_budget::{INTERNAL_MAX_CONNECTIONS, INTERNAL_MAX_PER_ADDRESS, PLAIN_MAX_CONNECTIONS};
    let limiter = match tls {
        Some(_) => ConnLimiter::new(INTERNAL_MAX_CONNECTIONS, INTERNAL_MAX_PER_ADDRESS),
        None => ConnLimiter::new(PLAIN_MAX_CONNECTIONS, PLAIN_MAX_CONNECTIONS),
    };
    serve_capped(listener, tls, limiter, handler, shutdown).await
}

async fn serve_capped<F, Fut>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limiter: ConnLimiter,
    handler: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>>
        + Send
        + 'static,
{
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    accept_loop(listener, false, shutdown, |tcp, peer, watcher| {
        let Ok(place) = limiter.admit(peer.ip()) else {
            return;
        };
        let (handler, acceptor) = (handler.clone(), acceptor.clone());
        tokio::spawn(async move {
            let _place = place;
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let builder = {
                let mut b = http1::Builder::new();
                b.timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10));
                b
            };
            match acceptor {
                None => {
                    let _ = watched(builder.serve_connection(TokioIo::new(tcp), service), watcher).await;
                }
                Some(acceptor) => {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let _ = watched(builder.serve_connection(TokioIo::new(tls), service), watcher).await;
                }
            }
        });
    })
    .await
}

/// Wraps a complete body in the boxed type `serve_plain` handlers return.
pub fn boxed(body: Full<Bytes>) -> http_body_util::combinators::BoxBody<Bytes, std::io::Error> {
    use http_body_util::BodyExt;
    body.map_err(|never| match never {}).boxed()
}

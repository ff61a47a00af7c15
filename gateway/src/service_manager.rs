//! Telling systemd how upgate is (`Type=notify`, `WatchdogSec=`): `READY=1` once every
//! listener is bound, `WATCHDOG=1` at half the watchdog's period for as long as the async
//! runtime gets to run the pinger (a wedged runtime stops the pings, and systemd restarts
//! the service), `RELOADING=1` around a SIGHUP reload and `STOPPING=1` when the drain begins.
//! Without `NOTIFY_SOCKET` (not under systemd) every call does nothing.

use sd_notify::NotifyState;

fn tell(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}

/// Every listener is bound: the service is up. Starts the watchdog pings if systemd asked
/// for them.
pub fn ready() {
    tell(&[NotifyState::Ready, NotifyState::Status("serving")]);
    if let Some(period) = sd_notify::watchdog_enabled() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period / 2);
            loop {
                tick.tick().await;
                tell(&[NotifyState::Watchdog]);
            }
        });
    }
}

/// A reload (SIGHUP) begins; `ready` again when it is done.
pub fn reloading() {
    let now = sd_notify::NotifyState::monotonic_usec_now();
    match now {
        Ok(now) => tell(&[NotifyState::Reloading, now]),
        Err(_) => tell(&[NotifyState::Reloading]),
    }
}

/// A reload is done.
pub fn reloaded() {
    tell(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

/// The drain begins.
pub fn stopping() {
    tell(&[NotifyState::Stopping, NotifyState::Status("draining")]);
}

/// The public listener the service manager handed over (socket activation: `upgate.socket`
/// holds it across restarts), if it did. Read once per process: the descriptor is ours
/// from then on.
///
/// A listener held by the service manager outlives each upgate process: during an upgrade
/// connections wait in its queue while the old process drains and until the new one
/// accepts them, so none is refused (docs/operations.md, "Upgrading").
pub fn inherited_listener() -> Result<Option<std::net::TcpListener>, String> {
    let mut passed = listenfd::ListenFd::from_env();
    if passed.len() > 1 {
        return Err(format!(
            "the service manager passed {} sockets; upgate takes one, the public listener (one ListenStream= in upgate.socket)",
            passed.len()
        ));
    }
    let listener = passed
        .take_tcp_listener(0)
        .map_err(|e| format!("the socket the service manager passed is not a TCP listener: {e}"))?;
    if let Some(listener) = &listener {
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("the socket the service manager passed: {e}"))?;
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "public listener handed over by the service manager");
        }
    }
    Ok(listener)
}

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

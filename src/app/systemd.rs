//! The service manager's side of the lifecycle (systemd `Type=notify`).
//!
//! Owns: the `sd_notify` messages — `READY=1` (with `STATUS=` and
//! `MAINPID=`) once every listener is bound and the first snapshot is in
//! service, `RELOADING=1` / `READY=1` around a SIGHUP re-read, `STOPPING=1`
//! when the drain starts — and the `WATCHDOG=1` pings when the unit sets
//! `WatchdogSec=`. Without `NOTIFY_SOCKET` every call does nothing.

use crate::shutdown::Shutdown;
use sd_notify::NotifyState;

/// Sends `states`; a failure is logged (at debug: the appliance runs on).
fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Start-up is finished: listeners bound, configuration loaded.
pub fn ready(status: &str) {
    send(&[
        NotifyState::Ready,
        NotifyState::MainPid(std::process::id()),
        NotifyState::Status(status),
    ]);
}

/// A configuration re-read starts (SIGHUP); [`reloaded`] ends it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The re-read is done (applied or refused): serving again.
pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Shutdown began: draining in-flight requests.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("draining in-flight requests"),
    ]);
}

/// Pings the watchdog at half of `WATCHDOG_USEC` until `shutdown` fires;
/// returns at once when the unit sets no watchdog.
pub async fn watchdog(mut shutdown: Shutdown) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut tick = tokio::time::interval((period / 2).max(std::time::Duration::from_millis(10)));
    loop {
        tokio::select! {
            _ = tick.tick() => send(&[NotifyState::Watchdog]),
            _ = shutdown.wait() => return,
        }
    }
}

//! File descriptors. systemd gives a service a soft RLIMIT_NOFILE of 1024; with the default
//! caps, a connection flood would make `accept` fail with EMFILE and break uploads on
//! connections already open. So at start the soft limit is raised to the hard one, and the
//! gateway's connection cap is lowered, with a warning, to what the limit can carry.

/// Descriptors one gateway connection may hold at once: its socket, its spool file, and
/// its connection to clamd during the scan.
pub const PER_CONNECTION: u64 = 3;
/// Connections each plain-HTTP listener (control API, monitoring) takes at once.
pub const PLAIN_MAX_CONNECTIONS: usize = 128;
/// Connections the internal API (`upgate control`) takes at once. A gateway's client opens
/// one per call in flight (HTTP/1.1), and a busy gateway has hundreds of uploads each
/// making calls: the plain listeners' cap would turn a busy hour into 503s.
pub const INTERNAL_MAX_CONNECTIONS: usize = 2048;
/// ... and from one address: no single gateway (or anyone who can reach the port without a
/// credential) can take them all.
pub const INTERNAL_MAX_PER_ADDRESS: usize = 512;
/// Everything else: listeners, the metadata store's files, the clamd session, the operator
/// socket, files the blocking threads open (keys, objects being committed or read).
const BASE: u64 = 64;
/// Fewer gateway connections than this is no service: refuse to start instead.
const MIN_CONNECTIONS: usize = 16;

/// What the process may open, and the gateway connection cap that fits in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The soft limit now in force.
    pub limit: u64,
    /// The soft limit before we raised it, if we did.
    pub raised_from: Option<u64>,
    /// The gateway connection cap to use: the configured one, or less.
    pub max_connections: usize,
}

/// Descriptors needed for `connections` gateway connections and everything else.
pub fn needed(connections: usize) -> u64 {
    BASE + 2 * PLAIN_MAX_CONNECTIONS as u64 + PER_CONNECTION * connections as u64
}

/// Pure: the largest cap up to `wanted` whose needs fit under `limit`, or `Err` with the
/// limit that the minimum service needs.
pub fn fit(limit: u64, wanted: usize) -> Result<usize, u64> {
    let fixed = needed(0);
    let room = limit.saturating_sub(fixed) / PER_CONNECTION;
    let cap = (room.min(wanted as u64)) as usize;
    if cap < MIN_CONNECTIONS.min(wanted) {
        return Err(needed(MIN_CONNECTIONS));
    }
    Ok(cap)
}

/// What the control plane alone (`upgate control`) needs: its plain listeners and the
/// internal API at their caps.
pub fn needed_by_control() -> u64 {
    needed(0) + INTERNAL_MAX_CONNECTIONS as u64
}

/// Pure: how many event streams (one connection each, on the control API) fit beside
/// what else the process needs (`needs`), up to `wanted`.
pub fn streams_fit(limit: u64, needs: u64, wanted: usize) -> usize {
    (limit.saturating_sub(needs)).min(wanted as u64) as usize
}

/// Raises the soft limit to the hard one; returns `(limit, raised_from)`.
pub fn raise() -> Result<(u64, Option<u64>), String> {
    use rlimit::Resource;
    let (soft, _) = Resource::NOFILE
        .get()
        .map_err(|e| format!("cannot read RLIMIT_NOFILE: {e}"))?;
    let limit =
        rlimit::increase_nofile_limit(u64::MAX).map_err(|e| format!("cannot raise RLIMIT_NOFILE: {e}"))?;
    Ok((limit, (limit > soft).then_some(soft)))
}

/// Raises the soft limit to the hard one, then fits the cap. `Err` names what to change.
pub fn plan(wanted: usize) -> Result<Budget, String> {
    use rlimit::Resource;
    let (soft, _) = Resource::NOFILE
        .get()
        .map_err(|e| format!("cannot read RLIMIT_NOFILE: {e}"))?;
    let limit =
        rlimit::increase_nofile_limit(u64::MAX).map_err(|e| format!("cannot raise RLIMIT_NOFILE: {e}"))?;
    let max_connections = fit(limit, wanted).map_err(|min| {
        format!(
            "the open-file limit ({limit}) is too low for upgate, which needs at least {min}: \
             raise it (LimitNOFILE= in the systemd unit, or ulimit -n) or lower gateway.max_connections"
        )
    })?;
    Ok(Budget {
        limit,
        raised_from: (limit > soft).then_some(soft),
        max_connections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_under_the_limit() {
        // Plenty of room: the configured cap stands.
        assert_eq!(fit(1 << 20, 1024), Ok(1024));
        // systemd's soft default with the default cap: lowered so that everything fits.
        let cap = fit(1024, 1024).unwrap();
        assert!(
            cap < 1024 && needed(cap) <= 1024 && needed(cap + 1) > 1024,
            "{cap}"
        );
        // A small cap is never raised.
        assert_eq!(fit(1024, 10), Ok(10));
        // Too little for any real service: refuse, saying what is needed.
        assert_eq!(fit(100, 1024), Err(needed(16)));
        assert_eq!(fit(0, 1024), Err(needed(16)));
    }

    #[test]
    fn event_streams_get_what_is_left() {
        assert_eq!(streams_fit(1 << 20, needed(1024), 10_000), 10_000);
        assert_eq!(streams_fit(20_000, 15_000, 10_000), 5_000);
        assert_eq!(streams_fit(1024, 2048, 10_000), 0);
    }
}

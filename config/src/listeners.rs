//! Two of our listeners on one address cannot both bind: the second fails at start, after
//! the first is already up. Said at check time instead, naming both keys.

use std::net::SocketAddr;

/// Two listeners that cannot both bind.
pub(crate) struct Clash {
    pub first: (&'static str, SocketAddr),
    pub second: (&'static str, SocketAddr),
}

/// Every pair of listeners that would collide. A wildcard address (`0.0.0.0`, `[::]`)
/// collides with any address on the same port: Linux refuses the second bind while the
/// first listens, and `[::]` also takes IPv4 unless v6-only is set.
pub(crate) fn clashes(listeners: &[(&'static str, SocketAddr)]) -> Vec<Clash> {
    let mut found = Vec::new();
    for (i, &(key, addr)) in listeners.iter().enumerate() {
        // Port 0 asks the kernel for a free port: never a collision.
        if addr.port() == 0 {
            continue;
        }
        for &(other_key, other) in &listeners[..i] {
            if other.port() == addr.port()
                && (other.ip() == addr.ip() || other.ip().is_unspecified() || addr.ip().is_unspecified())
            {
                found.push(Clash {
                    first: (other_key, other),
                    second: (key, addr),
                });
            }
        }
    }
    found
}

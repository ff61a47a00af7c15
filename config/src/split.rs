//! Settings for running the planes apart: the control plane's internal API, and how a
//! gateway reaches it. `upgate serve` reads none of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::raw::{RawControl, RawGateway};
use crate::{TlsFiles, Validator, DEFAULT_INTERNAL_LISTEN};

/// The control plane's listener for gateways (`upgate control`).
#[derive(Debug, Clone)]
pub struct InternalApiConfig {
    /// TLS only, and every call needs a gateway credential: it may face a private network.
    pub listen: SocketAddr,
    /// Both absent: a self-signed certificate in the data directory, which gateways then
    /// trust through `gateway.control_ca_file`.
    pub tls: Option<TlsFiles>,
    /// A gateway's claim on a file slot lasts this long between renewals.
    pub lease_ttl: Duration,
}

/// How a gateway run apart reaches the control plane (`upgate gateway`).
#[derive(Debug, Clone)]
pub struct ControlLinkConfig {
    /// The internal API's origin, `https://HOST:PORT`.
    pub url: String,
    /// The certificate (or CA) the control plane's internal API is trusted by; absent: the
    /// public roots.
    pub ca_file: Option<PathBuf>,
    /// The file holding this gateway's credential (`upgate gateway-credential create`).
    pub credential_file: PathBuf,
    /// How often the gateway asks for the current keys (to pick up a rotation).
    pub key_refresh: Duration,
}

impl Validator<'_> {
    pub(crate) fn internal_api(&mut self, raw: &RawControl) -> InternalApiConfig {
        InternalApiConfig {
            listen: self.addr(
                "control.internal_listen",
                raw.internal_listen.clone(),
                DEFAULT_INTERNAL_LISTEN,
            ),
            tls: self.tls_pair(
                "control.internal_tls_cert_file",
                raw.internal_tls_cert_file.clone(),
                "control.internal_tls_key_file",
                raw.internal_tls_key_file.clone(),
            ),
            lease_ttl: self.lease_ttl(raw.lease_ttl.clone()),
        }
    }

    /// At least 3 s: gateways renew every third of it, and leases are kept in whole seconds.
    fn lease_ttl(&mut self, value: Option<String>) -> Duration {
        let ttl = self.duration("control.lease_ttl", value, Duration::from_secs(60));
        if ttl < Duration::from_secs(3) {
            self.err(
                "control.lease_ttl",
                format!(
                    "{} is too short: gateways renew a lease every third of it",
                    humantime::format_duration(ttl)
                ),
                "set at least \"3s\" (the default, \"60s\", suits most setups)",
            );
            return Duration::from_secs(3);
        }
        ttl
    }

    pub(crate) fn control_link(&mut self, raw: &RawGateway) -> Option<ControlLinkConfig> {
        let key_refresh = self.duration(
            "gateway.key_refresh",
            raw.key_refresh.clone(),
            Duration::from_secs(5),
        );
        let Some(url) = raw.control_url.clone() else {
            for (key, set) in [
                ("gateway.credential_file", raw.credential_file.is_some()),
                ("gateway.control_ca_file", raw.control_ca_file.is_some()),
            ] {
                if set {
                    self.err(
                        key,
                        "set without gateway.control_url",
                        "set gateway.control_url to the control plane's internal API, or remove this",
                    );
                }
            }
            return None;
        };
        let url = url.trim_end_matches('/').to_string();
        if url
            .strip_prefix("https://")
            .is_none_or(|h| h.is_empty() || h.contains(['/', '?', '#', ' ']))
        {
            self.err(
                "gateway.control_url",
                format!("{url:?} is not an https origin"),
                "write the internal API's origin, e.g. \"https://control.internal:8444\"",
            );
        }
        let Some(credential_file) = raw.credential_file.clone() else {
            self.err(
                "gateway.control_url",
                "a gateway needs its credential to reach the control plane",
                "run `upgate gateway-credential create --name NAME` on the control plane, save what it prints \
                 to a file only upgate can read, and set gateway.credential_file to it",
            );
            return None;
        };
        Some(ControlLinkConfig {
            url,
            ca_file: raw.control_ca_file.clone().map(PathBuf::from),
            credential_file: credential_file.into(),
            key_refresh,
        })
    }
}

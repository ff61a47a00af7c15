//! Where webhooks may go: never to this machine, its private networks or a cloud's
//! metadata service (an admin's URL must not become a way into them). Checked at
//! registration, and again at every connection by the resolver the delivery client uses:
//! the name is resolved once, the addresses are checked, and the client connects only to
//! the checked ones, so a name that changes its answer between the check and the connect
//! (DNS rebinding) gains nothing. Redirects are not followed. An operator switch
//! (`webhooks.allow_private_targets`) lets tests and on-premises receivers through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Whether a webhook may connect to `ip` when private targets are not allowed.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, with the metadata service at .169.254
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240 // reserved
        || (a == 100 && (64..128).contains(&b)) // CGNAT, 100.64/10 (and Alibaba's metadata)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b))) // benchmarking
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // Addresses that carry an IPv4 one are judged by it (mapped, and NAT64's 64:ff9b::/96).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7 (AWS metadata's fd00:ec2::254)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible and the rest of ::/96
}

/// Why a URL cannot be a webhook endpoint; the sentence is for the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// Checks an endpoint URL as far as it can be without the network.
pub fn check_url(text: &str, allow_private: bool) -> Result<Url, Refused> {
    let refuse = |why: &str| Err(Refused(why.to_string()));
    if text.len() > 2048 {
        return refuse("The URL is over 2048 characters.");
    }
    let Ok(url) = Url::parse(text) else {
        return refuse("The URL does not parse.");
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return refuse("The URL must be https://."),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("The URL must not hold credentials: the signature proves who sent it.");
    }
    if url.fragment().is_some() {
        return refuse("The URL must not have a #fragment.");
    }
    match url.host() {
        None => refuse("The URL has no host."),
        Some(url::Host::Ipv4(ip)) if !allow_private && !is_public(IpAddr::V4(ip)) => {
            refuse("The URL's address is loopback, private, link-local or otherwise not public.")
        }
        Some(url::Host::Ipv6(ip)) if !allow_private && !is_public(IpAddr::V6(ip)) => {
            refuse("The URL's address is loopback, private, link-local or otherwise not public.")
        }
        Some(_) => Ok(url),
    }
}

/// Resolves a name once and keeps only the addresses a webhook may reach.
pub async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, Refused> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| Refused("The URL's host name does not resolve.".into()))?
        .collect();
    let allowed: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|a| allow_private || is_public(a.ip()))
        .collect();
    if found.is_empty() {
        return Err(Refused("The URL's host name does not resolve.".into()));
    }
    if allowed.len() < found.len() {
        return Err(Refused(
            "The URL's host name resolves to a loopback, private or link-local address.".into(),
        ));
    }
    Ok(allowed)
}

/// The delivery client's resolver: [`resolve`], for every connection it opens.
pub struct Guarded {
    pub allow_private: bool,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let (host, allow_private) = (name.as_str().to_string(), self.allow_private);
        Box::pin(async move {
            // The port is the client's to set; 0 here is replaced by the URL's.
            let addrs = resolve(&host, 0, allow_private)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.0.into() })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "192.0.2.1",
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_https_public_and_without_credentials() {
        assert!(check_url("https://hooks.example.com/upgate?x=1", false).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.5:8443/",
            "https://hooks.example.com/#x",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        // The operator's switch: loopback and plain http for tests and on-premises.
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("https://user@127.0.0.1/", true).is_err());
    }

    #[tokio::test]
    async fn names_are_resolved_once_and_judged_by_their_addresses() {
        assert!(resolve("localhost", 443, false).await.is_err());
        assert!(!resolve("localhost", 443, true).await.unwrap().is_empty());
        assert!(resolve("no-such-host.invalid", 443, true).await.is_err());
    }
}

//! Where deliveries may go. Only `https://` URLs, except `http://` to a loopback host
//! when configuration allows it; and no address in a private, loopback, link-local or
//! otherwise non-public range unless configuration allows it, checked when an endpoint
//! is saved and again on every connection (the resolver below), so a DNS answer that
//! changes later cannot point deliveries into the operator's network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use url::Url;

/// What kind of network an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    /// Private, link-local, shared, reserved, documentation or multicast.
    NonPublic,
}

/// Ranges that are not the public internet (besides loopback, handled apart).
fn non_public_ranges() -> &'static [IpNet] {
    static RANGES: OnceLock<Vec<IpNet>> = OnceLock::new();
    RANGES.get_or_init(|| {
        [
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.88.99.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/4",
            "240.0.0.0/4",
            "::/128",
            "100::/64",
            "2001::/32",
            "2001:db8::/32",
            "fc00::/7",
            "fe80::/10",
            "ff00::/8",
        ]
        .iter()
        .map(|r| r.parse().expect("valid range"))
        .collect()
    })
}

/// Classifies an address; IPv4-mapped and NAT64 IPv6 addresses are judged by the IPv4
/// address they carry.
pub fn classify(ip: IpAddr) -> AddressClass {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                    IpAddr::V4(Ipv4Addr::new(
                        (s[6] >> 8) as u8,
                        s[6] as u8,
                        (s[7] >> 8) as u8,
                        s[7] as u8,
                    ))
                } else {
                    IpAddr::V6(v6)
                }
            }
        },
        v4 => v4,
    };
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    if non_public_ranges().iter().any(|r| r.contains(&ip)) {
        return AddressClass::NonPublic;
    }
    AddressClass::Public
}

/// The destination policy from configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guard {
    /// `http://` to loopback hosts, and loopback addresses (tests, local development).
    pub allow_loopback: bool,
    /// Private and other non-public addresses (an operator's internal receivers).
    pub allow_private: bool,
}

impl Guard {
    /// Whether a connection to `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        match classify(ip) {
            AddressClass::Public => true,
            AddressClass::Loopback => self.allow_loopback,
            AddressClass::NonPublic => self.allow_private,
        }
    }

    fn refusal(&self, host: &str, ip: IpAddr) -> String {
        let kind = match classify(ip) {
            AddressClass::Loopback => "a loopback",
            _ => "a private or otherwise non-public",
        };
        format!("{host} resolves to {ip}, {kind} address; webhooks are delivered to public addresses only")
    }

    /// Checks a URL's form: scheme, host, no credentials. Returns the parsed URL.
    pub fn check_url(&self, raw: &str) -> Result<Url, String> {
        if raw.len() > 2048 {
            return Err("url must be at most 2048 characters".into());
        }
        let url = Url::parse(raw).map_err(|e| format!("url is not a valid absolute URL: {e}"))?;
        let host = url
            .host_str()
            .ok_or("url must name a host, e.g. https://hooks.example.com/cipherstream")?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "url must not carry credentials; send them as a custom header instead".into(),
            );
        }
        if url.fragment().is_some() {
            return Err("url must not have a #fragment".into());
        }
        let loopback_host = host.eq_ignore_ascii_case("localhost")
            || host_ip(&url).is_some_and(|ip| classify(ip) == AddressClass::Loopback);
        match url.scheme() {
            "https" => {}
            "http" if loopback_host && self.allow_loopback => {}
            "http" => {
                return Err(
                    "url must use https:// (plain http:// is accepted only for loopback receivers when the server allows them)"
                        .into(),
                )
            }
            other => return Err(format!("url scheme {other:?} is not accepted; use https://")),
        }
        if let Some(ip) = host_ip(&url) {
            if !self.allows(ip) {
                return Err(self.refusal(host, ip));
            }
        }
        Ok(url)
    }

    /// Resolves the URL's host now and checks every address it has.
    pub async fn check_resolved(&self, url: &Url) -> Result<(), String> {
        let host = url.host_str().unwrap_or_default().to_string();
        if host_ip(url).is_some() {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("the host {host} could not be resolved: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("the host {host} has no addresses"));
        }
        match addrs.iter().find(|a| !self.allows(a.ip())) {
            Some(bad) => Err(self.refusal(&host, bad.ip())),
            None => Ok(()),
        }
    }
}

fn host_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// The HTTP client's resolver: system DNS, then the guard. A host with any refused
/// address is refused as a whole (an attacker-controlled zone could mix them).
pub struct GuardedResolver(pub Guard);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !guard.allows(a.ip())) {
                return Err(guard.refusal(&host, bad.ip()).into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(guard: Guard) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver(guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_ranges() {
        for (ip, class) in [
            ("8.8.8.8", AddressClass::Public),
            ("127.0.0.1", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::NonPublic),
            ("172.20.0.1", AddressClass::NonPublic),
            ("192.168.1.1", AddressClass::NonPublic),
            ("169.254.169.254", AddressClass::NonPublic),
            ("100.64.0.1", AddressClass::NonPublic),
            ("0.0.0.0", AddressClass::NonPublic),
            ("fd00::1", AddressClass::NonPublic),
            ("fe80::1", AddressClass::NonPublic),
            ("::ffff:10.0.0.1", AddressClass::NonPublic),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("64:ff9b::a9fe:a9fe", AddressClass::NonPublic),
            ("2606:4700::1111", AddressClass::Public),
        ] {
            assert_eq!(classify(ip.parse().unwrap()), class, "{ip}");
        }
    }

    #[test]
    fn checks_urls() {
        let strict = Guard::default();
        let local = Guard {
            allow_loopback: true,
            allow_private: false,
        };
        assert!(strict.check_url("https://hooks.example.com/x").is_ok());
        assert!(strict
            .check_url("http://hooks.example.com/x")
            .unwrap_err()
            .contains("https://"));
        assert!(strict.check_url("http://127.0.0.1:9000/x").is_err());
        assert!(strict
            .check_url("https://127.0.0.1:9000/x")
            .unwrap_err()
            .contains("loopback"));
        assert!(local.check_url("http://127.0.0.1:9000/x").is_ok());
        assert!(local.check_url("http://localhost:9000/x").is_ok());
        assert!(local
            .check_url("https://10.0.0.5/x")
            .unwrap_err()
            .contains("private"));
        assert!(local
            .check_url("https://[fd00::1]/x")
            .unwrap_err()
            .contains("private"));
        assert!(local
            .check_url("ftp://example.com/x")
            .unwrap_err()
            .contains("scheme"));
        assert!(local
            .check_url("https://u:p@example.com/x")
            .unwrap_err()
            .contains("credentials"));
        assert!(local.check_url("not a url").is_err());
    }
}

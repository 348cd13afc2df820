//! Client addresses behind proxies: which peers may speak for the client they forward.
//!
//! `X-Forwarded-For` is only believed when the connection comes from a configured trusted proxy;
//! then the list is read from the right, skipping trusted hops, as nginx's `real_ip_recursive`
//! does. Anyone else's header is ignored, so a client cannot choose the address it is throttled,
//! audited or recorded under.

use std::net::IpAddr;

use ipnet::IpNet;

/// The peers (single addresses or CIDR ranges) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `127.0.0.1`, `::1`, …; the error names the entry that is not one.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("`{entry}` is not an IP address or CIDR range (e.g. 10.0.0.0/8)")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// No proxy is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer itself unless it is trusted; then the right-most address of
    /// the `X-Forwarded-For` values (in header order) that is not a trusted proxy. An entry that is
    /// not an address stops the walk at the hop that sent it.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.is_trusted(ip) {
                return ip;
            }
        }
        client
    }
}

/// An address as `X-Forwarded-For` may carry it: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    None
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack listener reports) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("203.0.113.9"), ["1.1.1.1"]),
            ip("203.0.113.9")
        );
        let lan = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        assert_eq!(
            lan.client_ip(ip("203.0.113.9"), ["1.1.1.1"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1"]).unwrap();
        // spoofed, real client, inner proxy
        let xff = ["6.6.6.6, 198.51.100.7", "10.1.2.3"];
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), xff), ip("198.51.100.7"));
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), []), ip("127.0.0.1"));
        assert_eq!(
            proxies.client_ip(ip("127.0.0.1"), ["10.0.0.1, 10.0.0.2"]),
            ip("10.0.0.1")
        );
        assert_eq!(
            proxies.client_ip(ip("127.0.0.1"), ["198.51.100.7, garbage"]),
            ip("127.0.0.1")
        );
        assert_eq!(
            proxies.client_ip(ip("::ffff:127.0.0.1"), ["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let err = TrustedProxies::parse(&["10.0.0.0/8", "ten"]).unwrap_err();
        assert!(err.contains("`ten`"), "{err}");
        assert!(TrustedProxies::parse(&["::1", "192.168.0.0/16"]).is_ok());
    }
}

//! Where a route may send traffic: an upstream URL's target, and whether an address is one a team
//! admin must not reach (SSRF). Pure: the caller resolves host names and passes the addresses in.
//!
//! Hosts are read with the WHATWG URL parser (the `url` crate), the same reading browsers and
//! `reqwest` use, so `http://0x7f000001/`, `http://127.1/` and `http://[::ffff:127.0.0.1]/` are
//! seen as the loopback addresses they are rather than as names.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use crate::net::canonical;

/// The host and port an upstream URL connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTarget {
    /// `http` or `https`.
    pub scheme: String,
    /// The host as the connection uses it: a lower-case name or an address.
    pub host: TargetHost,
    /// The port (the scheme's default when the URL names none).
    pub port: u16,
}

/// An upstream host: an address written in the URL, or a name that must be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    /// A name, lower case, without a trailing dot.
    Name(String),
    /// An address literal.
    Ip(IpAddr),
}

impl fmt::Display for TargetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl UpstreamTarget {
    /// Reads the target of an upstream base URL; the error names what is wrong.
    pub fn parse(upstream_url: &str) -> Result<Self, String> {
        if upstream_url.contains('\\') {
            return Err(format!(
                "upstream `{upstream_url}` must not contain a backslash"
            ));
        }
        let url = url::Url::parse(upstream_url)
            .map_err(|e| format!("upstream `{upstream_url}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "upstream `{upstream_url}` must start with http:// or https://"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "upstream `{upstream_url}` must not carry a user name or password"
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name.is_empty() {
                    return Err(format!("upstream `{upstream_url}` has no valid host"));
                }
                TargetHost::Name(name)
            }
            Some(url::Host::Ipv4(ip)) => TargetHost::Ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => TargetHost::Ip(canonical(IpAddr::V6(ip))),
            None => return Err(format!("upstream `{upstream_url}` has no host")),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("upstream `{upstream_url}` has no port"))?;
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host,
            port,
        })
    }

    /// Whether two targets are the same origin (scheme, host and port): a credential sealed for
    /// one may be sent to the other.
    pub fn same_origin(&self, other: &Self) -> bool {
        self == other
    }
}

/// Why an upstream address is refused to a team admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, 100.64.0.0/10 (shared address space), fc00::/7.
    Private,
    /// 169.254.0.0/16 (cloud metadata lives at 169.254.169.254), fe80::/10.
    LinkLocal,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// Multicast or broadcast.
    Multicast,
    /// One of this instance's own listeners (the console or the gateway).
    OwnListener,
}

impl Restriction {
    /// The reason in words, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private-network address",
            Self::LinkLocal => "a link-local address (cloud metadata lives there)",
            Self::Unspecified => "an unspecified address",
            Self::Multicast => "a multicast or broadcast address",
            Self::OwnListener => "one of tollgate's own listeners",
        }
    }
}

impl fmt::Display for Restriction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The IPv4 address an IPv6 address carries, for the forms that reach an IPv4 host:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002:AABB:CCDD::/16`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let o = ip.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..6] == [0; 6] && !tail.is_unspecified() && tail != Ipv4Addr::new(0, 0, 0, 1) {
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

fn classify_v4(ip: Ipv4Addr) -> Option<Restriction> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some(Restriction::Loopback)
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some(Restriction::Private)
    } else if ip.is_link_local() {
        Some(Restriction::LinkLocal)
    } else if a == 0 {
        Some(Restriction::Unspecified)
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some(Restriction::Multicast)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Restriction> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some(Restriction::Loopback)
    } else if ip.is_unspecified() {
        Some(Restriction::Unspecified)
    } else if first & 0xfe00 == 0xfc00 {
        Some(Restriction::Private)
    } else if first & 0xffc0 == 0xfe80 {
        Some(Restriction::LinkLocal)
    } else if ip.is_multicast() {
        Some(Restriction::Multicast)
    } else {
        embedded_v4(ip).and_then(classify_v4)
    }
}

/// Why `addr` is off limits to a team admin, or `None` when it is a public address that is not
/// one of `own_listeners`. A listener bound to an unspecified address is matched by port on any
/// address this check already refuses (loopback, private), so only specific binds add anything.
pub fn classify(addr: SocketAddr, own_listeners: &[SocketAddr]) -> Option<Restriction> {
    let ip = canonical(addr.ip());
    let by_range = match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    };
    if by_range.is_some() {
        return by_range;
    }
    own_listeners
        .iter()
        .any(|own| own.port() == addr.port() && canonical(own.ip()) == ip)
        .then_some(Restriction::OwnListener)
}

/// One allow-list entry: a CIDR range, an address, a host name, or `*.suffix` for every name
/// under a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowEntry {
    Net(IpNet),
    Host(String),
    Suffix(String),
}

/// Hosts and ranges the instance admin allows team admins to route to although they are loopback,
/// private or link-local (`upstream_allowlist` in the configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamAllowlist(Vec<AllowEntry>);

impl UpstreamAllowlist {
    /// Parses `10.1.0.0/16`, `192.168.1.5`, `llm.internal`, `*.svc.cluster.local`; the error names
    /// the entry that is none of these.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                if let Ok(net) = entry.parse::<IpNet>() {
                    return Ok(AllowEntry::Net(net.trunc()));
                }
                if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                    return Ok(AllowEntry::Net(IpNet::from(canonical(ip))));
                }
                let (wild, name) = match entry.strip_prefix("*.") {
                    Some(rest) => (true, rest),
                    None => (false, entry),
                };
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let valid = !name.is_empty()
                    && name.len() <= 253
                    && name.split('.').all(|label| {
                        !label.is_empty()
                            && label.len() <= 63
                            && label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    });
                if !valid {
                    return Err(format!(
                        "`{entry}` is not a host name, `*.domain`, IP address or CIDR range"
                    ));
                }
                Ok(if wild {
                    AllowEntry::Suffix(name)
                } else {
                    AllowEntry::Host(name)
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Nothing is allowed beyond public addresses (the default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a host name is listed (exactly, or under a `*.domain` entry).
    pub fn allows_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.0.iter().any(|entry| match entry {
            AllowEntry::Host(host) => *host == name,
            AllowEntry::Suffix(domain) => name
                .strip_suffix(domain.as_str())
                .is_some_and(|head| head.ends_with('.')),
            AllowEntry::Net(_) => false,
        })
    }

    /// Whether an address is inside a listed address or range.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|entry| match entry {
            AllowEntry::Net(net) => net.contains(&ip),
            _ => false,
        })
    }
}

/// A refused upstream: the host as written, the address it reaches, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedUpstream {
    /// The host as the URL names it.
    pub host: String,
    /// The address that is off limits.
    pub addr: IpAddr,
    /// Why.
    pub reason: Restriction,
}

impl fmt::Display for RefusedUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = canonical(self.addr);
        if self.host == addr.to_string() || self.host == format!("[{addr}]") {
            write!(
                f,
                "upstream host `{}` is {}; only an instance admin may route there, or list it in upstream_allowlist",
                self.host, self.reason
            )
        } else {
            write!(
                f,
                "upstream host `{}` resolves to {addr}, {}; only an instance admin may route there, or list it in upstream_allowlist",
                self.host, self.reason
            )
        }
    }
}

/// Checks every address a target resolves to: the first that is off limits and not allowed is
/// refused. A name on the allow-list allows all its addresses; otherwise each address must be
/// public or inside an allowed range.
pub fn check_addresses(
    target: &UpstreamTarget,
    addresses: &[IpAddr],
    allowlist: &UpstreamAllowlist,
    own_listeners: &[SocketAddr],
) -> Result<(), RefusedUpstream> {
    if let TargetHost::Name(name) = &target.host
        && allowlist.allows_name(name)
    {
        return Ok(());
    }
    for &ip in addresses {
        if let Some(reason) = classify(SocketAddr::new(ip, target.port), own_listeners)
            && !allowlist.allows_ip(ip)
        {
            return Err(RefusedUpstream {
                host: target.host.to_string(),
                addr: ip,
                reason,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        SocketAddr::new(text.parse().unwrap(), 443)
    }

    #[test]
    fn hosts_are_read_as_the_connection_reads_them() {
        let t = UpstreamTarget::parse("http://0x7f000001/v1").unwrap();
        assert_eq!(t.host, TargetHost::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(t.port, 80);
        let t = UpstreamTarget::parse("http://127.1:8080").unwrap();
        assert_eq!(t.host, TargetHost::Ip("127.0.0.1".parse().unwrap()));
        let t = UpstreamTarget::parse("https://[::ffff:127.0.0.1]").unwrap();
        assert_eq!(t.host, TargetHost::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(t.port, 443);
        let t = UpstreamTarget::parse("https://API.OpenAI.com./v1").unwrap();
        assert_eq!(t.host, TargetHost::Name("api.openai.com".into()));
        assert!(UpstreamTarget::parse("http://user:pw@example.com").is_err());
        assert!(UpstreamTarget::parse("http://example.com\\@127.0.0.1").is_err());
        assert!(UpstreamTarget::parse("ftp://example.com").is_err());
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = UpstreamTarget::parse("https://api.openai.com").unwrap();
        assert!(a.same_origin(&UpstreamTarget::parse("https://API.openai.com:443/v1").unwrap()));
        assert!(!a.same_origin(&UpstreamTarget::parse("http://api.openai.com").unwrap()));
        assert!(!a.same_origin(&UpstreamTarget::parse("https://api.openai.com:8443").unwrap()));
        assert!(!a.same_origin(&UpstreamTarget::parse("https://evil.example").unwrap()));
    }

    #[test]
    fn internal_ranges_are_classified() {
        let own = [];
        for (ip, reason) in [
            ("127.0.0.1", Restriction::Loopback),
            ("127.8.9.10", Restriction::Loopback),
            ("::1", Restriction::Loopback),
            ("::ffff:127.0.0.1", Restriction::Loopback),
            ("10.1.2.3", Restriction::Private),
            ("172.16.0.1", Restriction::Private),
            ("192.168.1.1", Restriction::Private),
            ("100.64.0.1", Restriction::Private),
            ("fd00::1", Restriction::Private),
            ("169.254.169.254", Restriction::LinkLocal),
            ("fe80::1", Restriction::LinkLocal),
            ("0.0.0.0", Restriction::Unspecified),
            ("::", Restriction::Unspecified),
            ("255.255.255.255", Restriction::Multicast),
            ("224.0.0.1", Restriction::Multicast),
            ("64:ff9b::7f00:1", Restriction::Loopback),
            ("2002:a9fe:a9fe::1", Restriction::LinkLocal),
        ] {
            assert_eq!(classify(addr(ip), &own), Some(reason), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "1.1.1.1",
        ] {
            assert_eq!(classify(addr(ip), &own), None, "{ip}");
        }
    }

    #[test]
    fn own_listeners_are_refused_on_their_port_only() {
        let own: [SocketAddr; 1] = ["203.0.113.7:8318".parse().unwrap()];
        assert_eq!(
            classify("203.0.113.7:8318".parse().unwrap(), &own),
            Some(Restriction::OwnListener)
        );
        assert_eq!(classify("203.0.113.7:443".parse().unwrap(), &own), None);
    }

    #[test]
    fn the_allowlist_takes_names_suffixes_and_ranges() {
        let list = UpstreamAllowlist::parse(&["10.1.0.0/16", "llm.internal", "*.svc.local", "::1"])
            .unwrap();
        assert!(list.allows_ip("10.1.200.3".parse().unwrap()));
        assert!(!list.allows_ip("10.2.0.1".parse().unwrap()));
        assert!(list.allows_ip("::1".parse().unwrap()));
        assert!(list.allows_name("LLM.internal."));
        assert!(list.allows_name("a.b.svc.local"));
        assert!(!list.allows_name("svc.local"));
        assert!(!list.allows_name("evilsvc.local"));
        let err = UpstreamAllowlist::parse(&["not a host"]).unwrap_err();
        assert!(err.contains("`not a host`"), "{err}");
    }

    #[test]
    fn every_resolved_address_must_pass() {
        let none = UpstreamAllowlist::default();
        let target = UpstreamTarget::parse("https://mixed.example").unwrap();
        let addrs: Vec<IpAddr> = vec!["8.8.8.8".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        let refused = check_addresses(&target, &addrs, &none, &[]).unwrap_err();
        assert_eq!(refused.reason, Restriction::Loopback);
        let text = refused.to_string();
        assert!(
            text.contains("`mixed.example`") && text.contains("127.0.0.1"),
            "{text}"
        );
        assert!(check_addresses(&target, &addrs[..1], &none, &[]).is_ok());
        let by_range = UpstreamAllowlist::parse(&["127.0.0.0/8"]).unwrap();
        assert!(check_addresses(&target, &addrs, &by_range, &[]).is_ok());
        let by_name = UpstreamAllowlist::parse(&["mixed.example"]).unwrap();
        assert!(check_addresses(&target, &addrs, &by_name, &[]).is_ok());
    }
}

//! Which addresses a webhook may reach: the upstream policy of `tollgate_core::upstream`, applied
//! before each delivery and again inside the HTTP client's resolver, so a host name that resolves
//! elsewhere between the check and the connection (DNS rebinding) is still refused.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tollgate_core::upstream::{
    Restriction, TargetHost, UpstreamAllowlist, UpstreamTarget, check_addresses,
};

use crate::channel::WebhookUrl;

/// How long a webhook host may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The outbound-address policy for webhooks: public addresses only, plus what the operator
/// listed (tests list `127.0.0.1`).
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    /// Hosts and ranges allowed although they are loopback, private or link-local.
    pub allowlist: UpstreamAllowlist,
    /// This instance's own listeners, never a webhook target.
    pub own_listeners: Vec<SocketAddr>,
}

/// Why a webhook was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundRefusal {
    /// The host is, or resolves to, an address the policy refuses. Retrying does not help.
    #[error(
        "webhook host `{host}` reaches {addr}, {reason}; list it in the webhook allow-list to allow it"
    )]
    Refused {
        /// The host as the URL names it.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// Why.
        reason: Restriction,
    },
    /// The host did not resolve (may be temporary).
    #[error("webhook host `{host}` does not resolve: {error}")]
    Unresolved {
        /// The host as the URL names it.
        host: String,
        /// The resolver's error.
        error: String,
    },
}

impl OutboundRefusal {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unresolved { .. })
    }
}

impl OutboundPolicy {
    /// A policy allowing `allowlist` beyond public addresses.
    pub fn new(allowlist: UpstreamAllowlist, own_listeners: Vec<SocketAddr>) -> Self {
        Self {
            allowlist,
            own_listeners,
        }
    }

    /// Resolves the webhook's host and checks every address it reaches.
    pub async fn check(&self, url: &WebhookUrl) -> Result<(), OutboundRefusal> {
        let target = url.target();
        let addresses = match &target.host {
            TargetHost::Ip(ip) => vec![*ip],
            TargetHost::Name(name) if self.allowlist.allows_name(name) => return Ok(()),
            TargetHost::Name(name) => resolve(name, target.port).await?,
        };
        self.check_target(target, &addresses)
    }

    fn check_target(
        &self,
        target: &UpstreamTarget,
        addresses: &[IpAddr],
    ) -> Result<(), OutboundRefusal> {
        check_addresses(target, addresses, &self.allowlist, &self.own_listeners).map_err(
            |refused| OutboundRefusal::Refused {
                host: refused.host,
                addr: refused.addr,
                reason: refused.reason,
            },
        )
    }
}

async fn resolve(name: &str, port: u16) -> Result<Vec<IpAddr>, OutboundRefusal> {
    let unresolved = |error: String| OutboundRefusal::Unresolved {
        host: name.to_owned(),
        error,
    };
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port)))
        .await
        .map_err(|_| unresolved(format!("no answer within {} s", RESOLVE_TIMEOUT.as_secs())))?
        .map_err(|e| unresolved(e.to_string()))?;
    let addresses: Vec<IpAddr> = found.map(|a| a.ip()).collect();
    if addresses.is_empty() {
        return Err(unresolved("no address".into()));
    }
    Ok(addresses)
}

/// The HTTP client's resolver: resolves, then refuses the whole name if any address is off
/// limits. The port is unknown here, so own listeners are matched by the pre-delivery check only.
#[derive(Debug)]
pub(crate) struct CheckingResolver {
    pub(crate) policy: Arc<OutboundPolicy>,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            let target = UpstreamTarget {
                scheme: "https".into(),
                host: TargetHost::Name(host.clone()),
                port: 0,
            };
            let addresses = resolve(&host, 0).await?;
            if !policy.allowlist.allows_name(&host) {
                check_addresses(&target, &addresses, &policy.allowlist, &[]).map_err(
                    |refused| OutboundRefusal::Refused {
                        host: refused.host,
                        addr: refused.addr,
                        reason: refused.reason,
                    },
                )?;
            }
            let addrs: Addrs = Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_is_refused_unless_listed() {
        let url = WebhookUrl::parse("http://127.0.0.1:9/hook").unwrap();
        let refused = OutboundPolicy::default().check(&url).await.unwrap_err();
        assert!(!refused.is_retryable());
        assert!(
            refused.to_string().contains("a loopback address"),
            "{refused}"
        );
        let open = OutboundPolicy::new(UpstreamAllowlist::parse(&["127.0.0.1"]).unwrap(), vec![]);
        assert_eq!(open.check(&url).await, Ok(()));
        let hex_form = WebhookUrl::parse("http://0x7f000001:9/hook").unwrap();
        assert!(OutboundPolicy::default().check(&hex_form).await.is_err());
        let metadata = WebhookUrl::parse("http://169.254.169.254/latest").unwrap();
        assert!(OutboundPolicy::default().check(&metadata).await.is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let url = WebhookUrl::parse("http://localhost:9/hook").unwrap();
        match OutboundPolicy::default().check(&url).await {
            Err(OutboundRefusal::Refused { reason, .. }) => {
                assert_eq!(reason, Restriction::Loopback);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let by_name =
            OutboundPolicy::new(UpstreamAllowlist::parse(&["localhost"]).unwrap(), vec![]);
        assert_eq!(by_name.check(&url).await, Ok(()));
    }

    #[tokio::test]
    async fn own_listeners_are_refused_on_their_port() {
        let policy = OutboundPolicy::new(
            UpstreamAllowlist::default(),
            vec!["203.0.113.7:8318".parse().unwrap()],
        );
        let own = WebhookUrl::parse("http://203.0.113.7:8318/hook").unwrap();
        match policy.check(&own).await {
            Err(OutboundRefusal::Refused { reason, .. }) => {
                assert_eq!(reason, Restriction::OwnListener);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let other_port = WebhookUrl::parse("http://203.0.113.7:9000/hook").unwrap();
        assert_eq!(policy.check(&other_port).await, Ok(()));
    }

    #[tokio::test]
    async fn the_client_resolver_refuses_what_the_policy_refuses() {
        let strict = CheckingResolver {
            policy: Arc::new(OutboundPolicy::default()),
        };
        let name: Name = "localhost".parse().unwrap();
        let error = strict.resolve(name).await.err().unwrap();
        let refusal = error.downcast_ref::<OutboundRefusal>().unwrap();
        assert!(!refusal.is_retryable(), "{refusal}");
        let open = CheckingResolver {
            policy: Arc::new(OutboundPolicy::new(
                UpstreamAllowlist::parse(&["127.0.0.0/8", "::1"]).unwrap(),
                vec![],
            )),
        };
        let found: Vec<SocketAddr> = open
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(found.iter().all(|a| a.ip().is_loopback()) && !found.is_empty());
    }
}

//! Who may probe what. `/probe` makes connections on behalf of whoever can
//! reach it; an operator can draw lines with allow and deny lists of hosts
//! (`example.com`, `*.example.com`) and networks (`10.0.0.0/8`, an IP).
//!
//! Every connection a probe makes is checked with both the name and the
//! address it resolved to, redirects included, so a name cannot smuggle in a
//! denied address. Deny wins over allow; with an allow list, only what it
//! names may be probed. Cloud metadata endpoints (169.254.169.254,
//! fd00:ec2::254) are denied unless an allowed network covers them.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use ipnet::IpNet;

/// Metadata endpoints of the big clouds: probing them from a pod would hand
/// its credentials to whoever can reach `/probe`.
const METADATA: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// One entry of an allow or deny list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// A network or single address.
    Net(IpNet),
    /// A host name, exactly.
    Host(String),
    /// `*.suffix`: any name below `suffix`.
    Domain(String),
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(Self::Net(net.trunc()));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self::Net(IpNet::from(ip)));
        }
        let (domain, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(format!(
                "{text:?} is neither a network (10.0.0.0/8, 2001:db8::/32, an IP) nor a host name (example.com, *.example.com)"
            ));
        }
        let name = name.to_ascii_lowercase();
        Ok(if domain {
            Self::Domain(name)
        } else {
            Self::Host(name)
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Net(net) => write!(f, "{net}"),
            Self::Host(host) => f.write_str(host),
            Self::Domain(domain) => write!(f, "*.{domain}"),
        }
    }
}

impl Rule {
    fn matches(&self, host: &str, ip: IpAddr) -> bool {
        match self {
            Self::Net(net) => net.contains(&ip),
            Self::Host(name) => host.eq_ignore_ascii_case(name),
            Self::Domain(suffix) => {
                let host = host.to_ascii_lowercase();
                host.strip_suffix(suffix.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
            }
        }
    }
}

/// The operator's lists.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

impl TargetPolicy {
    /// A policy from the two lists.
    pub fn new(allow: Vec<Rule>, deny: Vec<Rule>) -> Self {
        Self { allow, deny }
    }

    /// Whether a connection to `ip`, reached through the name `host` (an IP
    /// literal's text for literals), is allowed; `Err` says which rule said
    /// no, and is logged at warn: someone asked for what the operator forbade.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        self.verdict(host, ip).inspect_err(|reason| {
            tracing::warn!(%reason, "probe refused by the target policy");
        })
    }

    fn verdict(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        if let Some(rule) = self.deny.iter().find(|r| r.matches(host, ip)) {
            return Err(format!("{host} ({ip}) is denied by {rule}"));
        }
        let metadata = METADATA.contains(&ip);
        if metadata
            && !self
                .allow
                .iter()
                .any(|r| matches!(r, Rule::Net(net) if net.contains(&ip)))
        {
            return Err(format!(
                "{ip} is a cloud metadata address; allow it explicitly to probe it"
            ));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|r| r.matches(host, ip)) {
            return Err(format!("{host} ({ip}) is not on the allow list"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> TargetPolicy {
        let rules = |list: &[&str]| list.iter().map(|r| r.parse().unwrap()).collect();
        TargetPolicy::new(rules(allow), rules(deny))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn rules_parse_or_say_why_not() {
        assert_eq!(
            "10.1.2.3/8".parse::<Rule>(),
            Ok(Rule::Net("10.0.0.0/8".parse().unwrap()))
        );
        assert_eq!(
            "::1".parse::<Rule>(),
            Ok(Rule::Net("::1/128".parse().unwrap()))
        );
        assert_eq!(
            "*.Example.com".parse::<Rule>(),
            Ok(Rule::Domain("example.com".into()))
        );
        assert!("exa mple.com"
            .parse::<Rule>()
            .unwrap_err()
            .contains("neither a network"));
        assert!("10.0.0.0/33".parse::<Rule>().is_err());
    }

    #[test]
    fn by_default_everything_but_metadata_is_allowed() {
        let open = policy(&[], &[]);
        assert!(open.check("example.com", ip("93.184.215.14")).is_ok());
        assert!(open
            .check("metadata", ip("169.254.169.254"))
            .unwrap_err()
            .contains("metadata"));
        assert!(open.check("fd00:ec2::254", ip("fd00:ec2::254")).is_err());
        let explicit = policy(&["169.254.169.254"], &[]);
        assert!(explicit.check("metadata", ip("169.254.169.254")).is_ok());
    }

    #[test]
    fn deny_wins_and_names_cannot_smuggle_addresses() {
        let p = policy(&["*.example.com"], &["10.0.0.0/8"]);
        assert!(p.check("www.example.com", ip("93.184.215.14")).is_ok());
        assert!(p
            .check("www.example.com", ip("10.1.2.3"))
            .unwrap_err()
            .contains("denied by 10.0.0.0/8"));
        assert!(p
            .check("example.com", ip("93.184.215.14"))
            .unwrap_err()
            .contains("not on the allow list"));
        assert!(p.check("www.example.org", ip("93.184.215.14")).is_err());
        let nets = policy(&["192.0.2.0/24"], &[]);
        assert!(nets.check("anything.test", ip("192.0.2.7")).is_ok());
        assert!(nets.check("anything.test", ip("198.51.100.7")).is_err());
    }
}

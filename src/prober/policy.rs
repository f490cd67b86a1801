//! Who may probe what. `/probe` makes connections on behalf of whoever can
//! reach it; an operator can draw lines with allow and deny lists of hosts
//! (`example.com`, `*.example.com`) and networks (`10.0.0.0/8`, an IP).
//!
//! A name is checked before it is resolved (a denied or unlisted name is
//! never looked up), and every connection a probe makes is checked again with
//! the name and the address it resolved to, redirects included, so a name
//! cannot smuggle in a denied address. Names are compared case-insensitively
//! and without a trailing dot. An address is judged by what it reaches: an
//! IPv4-mapped, IPv4-compatible or NAT64 (64:ff9b::/96) IPv6 address by the
//! IPv4 address inside it, and an unspecified address (0.0.0.0, ::) as the
//! local host it connects to. Deny wins over allow; with an allow list, only
//! what it names may be probed. Cloud metadata and identity endpoints are
//! denied unless an allowed network covers them.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use ipnet::IpNet;

/// Metadata and workload-identity endpoints of the big clouds: probing them
/// from a pod would hand its credentials to whoever can reach `/probe`.
/// AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack: 169.254.169.254 (and
/// AWS's IPv6 fd00:ec2::254); GKE's metadata server 169.254.169.252; EKS Pod
/// Identity 169.254.170.23 and fd00:ec2::23; Alibaba Cloud 100.100.100.200.
pub const METADATA: [IpAddr; 6] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 252)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
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
        let name = normalize(name);
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(format!(
                "{text:?} is neither a network (10.0.0.0/8, 2001:db8::/32, an IP) nor a host name (example.com, *.example.com)"
            ));
        }
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
    /// Whether the rule names `host` (already normalized).
    fn names(&self, host: &str) -> bool {
        match self {
            Self::Net(_) => false,
            Self::Host(name) => host == name,
            Self::Domain(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|rest| rest.ends_with('.')),
        }
    }

    fn covers(&self, ip: IpAddr) -> bool {
        matches!(self, Self::Net(net) if net.contains(&ip))
    }
}

/// A name as rules compare it: lower-case, without the root's trailing dot.
fn normalize(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.to_ascii_lowercase()
}

/// The address a connection to `ip` reaches: the IPv4 address embedded in
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) and NAT64
/// (`64:ff9b::a.b.c.d`) addresses; the local host for 0.0.0.0 and `::`, which
/// Linux connects to itself.
pub fn reaches(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = Ipv4Addr::from(u32::from(s[6]) << 16 | u32::from(s[7]));
            if let Some(v4) = v6.to_ipv4_mapped() {
                reaches(IpAddr::V4(v4))
            } else if (s[..6] == [0; 6] && !v6.is_loopback())
                || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
            {
                reaches(IpAddr::V4(embedded))
            } else {
                ip
            }
        }
    }
}

/// The operator's lists.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
    unix_sockets: Vec<std::path::PathBuf>,
}

impl TargetPolicy {
    /// A policy from the two lists.
    pub fn new(allow: Vec<Rule>, deny: Vec<Rule>) -> Self {
        Self {
            allow,
            deny,
            unix_sockets: Vec::new(),
        }
    }

    /// Allows the unix prober to connect to exactly these socket paths.
    #[must_use]
    pub fn with_unix_sockets(mut self, paths: Vec<std::path::PathBuf>) -> Self {
        self.unix_sockets = paths;
        self
    }

    /// Whether the unix prober may connect to `path`: only a path listed as
    /// it is written, so neither `..` nor another spelling reaches past it.
    pub fn check_unix_socket(&self, path: &str) -> Result<(), String> {
        if self.unix_sockets.iter().any(|allowed| allowed.as_os_str() == path) {
            Ok(())
        } else if self.unix_sockets.is_empty() {
            Err(format!(
                "unix socket {path:?}: no unix socket may be probed unless --allow-unix-socket lists it"
            ))
        } else {
            Err(format!(
                "unix socket {path:?} is not listed by --allow-unix-socket"
            ))
        }
        .inspect_err(log_refusal)
    }

    /// Whether `host` may be resolved at all: a denied name, or one an
    /// allow list of names only does not cover, is refused before any lookup.
    /// IP literals pass here and are judged by [`check`](Self::check).
    pub fn check_name(&self, host: &str) -> Result<(), String> {
        if host.parse::<IpAddr>().is_ok() {
            return Ok(());
        }
        let name = normalize(host);
        let verdict = if let Some(rule) = self.deny.iter().find(|r| r.names(&name)) {
            Err(format!("{host} is denied by {rule}"))
        } else if !self.allow.is_empty()
            && !self.allow.iter().any(|r| r.names(&name))
            && !self.allow.iter().any(|r| matches!(r, Rule::Net(_)))
        {
            Err(format!("{host} is not on the allow list"))
        } else {
            Ok(())
        };
        verdict.inspect_err(log_refusal)
    }

    /// Whether a request may claim to be for `host` (the Host header a probe
    /// sends): the deny list's names apply, as to the target.
    pub fn check_host_header(&self, host: &str) -> Result<(), String> {
        let name = normalize(host);
        match self.deny.iter().find(|r| r.names(&name)) {
            Some(rule) => Err(format!("Host {host} is denied by {rule}")),
            None => Ok(()),
        }
        .inspect_err(log_refusal)
    }

    /// Whether a connection to `ip`, reached through the name `host` (an IP
    /// literal's text for literals), is allowed; `Err` says which rule said
    /// no, and is logged at warn: someone asked for what the operator forbade.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        self.verdict(host, ip).inspect_err(log_refusal)
    }

    fn verdict(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let name = normalize(host);
        let reached = reaches(ip);
        let literal = host.parse::<IpAddr>().is_ok_and(|h| h == ip);
        let shown = match (literal, reached == ip) {
            (true, true) => ip.to_string(),
            (true, false) => format!("{ip} (which reaches {reached})"),
            (false, true) => format!("{host} ({ip})"),
            (false, false) => format!("{host} ({ip}, which reaches {reached})"),
        };
        // Deny on either spelling of the address; allow only on what it reaches.
        if let Some(rule) = self
            .deny
            .iter()
            .find(|r| r.names(&name) || r.covers(ip) || r.covers(reached))
        {
            return Err(format!("{shown} is denied by {rule}"));
        }
        if METADATA.contains(&reached) && !self.allow.iter().any(|r| r.covers(reached)) {
            return Err(format!(
                "{shown} is a cloud metadata address; allow it explicitly to probe it"
            ));
        }
        if !self.allow.is_empty()
            && !self
                .allow
                .iter()
                .any(|r| r.names(&name) || r.covers(reached))
        {
            return Err(format!("{shown} is not on the allow list"));
        }
        Ok(())
    }
}

fn log_refusal(reason: &String) {
    tracing::warn!(%reason, "probe refused by the target policy");
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
    fn every_spelling_of_an_address_is_judged_by_what_it_reaches() {
        let p = policy(&[], &["127.0.0.0/8", "::1/128"]);
        for literal in [
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "0:0:0:0:0:ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::127.0.0.1",
            "0.0.0.0",
            "::",
            "::1",
        ] {
            let err = p.check(literal, ip(literal)).unwrap_err();
            assert!(err.contains("denied by"), "{literal}: {err}");
        }
        let open = policy(&[], &[]);
        for metadata in [
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "169.254.170.23",
            "fd00:ec2::23",
            "100.100.100.200",
        ] {
            let err = open.check(metadata, ip(metadata)).unwrap_err();
            assert!(err.contains("metadata"), "{metadata}: {err}");
        }
        // An allow list admits by what an address reaches, not by its spelling.
        let v6_only = policy(&["::/0"], &[]);
        assert!(v6_only.check("x", ip("::ffff:10.0.0.1")).is_err());
        assert!(v6_only.check("x", ip("2001:db8::1")).is_ok());
        let v4_net = policy(&["10.0.0.0/8"], &[]);
        assert!(v4_net.check("x", ip("::ffff:10.0.0.1")).is_ok());
    }

    #[test]
    fn names_match_in_any_case_and_with_a_trailing_dot() {
        let p = policy(&[], &["internal.corp", "*.internal.corp", "localhost."]);
        for name in [
            "internal.corp.",
            "a.internal.corp.",
            "A.Internal.Corp",
            "localhost.",
            "LOCALHOST",
        ] {
            assert!(p.check_name(name).is_err(), "{name}");
            assert!(p.check(name, ip("192.0.2.1")).is_err(), "{name}");
            assert!(p.check_host_header(name).is_err(), "{name}");
        }
        assert!(p.check_name("internal.corp.example").is_ok());
        assert!(p.check_name("xinternal.corp").is_ok());
    }

    #[test]
    fn an_allow_list_of_names_refuses_other_names_before_any_lookup() {
        let names = policy(&["*.example.com"], &[]);
        assert!(names.check_name("www.example.com").is_ok());
        assert!(names
            .check_name("attacker.test")
            .unwrap_err()
            .contains("not on the allow list"));
        // A network on the list: the name might resolve into it, so it is looked up.
        let mixed = policy(&["*.example.com", "10.0.0.0/8"], &[]);
        assert!(mixed.check_name("anything.test").is_ok());
        assert!(
            names.check_name("192.0.2.1").is_ok(),
            "literals are judged after"
        );
    }

    #[test]
    fn only_listed_unix_sockets_may_be_probed() {
        let none = policy(&[], &[]);
        assert!(none
            .check_unix_socket("/run/app.sock")
            .unwrap_err()
            .contains("--allow-unix-socket"));
        let listed = policy(&[], &[]).with_unix_sockets(vec!["/run/app.sock".into()]);
        assert!(listed.check_unix_socket("/run/app.sock").is_ok());
        for other in [
            "/run/./app.sock",
            "/run/x/../app.sock",
            "/run//app.sock",
            "/run/app.sock/",
            "/run/other.sock",
        ] {
            assert!(listed.check_unix_socket(other).is_err(), "{other}");
        }
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

//! Listen addresses as blackbox_exporter's `--web.listen-address` takes them
//! (Go's `net.Listen("tcp", ...)`): `:9115` listens on every address, IPv6
//! and IPv4 alike (IPv4 alone where the kernel has no IPv6); `0.0.0.0:9115`
//! and `[::1]:9115` on that address; `localhost:9115` on the first address
//! the name resolves to that can be bound.

use std::{
    fmt, io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    str::FromStr,
};

use tokio::net::TcpListener;

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    /// `:PORT`: every address of the host.
    Any(u16),
    /// An IP address and port.
    Ip(SocketAddr),
    /// A host name and port, resolved when binding.
    Host(String, u16),
}

impl FromStr for ListenAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.contains("://") {
            return Err(format!(
                "{text:?}: lookout listens on TCP only (host:port, [ipv6]:port or :port)"
            ));
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!("{text:?}: missing port in address (e.g. :9115)"));
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|_| port.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("{text:?}: the port must be a number from 0 to 65535"))?;
        if host.is_empty() {
            return Ok(Self::Any(port));
        }
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return inner
                .parse::<Ipv6Addr>()
                .map(|ip| Self::Ip(SocketAddr::new(IpAddr::V6(ip), port)))
                .map_err(|_| format!("{text:?}: {inner:?} is not an IPv6 address"));
        }
        if host.contains(':') {
            return Err(format!(
                "{text:?}: too many colons (write an IPv6 address in brackets: [::1]:9115)"
            ));
        }
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return Ok(Self::Ip(SocketAddr::new(IpAddr::V4(ip), port)));
        }
        let name_like = host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !name_like {
            return Err(format!(
                "{text:?}: {host:?} is neither an IP address nor a host name"
            ));
        }
        Ok(Self::Host(host.to_owned(), port))
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any(port) => write!(f, ":{port}"),
            Self::Ip(addr) => write!(f, "{addr}"),
            Self::Host(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

impl From<SocketAddr> for ListenAddress {
    fn from(addr: SocketAddr) -> Self {
        Self::Ip(addr)
    }
}

/// Binds `address`.
pub(crate) async fn bind(address: &ListenAddress) -> io::Result<TcpListener> {
    match address {
        ListenAddress::Ip(addr) => TcpListener::bind(addr).await,
        ListenAddress::Any(port) => match dual_stack(*port) {
            Err(e) if no_ipv6(&e) => {
                TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, *port))).await
            }
            bound => bound,
        },
        ListenAddress::Host(host, port) => {
            let mut last = io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} resolves to no address"),
            );
            for addr in tokio::net::lookup_host((host.as_str(), *port)).await? {
                match TcpListener::bind(addr).await {
                    Ok(listener) => return Ok(listener),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

/// One IPv6 socket that also accepts IPv4 (as IPv4-mapped addresses), as Go
/// listens on `:port`.
fn dual_stack(port: u16) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// The kernel has no IPv6 (disabled, or not built in).
fn no_ipv6(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if code == nix::errno::Errno::EAFNOSUPPORT as i32
            || code == nix::errno::Errno::EADDRNOTAVAIL as i32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_listen_addresses_parse() {
        for (text, expected) in [
            (":9115", ListenAddress::Any(9115)),
            (":0", ListenAddress::Any(0)),
            (
                "0.0.0.0:9115",
                ListenAddress::Ip("0.0.0.0:9115".parse().unwrap()),
            ),
            (
                "127.0.0.1:80",
                ListenAddress::Ip("127.0.0.1:80".parse().unwrap()),
            ),
            ("[::]:9115", ListenAddress::Ip("[::]:9115".parse().unwrap())),
            (
                "[::1]:9115",
                ListenAddress::Ip("[::1]:9115".parse().unwrap()),
            ),
            (
                "localhost:9115",
                ListenAddress::Host("localhost".into(), 9115),
            ),
            (
                "my-pod.svc.cluster.local:1",
                ListenAddress::Host("my-pod.svc.cluster.local".into(), 1),
            ),
        ] {
            assert_eq!(
                text.parse::<ListenAddress>(),
                Ok(expected.clone()),
                "{text}"
            );
            assert_eq!(expected.to_string(), text, "{text}");
        }
    }

    #[test]
    fn malformed_addresses_are_refused_naming_them() {
        for (text, expected) in [
            ("9115", "missing port"),
            ("localhost", "missing port"),
            (":http", "port must be a number"),
            (":65536", "port must be a number"),
            (":+80", "port must be a number"),
            (":", "port must be a number"),
            ("::1:9115", "too many colons"),
            ("[::1:9115", "too many colons"),
            ("[1.2.3.4]:80", "not an IPv6 address"),
            ("[fe80::1%eth0]:80", "not an IPv6 address"),
            ("vsock://:9115", "TCP only"),
            ("a..b:80", "neither an IP address"),
            ("a b:80", "neither an IP address"),
        ] {
            let err = text.parse::<ListenAddress>().unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
        }
    }

    #[tokio::test]
    async fn any_address_accepts_ipv4_and_ipv6_clients() {
        let listener = bind(&ListenAddress::Any(0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = tokio::spawn(async move {
            for _ in 0..2 {
                listener.accept().await.unwrap();
            }
        });
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        if tokio::net::TcpStream::connect(("::1", port)).await.is_err() {
            // No IPv6 on this host: the IPv4 fallback was bound. Let the
            // acceptor finish.
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
        }
        accept.await.unwrap();
    }
}

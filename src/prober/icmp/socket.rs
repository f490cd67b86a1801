//! The ICMP socket of one probe, opened as blackbox_exporter opens it on
//! Linux: an unprivileged datagram ("ping") socket, which the kernel allows
//! when a group of the process is in `net.ipv4.ping_group_range` (for IPv6
//! too), and a raw socket only when that is refused (it needs CAP_NET_RAW).
//!
//! No unsafe code: socket2 makes the socket and sets what it knows, rustix
//! sets IP_MTU_DISCOVER (`dont_fragment` without a raw socket), nix turns on
//! IP_RECVTTL and reads the TTL or hop limit from recvmsg's control
//! messages. A ping socket is a datagram socket, so tokio's `UdpSocket`
//! drives it (and a raw one) without registering a file descriptor by hand.

use std::{
    io::{self, IoSliceMut},
    net::{IpAddr, SocketAddr},
    ops::Range,
    os::fd::{AsRawFd as _, OwnedFd},
    time::Instant,
};

use nix::sys::socket::{
    self as nix_socket, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::{io::Interest, net::UdpSocket};

use super::echo::Delivery;

/// What a probe asks of its socket.
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    pub(super) source: Option<IpAddr>,
    /// 0 keeps the kernel's default.
    pub(super) ttl: u8,
    /// Forbid fragmentation (IPv4 only).
    pub(super) dont_fragment: bool,
}

/// An open ICMP socket for one destination family.
#[derive(Debug)]
pub(super) struct IcmpSocket {
    socket: UdpSocket,
    raw: bool,
    v6: bool,
}

/// One datagram received.
#[derive(Debug)]
pub(super) struct Received {
    /// Where the ICMP message lies in the buffer (a raw IPv4 socket
    /// delivers the IP header before it).
    pub(super) message: Range<usize>,
    /// The sender, as the kernel reports it.
    pub(super) from: Option<IpAddr>,
    /// TTL or hop limit of the packet, when the kernel said.
    pub(super) hop_limit: Option<i32>,
    pub(super) at: Instant,
}

impl IcmpSocket {
    /// A socket for echoes to `destination`'s family, with `options` set.
    pub(super) fn open(destination: IpAddr, options: Options) -> Result<Self, String> {
        let v6 = destination.is_ipv6();
        let (domain, protocol) = if v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let (socket, raw) = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
            Ok(socket) => (socket, false),
            Err(refused) if refused.kind() == io::ErrorKind::PermissionDenied => {
                tracing::debug!(error = %refused, "unprivileged ICMP socket refused, trying a raw socket");
                match Socket::new(domain, Type::RAW, Some(protocol)) {
                    Ok(socket) => (socket, true),
                    Err(raw) => {
                        let reason = no_socket(&refused, &raw);
                        // The operator's to fix, not the target's: every icmp probe fails alike.
                        tracing::warn!(%reason, "no ICMP socket");
                        return Err(reason);
                    }
                }
            }
            Err(e) => return Err(format!("opening an ICMP socket: {e}")),
        };
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("ICMP socket: {e}"))?;
        if let Some(source) = options.source {
            socket
                .bind(&SocketAddr::new(source, 0).into())
                .map_err(|e| format!("binding the ICMP socket to {source}: {e}"))?;
        }
        // Without it the reply's hop limit is unknown and its metric absent, as upstream.
        let hop_limit = if v6 {
            socket.set_recv_hoplimit_v6(true)
        } else {
            nix_socket::setsockopt(&socket, sockopt::Ipv4RecvTtl, &true).map_err(io::Error::from)
        };
        if let Err(e) = hop_limit {
            tracing::debug!(error = %e, "cannot receive the hop limit of replies");
        }
        if options.ttl > 0 {
            let ttl = u32::from(options.ttl);
            if v6 {
                socket.set_unicast_hops_v6(ttl)
            } else {
                socket.set_ttl_v4(ttl)
            }
            .map_err(|e| format!("setting ttl {ttl}: {e}"))?;
        }
        // Path MTU discovery "do": the kernel sets DF and refuses what does not fit
        // (EMSGSIZE), on a datagram socket as on a raw one. IPv6 is left alone, as
        // blackbox_exporter leaves it.
        if options.dont_fragment && !v6 {
            rustix::net::sockopt::set_ip_mtu_discover(
                &socket,
                rustix::net::sockopt::Ipv4PathMtuDiscovery::DO,
            )
            .map_err(|e| format!("dont_fragment (IP_MTU_DISCOVER): {e}"))?;
        }
        let socket = UdpSocket::from_std(std::net::UdpSocket::from(OwnedFd::from(socket)))
            .map_err(|e| format!("ICMP socket: {e}"))?;
        Ok(Self { socket, raw, v6 })
    }

    /// Whether this is the raw socket (the datagram one was refused).
    pub(super) fn is_raw(&self) -> bool {
        self.raw
    }

    /// What the kernel did to replies before we see them.
    pub(super) fn delivery(&self) -> Delivery {
        Delivery {
            foreign_id: !self.raw,
            unchecked_sum: self.raw && !self.v6,
        }
    }

    /// Bytes a received datagram may have before its ICMP message.
    pub(super) fn header_room(&self) -> usize {
        if self.raw && !self.v6 {
            60
        } else {
            0
        }
    }

    /// Sends one ICMP message to `destination`.
    pub(super) async fn send(&self, message: &[u8], destination: IpAddr) -> io::Result<()> {
        // The port means nothing to an ICMP socket.
        self.socket
            .send_to(message, SocketAddr::new(destination, 0))
            .await
            .map(drop)
    }

    /// Waits for the next datagram, into `buffer`; `None` for one that
    /// did not fit (it cannot be our reply) or holds no ICMP message.
    pub(super) async fn receive(
        &self,
        buffer: &mut [u8],
        control: &mut Vec<u8>,
    ) -> io::Result<Option<Received>> {
        let (length, from, hop_limit, truncated) = self
            .socket
            .async_io(Interest::READABLE, || {
                let mut parts = [IoSliceMut::new(buffer)];
                let message = nix_socket::recvmsg::<SockaddrStorage>(
                    self.socket.as_raw_fd(),
                    &mut parts,
                    Some(&mut *control),
                    MsgFlags::empty(),
                )
                .map_err(io::Error::from)?;
                let mut hop_limit = None;
                for control in message.cmsgs().map_err(io::Error::from)? {
                    match control {
                        ControlMessageOwned::Ipv4Ttl(ttl) => hop_limit = Some(ttl),
                        ControlMessageOwned::Ipv6HopLimit(hops) => hop_limit = Some(hops),
                        _ => {}
                    }
                }
                let from = message.address.and_then(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                });
                let truncated = message.flags.contains(MsgFlags::MSG_TRUNC);
                Ok((message.bytes, from, hop_limit, truncated))
            })
            .await?;
        let at = Instant::now();
        if truncated {
            return Ok(None);
        }
        let start = if self.raw && !self.v6 {
            // A raw IPv4 socket delivers the IP header: skip it (IHL words).
            match buffer.first() {
                Some(first) if length > 0 => usize::from(first & 0x0f) * 4,
                _ => return Ok(None),
            }
        } else {
            0
        };
        if start > length {
            return Ok(None);
        }
        Ok(Some(Received {
            message: start..length,
            from,
            hop_limit,
            at,
        }))
    }
}

/// Why neither socket could be opened, with what the operator must change.
fn no_socket(datagram: &io::Error, raw: &io::Error) -> String {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unreadable".to_owned());
    let groups = process_groups().unwrap_or_else(|| "unknown".to_owned());
    format!(
        "cannot open an ICMP socket: the unprivileged one was refused ({datagram}) \
         because net.ipv4.ping_group_range ({range}) does not include this process's \
         groups ({groups}), and a raw socket needs CAP_NET_RAW ({raw}); \
         set net.ipv4.ping_group_range to cover one of those groups \
         (in Kubernetes: the pod's securityContext.sysctls)"
    )
}

/// The effective group and supplementary groups, as the kernel checks them
/// against `ping_group_range`: "gid 65532" or "gid 0, supplementary 4 27".
fn process_groups() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
    };
    // Gid: real, effective, saved, filesystem.
    let effective = field("Gid:")?.get(1)?.to_string();
    let supplementary = field("Groups:").unwrap_or_default();
    Some(if supplementary.is_empty() {
        format!("gid {effective}")
    } else {
        format!("gid {effective}, supplementary {}", supplementary.join(" "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_the_sysctl_and_the_groups() {
        let reason = no_socket(
            &io::Error::from_raw_os_error(13),
            &io::Error::from_raw_os_error(1),
        );
        assert!(reason.contains("net.ipv4.ping_group_range ("), "{reason}");
        assert!(reason.contains("CAP_NET_RAW"), "{reason}");
        assert!(reason.contains("Permission denied"), "{reason}");
        assert!(reason.contains("Operation not permitted"), "{reason}");
        assert!(reason.contains("groups (gid "), "{reason}");
        assert!(!reason.contains('\n'));
    }
}

//! The icmp prober: ICMP echo to a host, as blackbox_exporter 0.28 runs it
//! (`echo.rs` the messages and statistics, `socket.rs` the socket).
//!
//! The target is a bare host name or IP literal (`host:port` and `[v6]` do
//! not resolve, as upstream). One echo request goes out; the probe succeeds
//! when its exact reply comes back from the target before the deadline.
//!
//! Beyond blackbox_exporter, `packets` > 1 sends that many echoes
//! `interval` apart (none after the deadline) and waits for their replies
//! until all are in or the deadline; it succeeds when at least one reply
//! came (a send that fails fails the probe, as upstream), and reports
//! `lookout_icmp_*` gauges: echoes sent and answered, and min, max, mean
//! and standard deviation of the round trips. Those are written as each
//! echo goes and each reply comes, so what was measured stays in the
//! report. With one packet (the default) the report is blackbox_exporter's
//! exactly.

mod echo;
mod socket;

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use self::{
    echo::{Echoes, Series},
    socket::{IcmpSocket, Options, Received},
};
use super::{
    report::{Gauge, Report},
    PreparedModule, ProbeOptions,
};

/// blackbox_exporter's per-phase timings: `resolve`, `setup` (the socket and
/// the packet), `rtt` (from sending to the matching reply).
pub(crate) const ICMP_DURATION: Gauge = Gauge {
    name: "probe_icmp_duration_seconds",
    help: "Duration of icmp request by phase",
    labels: &["phase"],
};

/// The reply's TTL or hop limit, registered only with a reply that had one.
pub(crate) const ICMP_REPLY_HOP_LIMIT: Gauge = Gauge {
    name: "probe_icmp_reply_hop_limit",
    help: "Replied packet hop limit (TTL for ipv4)",
    labels: &[],
};

/// lookout's `packets` extension: echo requests sent. Prefixed `lookout_`,
/// never `probe_icmp_`, a name blackbox_exporter may one day give a metric.
pub(crate) const ICMP_SENT: Gauge = Gauge {
    name: "lookout_icmp_sent_packets",
    help: "Echo requests sent by this probe (lookout's packets option)",
    labels: &[],
};

/// lookout's `packets` extension: echo requests answered, each once.
pub(crate) const ICMP_RECEIVED: Gauge = Gauge {
    name: "lookout_icmp_received_packets",
    help: "Echo requests of this probe answered by the target, duplicates not counted",
    labels: &[],
};

/// lookout's `packets` extension: round-trip statistics of the replies.
pub(crate) const ICMP_RTT: Gauge = Gauge {
    name: "lookout_icmp_rtt_seconds",
    help: "Round-trip time of this probe's echo replies: min, max, mean and population standard deviation",
    labels: &["stat"],
};

/// How much earlier than the probe's deadline the prober stops waiting, so
/// that its own result, not the deadline's cancellation, ends the probe (a
/// series that got replies succeeds): tokio fires timers by the millisecond,
/// and in a tie the cancellation may be seen first.
const DEADLINE_MARGIN: Duration = Duration::from_millis(2);

/// Runs an icmp probe that must end by `deadline`: `Ok(true)` on success,
/// `Err` with the reason when it failed.
pub(super) async fn probe(
    module: &PreparedModule,
    target: &str,
    deadline: Instant,
    options: ProbeOptions<'_>,
    report: &mut Report,
) -> Result<bool, String> {
    let config = &module.config.icmp;
    for phase in ["resolve", "setup", "rtt"] {
        report.set_labeled(ICMP_DURATION, &[phase], 0.0);
    }
    let series_mode = config.packets > 1;
    if series_mode {
        report.set(ICMP_SENT, 0.0);
        report.set(ICMP_RECEIVED, 0.0);
    }
    let (ip, lookup) = options
        .allowed_address(
            target,
            config.preferred_ip_protocol,
            config.ip_protocol_fallback,
            report,
        )
        .await?;
    report.add_labeled(ICMP_DURATION, &["resolve"], lookup.as_secs_f64());
    // An IPv4-mapped address is IPv4 on the wire (Go's To4()).
    let destination = ip.to_canonical();

    let setup = Instant::now();
    if let Some(source) = config.source_ip_address {
        if source.is_ipv6() != destination.is_ipv6() {
            return Err(format!(
                "source_ip_address {source} and the target's address {destination} are of different families"
            ));
        }
    }
    let socket = IcmpSocket::open(
        destination,
        Options {
            source: config.source_ip_address,
            ttl: config.ttl,
            dont_fragment: config.dont_fragment,
        },
    )?;
    let echoes = Echoes::new(destination.is_ipv6(), config.payload_size, config.packets);
    tracing::debug!(
        raw = socket.is_raw(),
        seq = echoes.sequence(0),
        packets = config.packets,
        "ICMP socket open"
    );
    report.add_labeled(ICMP_DURATION, &["setup"], setup.elapsed().as_secs_f64());

    let stop = deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline);
    let exchange = Exchange {
        socket: &socket,
        destination,
        packets: config.packets,
        interval: config.interval,
        stop: tokio::time::Instant::from_std(stop),
        series_mode,
    };
    exchange.run(echoes, report).await
}

/// Echo requests out, replies in, until every echo is answered or `stop`.
struct Exchange<'a> {
    socket: &'a IcmpSocket,
    destination: IpAddr,
    packets: u16,
    interval: Duration,
    stop: tokio::time::Instant,
    series_mode: bool,
}

impl Exchange<'_> {
    async fn run(self, mut echoes: Echoes, report: &mut Report) -> Result<bool, String> {
        let mut series = Series::new(self.packets);
        // Sized to our reply exactly (longer datagrams arrive truncated and are
        // not ours), plus the IP header a raw IPv4 socket puts before it.
        let mut buffer = vec![0; echoes.len() + self.socket.header_room()];
        let mut control = nix::cmsg_space!(i32);
        let mut next_send = Some(tokio::time::Instant::now());
        loop {
            if next_send.is_none() && series.all_answered() {
                break;
            }
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(self.stop) => break,
                () = sleep_until_some(next_send) => {
                    let index = series.sent() as u16;
                    let request = echoes.request(index);
                    let at = Instant::now();
                    self.socket
                        .send(request, self.destination)
                        .await
                        .map_err(|e| format!("sending to {}: {e}", self.destination))?;
                    series.send(at);
                    if self.series_mode {
                        report.set(ICMP_SENT, series.sent() as f64);
                    }
                    next_send = next_send
                        .map(|previous| previous + self.interval)
                        .filter(|next| {
                            series.sent() < usize::from(self.packets) && *next < self.stop
                        });
                }
                received = self.socket.receive(&mut buffer, &mut control) => {
                    let received = match received {
                        Ok(Some(received)) => received,
                        Ok(None) => continue,
                        // As upstream: logged, and the wait goes on.
                        Err(e) => {
                            tracing::debug!(error = %e, "error reading from the ICMP socket");
                            continue;
                        }
                    };
                    let Some(rtt) = self.answer(&echoes, &mut series, &buffer, &received) else {
                        continue;
                    };
                    if series.received() == 1 {
                        // The first reply is blackbox_exporter's one reply.
                        report.add_labeled(ICMP_DURATION, &["rtt"], rtt);
                        if let Some(hops) = received.hop_limit {
                            report.set(ICMP_REPLY_HOP_LIMIT, f64::from(hops));
                        }
                    }
                    if self.series_mode {
                        record(report, &series);
                    }
                }
            }
        }
        match series.received() {
            0 => Err(format!(
                "no reply to {} echo request(s) before the deadline",
                series.sent()
            )),
            _ => Ok(true),
        }
    }

    /// The round trip of the echo `received` answers, if it is from the
    /// destination, exactly a reply to one of ours, and not a duplicate.
    fn answer(
        &self,
        echoes: &Echoes,
        series: &mut Series,
        buffer: &[u8],
        received: &Received,
    ) -> Option<f64> {
        if received.from.map(|ip| ip.to_canonical()) != Some(self.destination) {
            return None;
        }
        let index = echoes.answered(&buffer[received.message.clone()], self.socket.delivery())?;
        series.answer(index, received.at)
    }
}

/// Sleeps until `at`, or forever when there is nothing more to send.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The `packets` extension's gauges after a reply.
fn record(report: &mut Report, series: &Series) {
    report.set(ICMP_RECEIVED, f64::from(series.received()));
    if let Some(stats) = series.stats() {
        for (stat, value) in [
            ("max", stats.max),
            ("mean", stats.mean),
            ("min", stats.min),
            ("stddev", stats.stddev),
        ] {
            report.set_labeled(ICMP_RTT, &[stat], value);
        }
    }
}

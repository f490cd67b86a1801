//! ICMP echo messages: building the requests, recognising their replies,
//! and the round-trip statistics of a series.

use std::{
    sync::{
        atomic::{AtomicU16, Ordering},
        OnceLock,
    },
    time::Instant,
};

use ring::rand::{SecureRandom as _, SystemRandom};

/// The data blackbox_exporter sends; a `payload_size` starts with it too.
const BLACKBOX_DATA: &[u8] = b"Prometheus Blackbox Exporter";

/// The ICMP header: type, code, checksum, identifier, sequence number.
const HEADER: usize = 8;

/// Echo request and reply types, per family.
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// Two random bytes from the operating system (0 if it has none to give,
/// which only makes echoes of two instances easier to confuse).
fn random_u16() -> u16 {
    let mut bytes = [0; 2];
    let _ = SystemRandom::new().fill(&mut bytes);
    u16::from_be_bytes(bytes)
}

/// The identifier of this process's echoes on a raw socket, as
/// blackbox_exporter picks it: the process id, or a random one when that is
/// 1 (in a container, where every exporter would be 1). A datagram socket's
/// echoes carry the identifier the kernel gives the socket instead.
fn identifier() -> u16 {
    static ID: OnceLock<u16> = OnceLock::new();
    *ID.get_or_init(|| match std::process::id() {
        1 => random_u16(),
        pid => (pid & 0xffff) as u16,
    })
}

/// `count` consecutive sequence numbers, the first returned: one counter
/// for the process, from a random start (blackbox_exporter's rule, so
/// instances restarted together do not send the same numbers).
fn sequences(count: u16) -> u16 {
    static NEXT: OnceLock<AtomicU16> = OnceLock::new();
    NEXT.get_or_init(|| AtomicU16::new(random_u16()))
        .fetch_add(count, Ordering::Relaxed)
        .wrapping_add(1)
}

/// The echo requests of one probe, all with the same data.
#[derive(Debug)]
pub(super) struct Echoes {
    v6: bool,
    id: u16,
    first_seq: u16,
    count: u16,
    /// The request last built: header, then the data.
    request: Vec<u8>,
}

/// What the socket did to a reply before we see it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Delivery {
    /// The kernel put its own identifier in (datagram sockets).
    pub(super) foreign_id: bool,
    /// The checksum is ours to verify: nobody checked it (raw IPv4).
    pub(super) unchecked_sum: bool,
}

impl Echoes {
    /// `count` echoes to an address of the given family, carrying
    /// `payload_size` bytes (0: blackbox_exporter's 28-byte text).
    pub(super) fn new(v6: bool, payload_size: u16, count: u16) -> Self {
        let mut request = vec![0; HEADER];
        if payload_size == 0 {
            request.extend_from_slice(BLACKBOX_DATA);
        } else {
            let size = usize::from(payload_size);
            request.resize(HEADER + size, 0);
            let text = size.min(BLACKBOX_DATA.len());
            request[HEADER..HEADER + text].copy_from_slice(&BLACKBOX_DATA[..text]);
        }
        request[0] = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
        Self {
            v6,
            id: identifier(),
            first_seq: sequences(count),
            count,
            request,
        }
    }

    /// Bytes of one request (and of its reply).
    pub(super) fn len(&self) -> usize {
        self.request.len()
    }

    /// The sequence number of echo `index`.
    pub(super) fn sequence(&self, index: u16) -> u16 {
        self.first_seq.wrapping_add(index)
    }

    /// Echo request number `index` (0-based), ready to send. IPv4 carries
    /// its checksum (a raw socket sends it as is); ICMPv6's is always the
    /// kernel's, which knows the addresses it covers.
    pub(super) fn request(&mut self, index: u16) -> &[u8] {
        self.request[2..4].fill(0);
        self.request[4..6].copy_from_slice(&self.id.to_be_bytes());
        let seq = self.sequence(index);
        self.request[6..8].copy_from_slice(&seq.to_be_bytes());
        if !self.v6 {
            let sum = checksum(&self.request);
            self.request[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        &self.request
    }

    /// Which echo `message` answers, if it is an exact reply to one of
    /// ours: blackbox_exporter compares the whole message with the request
    /// turned into a reply, leaving out what the kernel may have changed (a
    /// datagram socket's identifier, and the checksum then and for ICMPv6).
    pub(super) fn answered(&self, message: &[u8], delivery: Delivery) -> Option<u16> {
        if message.len() != self.request.len() || message.len() < HEADER {
            return None;
        }
        let reply = if self.v6 {
            ECHO_REPLY_V6
        } else {
            ECHO_REPLY_V4
        };
        if message[0] != reply || message[1] != 0 {
            return None;
        }
        if !delivery.foreign_id && message[4..6] != self.id.to_be_bytes() {
            return None;
        }
        if delivery.unchecked_sum && checksum(message) != 0 {
            return None;
        }
        let seq = u16::from_be_bytes([message[6], message[7]]);
        let index = seq.wrapping_sub(self.first_seq);
        (index < self.count && message[HEADER..] == self.request[HEADER..]).then_some(index)
    }
}

/// The Internet checksum (RFC 1071); 0 over a message with a valid one.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The echoes of one probe in flight: when each was sent, which were
/// answered, and the round-trip statistics of the answers.
#[derive(Debug)]
pub(super) struct Series {
    sent_at: Vec<Instant>,
    answered: Vec<bool>,
    received: u32,
    min: f64,
    max: f64,
    /// Welford's running mean and sum of squared deviations.
    mean: f64,
    squares: f64,
}

/// Round-trip statistics of the replies so far, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stats {
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) mean: f64,
    /// Population standard deviation (ping's `mdev`).
    pub(super) stddev: f64,
}

impl Series {
    pub(super) fn new(count: u16) -> Self {
        Self {
            sent_at: Vec::with_capacity(usize::from(count)),
            answered: vec![false; usize::from(count)],
            received: 0,
            min: f64::INFINITY,
            max: 0.0,
            mean: 0.0,
            squares: 0.0,
        }
    }

    /// Echo number `sent()` went out at `at`.
    pub(super) fn send(&mut self, at: Instant) {
        self.sent_at.push(at);
    }

    pub(super) fn sent(&self) -> usize {
        self.sent_at.len()
    }

    pub(super) fn received(&self) -> u32 {
        self.received
    }

    /// Every echo sent so far has its reply.
    pub(super) fn all_answered(&self) -> bool {
        self.received as usize == self.sent_at.len()
    }

    /// The reply to echo `index` arrived at `at`: its round trip in seconds,
    /// or `None` for a duplicate or an echo not sent (yet).
    pub(super) fn answer(&mut self, index: u16, at: Instant) -> Option<f64> {
        let index = usize::from(index);
        let sent = *self.sent_at.get(index)?;
        if std::mem::replace(&mut self.answered[index], true) {
            return None;
        }
        let rtt = at.saturating_duration_since(sent).as_secs_f64();
        self.received += 1;
        self.min = self.min.min(rtt);
        self.max = self.max.max(rtt);
        let delta = rtt - self.mean;
        self.mean += delta / f64::from(self.received);
        self.squares += delta * (rtt - self.mean);
        Some(rtt)
    }

    /// The statistics of the replies, once there is one.
    pub(super) fn stats(&self) -> Option<Stats> {
        (self.received > 0).then(|| Stats {
            min: self.min,
            max: self.max,
            mean: self.mean,
            stddev: (self.squares / f64::from(self.received)).sqrt(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DATAGRAM: Delivery = Delivery {
        foreign_id: true,
        unchecked_sum: false,
    };
    const RAW_V4: Delivery = Delivery {
        foreign_id: false,
        unchecked_sum: true,
    };

    /// `request` as the peer answers it: the reply type and, for IPv4, the
    /// checksum adjusted; `id` put in by a datagram socket's kernel.
    fn reply_to(request: &[u8], v6: bool, id: Option<u16>) -> Vec<u8> {
        let mut reply = request.to_vec();
        reply[0] = if v6 { 129 } else { 0 };
        if let Some(id) = id {
            reply[4..6].copy_from_slice(&id.to_be_bytes());
        }
        reply[2..4].fill(0);
        if !v6 {
            let sum = checksum(&reply);
            reply[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        reply
    }

    #[test]
    fn payloads_are_blackbox_exporters() {
        let default = Echoes::new(false, 0, 1);
        assert_eq!(&default.request[8..], b"Prometheus Blackbox Exporter");
        let short = Echoes::new(false, 10, 1);
        assert_eq!(&short.request[8..], b"Prometheus");
        let long = Echoes::new(true, 40, 1);
        assert_eq!(&long.request[8..36], b"Prometheus Blackbox Exporter");
        assert_eq!(&long.request[36..], &[0; 12]);
        assert_eq!(long.len(), 48);
    }

    #[test]
    fn ipv4_requests_carry_a_valid_checksum() {
        let mut echoes = Echoes::new(false, 0, 2);
        for index in 0..2 {
            let request = echoes.request(index).to_vec();
            assert_eq!(request[0], 8);
            assert_eq!(checksum(&request), 0);
            assert_eq!(
                u16::from_be_bytes([request[6], request[7]]),
                echoes.sequence(index)
            );
        }
        // RFC 1071's example.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[test]
    fn replies_match_only_our_echoes() {
        let mut echoes = Echoes::new(false, 0, 3);
        let request = echoes.request(1).to_vec();
        // A datagram socket: the kernel's identifier is accepted.
        let reply = reply_to(&request, false, Some(0x4242));
        assert_eq!(echoes.answered(&reply, DATAGRAM), Some(1));
        // A raw socket: only our identifier, and a valid checksum.
        assert_eq!(echoes.answered(&reply, RAW_V4), None);
        let ours = reply_to(&request, false, None);
        assert_eq!(echoes.answered(&ours, RAW_V4), Some(1));
        let mut corrupt = ours.clone();
        corrupt[10] ^= 1;
        assert_eq!(echoes.answered(&corrupt, RAW_V4), None);
        // Our own request, as a raw socket sees it on loopback.
        assert_eq!(echoes.answered(&request, RAW_V4), None);
        // Other data, other lengths, other sequence numbers.
        let mut other = ours.clone();
        other[6..8].copy_from_slice(&echoes.sequence(3).to_be_bytes());
        assert_eq!(echoes.answered(&other, DATAGRAM), None);
        assert_eq!(echoes.answered(&ours[..ours.len() - 1], DATAGRAM), None);
        let mut code = ours;
        code[1] = 1;
        assert_eq!(echoes.answered(&code, DATAGRAM), None);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut echoes = Echoes::new(true, 0, 4);
        echoes.first_seq = 0xfffe;
        let request = echoes.request(3).to_vec();
        assert_eq!(u16::from_be_bytes([request[6], request[7]]), 1);
        let reply = reply_to(&request, true, Some(7));
        assert_eq!(echoes.answered(&reply, DATAGRAM), Some(3));
    }

    #[test]
    fn statistics_count_each_echo_once() {
        let start = Instant::now();
        let mut series = Series::new(4);
        assert_eq!(series.stats(), None);
        for i in 0..3 {
            series.send(start + Duration::from_millis(i * 100));
        }
        assert_eq!(series.answer(3, start), None, "not sent");
        let ms = |n| Duration::from_millis(n);
        assert_eq!(series.answer(0, start + ms(10)), Some(0.01));
        assert_eq!(series.answer(0, start + ms(20)), None, "a duplicate");
        assert!(!series.all_answered());
        assert_eq!(series.answer(2, start + ms(230)), Some(0.03));
        assert_eq!(series.received(), 2);
        let stats = series.stats().unwrap();
        assert_eq!((stats.min, stats.max), (0.01, 0.03));
        assert!((stats.mean - 0.02).abs() < 1e-12);
        assert!((stats.stddev - 0.01).abs() < 1e-12);
        assert_eq!(series.answer(1, start + ms(120)), Some(0.02));
        assert!(series.all_answered());
        assert_eq!(series.sent(), 3);
    }
}

//! The icmp prober against real kernels, in network namespaces each test
//! makes (root, as the test command runs): lookout runs as the image's user,
//! uid and gid 65532 with no capabilities at all, inside a lab whose
//! `net.ipv4.ping_group_range` admits that group, as the Kubernetes
//! manifests set it; and in one whose range does not.
//!
//! The lab, every address a documentation range:
//!
//! ```text
//!   a (lookout, blackbox_exporter, curl; lo MTU 1500)
//!   | 192.0.2.2, 2001:db8:1::2
//!   | 192.0.2.1, 2001:db8:1::1
//!   r (router; 203.0.113.0/24 and 2001:db8:9::/64 blackholed: no reply, no error)
//!   | 198.51.100.1, 2001:db8:2::1        | 198.18.0.1
//!   | 198.51.100.2, 2001:db8:2::2        | 198.18.0.2
//!   b (the kernel answers)               c (answers only even sequence numbers, twice)
//! ```
//!
//! Exporters listen on 127.0.0.1 inside `a`; the test's HTTP requests are
//! curl run in `a` too. Every process started is ended by its id, and every
//! namespace deleted, when the lab is dropped (a failed test included).

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use crate::{
    differential::{compare, exposition, same_or_timing},
    probe::encode,
    support::PATIENCE,
};

/// The image's user and group (`nonroot`), as the Deployment runs it.
const NONROOT: &str = "65532";

/// lookout's listeners and blackbox_exporter's, inside namespace `a`.
const LOOKOUT: &str = "127.0.0.1:9115";
const LOOKOUT_ADMIN: &str = "127.0.0.1:9090";
const BLACKBOX: &str = "127.0.0.1:9116";

/// How the exporters are started: as the image's user with no capabilities
/// (what the Deployment gives), or as root (CAP_NET_RAW, which
/// blackbox_exporter needs for `dont_fragment`; Debian's binary carries an
/// empty file capability set, which drops ambient capabilities on exec, so
/// 65532 with CAP_NET_RAW alone cannot be arranged for it).
#[derive(Clone, Copy, PartialEq)]
enum Privilege {
    Nonroot,
    Root,
}

/// Namespaces and the processes started in them; all gone when dropped.
struct Lab {
    /// Namespace names: a, r, b, c.
    a: String,
    names: Vec<String>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

/// A namespace-unique prefix: tests run in parallel, and so may test runs.
fn prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "lki{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `script` with sh inside namespace `ns`.
fn in_ns(ns: &str, script: &str) {
    run(&["ip", "netns", "exec", ns, "sh", "-euc", script]);
}

impl Lab {
    /// The whole lab; `ping_range` is namespace `a`'s
    /// `net.ipv4.ping_group_range` (the kernel's default is `1 0`: nobody).
    fn new(ping_range: &str) -> Self {
        let p = prefix();
        let [a, r, b, c] = ["a", "r", "b", "c"].map(|n| format!("{p}{n}"));
        let dir = tempfile::tempdir().unwrap();
        // Readable by the exporters, which run as 65532.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let mut lab = Self {
            a: a.clone(),
            names: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for ns in [&a, &r, &b, &c] {
            run(&["ip", "netns", "add", ns]);
            lab.names.push(ns.clone());
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            // No duplicate address detection on the links to come: while their
            // link-local addresses are tentative, the first IPv6 packets across
            // are lost.
            in_ns(
                ns,
                "for c in all default; do echo 0 > /proc/sys/net/ipv6/conf/$c/accept_dad; done",
            );
        }
        // A loopback MTU of 1500 (65536 by default) makes a 2000-byte echo one
        // that must be fragmented.
        run(&["ip", "-n", &a, "link", "set", "lo", "mtu", "1500"]);
        in_ns(
            &a,
            &format!("echo '{ping_range}' > /proc/sys/net/ipv4/ping_group_range"),
        );
        let link = |here: &str, dev: &str, there: &str, peer: &str| {
            run(&[
                "ip", "-n", here, "link", "add", dev, "type", "veth", "peer", "name", peer,
                "netns", there,
            ]);
        };
        link(&a, "a0", &r, "r0");
        link(&r, "r1", &b, "b0");
        link(&r, "r2", &c, "c0");
        for (ns, dev, v4, v6) in [
            (&a, "a0", "192.0.2.2/24", Some("2001:db8:1::2/64")),
            (&r, "r0", "192.0.2.1/24", Some("2001:db8:1::1/64")),
            (&r, "r1", "198.51.100.1/24", Some("2001:db8:2::1/64")),
            (&b, "b0", "198.51.100.2/24", Some("2001:db8:2::2/64")),
            (&r, "r2", "198.18.0.1/24", None),
            (&c, "c0", "198.18.0.2/24", None),
        ] {
            run(&["ip", "-n", ns, "addr", "add", v4, "dev", dev]);
            if let Some(v6) = v6 {
                run(&["ip", "-n", ns, "-6", "addr", "add", v6, "dev", dev, "nodad"]);
            }
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        for (ns, v4, v6) in [
            (&a, "192.0.2.1", Some("2001:db8:1::1")),
            (&b, "198.51.100.1", Some("2001:db8:2::1")),
            (&c, "198.18.0.1", None),
        ] {
            run(&["ip", "-n", ns, "route", "add", "default", "via", v4]);
            if let Some(v6) = v6 {
                run(&["ip", "-n", ns, "-6", "route", "add", "default", "via", v6]);
            }
        }
        in_ns(
            &r,
            "echo 1 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
        );
        run(&[
            "ip",
            "-n",
            &r,
            "route",
            "add",
            "blackhole",
            "203.0.113.0/24",
        ]);
        run(&[
            "ip",
            "-n",
            &r,
            "-6",
            "route",
            "add",
            "blackhole",
            "2001:db8:9::/64",
        ]);
        // c's own kernel stays silent; the responder answers for it.
        in_ns(&c, "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all");
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, text).unwrap();
        path
    }

    /// Starts `program args` in namespace `a` with `privilege`, its output
    /// into the file `log`; returns its process id (the program itself:
    /// `ip netns exec` and setpriv exec into it).
    fn spawn(&mut self, privilege: Privilege, program: &str, args: &[&str], log: &str) -> u32 {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.a]);
        if privilege == Privilege::Nonroot {
            command
                .args(["setpriv", "--reuid", NONROOT, "--regid", NONROOT])
                .args(["--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]);
        }
        let log = fs::File::create(self.path(log)).unwrap();
        let child = command
            .arg(program)
            .args(args)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .env_remove("LOOKOUT_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// lookout with `modules`, ready to probe; returns its process id.
    fn lookout(&mut self, privilege: Privilege, modules: &str, extra: &[&str]) -> u32 {
        let config = self.write("lookout.yml", modules);
        let mut args = vec![
            "--config.file",
            config.to_str().unwrap(),
            "--listen",
            LOOKOUT,
            "--admin-listen",
            LOOKOUT_ADMIN,
        ];
        args.extend_from_slice(extra);
        let pid = self.spawn(
            privilege,
            env!("CARGO_BIN_EXE_lookout"),
            &args,
            "lookout.log",
        );
        self.wait_for(&format!("http://{LOOKOUT_ADMIN}/readyz"), "lookout.log");
        pid
    }

    /// blackbox_exporter with `modules` on `listen`, ready to probe.
    fn blackbox(&mut self, privilege: Privilege, modules: &Path, listen: &str, log: &str) {
        let config = format!("--config.file={}", modules.display());
        let listen_flag = format!("--web.listen-address={listen}");
        self.spawn(
            privilege,
            "prometheus-blackbox-exporter",
            &[&config, &listen_flag, "--log.level=debug"],
            log,
        );
        self.wait_for(&format!("http://{listen}/-/healthy"), log);
    }

    /// Waits until the process started last answers `url`.
    fn wait_for(&mut self, url: &str, log: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.get(url).0 != 200 {
            let exited = self.children.last_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{url} never answered ({exited:?}); log: {}",
                self.log(log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET from inside namespace `a`: status (0 when nothing answered) and body.
    fn get(&self, url: &str) -> (u16, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.a, "curl", "-sS", "--max-time", "60"])
            .args(["-w", "\n%{http_code}", url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        (status.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// One probe through the exporter at `listen`: its metrics.
    fn probe(&self, listen: &str, module: &str, target: &str) -> String {
        let (status, body) = self.get(&format!(
            "http://{listen}/probe?module={module}&target={}",
            encode(target)
        ));
        assert_eq!(status, 200, "{module} {target}: {body}");
        body
    }

    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Only our own children, by process id.
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The value of `series` (name and labels, as printed) in `body`.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A line of /proc/PID/status.
fn status_line(pid: u32, field: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

const MODULES: &str = "\
modules:
  icmp:
    prober: icmp
    timeout: 2s
  icmp_ip4:
    prober: icmp
    timeout: 2s
    icmp:
      preferred_ip_protocol: ip4
  icmp_ip4_only:
    prober: icmp
    timeout: 2s
    icmp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  icmp_ttl1:
    prober: icmp
    timeout: 1s
    icmp:
      ttl: 1
  icmp_ttl2:
    prober: icmp
    timeout: 2s
    icmp:
      ttl: 2
  icmp_ttl0:
    prober: icmp
    timeout: 2s
    icmp:
      ttl: 0
  icmp_payload_1000:
    prober: icmp
    timeout: 2s
    icmp:
      payload_size: 1000
  icmp_payload_2000:
    prober: icmp
    timeout: 2s
    icmp:
      payload_size: 2000
  icmp_from_loopback:
    prober: icmp
    timeout: 2s
    icmp:
      source_ip_address: 127.0.0.1
  icmp_from_veth:
    prober: icmp
    timeout: 2s
    icmp:
      source_ip_address: 192.0.2.2
  icmp_from_veth6:
    prober: icmp
    timeout: 2s
    icmp:
      source_ip_address: 2001:db8:1::2
  icmp_1s:
    prober: icmp
    timeout: 1s
";

/// Modules that set `dont_fragment`, which blackbox_exporter runs only with
/// a raw socket (CAP_NET_RAW).
const DF_MODULES: &str = "\
modules:
  icmp_df_1472:
    prober: icmp
    timeout: 2s
    icmp:
      dont_fragment: true
      payload_size: 1472
  icmp_df_2000:
    prober: icmp
    timeout: 2s
    icmp:
      dont_fragment: true
      payload_size: 2000
";

/// lookout's extension, which blackbox_exporter refuses to load.
const SERIES_MODULES: &str = "  icmp_series:
    prober: icmp
    timeout: 3s
    icmp:
      packets: 4
      interval: 50ms
  icmp_series_1s:
    prober: icmp
    timeout: 1s
    icmp:
      packets: 3
      interval: 50ms
  icmp_series_long:
    prober: icmp
    timeout: 1s
    icmp:
      packets: 10
      interval: 200ms
";

/// Every module of this file: the shared ones, DF and the extension.
fn all_modules() -> String {
    format!(
        "{MODULES}{}{SERIES_MODULES}",
        DF_MODULES.trim_start_matches("modules:\n")
    )
}

#[test]
fn icmp_without_capabilities_pings_loopback_over_ipv4_and_ipv6() {
    let mut lab = Lab::new("65532 65532");
    let pid = lab.lookout(Privilege::Nonroot, &all_modules(), &[]);
    // What the Deployment gives: the image's user, no capability whatsoever.
    assert_eq!(status_line(pid, "Uid"), "65532 65532 65532 65532");
    assert_eq!(status_line(pid, "Gid"), "65532 65532 65532 65532");
    assert_eq!(status_line(pid, "CapEff"), "0000000000000000");
    assert_eq!(status_line(pid, "CapPrm"), "0000000000000000");
    for (target, protocol) in [("127.0.0.1", 4.0), ("::1", 6.0)] {
        let body = lab.probe(LOOKOUT, "icmp", target);
        assert_eq!(value(&body, "probe_success"), Some(1.0), "{target}: {body}");
        assert_eq!(value(&body, "probe_ip_protocol"), Some(protocol), "{body}");
        assert_eq!(
            value(&body, "probe_icmp_reply_hop_limit"),
            Some(64.0),
            "{body}"
        );
        for phase in ["resolve", "setup", "rtt"] {
            let series = format!("probe_icmp_duration_seconds{{phase=\"{phase}\"}}");
            assert!(value(&body, &series).is_some_and(|v| v > 0.0), "{body}");
        }
        // One packet, blackbox_exporter's report: none of lookout's own.
        assert!(!body.contains("lookout_"), "{body}");
    }
    let log = lab.log("lookout.log");
    assert!(
        log.contains("ICMP socket open") && log.contains("\"raw\":false"),
        "{log}"
    );
    assert!(!log.contains("\"raw\":true"), "{log}");
}

#[test]
fn icmp_ttl_limits_the_hops_and_the_reply_hop_limit_is_reported() {
    let mut lab = Lab::new("65532 65532");
    lab.lookout(
        Privilege::Nonroot,
        &all_modules(),
        &["--deny-target", "198.51.100.3"],
    );
    // b is one router away: a TTL of 1 dies there (time exceeded, which an
    // unprivileged socket does not see), 2 arrives; the reply, sent with 64,
    // crossed the router too.
    for target in ["198.51.100.2", "2001:db8:2::2"] {
        let body = lab.probe(LOOKOUT, "icmp_ttl1", target);
        assert_eq!(value(&body, "probe_success"), Some(0.0), "{target}: {body}");
        assert_eq!(
            value(&body, "probe_icmp_duration_seconds{phase=\"rtt\"}"),
            Some(0.0)
        );
        assert_eq!(value(&body, "probe_icmp_reply_hop_limit"), None, "{body}");
        for module in ["icmp_ttl2", "icmp_ttl0", "icmp"] {
            let body = lab.probe(LOOKOUT, module, target);
            assert_eq!(
                value(&body, "probe_success"),
                Some(1.0),
                "{module} {target}: {body}"
            );
            assert_eq!(
                value(&body, "probe_icmp_reply_hop_limit"),
                Some(63.0),
                "{body}"
            );
        }
    }
    // The source address: the veth's reaches b, loopback's cannot.
    let body = lab.probe(LOOKOUT, "icmp_from_veth", "198.51.100.2");
    assert_eq!(value(&body, "probe_success"), Some(1.0), "{body}");
    let body = lab.probe(LOOKOUT, "icmp_from_veth6", "2001:db8:2::2");
    assert_eq!(value(&body, "probe_success"), Some(1.0), "{body}");
    let body = lab.probe(LOOKOUT, "icmp_from_veth6", "198.51.100.2");
    assert_eq!(value(&body, "probe_success"), Some(0.0), "{body}");
    // The target policy is asked before any packet.
    let body = lab.probe(LOOKOUT, "icmp", "198.51.100.3");
    assert_eq!(value(&body, "probe_success"), Some(0.0), "{body}");
    assert_eq!(
        value(&body, "probe_icmp_duration_seconds{phase=\"setup\"}"),
        Some(0.0),
        "no socket was opened: {body}"
    );
    let log = lab.log("lookout.log");
    assert!(log.contains("198.51.100.3 is denied by"), "{log}");
}

#[test]
fn icmp_payload_size_and_dont_fragment_work_unprivileged() {
    let mut lab = Lab::new("65532 65532");
    lab.lookout(Privilege::Nonroot, &all_modules(), &[]);
    // Loopback's MTU is 1500 here: 2000 bytes of payload need fragments,
    // which dont_fragment forbids; 1472 (+ 8 + 20) fits exactly.
    for (module, success) in [
        ("icmp_payload_1000", 1.0),
        ("icmp_payload_2000", 1.0),
        ("icmp_df_1472", 1.0),
        ("icmp_df_2000", 0.0),
    ] {
        let body = lab.probe(LOOKOUT, module, "127.0.0.1");
        assert_eq!(
            value(&body, "probe_success"),
            Some(success),
            "{module}: {body}"
        );
    }
    let log = lab.log("lookout.log");
    assert!(log.contains("Message too long"), "{log}");
    // IPv6 ignores dont_fragment, as blackbox_exporter does.
    let body = lab.probe(LOOKOUT, "icmp_df_2000", "::1");
    assert_eq!(value(&body, "probe_success"), Some(1.0), "{body}");
}

/// Answers echo requests to c with even sequence numbers, twice each, and
/// ignores the odd ones: exactly half of a series is lost, and a duplicate
/// follows every reply.
const HALF_RESPONDER: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
open(sys.argv[1], "w").write("ready")
def checksum(b):
    b += b"\0" * (len(b) % 2)
    total = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff
while True:
    packet, (source, _) = s.recvfrom(65535)
    icmp = bytearray(packet[(packet[0] & 15) * 4:])
    if len(icmp) < 8 or icmp[0] != 8 or struct.unpack("!H", icmp[6:8])[0] % 2:
        continue
    icmp[0] = 0
    icmp[2:4] = b"\0\0"
    icmp[2:4] = struct.pack("!H", checksum(bytes(icmp)))
    for _ in range(2):
        s.sendto(bytes(icmp), (source, 0))
"#;

#[test]
fn icmp_packets_report_loss_and_round_trip_statistics() {
    let mut lab = Lab::new("65532 65532");
    lab.lookout(Privilege::Nonroot, &all_modules(), &[]);
    let stats = |body: &str| -> Vec<Option<f64>> {
        ["min", "max", "mean", "stddev"]
            .map(|s| value(body, &format!("lookout_icmp_rtt_seconds{{stat=\"{s}\"}}")))
            .to_vec()
    };
    for target in ["127.0.0.1", "::1", "198.51.100.2"] {
        let body = lab.probe(LOOKOUT, "icmp_series", target);
        assert_eq!(value(&body, "probe_success"), Some(1.0), "{target}: {body}");
        assert_eq!(
            value(&body, "lookout_icmp_sent_packets"),
            Some(4.0),
            "{body}"
        );
        assert_eq!(
            value(&body, "lookout_icmp_received_packets"),
            Some(4.0),
            "{body}"
        );
        let [min, max, mean, stddev] = stats(&body)[..] else {
            unreachable!()
        };
        let (min, max, mean, stddev) = (min.unwrap(), max.unwrap(), mean.unwrap(), stddev.unwrap());
        assert!(
            0.0 < min && min <= mean && mean <= max && stddev >= 0.0,
            "{body}"
        );
        // The blackbox_exporter metrics keep their meaning: the first reply's.
        assert!(
            value(&body, "probe_icmp_reply_hop_limit").is_some(),
            "{body}"
        );
    }
    // Nothing comes back: all sent, none answered, no statistics, a failure.
    let body = lab.probe(LOOKOUT, "icmp_series_1s", "203.0.113.9");
    assert_eq!(value(&body, "probe_success"), Some(0.0), "{body}");
    assert_eq!(
        value(&body, "lookout_icmp_sent_packets"),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        value(&body, "lookout_icmp_received_packets"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(stats(&body), vec![None; 4], "{body}");
    // Half comes back, each reply twice: half the loss, duplicates not counted,
    // and one reply is enough to succeed.
    let ready = lab.path("responder.ready");
    let script = lab.write("responder.py", HALF_RESPONDER);
    let responder = Command::new("ip")
        .args(["netns", "exec", &lab.names[3], "python3"])
        .arg(&script)
        .arg(&ready)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    lab.children.push(responder);
    let deadline = Instant::now() + PATIENCE;
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the responder did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let body = lab.probe(LOOKOUT, "icmp_series_1s", "198.18.0.2");
    assert_eq!(
        value(&body, "lookout_icmp_sent_packets"),
        Some(3.0),
        "{body}"
    );
    let received = value(&body, "lookout_icmp_received_packets").unwrap();
    assert!(received == 1.0 || received == 2.0, "{body}");
    assert_eq!(value(&body, "probe_success"), Some(1.0), "{body}");
    assert!(stats(&body).iter().all(Option::is_some), "{body}");
    let body = lab.probe(LOOKOUT, "icmp_series", "198.18.0.2");
    assert_eq!(
        value(&body, "lookout_icmp_sent_packets"),
        Some(4.0),
        "{body}"
    );
    assert_eq!(
        value(&body, "lookout_icmp_received_packets"),
        Some(2.0),
        "{body}"
    );
    // The deadline bounds a series: 10 echoes 200ms apart do not fit in 1s,
    // and those that went out before it are counted and answered.
    let body = lab.probe(LOOKOUT, "icmp_series_long", "127.0.0.1");
    let sent = value(&body, "lookout_icmp_sent_packets").unwrap();
    assert!((1.0..10.0).contains(&sent), "{body}");
    assert_eq!(value(&body, "probe_success"), Some(1.0), "{body}");
}

#[test]
fn icmp_fails_with_the_reason_where_the_ping_group_range_excludes_lookout() {
    // The kernel's default range, 1 0, admits no group.
    let mut lab = Lab::new("1 0");
    lab.lookout(Privilege::Nonroot, &all_modules(), &[]);
    for target in ["127.0.0.1", "::1"] {
        let body = lab.probe(LOOKOUT, "icmp", target);
        assert_eq!(value(&body, "probe_success"), Some(0.0), "{target}: {body}");
        assert_eq!(
            value(&body, "probe_icmp_duration_seconds{phase=\"setup\"}"),
            Some(0.0),
            "{body}"
        );
    }
    let log = lab.log("lookout.log");
    let line = log
        .lines()
        .find(|l| l.contains("no ICMP socket"))
        .unwrap_or_else(|| panic!("no reason logged: {log}"));
    for needle in [
        "\"level\":\"WARN\"",
        "net.ipv4.ping_group_range (1 0) does not include this process's groups (gid 65532)",
        "a raw socket needs CAP_NET_RAW (Operation not permitted",
        "securityContext.sysctls",
    ] {
        assert!(line.contains(needle), "{needle:?} missing: {line}");
    }
    // No raw socket was used behind the operator's back: none could be.
    assert!(!log.contains("\"raw\":true"), "{log}");
}

#[test]
fn icmp_falls_back_to_a_raw_socket_with_cap_net_raw() {
    // Root, whose group 0 the default range does not admit: the datagram
    // socket is refused and the raw one, which sees lookout's own requests
    // on loopback and the IPv4 header before each message, is used.
    let mut lab = Lab::new("1 0");
    lab.lookout(Privilege::Root, &all_modules(), &[]);
    for target in ["127.0.0.1", "::1", "198.51.100.2", "2001:db8:2::2"] {
        let body = lab.probe(LOOKOUT, "icmp", target);
        assert_eq!(value(&body, "probe_success"), Some(1.0), "{target}: {body}");
        assert!(
            value(&body, "probe_icmp_reply_hop_limit").is_some(),
            "{body}"
        );
        let body = lab.probe(LOOKOUT, "icmp_series", target);
        assert_eq!(
            value(&body, "lookout_icmp_received_packets"),
            Some(4.0),
            "{body}"
        );
    }
    for (module, success) in [("icmp_df_1472", 1.0), ("icmp_df_2000", 0.0)] {
        let body = lab.probe(LOOKOUT, module, "127.0.0.1");
        assert_eq!(
            value(&body, "probe_success"),
            Some(success),
            "{module}: {body}"
        );
    }
    let log = lab.log("lookout.log");
    assert!(
        log.contains("\"raw\":true") && !log.contains("\"raw\":false"),
        "{log}"
    );
}

/// Both exporters' answers to the same probes, compared as the main
/// differential test compares them; `probe_icmp_duration_seconds` is a
/// timing, so only whether each phase was measured (non-zero) must agree.
fn differences(
    lab: &Lab,
    ours: &str,
    theirs: &str,
    cases: &[(&str, &str)],
    found: &mut Vec<String>,
) {
    for (module, target) in cases {
        let a = lab.probe(ours, module, target);
        let b = lab.probe(theirs, module, target);
        let ours = exposition(&a);
        let case = format!("{module} {target}");
        found.extend(compare(&case, &ours, &exposition(&b), |name, x, y| {
            same_or_timing(name, x, y)
                || name.starts_with("probe_icmp_duration_seconds{") && (x == 0.0) == (y == 0.0)
        }));
        eprintln!("compared {case}: {} series", ours.0.len());
    }
}

#[test]
fn icmp_answers_as_blackbox_exporter_does() {
    let mut lab = Lab::new("65532 65532");
    let modules = lab.write("modules.yml", MODULES);
    let df_modules = lab.write("df.yml", DF_MODULES);
    lab.lookout(Privilege::Nonroot, &all_modules(), &[]);
    lab.blackbox(Privilege::Nonroot, &modules, BLACKBOX, "blackbox.log");
    let cases = [
        ("icmp", "127.0.0.1"),
        ("icmp", "::1"),
        ("icmp_ip4", "::1"),
        ("icmp_ip4_only", "127.0.0.1"),
        // Resolution failures: no address of the only family, no such name,
        // a port or brackets (the target is a bare host).
        ("icmp_ip4_only", "::1"),
        ("icmp", "no-such-host.invalid"),
        ("icmp", "127.0.0.1:80"),
        ("icmp", "[::1]"),
        // Through the router.
        ("icmp", "198.51.100.2"),
        ("icmp", "2001:db8:2::2"),
        ("icmp_ttl1", "198.51.100.2"),
        ("icmp_ttl1", "2001:db8:2::2"),
        ("icmp_ttl2", "198.51.100.2"),
        ("icmp_ttl0", "2001:db8:2::2"),
        // Payloads, fragmented over loopback's MTU of 1500 too.
        ("icmp_payload_1000", "127.0.0.1"),
        ("icmp_payload_2000", "127.0.0.1"),
        ("icmp_payload_2000", "::1"),
        // Source addresses, and one of the other family.
        ("icmp_from_loopback", "127.0.0.1"),
        ("icmp_from_veth", "198.51.100.2"),
        ("icmp_from_veth6", "2001:db8:2::2"),
        ("icmp_from_loopback", "::1"),
        // No reply and no error: blackholed by the router.
        ("icmp_1s", "203.0.113.9"),
        ("icmp_1s", "2001:db8:9::9"),
        // No route at the router: an ICMP error comes back instead of a reply.
        ("icmp_1s", "100.64.0.1"),
        ("icmp_1s", "2001:db8:77::1"),
        ("icmp", "localhost"),
    ];
    let mut found = Vec::new();
    differences(&lab, LOOKOUT, BLACKBOX, &cases, &mut found);

    // dont_fragment: blackbox_exporter needs a raw socket, so CAP_NET_RAW;
    // lookout, unprivileged, must answer as that one does.
    lab.blackbox(
        Privilege::Root,
        &df_modules,
        "127.0.0.1:9117",
        "blackbox-root.log",
    );
    let df_cases = [
        ("icmp_df_1472", "127.0.0.1"),
        ("icmp_df_2000", "127.0.0.1"),
        ("icmp_df_2000", "::1"),
    ];
    differences(&lab, LOOKOUT, "127.0.0.1:9117", &df_cases, &mut found);
    assert!(
        found.is_empty(),
        "{} differences:\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn icmp_fails_as_blackbox_exporter_does_without_a_socket() {
    let mut lab = Lab::new("1 0");
    let modules = lab.write("modules.yml", MODULES);
    lab.lookout(Privilege::Nonroot, &all_modules(), &[]);
    lab.blackbox(Privilege::Nonroot, &modules, BLACKBOX, "blackbox.log");
    let mut found = Vec::new();
    differences(
        &lab,
        LOOKOUT,
        BLACKBOX,
        &[("icmp", "127.0.0.1"), ("icmp", "::1")],
        &mut found,
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
    assert!(
        lab.log("blackbox.log")
            .contains("Error listening to socket"),
        "{}",
        lab.log("blackbox.log")
    );
}

//! The dns prober against DNS servers this file starts: NSD (Debian's
//! authoritative server) serving a zone written here, over udp, tcp and DNS
//! over TLS (NSD's own TLS port, with a certificate made here); and a
//! scripted server whose answers are hostile (wrong IDs, truncation,
//! oversized datagrams, counts that lie, forward and looping compression
//! pointers, malformed rdata, TSIG, silence) or print in every way miekg/dns
//! prints records. Then both again beside Debian's blackbox_exporter 0.23,
//! the differential oracle: the same modules file, the same targets, the same
//! metrics but timings, and regexps that match each record's exact text, so
//! that lookout's text is proven to be miekg's.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use crate::{
    differential::{compare, exposition, same_or_timing, spawn_blackbox},
    probe::encode,
    support::{lookout, request, spawn_app, App, PATIENCE},
    targets::Pki,
};

// ---------------------------------------------------------------- servers

/// NSD serving [`ZONE`] on 127.0.0.1: udp and tcp on one port, DNS over TLS
/// on another. Stopped when dropped (and when this process ends: it reads
/// its stdin until it closes).
struct Nsd {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    tls_port: u16,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

/// The zone NSD serves: one name per record type, each with one record
/// unless said otherwise.
const ZONE: &str = r#"$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
@ IN NS ns1
ns1 IN A 127.0.0.1
a IN A 192.0.2.1
aaaa IN AAAA 2001:db8::1
mapped IN AAAA ::ffff:192.0.2.1
mx IN MX 10 mail.example.test.
txt IN TXT "v=spf1 -all" "say \"hi\"\\ ;x" "\001\255 tab\009"
www IN CNAME a
_sip._tcp IN SRV 10 60 5060 sip
caa IN CAA 0 issue "letsencrypt.org; validationmethods=dns-01"
https IN HTTPS 1 . alpn="h2,h3" port=8443 ipv4hint=192.0.2.1
svcb IN SVCB 2 svc.example.test. mandatory=alpn alpn=h2 ipv6hint=2001:db8::1 key667=a\032b
sshfp IN SSHFP 4 2 cde0d742d6998aa554a92d890f8184c698cfac8a26fa59875a990c03e576343c
tlsa IN TLSA 3 1 1 abcdef0123
ds IN DS 31589 8 2 cde0d742d6998aa554a92d890f8184c698cfac8a26fa59875a990c03e576343c
naptr IN NAPTR 100 10 "S" "SIP+D2U" "!^.*$!sip:x@example.test!" _sip._udp
hinfo IN HINFO "PDP-11" "UNIX"
loc IN LOC 52 0 0.000 N 4 0 0.000 W 10m 1m 10000m 10m
sp\032ace IN A 192.0.2.2
unknown IN TYPE65280 \# 4 deadbeef
multi IN A 192.0.2.3
multi IN A 192.0.2.4
ptr IN PTR host.example.test.
dnskey IN DNSKEY 257 3 13 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJw==
eui IN EUI48 00-1a-2b-3c-4d-5e
rp IN RP admin.example.test. txt.example.test.
afsdb IN AFSDB 1 afs.example.test.
uri IN URI 10 1 "https://www.example.test/"
cert IN CERT PKIX 12345 RSASHA256 AAECAwQ=
nid IN NID 10 0014:abcd:ef00:0001
l64 IN L64 10 0014:abcd:ef00:0001
kx IN KX 10 kx.example.test.
dname IN DNAME other.example.net.
spf IN SPF "v=spf1 -all"
apl IN APL 1:192.168.1.0/24 !2:2001:db8::/32
openpgpkey IN OPENPGPKEY AAECAwQ=
csync IN CSYNC 2024010101 3 A NS AAAA
"#;

/// Each name of [`ZONE`], the type asked, and its record's text as
/// miekg/dns prints it.
const ZONE_TEXTS: &[(&str, &str, &str)] = &[
    ("a", "A", "a.example.test.\t300\tIN\tA\t192.0.2.1"),
    ("aaaa", "AAAA", "aaaa.example.test.\t300\tIN\tAAAA\t2001:db8::1"),
    ("mx", "MX", "mx.example.test.\t300\tIN\tMX\t10 mail.example.test."),
    (
        "txt",
        "TXT",
        "txt.example.test.\t300\tIN\tTXT\t\"v=spf1 -all\" \"say \\\"hi\\\"\\\\ ;x\" \"\\001\\255 tab\\009\"",
    ),
    ("www", "CNAME", "www.example.test.\t300\tIN\tCNAME\ta.example.test."),
    ("_sip._tcp", "SRV", "_sip._tcp.example.test.\t300\tIN\tSRV\t10 60 5060 sip.example.test."),
    (
        "caa",
        "CAA",
        "caa.example.test.\t300\tIN\tCAA\t0 issue \"letsencrypt.org; validationmethods=dns-01\"",
    ),
    (
        "https",
        "HTTPS",
        "https.example.test.\t300\tIN\tHTTPS\t1 . alpn=\"h2,h3\" port=\"8443\" ipv4hint=\"192.0.2.1\"",
    ),
    (
        "svcb",
        "SVCB",
        "svcb.example.test.\t300\tIN\tSVCB\t2 svc.example.test. mandatory=\"alpn\" alpn=\"h2\" ipv6hint=\"2001:db8::1\" key667=\"a\\ b\"",
    ),
    (
        "sshfp",
        "SSHFP",
        "sshfp.example.test.\t300\tIN\tSSHFP\t4 2 CDE0D742D6998AA554A92D890F8184C698CFAC8A26FA59875A990C03E576343C",
    ),
    ("tlsa", "TLSA", "tlsa.example.test.\t300\tIN\tTLSA\t3 1 1 abcdef0123"),
    (
        "ds",
        "DS",
        "ds.example.test.\t300\tIN\tDS\t31589 8 2 CDE0D742D6998AA554A92D890F8184C698CFAC8A26FA59875A990C03E576343C",
    ),
    (
        "naptr",
        "NAPTR",
        "naptr.example.test.\t300\tIN\tNAPTR\t100 10 \"S\" \"SIP+D2U\" \"!^.*$!sip:x@example.test!\" _sip._udp.example.test.",
    ),
    ("hinfo", "HINFO", "hinfo.example.test.\t300\tIN\tHINFO\t\"PDP-11\" \"UNIX\""),
    ("loc", "LOC", "loc.example.test.\t300\tIN\tLOC\t52 00 0.000 N 04 00 0.000 W 10m 1m 10000m 10m"),
    ("sp\\032ace", "A", "sp\\ ace.example.test.\t300\tIN\tA\t192.0.2.2"),
    ("unknown", "ANY", "unknown.example.test.\t300\tCLASS1\tTYPE65280\t\\# 4 deadbeef"),
    ("ptr", "PTR", "ptr.example.test.\t300\tIN\tPTR\thost.example.test."),
    (
        "dnskey",
        "DNSKEY",
        "dnskey.example.test.\t300\tIN\tDNSKEY\t257 3 13 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJw==",
    ),
    ("eui", "EUI48", "eui.example.test.\t300\tIN\tEUI48\t00-1a-2b-3c-4d-5e"),
    ("rp", "RP", "rp.example.test.\t300\tIN\tRP\tadmin.example.test. txt.example.test."),
    ("afsdb", "AFSDB", "afsdb.example.test.\t300\tIN\tAFSDB\t1 afs.example.test."),
    ("uri", "URI", "uri.example.test.\t300\tIN\tURI\t10 1 \"https://www.example.test/\""),
    ("cert", "CERT", "cert.example.test.\t300\tIN\tCERT\tPKIX 12345 RSASHA256 AAECAwQ="),
    ("nid", "NID", "nid.example.test.\t300\tIN\tNID\t10 0014:abcd:ef00:0001"),
    ("l64", "L64", "l64.example.test.\t300\tIN\tL64\t10 0014:ABCD:EF00:0001"),
    ("kx", "KX", "kx.example.test.\t300\tIN\tKX\t10 kx.example.test."),
    ("dname", "DNAME", "dname.example.test.\t300\tIN\tDNAME\tother.example.net."),
    ("spf", "SPF", "spf.example.test.\t300\tIN\tSPF\t\"v=spf1 -all\""),
    ("apl", "APL", "apl.example.test.\t300\tIN\tAPL\t1:192.168.1.0/24 !2:2001:db8::/32"),
    ("openpgpkey", "OPENPGPKEY", "openpgpkey.example.test.\t300\tIN\tOPENPGPKEY\tAAECAwQ="),
    ("csync", "CSYNC", "csync.example.test.\t300\tIN\tCSYNC\t2024010101 3 A NS AAAA"),
    (
        "@",
        "SOA",
        "example.test.\t300\tIN\tSOA\tns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300",
    ),
];

/// A port free for both UDP and TCP on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Nsd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let pki = Pki::new("lookout dns test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let cert = params.signed_by(&key, &pki.ca).unwrap();
        std::fs::write(path("cert.pem"), cert.pem()).unwrap();
        std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(path("ca.pem"), pki.ca_pem()).unwrap();
        std::fs::write(path("example.test.zone"), ZONE).unwrap();
        let (port, tls_port) = (free_port(), free_port());
        let dir_name = dir.path().display().to_string();
        let conf = format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  ip-address: 127.0.0.1@{tls_port}\n  port: {port}\n  tls-port: {tls_port}\n  tls-service-key: {dir_name}/key.pem\n  tls-service-pem: {dir_name}/cert.pem\n  username: \"\"\n  chroot: \"\"\n  zonesdir: {dir_name}\n  pidfile: {dir_name}/nsd.pid\n  xfrdfile: {dir_name}/xfrd.state\n  zonelistfile: {dir_name}/zone.list\n  database: \"\"\n  server-count: 1\n  verbosity: 0\nremote-control:\n  control-enable: no\nzone:\n  name: example.test\n  zonefile: example.test.zone\n"
        );
        std::fs::write(path("nsd.conf"), conf).unwrap();
        // NSD in the foreground under a shell that stops it when its stdin
        // closes: when dropped, or when this process ends however it ends.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "nsd -d -c \"$0\" & pid=$!; read -r _; kill -TERM $pid; wait $pid",
                path("nsd.conf").to_str().unwrap(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsd is installed (.ci/install installs Debian's package)");
        let stdin = child.stdin.take();
        let nsd = Self {
            child,
            stdin,
            port,
            tls_port,
            ca: path("ca.pem"),
            _dir: dir,
        };
        let deadline = Instant::now() + PATIENCE;
        while !(answers_udp(port) && TcpStream::connect(("127.0.0.1", tls_port)).is_ok()) {
            assert!(Instant::now() < deadline, "nsd did not start");
            thread::sleep(Duration::from_millis(50));
        }
        nsd
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn tls_addr(&self) -> String {
        format!("localhost:{}", self.tls_port)
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Whether a server answers a query for `example.test` on `port` over UDP.
fn answers_udp(port: u16) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let query = [
        &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0][..],
        b"\x07example\x04test\x00",
        &[0, 6, 0, 1],
    ]
    .concat();
    socket.send_to(&query, ("127.0.0.1", port)).is_ok() && socket.recv(&mut [0; 512]).is_ok()
}

/// A DNS server on UDP and TCP whose answers the first label of the query
/// name chooses (see [`script`]). Counts the queries it gets.
struct Scripted {
    port: u16,
    queries: Arc<AtomicUsize>,
}

impl Scripted {
    fn start() -> Self {
        let port = free_port();
        let udp = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        let tcp = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&queries);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((len, peer)) = udp.recv_from(&mut buf) {
                counted.fetch_add(1, Ordering::SeqCst);
                for reply in script(&buf[..len], false) {
                    let _ = udp.send_to(&reply, peer);
                }
            }
        });
        let counted = Arc::clone(&queries);
        thread::spawn(move || {
            for stream in tcp.incoming().map_while(Result::ok) {
                let counted = Arc::clone(&counted);
                thread::spawn(move || {
                    let mut stream = stream;
                    stream.set_read_timeout(Some(PATIENCE)).unwrap();
                    let mut len = [0u8; 2];
                    if stream.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if stream.read_exact(&mut query).is_err() {
                        return;
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let replies = script(&query, true);
                    if let Some(reply) = replies.first() {
                        let framed = [&(reply.len() as u16).to_be_bytes()[..], reply].concat();
                        let _ = stream.write_all(&framed);
                    }
                    // Silence, or the reply: either way wait for the prober to close.
                    let _ = stream.read(&mut [0u8; 1]);
                });
            }
        });
        Self { port, queries }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

/// `labels` as a wire name.
fn name(labels: &[&[u8]]) -> Vec<u8> {
    let mut wire = Vec::new();
    for label in labels {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    wire
}

fn rr(owner: &[u8], rtype: u16, class: u16, rdata: &[u8]) -> Vec<u8> {
    [
        owner,
        &rtype.to_be_bytes(),
        &class.to_be_bytes(),
        &300u32.to_be_bytes(),
        &(rdata.len() as u16).to_be_bytes(),
        rdata,
    ]
    .concat()
}

fn cstr(bytes: &[u8]) -> Vec<u8> {
    [&[bytes.len() as u8][..], bytes].concat()
}

/// The owner of the scripted records: `rr.test.`.
fn owner() -> Vec<u8> {
    name(&[b"rr", b"test"])
}

/// Type, class, rdata, text, and the [`since_0_23`] key of a scripted record.
type ScriptedRecord = (u16, u16, Vec<u8>, &'static str, Option<&'static str>);

/// The scripted server's records, each answering `rr-N.test` (its index):
/// type, class, rdata, and its text as miekg/dns v1.1.68 prints it (the
/// owner, TTL, class and type first). A `Some` key names the `SINCE_0_23`
/// entry by which Debian's 0.23 prints it differently.
fn scripted_records() -> Vec<ScriptedRecord> {
    let soa_rdata = [
        name(&[b"ns1", b"test"]),
        name(&[b"host\\master", b"test"]),
        [1u32, 2, 3, 4, 5]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect(),
    ]
    .concat();
    let svcb = [
        &[0, 1][..],
        &name(&[b"svc", b"test"]),
        &[0, 0, 0, 4, 0, 1, 0, 3],
        &[0, 1, 0, 9, 2, b'h', b'2', 5, b'a', b',', b'b', b'\\', b'c'],
        &[0, 2, 0, 0],
        &[0, 3, 0, 2, 0, 53],
        &[0, 5, 0, 3, b'a', b'b', b'c'],
        &[0, 7, 0, 14],
        b"/q{?dns} \"x\";\x01",
        &[2, 155, 0, 3, b'a', b' ', b'b'],
    ]
    .concat();
    let bitmap = |types: &[u16]| {
        let mut windows: BTreeMap<u8, [u8; 32]> = BTreeMap::new();
        for t in types {
            windows.entry((t >> 8) as u8).or_insert([0; 32])[usize::from(t & 0xff) / 8] |=
                0x80 >> (t % 8);
        }
        let mut out = Vec::new();
        for (window, bits) in windows {
            let len = 32 - bits.iter().rev().take_while(|b| **b == 0).count();
            out.push(window);
            out.push(len as u8);
            out.extend_from_slice(&bits[..len]);
        }
        out
    };
    vec![
        (46, 1, [&[0, 1, 13, 2, 0, 0, 1, 44][..], &1_735_689_600u32.to_be_bytes(), &1_704_067_200u32.to_be_bytes(), &[48, 57], &name(&[b"test"]), &[1, 2, 3, 4, 5]].concat(),
            "rr.test.\t300\tIN\tRRSIG\tA 13 2 300 20250101000000 20240101000000 12345 test. AQIDBAU=", None),
        (47, 1, [name(&[b"a", b"test"]), bitmap(&[1, 2, 6, 15, 46, 47, 65280])].concat(),
            "rr.test.\t300\tIN\tNSEC\ta.test. A NS SOA MX RRSIG NSEC TYPE65280", None),
        (50, 1, [&[1, 0, 0, 10, 4, 0xaa, 0xbb, 0xcc, 0xdd, 5][..], &[1, 2, 3, 4, 5], &bitmap(&[1, 46])].concat(),
            "rr.test.\t300\tIN\tNSEC3\t1 0 10 AABBCCDD 04106105 A RRSIG", None),
        (51, 1, vec![1, 0, 0, 0, 0], "rr.test.\t300\tIN\tNSEC3PARAM\t1 0 0 -", None),
        (10, 1, b"ab\x00c".to_vec(), ";rr.test.\t300\tIN\tNULL\tab\x00c", None),
        (15, 1, vec![0, 10], "rr.test.\t300\tIN\tMX\t10 ", None),
        (1, 1, vec![], "rr.test.\t300\tIN\tA\t", None),
        (6, 1, vec![], "rr.test.\t300\tIN\tSOA\t  0 0 0 0 0", None),
        (6, 1, soa_rdata, "rr.test.\t300\tIN\tSOA\tns1.test. host\\\\master.test. 1 2 3 4 5", None),
        (16, 1, vec![], "rr.test.\t300\tIN\tTXT\t", None),
        (16, 1, [cstr(b"a\"b\\c"), cstr(&[0, 0x7f, 0xe9, b' '])].concat(),
            "rr.test.\t300\tIN\tTXT\t\"a\\\"b\\\\c\" \"\\000\\127\\233 \"", None),
        (257, 1, [&[128][..], &cstr(b"iodef"), b"mailto:\"s\"@x\\.y\\065\\"].concat(),
            "rr.test.\t300\tIN\tCAA\t128 iodef \"mailto:\\\"s\\\"@x\\.yA\"", None),
        (1, 3, vec![127, 0, 0, 1], "rr.test.\t300\tCH\tA\t127.0.0.1", None),
        (1, 255, vec![127, 0, 0, 1], "rr.test.\t300\tCLASS255\tA\t127.0.0.1", None),
        (1, 254, vec![127, 0, 0, 1], "rr.test.\t300\tNONE\tA\t127.0.0.1", None),
        (1, 42, vec![127, 0, 0, 1], "rr.test.\t300\tCLASS42\tA\t127.0.0.1", None),
        (34, 1, vec![1, 2], "rr.test.\t300\tCLASS1\tTYPE34\t\\# 2 0102", None),
        (65281, 1, vec![], "rr.test.\t300\tCLASS1\tTYPE65281\t\\# 0 ", None),
        (64, 1, svcb,
            "rr.test.\t300\tIN\tSVCB\t1 svc.test. mandatory=\"alpn,port\" alpn=\"h2,a\\\\\\044b\\\\\\092c\" no-default-alpn=\"\" port=\"53\" ech=\"YWJj\" dohpath=\"/q{?dns}\\ \\\"x\\\"\\;\\001\" key667=\"a\\ b\"",
            None),
        (105, 1, vec![0, 10, 10, 1, 2, 3], "rr.test.\t300\tIN\tL32\t10 10.1.2.3", None),
        (107, 1, [&[0, 10][..], &name(&[b"lp", b"test"])].concat(), "rr.test.\t300\tIN\tLP\t10 lp.test.", None),
        (109, 1, vec![0, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70], "rr.test.\t300\tIN\tEUI64\t00-1a-2b-3c-4d-5e-6f-70", None),
        (101, 1, vec![0, 0, 1, 0], "rr.test.\t300\tIN\tUID\t256", None),
        (100, 1, cstr(b"info \"x\""), "rr.test.\t300\tIN\tUINFO\t\"info \\\"x\\\"\"", None),
        (19, 1, cstr(b"311 \"06"), "rr.test.\t300\tIN\tX25\t311 \\\"06", None),
        (27, 1, [cstr(b"-32.6882"), cstr(b"116.8652"), cstr(b"10.0")].concat(), "rr.test.\t300\tIN\tGPOS\t-32.6882 116.8652 10.0", None),
        (26, 1, [&[0, 10][..], &name(&[b"a", b"test"]), &name(&[b"b", b"test"])].concat(), "rr.test.\t300\tIN\tPX\t10 a.test. b.test.", None),
        (14, 1, [name(&[b"r", b"test"]), name(&[b"e", b"test"])].concat(), "rr.test.\t300\tIN\tMINFO\tr.test. e.test.", None),
        (21, 1, [&[0, 7][..], &name(&[b"rt", b"test"])].concat(), "rr.test.\t300\tIN\tRT\t7 rt.test.", None),
        (56, 1, cstr(b"ninfo"), "rr.test.\t300\tIN\tNINFO\t\"ninfo\"", None),
        (258, 1, cstr(b"avc"), "rr.test.\t300\tIN\tAVC\t\"avc\"", None),
        (59, 1, vec![0, 1, 8, 2, 0xab], "rr.test.\t300\tIN\tCDS\t1 8 2 AB", None),
        (60, 1, vec![1, 1, 3, 8, 1, 2, 3], "rr.test.\t300\tIN\tCDNSKEY\t257 3 8 AQID", None),
        (53, 1, vec![3, 1, 1, 0xab], "rr.test.\t300\tIN\tSMIMEA\t3 1 1 ab", None),
        (49, 1, vec![1, 2, 3], "rr.test.\t300\tIN\tDHCID\tAQID", None),
        (55, 1, [&[2, 2, 0, 3, 0xab, 0xcd, 1, 2, 3][..], &name(&[b"rv", b"test"])].concat(), "rr.test.\t300\tIN\tHIP\t2 abcd AQID rv.test.", None),
        (35, 1, [&[0, 1, 0, 2][..], &cstr(b"u"), &cstr(b"E2U+sip"), &cstr(b"!^.*$!sip:\"x\"!"), &[0]].concat(),
            "rr.test.\t300\tIN\tNAPTR\t1 2 \"u\" \"E2U+sip\" \"!^.*$!sip:\\\"x\\\"!\" .", None),
        (28, 1, [&[0; 10][..], &[0xff, 0xff, 192, 0, 2, 1]].concat(), "rr.test.\t300\tIN\tAAAA\t::ffff:192.0.2.1", Some("aaaa_mapped")),
        (20, 1, [cstr(b"150862028003217"), cstr(b"004")].concat(), "rr.test.\t300\tIN\tISDN\t\"150862028003217\" \"004\"", Some("typed")),
        (30, 1, [name(&[b"n", b"test"]), bitmap(&[1, 30])].concat(), "rr.test.\t300\tIN\tNXT\tn.test. A NXT", Some("typed")),
        (261, 1, cstr(b"qnamemin"), "rr.test.\t300\tIN\tRESINFO\t\"qnamemin\"", Some("typed")),
        (45, 1, vec![10, 1, 2, 192, 0, 2, 38, 1, 2, 3], "rr.test.\t300\tIN\tIPSECKEY\t10 1 2 192.0.2.38 AQID", Some("typed")),
        (260, 1, vec![10, 1, 192, 0, 2, 1], "rr.test.\t300\tIN\tAMTRELAY\t10 0 1 192.0.2.1", Some("typed")),
        (260, 1, vec![10, 0x80], "rr.test.\t300\tIN\tAMTRELAY\t10 1 0 .", Some("typed")),
        (128, 1, vec![], "rr.test.\t300\tIN\tNXNAME\t", Some("typed")),
        // OPT, wherever it is, prints dig's pseudo-section, not the record.
        (41, 1232, [&[0, 3, 0, 2][..], b"n1", &[0, 10, 0, 2, 0xab, 0xcd]].concat(),
            "\n;; OPT PSEUDOSECTION:\n; EDNS: version 0; flags: do; udp: 1232\n; NSID: 6e31  (n)(1)\n; COOKIE: abcd", None),
        (41, 512, vec![], "\n;; OPT PSEUDOSECTION:\n; EDNS: version 0; flags:; udp: 512", Some("opt")),
        (64, 1, [&[0, 1][..], &name(&[b"s", b"test"]), &[0, 8, 0, 0]].concat(), "rr.test.\t300\tIN\tSVCB\t1 s.test. ohttp=\"\"", Some("ohttp")),
    ]
}

/// The scripted server's replies to `query` (several: sent as datagrams
/// one after the other over UDP; only the first over TCP).
fn script(query: &[u8], tcp: bool) -> Vec<Vec<u8>> {
    let Some(id) = query.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
        return vec![];
    };
    let mut at = 12;
    let mut first = Vec::new();
    while let Some(&len) = query.get(at) {
        if len == 0 {
            break;
        }
        if first.is_empty() {
            first = query
                .get(at + 1..at + 1 + usize::from(len))
                .unwrap_or_default()
                .to_vec();
        }
        at += 1 + usize::from(len);
    }
    let question = query.get(12..at + 5).unwrap_or_default().to_vec();
    let rd = query.get(2).map_or(0, |b| b & 1);
    let header = |id: u16, flags: u16, counts: [u16; 4]| {
        let mut h = id.to_be_bytes().to_vec();
        h.extend_from_slice(&(flags | u16::from(rd) << 8).to_be_bytes());
        for count in counts {
            h.extend_from_slice(&count.to_be_bytes());
        }
        h
    };
    let ok = |answers: &[Vec<u8>]| {
        [
            header(id, 0x8400, [1, answers.len() as u16, 0, 0]),
            question.clone(),
            answers.concat(),
        ]
        .concat()
    };
    let a = rr(&owner(), 1, 1, &[192, 0, 2, 1]);
    let first = String::from_utf8_lossy(&first).into_owned();
    if let Some(index) = first.strip_prefix("rr-") {
        let records = scripted_records();
        let Some((rtype, class, rdata, _, _)) = index
            .parse::<usize>()
            .ok()
            .and_then(|i| records.get(i).cloned())
        else {
            return vec![];
        };
        let mut record = rr(&owner(), rtype, class, &rdata);
        if rtype == 41 {
            // An OPT record's TTL holds its flags: DO for a 1232-byte buffer, none else.
            let ttl: u32 = if class == 1232 { 0x8000 } else { 0 };
            let at = owner().len() + 4;
            record[at..at + 4].copy_from_slice(&ttl.to_be_bytes());
        }
        return vec![ok(&[record])];
    }
    match first.as_str() {
        "silent" => vec![],
        // Another ID: UDP waits on for the right one, TCP fails.
        "badid" => vec![[header(id ^ 1, 0x8400, [1, 1, 0, 0]), question, a].concat()],
        "badidfirst" => vec![
            [header(id ^ 1, 0x8400, [1, 0, 0, 0]), question.clone()].concat(),
            ok(&[a]),
        ],
        "nx" => vec![[header(id, 0x8403, [1, 0, 0, 0]), question].concat()],
        "refused" => vec![header(id, 0x8005, [0, 0, 0, 0])],
        // TC set, and three answers counted that are not there.
        "tc" => vec![[header(id, 0x8600, [1, 3, 0, 0]), question].concat()],
        "short" => vec![[&id.to_be_bytes()[..], &[0x84, 0, 0]].concat()],
        // More than 512 bytes: cut inside a record over UDP, whole over TCP.
        "big" => {
            let records: Vec<Vec<u8>> = (0..12)
                .map(|i| rr(&owner(), 16, 1, &cstr(&[b'a' + i; 40])))
                .collect();
            let reply = ok(&records);
            assert!(tcp || reply.len() > 512);
            vec![reply]
        }
        // The answer's owner is a pointer to a name after the record.
        "fwd" => {
            let at = 12 + question.len() + 2 + 10 + 4;
            let pointer = [0xC0 | (at >> 8) as u8, at as u8];
            let record = rr(&pointer, 1, 1, &[192, 0, 2, 9]);
            vec![[ok(&[record]), name(&[b"forward", b"test"])].concat()]
        }
        "loop" => {
            let at = 12 + question.len();
            let pointer = [0xC0 | (at >> 8) as u8, at as u8];
            vec![ok(&[rr(&pointer, 1, 1, &[192, 0, 2, 9])])]
        }
        "badrdata" => vec![ok(&[rr(&owner(), 1, 1, &[1, 2, 3, 4, 5])])],
        "cut" => {
            let reply = ok(&[a.clone(), a]);
            vec![reply[..reply.len() - 3].to_vec()]
        }
        "qdlie" => vec![[header(id, 0x8400, [2, 0, 0, 0]), question].concat()],
        "tsig" => {
            let tsig = rr(&name(&[b"key"]), 250, 255, &[]);
            vec![[header(id, 0x8400, [1, 1, 0, 1]), question, a, tsig].concat()]
        }
        "tsigfirst" => {
            let tsig = rr(&name(&[b"key"]), 250, 255, &[]);
            let opt = rr(&[0], 41, 512, &[]);
            vec![[header(id, 0x8400, [1, 1, 0, 2]), question, a, tsig, opt].concat()]
        }
        // An OPT record's extended rcode: 1 << 4 | 0 is 16, BADSIG.
        "optrcode" => {
            let mut opt = rr(&[0], 41, 512, &[]);
            let ttl_at = opt.len() - 2 - 4;
            opt[ttl_at] = 1;
            vec![[header(id, 0x8400, [1, 0, 0, 1]), question, opt].concat()]
        }
        "dsotypeni" => vec![[header(id, 0x840b, [1, 0, 0, 0]), question].concat()],
        // The query as received, for the regexps: flags, then name, type, class in hex.
        "echo" => {
            let hex: String = query[2..].iter().map(|b| format!("{b:02x}")).collect();
            vec![ok(&[rr(&owner(), 16, 1, &cstr(hex.as_bytes()))])]
        }
        // Records in every section.
        "sections" => {
            let ns = rr(&owner(), 2, 1, &name(&[b"ns1", b"test"]));
            let extra = rr(&name(&[b"ns1", b"test"]), 1, 1, &[192, 0, 2, 53]);
            vec![[
                header(id, 0x8400, [1, 2, 1, 1]),
                question,
                a.clone(),
                rr(&owner(), 1, 1, &[192, 0, 2, 2]),
                ns,
                extra,
            ]
            .concat()]
        }
        _ => vec![ok(&[a])],
    }
}

/// `probe_dns_query_succeeded`, `probe_success`, `probe_dns_answer_rrs`.
type Outcome = (f64, f64, f64);

/// The scripted server's behaviours probed over both transports, with
/// what miekg/dns makes of each, over udp, then over tcp.
const HOSTILE: &[(&str, [Outcome; 2])] = &[
    // Another ID: ignored over UDP (then the deadline), an error over TCP.
    ("badid", [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]),
    ("badidfirst", [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0)]),
    ("silent", [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]),
    ("nx", [(1.0, 0.0, 0.0), (1.0, 0.0, 0.0)]),
    ("refused", [(1.0, 0.0, 0.0), (1.0, 0.0, 0.0)]),
    // TC is not looked at; the records the counts promise are not there.
    ("tc", [(1.0, 1.0, 0.0), (1.0, 1.0, 0.0)]),
    ("short", [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]),
    // Over UDP the 746-byte reply is read into 512 bytes, cut in a record.
    ("big", [(0.0, 0.0, 0.0), (1.0, 1.0, 12.0)]),
    ("fwd", [(1.0, 1.0, 1.0), (1.0, 1.0, 1.0)]),
    ("loop", [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]),
    ("badrdata", [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]),
    ("cut", [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]),
    ("qdlie", [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]),
    ("tsig", [(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)]),
    ("tsigfirst", [(1.0, 1.0, 1.0), (1.0, 1.0, 1.0)]),
    ("optrcode", [(1.0, 0.0, 0.0), (1.0, 0.0, 0.0)]),
];

// ---------------------------------------------------------------- modules

/// `text` as a Go and regex-syntax regexp matching exactly it.
fn exactly(text: &str) -> String {
    let mut re = String::from("^");
    for c in text.chars() {
        match c {
            '\t' => re.push_str("\\t"),
            '\n' => re.push_str("\\n"),
            c if (c as u32) < 0x20 => re.push_str(&format!("\\x{{{:02x}}}", c as u32)),
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
    }
    re.push('$');
    // A YAML single-quoted scalar.
    format!("'{}'", re.replace('\'', "''"))
}

/// A module of the dns prober: `name`, its `dns:` block lines (indented by
/// six spaces), with a timeout.
fn module(name: &str, timeout: &str, lines: &[String]) -> String {
    let mut text = format!("  {name}:\n    prober: dns\n    timeout: {timeout}\n    dns:\n");
    for line in lines {
        text.push_str(&format!("      {line}\n"));
    }
    text
}

/// The modules file every test here uses, lookout and blackbox_exporter
/// alike.
fn modules_file(nsd: &Nsd) -> String {
    let ca = nsd.ca.display();
    let q = |name: &str, qtype: &str| {
        vec![
            format!("query_name: {name}"),
            format!("query_type: {qtype}"),
            "preferred_ip_protocol: ip4".to_owned(),
        ]
    };
    let with = |mut base: Vec<String>, more: &[&str]| {
        base.extend(more.iter().map(|l| (*l).to_owned()));
        base
    };
    let mut text = String::from("modules:\n");
    let a = q("a.example.test", "A");
    text += &module("udp", "3s", &a);
    text += &module("tcp", "3s", &with(a.clone(), &["transport_protocol: tcp"]));
    text += &module(
        "dot",
        "3s",
        &with(
            a.clone(),
            &[
                "transport_protocol: tcp",
                "dns_over_tls: true",
                &format!("tls_config: {{ca_file: {ca}}}"),
            ],
        ),
    );
    text += &module(
        "dot_server_name",
        "3s",
        &with(
            a.clone(),
            &[
                "transport_protocol: tcp",
                "dns_over_tls: true",
                &format!("tls_config: {{ca_file: {ca}, server_name: localhost}}"),
            ],
        ),
    );
    text += &module(
        "dot_unknown_ca",
        "3s",
        &with(
            a.clone(),
            &["transport_protocol: tcp", "dns_over_tls: true"],
        ),
    );
    text += &module(
        "udp_from_loopback",
        "3s",
        &with(a.clone(), &["source_ip_address: 127.0.0.1"]),
    );
    text += &module(
        "tcp_from_loopback",
        "3s",
        &with(
            a.clone(),
            &["transport_protocol: tcp", "source_ip_address: 127.0.0.1"],
        ),
    );
    text += &module(
        "udp_from_elsewhere",
        "3s",
        &with(a.clone(), &["source_ip_address: 192.0.2.77"]),
    );
    text += &module(
        "tcp_from_ipv6",
        "3s",
        &with(
            a.clone(),
            &["transport_protocol: tcp", "source_ip_address: '::1'"],
        ),
    );
    text += &module(
        "tcp_from_loopback_1s",
        "1s",
        &with(
            a.clone(),
            &["transport_protocol: tcp", "source_ip_address: 127.0.0.1"],
        ),
    );
    text += &module("nx", "3s", &q("nx.example.test", "A"));
    text += &module(
        "nx_valid",
        "3s",
        &with(q("nx.example.test", "A"), &["valid_rcodes: [NXDOMAIN]"]),
    );
    text += &module("refused", "3s", &q("elsewhere.example", "A"));
    text += &module(
        "refused_valid",
        "3s",
        &with(
            q("elsewhere.example", "A"),
            &["valid_rcodes: [NOERROR, REFUSED]"],
        ),
    );
    text += &module(
        "no_rcode_valid",
        "3s",
        &with(a.clone(), &["valid_rcodes: []"]),
    );
    text += &module("soa", "3s", &q("example.test", "SOA"));
    text += &module("soa_elsewhere", "3s", &q("a.example.test", "SOA"));
    text += &module(
        "any",
        "3s",
        &[
            "query_name: example.test".to_owned(),
            "preferred_ip_protocol: ip4".to_owned(),
        ],
    );
    // The four rule kinds, passing and failing, on two A records.
    let multi = q("multi.example.test", "A");
    for (name, rule, re) in [
        (
            "matches_pass",
            "fail_if_matches_regexp",
            "'192\\.0\\.2\\.9'",
        ),
        (
            "matches_fail",
            "fail_if_matches_regexp",
            "'192\\.0\\.2\\.3'",
        ),
        (
            "all_pass",
            "fail_if_all_match_regexp",
            "'192\\.0\\.2\\.[34]$'",
        ),
        ("all_fail", "fail_if_all_match_regexp", "'192\\.0\\.2\\.3$'"),
        (
            "not_pass",
            "fail_if_not_matches_regexp",
            "'^multi\\.example\\.test\\.\\t300\\tIN\\tA\\t'",
        ),
        ("not_fail", "fail_if_not_matches_regexp", "'\\.3$'"),
        ("none_pass", "fail_if_none_matches_regexp", "'\\.4$'"),
        ("none_fail", "fail_if_none_matches_regexp", "'\\.5$'"),
    ] {
        text += &module(
            &format!("rule_{name}"),
            "3s",
            &with(
                multi.clone(),
                &[&format!("validate_answer_rrs: {{{rule}: [{re}]}}")],
            ),
        );
        // The same rule on an empty answer section (NXDOMAIN, accepted).
        text += &module(
            &format!("empty_{name}"),
            "3s",
            &with(
                q("nx.example.test", "A"),
                &[
                    "valid_rcodes: [NXDOMAIN]",
                    &format!("validate_answer_rrs: {{{rule}: [{re}]}}"),
                ],
            ),
        );
    }
    // Rules on the other sections, on the scripted server's "sections" answer.
    let sections = q("sections.test", "A");
    text += &module(
        "authority_fail",
        "1s",
        &with(
            sections.clone(),
            &["validate_authority_rrs: {fail_if_matches_regexp: ['\\tNS\\t']}"],
        ),
    );
    text += &module(
        "authority_pass",
        "1s",
        &with(
            sections.clone(),
            &["validate_authority_rrs: {fail_if_not_matches_regexp: ['\\tNS\\tns1\\.test\\.$']}"],
        ),
    );
    text += &module(
        "additional_fail",
        "1s",
        &with(
            sections.clone(),
            &["validate_additional_rrs: {fail_if_none_matches_regexp: ['192\\.0\\.2\\.1$']}"],
        ),
    );
    text += &module("additional_pass", "1s", &with(sections.clone(), &["validate_additional_rrs: {fail_if_all_match_regexp: ['^ns1\\.test\\.\\t300\\tIN\\tA\\t192\\.0\\.2\\.53$']}"]));
    text += &module(
        "sections_all",
        "1s",
        &with(
            sections,
            &[
                "validate_answer_rrs: {fail_if_all_match_regexp: ['^rr\\.test\\.']}",
                "validate_authority_rrs: {fail_if_none_matches_regexp: [NS]}",
                "validate_additional_rrs: {fail_if_matches_regexp: [AAAA]}",
            ],
        ),
    );
    // Each record's exact text.
    for (i, (label, qtype, expected)) in ZONE_TEXTS.iter().enumerate() {
        let name = if *label == "@" {
            "example.test".to_owned()
        } else {
            format!("{label}.example.test")
        };
        text += &module(
            &format!("zone_text_{i}"),
            "3s",
            &with(
                q(&name, qtype),
                &[&format!(
                    "validate_answer_rrs: {{fail_if_not_matches_regexp: [{}]}}",
                    exactly(expected)
                )],
            ),
        );
    }
    for (i, (_, _, _, expected, _)) in scripted_records().iter().enumerate() {
        text += &module(
            &format!("rr_text_{i}"),
            "1s",
            &with(
                q(&format!("rr-{i}.test"), "ANY"),
                &[&format!(
                    "validate_answer_rrs: {{fail_if_not_matches_regexp: [{}]}}",
                    exactly(expected)
                )],
            ),
        );
    }
    text += &module("fwd_text", "1s", &with(q("fwd.test", "A"), &["validate_answer_rrs: {fail_if_not_matches_regexp: ['^forward\\.test\\.\\t300\\tIN\\tA\\t192\\.0\\.2\\.9$']}"]));
    text += &module(
        "optrcode_valid",
        "1s",
        &with(q("optrcode.test", "A"), &["valid_rcodes: [BADSIG]"]),
    );
    text += &module(
        "dsotypeni",
        "1s",
        &with(q("dsotypeni.test", "A"), &["valid_rcodes: [DSOTYPENI]"]),
    );
    // The query as sent, echoed back in hex: flags, counts, name, type, class.
    text += &module("echo_rd", "1s", &with(q("echo.test", "TXT"), &["validate_answer_rrs: {fail_if_not_matches_regexp: ['\"01000001000000000000046563686f0474657374000010000\\d\"$']}"]));
    text += &module("echo_no_rd", "1s", &with(q("echo.test", "MX"), &["recursion_desired: false", "query_class: CH", "validate_answer_rrs: {fail_if_not_matches_regexp: ['\"00000001000000000000046563686f047465737400000f0003\"$']}"]));
    text += &module("echo_escapes", "1s", &with(q("echo.a\\.b\\065\\255.test", "A"), &["validate_answer_rrs: {fail_if_not_matches_regexp: ['046563686f05612e6241ff0474657374000001000\\d\"$']}"]));
    // A reply over 512 bytes is matched in a match slot, off the async threads.
    let big = with(q("big.test", "TXT"), &["transport_protocol: tcp"]);
    text += &module("big_rules_pass", "1s", &with(big.clone(), &["validate_answer_rrs: {fail_if_not_matches_regexp: ['^rr\\.test\\.\\t300\\tIN\\tTXT\\t\"[a-l]{40}\"$']}"]));
    text += &module(
        "big_rules_fail",
        "1s",
        &with(
            big,
            &["validate_answer_rrs: {fail_if_matches_regexp: ['\"l{40}\"']}"],
        ),
    );
    for (behaviour, _) in HOSTILE {
        let base = q(&format!("{behaviour}.test"), "A");
        text += &module(&format!("s_{behaviour}_udp"), "1s", &base);
        text += &module(
            &format!("s_{behaviour}_tcp"),
            "1s",
            &with(base, &["transport_protocol: tcp"]),
        );
    }
    text
}

// ---------------------------------------------------------------- helpers

struct Fixture {
    nsd: Nsd,
    scripted: Scripted,
    modules: PathBuf,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let nsd = Nsd::start();
    let scripted = Scripted::start();
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("blackbox.yml");
    std::fs::write(&modules, modules_file(&nsd)).unwrap();
    Fixture {
        nsd,
        scripted,
        modules,
        _dir: dir,
    }
}

fn lookout_with(modules: &Path, flags: &[&str]) -> App {
    let mut args = vec!["--config.file", modules.to_str().unwrap()];
    args.extend_from_slice(flags);
    let app = spawn_app(&args, &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    app
}

/// The probe's series (name and labels) and values.
fn probe(addr: SocketAddr, module: &str, target: &str) -> BTreeMap<String, f64> {
    let response = request(
        addr,
        "GET",
        &format!("/probe?module={module}&target={}", encode(target)),
        &[],
    );
    assert_eq!(response.status, 200, "{module} {target}: {}", response.body);
    exposition(&response.body).0
}

fn value(series: &BTreeMap<String, f64>, name: &str) -> f64 {
    *series
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {series:?}"))
}

/// `probe_success`, `probe_dns_query_succeeded`, `probe_dns_answer_rrs`.
fn outcome(series: &BTreeMap<String, f64>) -> Outcome {
    (
        value(series, "probe_dns_query_succeeded"),
        value(series, "probe_success"),
        value(series, "probe_dns_answer_rrs"),
    )
}

// ---------------------------------------------------------------- tests

#[test]
fn dns_probes_ask_nsd_over_udp_tcp_and_tls() {
    let f = fixture();
    let app = lookout_with(&f.modules, &[]);
    for (module, target) in [
        ("udp", f.nsd.addr()),
        ("tcp", f.nsd.addr()),
        ("dot", f.nsd.tls_addr()),
        ("dot_server_name", format!("127.0.0.1:{}", f.nsd.tls_port)),
        ("udp_from_loopback", f.nsd.addr()),
        ("tcp_from_loopback", f.nsd.addr()),
    ] {
        let series = probe(app.probe, module, &target);
        assert_eq!(outcome(&series), (1.0, 1.0, 1.0), "{module}: {series:?}");
        assert_eq!(value(&series, "probe_ip_protocol"), 4.0);
        for phase in ["resolve", "connect", "request"] {
            assert!(
                series.contains_key(&format!("probe_dns_duration_seconds{{phase=\"{phase}\"}}"))
            );
        }
        for name in [
            "probe_dns_authority_rrs",
            "probe_dns_additional_rrs",
            "probe_dns_lookup_time_seconds",
            "probe_ip_addr_hash",
            "probe_duration_seconds",
        ] {
            assert!(series.contains_key(name), "{module}: {name}");
        }
        // No TLS metrics, even over TLS; no serial but for SOA.
        assert!(series
            .keys()
            .all(|k| !k.starts_with("probe_ssl") && !k.starts_with("probe_tls")));
        assert!(!series.contains_key("probe_dns_serial"));
    }
    // A certificate from a CA the module does not trust: the query fails.
    let series = probe(app.probe, "dot_unknown_ca", &f.nsd.tls_addr());
    assert_eq!(outcome(&series), (0.0, 0.0, 0.0));
    // Sending from an address this host does not have, or of the other family.
    for module in ["udp_from_elsewhere", "tcp_from_ipv6"] {
        assert_eq!(
            outcome(&probe(app.probe, module, &f.nsd.addr())),
            (0.0, 0.0, 0.0),
            "{module}"
        );
    }
    // SOA queries report the serial of the answer's SOA, or 0 without one.
    let series = probe(app.probe, "soa", &f.nsd.addr());
    assert_eq!(value(&series, "probe_dns_serial"), 2_024_010_101.0);
    let series = probe(app.probe, "soa_elsewhere", &f.nsd.addr());
    assert_eq!(
        (
            value(&series, "probe_dns_serial"),
            value(&series, "probe_success")
        ),
        (0.0, 1.0)
    );
    // A module without a query type asks for ANY.
    assert_eq!(
        value(&probe(app.probe, "any", &f.nsd.addr()), "probe_success"),
        1.0
    );
}

#[test]
fn record_text_is_miekgs_for_every_type() {
    let f = fixture();
    let app = lookout_with(&f.modules, &[]);
    let mut wrong = Vec::new();
    for (i, (label, _, expected)) in ZONE_TEXTS.iter().enumerate() {
        let series = probe(app.probe, &format!("zone_text_{i}"), &f.nsd.addr());
        if value(&series, "probe_success") != 1.0 {
            wrong.push(format!("{label}: not {expected:?}"));
        }
    }
    for (i, (_, _, _, expected, _)) in scripted_records().iter().enumerate() {
        let series = probe(app.probe, &format!("rr_text_{i}"), &f.scripted.addr());
        if value(&series, "probe_success") != 1.0 {
            wrong.push(format!("rr-{i}: not {expected:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn rule_kinds_and_rcodes_decide_success_as_blackbox_exporter_does() {
    let f = fixture();
    let app = lookout_with(&f.modules, &[]);
    let success =
        |module: &str, target: &str| value(&probe(app.probe, module, target), "probe_success");
    let nsd = f.nsd.addr();
    for (name, passes, passes_empty) in [
        ("matches_pass", true, true),
        ("matches_fail", false, true),
        ("all_pass", true, true),
        ("all_fail", false, true),
        ("not_pass", true, false),
        ("not_fail", false, false),
        ("none_pass", true, false),
        ("none_fail", false, false),
    ] {
        assert_eq!(
            success(&format!("rule_{name}"), &nsd),
            f64::from(u8::from(passes)),
            "{name}"
        );
        assert_eq!(
            success(&format!("empty_{name}"), &nsd),
            f64::from(u8::from(passes_empty)),
            "empty {name}"
        );
    }
    let scripted = f.scripted.addr();
    for (module, passes) in [
        ("authority_fail", false),
        ("authority_pass", true),
        ("additional_fail", false),
        ("additional_pass", true),
        ("sections_all", true),
    ] {
        assert_eq!(
            success(module, &scripted),
            f64::from(u8::from(passes)),
            "{module}"
        );
    }
    let series = probe(app.probe, "sections_all", &scripted);
    assert_eq!(
        [
            "probe_dns_answer_rrs",
            "probe_dns_authority_rrs",
            "probe_dns_additional_rrs"
        ]
        .map(|n| value(&series, n)),
        [2.0, 1.0, 1.0]
    );
    // A wrong rcode: the query succeeded, the probe did not.
    for (module, expected) in [
        ("nx", (1.0, 0.0, 0.0)),
        ("nx_valid", (1.0, 1.0, 0.0)),
        ("refused", (1.0, 0.0, 0.0)),
        ("refused_valid", (1.0, 1.0, 0.0)),
        ("no_rcode_valid", (1.0, 0.0, 1.0)),
    ] {
        assert_eq!(
            outcome(&probe(app.probe, module, &nsd)),
            expected,
            "{module}"
        );
    }
    assert_eq!(
        success("optrcode_valid", &scripted),
        1.0,
        "an OPT record extends the rcode"
    );
    assert_eq!(success("dsotypeni", &scripted), 1.0);
}

#[test]
fn the_query_carries_the_modules_name_type_class_and_rd_bit() {
    let f = fixture();
    let app = lookout_with(&f.modules, &[]);
    for module in ["echo_rd", "echo_no_rd", "echo_escapes"] {
        let series = probe(app.probe, module, &f.scripted.addr());
        assert_eq!(value(&series, "probe_success"), 1.0, "{module}");
    }
}

#[test]
fn hostile_answers_end_as_miekg_reads_them() {
    let f = fixture();
    let app = lookout_with(&f.modules, &[]);
    let target = f.scripted.addr();
    for (behaviour, expected) in HOSTILE {
        for (transport, expected) in ["udp", "tcp"].iter().zip(expected) {
            let series = probe(app.probe, &format!("s_{behaviour}_{transport}"), &target);
            assert_eq!(outcome(&series), *expected, "{behaviour} over {transport}");
        }
    }
    assert_eq!(
        value(&probe(app.probe, "fwd_text", &target), "probe_success"),
        1.0
    );
    for (module, passes) in [("big_rules_pass", 1.0), ("big_rules_fail", 0.0)] {
        let series = probe(app.probe, module, &target);
        assert_eq!(outcome(&series), (1.0, passes, 12.0), "{module}");
    }
    // Nothing of it reached lookout's logs as a panic; it still answers.
    assert_eq!(app.admin("GET", "/healthz").status, 200);
}

#[test]
fn timeouts_and_closed_ports_fail_within_the_deadline() {
    let f = fixture();
    let app = lookout_with(&f.modules, &[]);
    let closed = crate::targets::closed_port().to_string();
    for module in ["udp", "tcp"] {
        let series = probe(app.probe, module, &closed);
        assert_eq!(outcome(&series), (0.0, 0.0, 0.0), "{module}");
    }
    // The TCP dial failed: no request began (a UDP "dial" only connects the
    // socket; the refusal comes with the reply).
    let series = probe(app.probe, "tcp", &closed);
    assert_eq!(
        value(&series, "probe_dns_duration_seconds{phase=\"request\"}"),
        0.0
    );
    // A TCP dial from a source address to a server whose backlog is full:
    // Go's has no timeout there, lookout's ends with the module's.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(0).unwrap();
    let full = listener.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    while let Ok(stream) = TcpStream::connect_timeout(&full, Duration::from_millis(300)) {
        held.push(stream);
        assert!(held.len() < 64, "the backlog never filled");
    }
    let series = probe(app.probe, "tcp_from_loopback_1s", &full.to_string());
    assert_eq!(outcome(&series), (0.0, 0.0, 0.0));
    // Silence: the series are all there, the phases set by the deadline.
    let series = probe(app.probe, "s_silent_udp", &f.scripted.addr());
    assert!(value(&series, "probe_dns_duration_seconds{phase=\"request\"}") > 0.0);
    drop(held);
}

#[test]
fn the_target_policy_guards_the_dns_server() {
    let f = fixture();
    let app = lookout_with(
        &f.modules,
        &["--deny-target", "127.0.0.1", "--deny-target", "localhost"],
    );
    let before = f.scripted.queries();
    for target in [f.scripted.addr(), format!("localhost:{}", f.scripted.port)] {
        let series = probe(app.probe, "s_nx_udp", &target);
        assert_eq!(outcome(&series), (0.0, 0.0, 0.0), "{target}");
    }
    assert_eq!(f.scripted.queries(), before, "no query reached the server");
    let logs = app.logs().join("\n");
    assert!(logs.contains("denied by"), "{logs}");
}

#[test]
fn lookout_probe_runs_a_dns_module() {
    let f = fixture();
    let output = lookout()
        .args(["probe", &f.nsd.addr(), "--module", "tcp", "--config.file"])
        .arg(&f.modules)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("probe_dns_query_succeeded 1\n"), "{text}");
    let output = lookout()
        .args([
            "probe",
            &f.scripted.addr(),
            "--module",
            "s_nx_udp",
            "--config.file",
        ])
        .arg(&f.modules)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}

// ------------------------------------------------------------ differential

/// Why 0.23 and lookout (following 0.28) differ for a case, by the key a
/// case carries: the [`crate::differential::SINCE_0_23`] entry, and the
/// `probe_success` lookout must give.
fn since_0_23(key: &str) -> (&'static str, f64) {
    let entry = match key {
        "aaaa_mapped" => "dns: an AAAA record holding an IPv4-mapped address prints ::ffff:a.b.c.d",
        "typed" => "dns: ISDN, NXT, IPSECKEY, AMTRELAY, RESINFO and NXNAME records print in their own format",
        "ohttp" => "dns: SVCB key 8 prints as ohttp",
        "dsotypeni" => "dns: valid_rcodes takes DSOTYPENI",
        "opt" => "dns: an OPT record prints `flags:;` (not `flags: ;`), its MBZ bits and its EXPIRE option (cases with an OPT record without the DO bit are not compared)",
        other => panic!("no SINCE_0_23 entry for {other}"),
    };
    assert!(
        crate::differential::SINCE_0_23
            .iter()
            .any(|(what, _)| *what == entry),
        "SINCE_0_23 lists {entry:?}"
    );
    (entry, 1.0)
}

#[test]
fn dns_probes_answer_as_blackbox_exporter_does() {
    let f = fixture();
    let app = lookout_with(&f.modules, &[]);
    let blackbox = spawn_blackbox(&f.modules);
    let (nsd, scripted) = (f.nsd.addr(), f.scripted.addr());
    let closed = crate::targets::closed_port().to_string();
    let mut cases: Vec<(String, String, Option<&str>)> = Vec::new();
    let mut case = |module: &str, target: &str, since: Option<&'static str>| {
        cases.push((module.to_owned(), target.to_owned(), since));
    };
    for module in [
        "udp",
        "tcp",
        "udp_from_loopback",
        "tcp_from_loopback",
        "udp_from_elsewhere",
        "tcp_from_ipv6",
        "nx",
        "nx_valid",
        "refused",
        "refused_valid",
        "no_rcode_valid",
        "soa",
        "soa_elsewhere",
        "any",
    ] {
        case(module, &nsd, None);
    }
    case("dot", &f.nsd.tls_addr(), None);
    case(
        "dot_server_name",
        &format!("127.0.0.1:{}", f.nsd.tls_port),
        None,
    );
    case("dot_unknown_ca", &f.nsd.tls_addr(), None);
    case("udp", &closed, None);
    case("tcp", &closed, None);
    case("udp", "[::1]", None);
    case("udp", &format!("127.0.0.1:{}x", f.nsd.port), None);
    for rule in ["matches", "all", "not", "none"] {
        for result in ["pass", "fail"] {
            case(&format!("rule_{rule}_{result}"), &nsd, None);
            case(&format!("empty_{rule}_{result}"), &nsd, None);
        }
    }
    for module in [
        "big_rules_pass",
        "big_rules_fail",
        "authority_fail",
        "authority_pass",
        "additional_fail",
        "additional_pass",
        "sections_all",
        "fwd_text",
        "optrcode_valid",
        "echo_rd",
        "echo_no_rd",
        "echo_escapes",
    ] {
        case(module, &scripted, None);
    }
    case("dsotypeni", &scripted, Some("dsotypeni"));
    for i in 0..ZONE_TEXTS.len() {
        case(&format!("zone_text_{i}"), &nsd, None);
    }
    for (i, (_, _, _, _, since)) in scripted_records().iter().enumerate() {
        case(&format!("rr_text_{i}"), &scripted, *since);
    }
    for (behaviour, _) in HOSTILE {
        for transport in ["udp", "tcp"] {
            case(&format!("s_{behaviour}_{transport}"), &scripted, None);
        }
    }

    eprintln!("comparing {} dns cases", cases.len());
    let mut differences = Vec::new();
    for (module, target, since) in &cases {
        let path = format!("/probe?module={module}&target={}", encode(target));
        let ours = request(app.probe, "GET", &path, &[]);
        let theirs = request(blackbox.addr, "GET", &path, &[]);
        assert_eq!(
            (ours.status, theirs.status),
            (200, 200),
            "{module} {target}"
        );
        let (mut our_series, our_meta) = exposition(&ours.body);
        let (mut their_series, their_meta) = exposition(&theirs.body);
        let case = format!("{module} {target}");
        if let Some(key) = since {
            // 0.23 prints or accepts differently: the outcome is not compared,
            // lookout's must be 0.28's.
            let (_, expected) = since_0_23(key);
            let ours = our_series.remove("probe_success");
            their_series.remove("probe_success");
            if ours != Some(expected) {
                differences.push(format!(
                    "{case}: lookout's probe_success {ours:?}, 0.28 gives {expected}"
                ));
            }
        }
        differences.extend(compare(
            &case,
            &(our_series, our_meta),
            &(their_series, their_meta),
            same_or_timing,
        ));
    }
    // The exact-text modules pass in lookout: their regexps are right.
    for i in 0..ZONE_TEXTS.len() {
        let series = probe(app.probe, &format!("zone_text_{i}"), &nsd);
        assert_eq!(value(&series, "probe_success"), 1.0, "zone_text_{i}");
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

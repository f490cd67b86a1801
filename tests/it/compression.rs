//! `compression` (gzip, deflate, br) against a server that sends coded
//! bodies, good and hostile: the same answers as blackbox_exporter 0.23 where
//! 0.28 reads bodies as 0.23 does, and 0.28's own rules checked directly
//! where it does not (brotli bodies cut short or empty: andybalholm/brotli
//! 1.2 refuses them, the 1.0 that 0.23 is built with does not).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, OnceLock,
    },
    thread,
    time::Duration,
};

use flate2::{write, Compression as Level};

use crate::{
    differential::{compare, exposition, same_or_timing, since_0_23, spawn_blackbox},
    probe::{encode, probe},
    support::{request, spawn_app, spawn_process},
};

/// What the body tests decode.
const HELLO: &[u8] = b"hello world\n";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = write::GzEncoder::new(Vec::new(), Level::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = write::DeflateEncoder::new(Vec::new(), Level::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = write::ZlibEncoder::new(Vec::new(), Level::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn brotli(data: &[u8], lgwin: i32) -> Vec<u8> {
    let params = brotli::enc::BrotliEncoderParams {
        lgwin,
        quality: 1,
        ..Default::default()
    };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap();
    out
}

/// Text of `len` bytes that compresses, but not to nothing.
fn text(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"lookout probes "[i % 15] ^ ((i / 997) as u8 & 1))
        .collect()
}

/// A canned answer: content coding and body (sent with its Content-Length,
/// or with none and a close when `close_delimited`).
struct Page {
    status: &'static str,
    encoding: &'static str,
    extra: String,
    body: Vec<u8>,
}

fn page(encoding: &'static str, body: Vec<u8>) -> Page {
    Page {
        status: "200 OK",
        encoding,
        extra: String::new(),
        body,
    }
}

/// Every body the server sends, made once.
fn pages() -> &'static Vec<(&'static str, Page)> {
    static PAGES: OnceLock<Vec<(&'static str, Page)>> = OnceLock::new();
    PAGES.get_or_init(|| {
        let long = text(200_000);
        let cut = |mut stream: Vec<u8>| {
            stream.truncate(stream.len() / 2);
            stream
        };
        let mut two_members = gzip(b"hello ");
        two_members.extend(gzip(b"world\n"));
        let mut gzip_then_garbage = gzip(HELLO);
        gzip_then_garbage.extend_from_slice(b"trailing garbage");
        let mut deflate_then_more = deflate(HELLO);
        deflate_then_more.extend_from_slice(b"not read by anyone");
        let mut br_then_more = brotli(HELLO, 22);
        br_then_more.push(0);
        let mut bad_crc = gzip(&long);
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 0xff;
        // 64 MiB of zeros: 64 gzip members of 1 MiB each (64 KiB in all),
        // and one brotli stream of 2 KiB.
        let zeros = vec![0u8; 1 << 20];
        let gzip_bomb: Vec<u8> = std::iter::repeat_n(gzip(&zeros), 64).flatten().collect();
        let br_bomb = brotli(&vec![0u8; 64 << 20], 24);
        // 40 MiB of empty stored DEFLATE blocks (each 5 bytes, no output),
        // then a final empty one: a body that decodes to nothing.
        let mut empty_blocks: Vec<u8> = std::iter::repeat_n([0u8, 0, 0, 0xff, 0xff], 8 << 20)
            .flatten()
            .collect();
        empty_blocks.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        vec![
            ("/gzip", page("gzip", gzip(HELLO))),
            ("/deflate", page("deflate", deflate(HELLO))),
            ("/br", page("br", brotli(HELLO, 22))),
            ("/gzip-long", page("gzip", gzip(&long))),
            ("/deflate-long", page("deflate", deflate(&long))),
            ("/br-long", page("br", brotli(&long, 22))),
            ("/gzip-two-members", page("gzip", two_members)),
            ("/gzip-garbage-after", page("gzip", gzip_then_garbage)),
            ("/gzip-bad-crc", page("gzip", bad_crc)),
            ("/gzip-cut", page("gzip", cut(gzip(&long)))),
            ("/deflate-cut", page("deflate", cut(deflate(&long)))),
            ("/br-cut", page("br", cut(brotli(&long, 22)))),
            ("/deflate-more-after", page("deflate", deflate_then_more)),
            ("/br-more-after", page("br", br_then_more)),
            ("/zlib", page("deflate", zlib(HELLO))),
            ("/plain", page("", HELLO.to_vec())),
            ("/empty-gzip", page("gzip", Vec::new())),
            ("/empty-br", page("br", Vec::new())),
            ("/gzip-bomb", page("gzip", gzip_bomb)),
            ("/br-bomb", page("br", br_bomb)),
            ("/empty-blocks", page("deflate", empty_blocks)),
            (
                "/redirect-gzip",
                Page {
                    status: "302 Found",
                    encoding: "gzip",
                    extra: "Location: /gzip\r\n".to_owned(),
                    body: gzip(b"moved\n"),
                },
            ),
            (
                "/redirect-empty",
                Page {
                    status: "302 Found",
                    encoding: "gzip",
                    extra: "Location: /gzip\r\n".to_owned(),
                    body: Vec::new(),
                },
            ),
        ]
    })
}

/// The coded-body server: the pages above, and `/echo/CODING`, whose body is
/// the request's Accept-Encoding (or `none`) in that coding. Bytes written
/// are counted, so a test can see where a prober stopped reading.
struct Server {
    addr: SocketAddr,
    written: Arc<AtomicU64>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&written);
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let counter = Arc::clone(&counter);
                thread::spawn(move || answer(&stream, &counter));
            }
        });
        Server { addr, written }
    })
}

fn answer(stream: &TcpStream, written: &AtomicU64) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut accept_encoding = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {
                if let Some((name, value)) = line.split_once(':') {
                    if name.trim().eq_ignore_ascii_case("accept-encoding") {
                        accept_encoding = Some(value.trim().to_owned());
                    }
                }
            }
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or_default();
    let echo;
    let mut cut = page("", Vec::new());
    if let Some((coding, n)) = path
        .strip_prefix("/cut/")
        .and_then(|rest| rest.split_once('/'))
    {
        // CODING's stream of the long text, cut to N bytes.
        let n: usize = n.parse().unwrap_or(0);
        let (encoding, mut stream) = match coding {
            "gzip" => ("gzip", gzip(&text(200_000))),
            "deflate" => ("deflate", deflate(&text(200_000))),
            _ => ("br", brotli(&text(200_000), 22)),
        };
        stream.truncate(n);
        cut = page(encoding, stream);
    }
    let page = match path.strip_prefix("/echo/") {
        Some(coding) => {
            let said = accept_encoding.unwrap_or_else(|| "none".to_owned());
            let body = match coding {
                "gzip" => gzip(said.as_bytes()),
                "deflate" => deflate(said.as_bytes()),
                _ => brotli(said.as_bytes(), 22),
            };
            echo = page("", body);
            &echo
        }
        None if path.starts_with("/cut/") => &cut,
        None => match pages().iter().find(|(p, _)| *p == path) {
            Some((_, page)) => page,
            None => return,
        },
    };
    let encoding = match page.encoding {
        "" => String::new(),
        coding => format!("Content-Encoding: {coding}\r\n"),
    };
    let head = format!(
        "HTTP/1.1 {}\r\n{encoding}{}Content-Length: {}\r\nConnection: close\r\n\r\n",
        page.status,
        page.extra,
        page.body.len()
    );
    let mut stream = stream;
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    for chunk in page.body.chunks(64 << 10) {
        if stream.write_all(chunk).is_err() {
            return;
        }
        written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    let _ = stream.flush();
    // Wait for the prober to hang up, so closing sends no reset.
    let _ = stream.read(&mut [0u8; 1]);
}

const MODULES: &str = r#"modules:
  gzip:
    prober: http
    http: {compression: gzip, headers: {Accept-Encoding: gzip}}
  deflate:
    prober: http
    http: {compression: deflate, headers: {Accept-Encoding: deflate}}
  br:
    prober: http
    http: {compression: br, headers: {Accept-Encoding: br}}
  gzip_hello:
    prober: http
    http: {compression: gzip, fail_if_body_not_matches_regexp: ['^hello world\n$']}
  deflate_hello:
    prober: http
    http: {compression: deflate, fail_if_body_not_matches_regexp: ['^hello world\n$']}
  br_hello:
    prober: http
    http: {compression: br, fail_if_body_not_matches_regexp: ['^hello world\n$']}
  gzip_sent_nothing:
    prober: http
    http: {compression: gzip, fail_if_body_not_matches_regexp: ['^none$']}
  br_sent_as_configured:
    prober: http
    http: {compression: br, headers: {accept-encoding: 'gzip;q=0.5, br'}, fail_if_body_not_matches_regexp: ['^gzip;q=0.5, br$']}
  gzip_1k:
    prober: http
    http: {compression: gzip, body_size_limit: 1KB}
  br_1k:
    prober: http
    http: {compression: br, body_size_limit: 1KB}
  gzip_no_redirects:
    prober: http
    http: {compression: gzip, follow_redirects: false, valid_status_codes: [302]}
  deflate_no_redirects:
    prober: http
    http: {compression: deflate, follow_redirects: false, valid_status_codes: [302]}
  deflate_no_redirects_body:
    prober: http
    http: {compression: deflate, follow_redirects: false, valid_status_codes: [302], fail_if_body_matches_regexp: ['never']}
  plain_no_redirects_body:
    prober: http
    http: {follow_redirects: false, valid_status_codes: [302], fail_if_body_not_matches_regexp: ['moved']}
  identity:
    prober: http
    http: {compression: identity}
  plain:
    prober: http
"#;

fn modules() -> PathBuf {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blackbox.yml");
        std::fs::write(&path, MODULES).unwrap();
        (dir, path)
    })
    .1
    .clone()
}

fn value(metrics: &[(String, f64)], series: &str) -> Option<f64> {
    metrics.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

/// (probe_success, probe_http_content_length, probe_http_uncompressed_body_length).
fn outcome(metrics: &[(String, f64)]) -> (f64, f64, f64) {
    let get = |name: &str| value(metrics, name).unwrap_or(f64::NAN);
    (
        get("probe_success"),
        get("probe_http_content_length"),
        get("probe_http_uncompressed_body_length"),
    )
}

fn compressed_len(path: &str) -> f64 {
    pages()
        .iter()
        .find(|(p, _)| *p == path)
        .unwrap()
        .1
        .body
        .len() as f64
}

#[test]
fn coded_bodies_answer_as_blackbox_exporter_reads_them() {
    let s = server();
    let lookout = spawn_app(&["--config.file", modules().to_str().unwrap()], &[]);
    lookout.admin_until("/readyz", |r| r.status == 200);
    let blackbox = spawn_blackbox(&modules());
    let cases = [
        ("gzip", "/gzip"),
        ("deflate", "/deflate"),
        ("br", "/br"),
        ("gzip_hello", "/gzip"),
        ("deflate_hello", "/deflate"),
        ("br_hello", "/br"),
        ("gzip", "/gzip-long"),
        ("deflate", "/deflate-long"),
        ("br", "/br-long"),
        ("gzip_hello", "/gzip-two-members"),
        ("gzip", "/gzip-garbage-after"),
        ("gzip", "/gzip-bad-crc"),
        ("gzip", "/gzip-cut"),
        ("deflate", "/deflate-cut"),
        ("deflate_hello", "/deflate-more-after"),
        ("br", "/br-more-after"),
        ("deflate", "/zlib"),
        // The wrong coding, or none: gzip fails at its header, before the
        // body is read (and what Go's reader took is not counted).
        ("gzip", "/plain"),
        ("gzip_hello", "/plain"),
        ("gzip", "/deflate"),
        ("deflate", "/gzip"),
        ("br", "/plain"),
        ("br", "/gzip"),
        ("gzip", "/empty-gzip"),
        // The limit counts decoded bytes.
        ("gzip_1k", "/gzip-long"),
        ("gzip_1k", "/gzip-bomb"),
        ("br_1k", "/br-long"),
        ("br_1k", "/br-bomb"),
        // No Accept-Encoding is sent but the module's own.
        ("gzip_sent_nothing", "/echo/gzip"),
        ("br_sent_as_configured", "/echo/br"),
        // A refused redirect's body is closed: gzip's reader fails on it,
        // the others only when a check reads it.
        ("gzip_no_redirects", "/redirect-gzip"),
        ("gzip_no_redirects", "/redirect-empty"),
        ("deflate_no_redirects", "/redirect-gzip"),
        ("deflate_no_redirects_body", "/redirect-gzip"),
        ("deflate_no_redirects_body", "/redirect-empty"),
        // Without compression: a closed body fails a body check, and one
        // that had none is checked as empty.
        ("plain_no_redirects_body", "/redirect-gzip"),
        ("plain_no_redirects_body", "/redirect-empty"),
        // Without compression the body is counted as it came.
        ("identity", "/gzip-long"),
        ("plain", "/gzip-long"),
    ];
    let mut differences = Vec::new();
    for (module, path) in cases {
        let target = format!("http://{}{path}", s.addr);
        let query = format!("/probe?module={module}&target={}", encode(&target));
        let ours = request(lookout.probe, "GET", &query, &[]);
        let theirs = request(blackbox.addr, "GET", &query, &[]);
        assert_eq!((ours.status, theirs.status), (200, 200), "{module} {path}");
        let (ours, theirs) = since_0_23(&ours.body, &theirs.body, module);
        let case = format!("{module} {path}");
        // A DEFLATE stream cut short: Go's reader wants as many bits as the
        // block's end-of-block code before it decodes any symbol, so it may
        // count one symbol (a literal, or a copy of up to 258 bytes) less
        // than the bits that arrived hold; both fail the probe.
        let cut = path.ends_with("-cut");
        let same = |series: &str, ours: f64, theirs: f64| {
            same_or_timing(series, ours, theirs)
                || (cut
                    && series == "probe_http_uncompressed_body_length"
                    && (0.0..=258.0).contains(&(ours - theirs)))
        };
        let found = compare(&case, &exposition(&ours), &exposition(&theirs), same);
        eprintln!("compared {case}: {} differences", found.len());
        differences.extend(found);
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

#[test]
fn bodies_decode_to_what_was_coded_and_count_both_lengths() {
    let s = server();
    let app = spawn_app(&["--config.file", modules().to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    for (module, path) in [
        ("gzip", "/gzip-long"),
        ("deflate", "/deflate-long"),
        ("br", "/br-long"),
    ] {
        let m = probe(&app, module, &format!("http://{}{path}", s.addr));
        // Content-Length is the coded size; the uncompressed length the decoded one.
        assert_eq!(
            outcome(&m),
            (1.0, compressed_len(path), 200_000.0),
            "{module}"
        );
    }
    for module in ["gzip_hello", "deflate_hello", "br_hello"] {
        let path = format!("/{}", module.trim_end_matches("_hello"));
        let m = probe(&app, module, &format!("http://{}{path}", s.addr));
        assert_eq!(outcome(&m), (1.0, compressed_len(&path), 12.0), "{module}");
        assert_eq!(value(&m, "probe_failed_due_to_regex"), Some(0.0));
    }
}

#[test]
fn brotli_bodies_cut_short_or_empty_fail_as_in_blackbox_exporter_0_28() {
    // andybalholm/brotli 1.2 (0.28) reports io.ErrUnexpectedEOF for both.
    let s = server();
    let app = spawn_app(&["--config.file", modules().to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    let m = probe(&app, "br", &format!("http://{}/br-cut", s.addr));
    let (success, _, decoded) = outcome(&m);
    assert_eq!(success, 0.0);
    assert!(decoded > 0.0 && decoded < 200_000.0, "{decoded}");
    let m = probe(&app, "br_hello", &format!("http://{}/empty-br", s.addr));
    assert_eq!(outcome(&m), (0.0, 0.0, 0.0));
    assert_eq!(value(&m, "probe_failed_due_to_regex"), Some(1.0));
}

#[test]
fn bombs_stop_at_the_decoded_limit_without_the_memory_to_hold_them() {
    let s = server();
    let app = spawn_process(&["--config.file", modules().to_str().unwrap()], &[]);
    app.admin_until("/readyz", |r| r.status == 200);
    // Warm up the allocator and the connection paths.
    let m = probe(&app, "gzip", &format!("http://{}/gzip", s.addr));
    assert_eq!(outcome(&m).0, 1.0);
    let before = app.status("VmHWM");
    for (module, path) in [("gzip", "/gzip-bomb"), ("br", "/br-bomb")] {
        // 64 MiB decoded: the probe stops at the default 10 MiB limit.
        let m = probe(&app, module, &format!("http://{}{path}", s.addr));
        assert_eq!(
            outcome(&m),
            (0.0, compressed_len(path), (10 << 20) as f64),
            "{module}"
        );
    }
    let grown = app.status("VmHWM") - before;
    eprintln!("peak resident memory grew by {grown} KiB decoding two 64 MiB bombs");
    // The body is not kept (no regexp): what grows is the brotli decoder's
    // window (16 MiB, which this stream asks for), its tables and buffers,
    // within the 27 MiB the module reserves; 64 MiB held would be far above.
    assert!(grown < 32 << 10, "peak grew by {grown} KiB");
}

#[test]
fn a_compressed_body_that_decodes_to_nothing_is_not_read_forever() {
    let s = server();
    let app = spawn_app(
        &["--config.file", modules().to_str().unwrap()],
        &[("RUST_LOG", "debug")],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    let before = s.written.load(Ordering::Relaxed);
    let m = probe(&app, "deflate", &format!("http://{}/empty-blocks", s.addr));
    assert_eq!(outcome(&m), (0.0, compressed_len("/empty-blocks"), 0.0));
    app.log_line("compressed body exceeds");
    // Read to 1⅛ × the 10 MiB limit and 128 KiB, not to the 40 MiB sent.
    let written = s.written.load(Ordering::Relaxed) - before;
    assert!(written < 30 << 20, "the server wrote {written} bytes");
}

#[test]
fn a_brotli_module_reserves_its_decoder_from_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blackbox.yml");
    // At the default 10 MiB limit a brotli decoder may hold 16 MiB of window
    // (and half that while it grows) and 3 MiB of tables: 27 MiB and more.
    let modules = "modules:\n  br:\n    prober: http\n    http: {compression: br}\n";
    std::fs::write(&path, modules).unwrap();
    let output = crate::support::lookout()
        .args([
            "--config.file",
            path.to_str().unwrap(),
            "--max-probe-memory",
            "24MiB",
        ])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("module \"br\"") && stderr.contains("body decoder"),
        "{stderr}"
    );
    // A small body limit shrinks the window it may need.
    let modules =
        "modules:\n  br:\n    prober: http\n    http: {compression: br, body_size_limit: 64KiB}\n";
    std::fs::write(&path, modules).unwrap();
    let app = spawn_process(
        &[
            "--config.file",
            path.to_str().unwrap(),
            "--max-probe-memory",
            "8MiB",
        ],
        &[],
    );
    app.admin_until("/readyz", |r| r.status == 200);
    let m = probe(&app, "br", &format!("http://{}/br", server().addr));
    assert_eq!(outcome(&m).0, 1.0);
}

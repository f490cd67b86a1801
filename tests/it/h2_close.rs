//! How an HTTPS probe over HTTP/2 ends its connection
//! (src/prober/http/tls_stream.rs, `AbortOnDrop` in exchange.rs), seen by a
//! server written here frame by frame: TLS's close_notify and then the end
//! of the stream, no GOAWAY (Go's client sends none when it closes), and
//! nothing left open after a probe that timed out on a server that never
//! answers.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpListener},
    sync::{mpsc, Arc},
    thread,
};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::{
    probe::{probe, value},
    support::{spawn_with_modules, PATIENCE},
    targets::Pki,
};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;

/// How the client's side of one connection ended.
#[derive(Debug, PartialEq)]
struct Ending {
    /// Types of the frames that came after the request's HEADERS.
    frames_after_request: Vec<u8>,
    /// close_notify came before the end of the TCP stream.
    close_notify: bool,
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// Fills `buf`; at the end of the stream, whether it ended cleanly (rustls
/// reads 0 bytes after close_notify, and fails at a TCP end without it).
fn fill(tls: &mut impl Read, buf: &mut [u8]) -> Result<(), bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match tls.read(&mut buf[filled..]) {
            Ok(0) => return Err(true),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(false),
        }
    }
    Ok(())
}

/// Reads one frame: (type, stream), or how the stream ended.
fn read_frame(tls: &mut impl Read) -> Result<(u8, u32), bool> {
    let mut head = [0; 9];
    fill(tls, &mut head)?;
    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    fill(tls, &mut vec![0; length])?;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Ok((head[3], stream))
}

/// An h2 server for one connection: answers the first request 200 (or never,
/// when `answer` is false) and reports how the client ended.
fn serve(pki: &Pki, answer: bool) -> (SocketAddr, mpsc::Receiver<Ending>) {
    let leaf = pki.leaf(&["localhost"], (2020, 2039));
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(leaf.chain, leaf.key)
            .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    config.send_tls13_tickets = 0;
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, ending) = mpsc::channel();
    thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), tcp);
        let mut preface = [0; PREFACE.len()];
        tls.read_exact(&mut preface).unwrap();
        assert_eq!(preface, PREFACE);
        tls.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
        tls.write_all(&frame(SETTINGS, 0x1, 0, &[])).unwrap();
        let mut after = None;
        let close_notify = loop {
            match read_frame(&mut tls) {
                Ok((HEADERS, stream)) if after.is_none() => {
                    after = Some(Vec::new());
                    if answer {
                        // :status 200 (HPACK static index 8), END_STREAM | END_HEADERS.
                        tls.write_all(&frame(HEADERS, 0x5, stream, &[0x88]))
                            .unwrap();
                    }
                }
                Ok((kind, _)) => {
                    if let Some(after) = after.as_mut() {
                        after.push(kind);
                    }
                }
                Err(clean) => break clean,
            }
        };
        let _ = done.send(Ending {
            frames_after_request: after.unwrap_or_default(),
            close_notify,
        });
    });
    (addr, ending)
}

#[test]
fn an_h2_probe_ends_with_close_notify_and_no_goaway() {
    let pki = Pki::new("lookout h2 close CA");
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with_modules(
        dir.path(),
        &format!(
            "modules:\n  h2:\n    prober: http\n    timeout: 2s\n    http: {{tls_config: {{ca_file: {}}}}}\n",
            pki.ca_file(dir.path(), "ca.pem").display()
        ),
    );
    let probe =
        |addr: SocketAddr| probe(&app, "h2", &format!("https://localhost:{}/", addr.port()));
    let value = |metrics: &[(String, f64)], series: &str| {
        value(metrics, series).unwrap_or_else(|| panic!("{series} is reported"))
    };

    let (addr, ending) = serve(&pki, true);
    let metrics = probe(addr);
    assert_eq!(value(&metrics, "probe_success"), 1.0);
    assert_eq!(value(&metrics, "probe_http_version"), 2.0);
    let ending = ending.recv_timeout(PATIENCE).expect("the client closed");
    assert!(!ending.frames_after_request.contains(&GOAWAY), "{ending:?}");
    assert!(ending.close_notify, "{ending:?}");

    // A server that never answers: the probe times out, and its connection
    // is closed then, not left to a task that outlives the probe.
    let (addr, ending) = serve(&pki, false);
    assert_eq!(value(&probe(addr), "probe_success"), 0.0);
    let ending = ending
        .recv_timeout(PATIENCE)
        .expect("the connection of a timed-out probe is closed");
    assert!(ending.close_notify, "{ending:?}");
}

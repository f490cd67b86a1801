//! Attacks on the memory of verified chain signatures
//! (src/prober/verified_signatures.rs): once a chain has been verified, a
//! server that presents the same certificate with another signature, or a
//! module that trusts another key under the same CA name, must still fail,
//! and the name is still checked on every probe.

use rustls::pki_types::CertificateDer;

use crate::{
    probe::{probe, value},
    support::{spawn_with_modules, App},
    targets::{serve, server_tls, Leaf, Pki},
};

fn success(app: &App, module: &str, target: &str) -> f64 {
    value(&probe(app, module, target), "probe_success").expect("probe_success is reported")
}

/// The same certificate, its signature's last byte changed: the DER still
/// parses, the to-be-signed bytes are the same, the signature is wrong.
fn with_forged_signature(leaf: &Leaf) -> Leaf {
    let mut der = leaf.chain[0].to_vec();
    *der.last_mut().unwrap() ^= 0x01;
    Leaf {
        chain: vec![CertificateDer::from(der)],
        key: leaf.key.clone_key(),
    }
}

#[test]
fn a_remembered_signature_vouches_for_nothing_else() {
    let pki = Pki::new("lookout remembered-signature CA");
    // Same name, another key: what a cache keyed by certificate would confuse.
    let twin = Pki::new("lookout remembered-signature CA");
    let dir = tempfile::tempdir().unwrap();
    let (ca, twin_ca) = (
        pki.ca_file(dir.path(), "ca.pem"),
        twin.ca_file(dir.path(), "twin.pem"),
    );
    let app = spawn_with_modules(
        dir.path(),
        &format!(
            "modules:\n  https:\n    prober: http\n    http: {{tls_config: {{ca_file: {}}}}}\n  twin:\n    prober: http\n    http: {{tls_config: {{ca_file: {}}}}}\n",
            ca.display(),
            twin_ca.display()
        ),
    );

    let leaf = pki.leaf(&["localhost"], (2020, 2039));
    let forged = with_forged_signature(&leaf);
    let versions = &[&rustls::version::TLS13, &rustls::version::TLS12];
    let genuine = serve(Some(server_tls(leaf, versions)));
    let forged = serve(Some(server_tls(forged, versions)));
    let genuine_url = format!("https://localhost:{}/", genuine.port());

    // Verified, then remembered: the second probe takes the memory's answer.
    assert_eq!(success(&app, "https", &genuine_url), 1.0);
    assert_eq!(success(&app, "https", &genuine_url), 1.0);

    // Same certificate body, another signature; the server's handshake
    // signature is genuine.
    let forged_url = format!("https://localhost:{}/", forged.port());
    for attempt in 1..=2 {
        assert_eq!(
            success(&app, "https", &forged_url),
            0.0,
            "a forged signature over remembered bytes passed (attempt {attempt})"
        );
    }
    // Same certificate and signature, another trust anchor of the same name.
    assert_eq!(success(&app, "twin", &genuine_url), 0.0);
    // The name is checked on every probe: the leaf names localhost only.
    assert_eq!(
        success(
            &app,
            "https",
            &format!("https://127.0.0.1:{}/", genuine.port())
        ),
        0.0
    );
    // And the genuine chain still passes after the failures.
    assert_eq!(success(&app, "https", &genuine_url), 1.0);
}

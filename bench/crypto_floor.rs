//! The floor of an HTTPS probe's CPU (issue 18): only the public-key
//! cryptography that one probe of bench/profile.sh's target must do, with ring
//! alone, built with lookout's own profile. The target negotiates TLS 1.3 with
//! X25519 (the first group rustls offers) and presents a P-256 leaf signed by a
//! P-256 CA that is the trust anchor, so a probe does:
//!
//! - one X25519 key generation (a fixed-base scalar multiplication) and one
//!   agreement (a variable-base one);
//! - two ECDSA P-256 SHA-256 verifications: the server's CertificateVerify, with
//!   the leaf's key, and the leaf's signature, with the CA's key (an anchor's
//!   own signature is never checked).
//!
//! `crypto_floor ir` runs each operation once to warm up, then ten times inside
//! a function bench/callgrind.py finds by name (`floor_x25519`, `floor_ecdsa`);
//! `crypto_floor time` prints nanoseconds per operation (best and median batch
//! mean of 15 batches) as TSV.

#![allow(clippy::print_stdout)]

use std::{hint::black_box, time::Instant};

use ring::{
    agreement::{self, EphemeralPrivateKey},
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, KeyPair},
};

/// What the measured functions repeat, to divide the counts by.
const REPEAT: u32 = 10;

struct Inputs {
    rng: SystemRandom,
    peer: Vec<u8>,
    public_key: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl Inputs {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let peer = EphemeralPrivateKey::generate(&agreement::X25519, &rng)
            .and_then(|key| key.compute_public_key())
            .expect("ring generates an X25519 key")
            .as_ref()
            .to_vec();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("ring generates a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .expect("ring reads the key it made");
        // TLS 1.3's CertificateVerify content: 64 spaces, the context string,
        // a zero byte and a SHA-256 transcript hash (130 bytes).
        let mut message = vec![b' '; 64];
        message.extend_from_slice(b"TLS 1.3, server CertificateVerify\0");
        message.extend_from_slice(&[0x5a; 32]);
        let signature = pair
            .sign(&rng, &message)
            .expect("ring signs")
            .as_ref()
            .to_vec();
        Self {
            rng,
            peer,
            public_key: pair.public_key().as_ref().to_vec(),
            message,
            signature,
        }
    }
}

/// One X25519 exchange as rustls' ring provider makes it: a key pair, its
/// public half for the key share, the agreement with the server's share.
fn x25519(inputs: &Inputs) {
    let key = EphemeralPrivateKey::generate(&agreement::X25519, &inputs.rng)
        .expect("ring generates an X25519 key");
    let public = key.compute_public_key().expect("the public half");
    black_box(public.as_ref());
    let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, black_box(&inputs.peer));
    agreement::agree_ephemeral(key, &peer, |secret| {
        black_box(secret);
    })
    .expect("the agreement");
}

/// One ECDSA P-256 SHA-256 verification, as webpki asks ring for it.
fn ecdsa(inputs: &Inputs) {
    let key = signature::UnparsedPublicKey::new(
        &signature::ECDSA_P256_SHA256_ASN1,
        black_box(&inputs.public_key),
    );
    key.verify(black_box(&inputs.message), black_box(&inputs.signature))
        .expect("the signature verifies");
}

#[inline(never)]
fn floor_x25519(inputs: &Inputs) {
    for _ in 0..REPEAT {
        x25519(inputs);
    }
}

#[inline(never)]
fn floor_ecdsa(inputs: &Inputs) {
    for _ in 0..REPEAT {
        ecdsa(inputs);
    }
}

/// Nanoseconds per call of `op`: the best and the median mean of 15 batches.
fn time(inputs: &Inputs, op: fn(&Inputs)) -> (f64, f64) {
    const BATCH: u32 = 200;
    for _ in 0..BATCH {
        op(inputs);
    }
    let mut means: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..BATCH {
                op(inputs);
            }
            start.elapsed().as_nanos() as f64 / f64::from(BATCH)
        })
        .collect();
    means.sort_by(f64::total_cmp);
    (means[0], means[means.len() / 2])
}

fn main() {
    let inputs = Inputs::new();
    match std::env::args().nth(1).as_deref() {
        Some("ir") => {
            x25519(&inputs);
            ecdsa(&inputs);
            floor_x25519(&inputs);
            floor_ecdsa(&inputs);
            println!("repeat\t{REPEAT}");
        }
        Some("time") => {
            println!("op\tbest_ns\tmedian_ns");
            for (name, op) in [("x25519", x25519 as fn(&Inputs)), ("ecdsa_p256", ecdsa)] {
                let (best, median) = time(&inputs, op);
                println!("{name}\t{best:.0}\t{median:.0}");
            }
        }
        _ => {
            eprintln!("usage: crypto_floor ir|time");
            std::process::exit(2);
        }
    }
}

//! Certificate signatures already verified, remembered.
//!
//! A prober asks the same targets again and again, and each answers with the
//! same chain: checking the chain's signatures anew on every probe repeats
//! the same pure computation (an ECDSA P-256 verification is a sixth of an
//! HTTPS probe's CPU, issue 18). What is remembered is only that this
//! algorithm accepted this signature over these bytes under this key, as a
//! SHA-256 digest of all four; everything else a chain is checked for
//! (validity dates, names, key usage, path, revocation) is checked on every
//! probe. A signature that fails is never remembered, and the handshake's own
//! signature (CertificateVerify, over a transcript no two handshakes share)
//! never goes through here: only the `all` list webpki walks a chain with.

use std::{
    collections::HashSet,
    sync::{LazyLock, Mutex, MutexGuard, PoisonError},
};

use ring::digest;
use rustls::{
    crypto::WebPkiSupportedAlgorithms,
    pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm},
};

/// Digests one generation holds before it becomes the old one: two
/// generations bound the memory (at most 2 × 4,096 × 32 bytes plus the
/// tables) however many certificates hostile targets present.
const GENERATION: usize = 4096;

/// ring's algorithms, each chain-verification one remembering what it
/// accepted; `mapping`, which verifies handshake signatures, is ring's own.
/// Made once per process: rustls wants `'static` algorithms.
pub(crate) fn remembering() -> WebPkiSupportedAlgorithms {
    static REMEMBERING: LazyLock<WebPkiSupportedAlgorithms> = LazyLock::new(|| {
        let ring = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        let all: Vec<&'static dyn SignatureVerificationAlgorithm> = ring
            .all
            .iter()
            .enumerate()
            .map(|(index, &inner)| {
                let algorithm: &'static Remembering =
                    Box::leak(Box::new(Remembering { inner, index }));
                algorithm as &'static dyn SignatureVerificationAlgorithm
            })
            .collect();
        WebPkiSupportedAlgorithms {
            all: all.leak(),
            mapping: ring.mapping,
        }
    });
    *REMEMBERING
}

/// One algorithm of the list, remembering the signatures it accepted.
#[derive(Debug)]
struct Remembering {
    inner: &'static dyn SignatureVerificationAlgorithm,
    /// Its place in the list: part of the digest, so that one algorithm's
    /// success is never taken for another's over the same bytes.
    index: usize,
}

impl SignatureVerificationAlgorithm for Remembering {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let key = digest_of(self.index, public_key, message, signature);
        if verified().contains(&key) {
            return Ok(());
        }
        self.inner
            .verify_signature(public_key, message, signature)?;
        verified().add(key);
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

type Digest = [u8; 32];

/// SHA-256 over the algorithm's index and the three inputs, each but the
/// last preceded by its length, so that no two different inputs meet.
fn digest_of(index: usize, public_key: &[u8], message: &[u8], signature: &[u8]) -> Digest {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(&(index as u64).to_be_bytes());
    for part in [public_key, message] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    context.update(signature);
    let mut key = [0; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// The signatures accepted so far, in two generations: lookups see both,
/// insertions go to the young one, and when it is full the old one is dropped
/// and the young one ages. A digest found in the old generation moves to the
/// young one, so what is still probed survives.
fn verified() -> MutexGuard<'static, Generations> {
    static VERIFIED: LazyLock<Mutex<Generations>> = LazyLock::new(Mutex::default);
    // A panic elsewhere leaves the sets whole: keep using them.
    VERIFIED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sets keyed by std's random SipHash: the digests are of bytes a target
/// chooses, so a fixed hash would let it choose collisions too.
#[derive(Default)]
struct Generations {
    young: HashSet<Digest>,
    old: HashSet<Digest>,
}

impl Generations {
    /// Whether `key` was accepted; one found in the old generation moves to
    /// the young one.
    fn contains(&mut self, key: &Digest) -> bool {
        if self.young.contains(key) {
            return true;
        }
        if self.old.remove(key) {
            self.add(*key);
            return true;
        }
        false
    }

    fn add(&mut self, key: Digest) {
        if self.young.len() >= GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key);
    }
}

#[cfg(test)]
mod tests {
    use ring::{
        rand::SystemRandom,
        signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING},
    };

    use super::*;

    /// ring's list, each algorithm remembering.
    fn algorithms() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
        remembering().all
    }

    /// The P-256 SHA-256 and P-256 SHA-384 algorithms of the list.
    fn p256(hash: &str) -> &'static dyn SignatureVerificationAlgorithm {
        let wanted = rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all
            .iter()
            .position(|a| format!("{a:?}").contains("P256") && format!("{a:?}").contains(hash))
            .unwrap_or_else(|| panic!("ring has P-256 with {hash}"));
        algorithms()[wanted]
    }

    /// A fresh key, its public key, and its signature over `message`.
    fn signed(message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let signature = key.sign(&rng, message).unwrap();
        (
            key.public_key().as_ref().to_vec(),
            signature.as_ref().to_vec(),
        )
    }

    #[test]
    fn a_valid_signature_is_remembered_and_nothing_near_it_passes() {
        let message = b"a_valid_signature_is_remembered: to be signed";
        let (public_key, signature) = signed(message);
        let sha256 = p256("SHA256");
        let index = algorithms()
            .iter()
            .position(|a| std::ptr::addr_eq(*a, sha256))
            .unwrap();
        let key = digest_of(index, &public_key, message, &signature);
        assert!(!verified().contains(&key));
        sha256
            .verify_signature(&public_key, message, &signature)
            .unwrap();
        assert!(
            verified().contains(&key),
            "a verified signature is remembered"
        );
        sha256
            .verify_signature(&public_key, message, &signature)
            .unwrap();

        let mut other_signature = signature.clone();
        *other_signature.last_mut().unwrap() ^= 1;
        let mut other_message = message.to_vec();
        other_message[0] ^= 1;
        let (other_key, _) = signed(b"another key");
        for (public_key, message, signature) in [
            (&public_key, &message[..], &other_signature),
            (&public_key, &other_message[..], &signature),
            (&other_key, &message[..], &signature),
        ] {
            assert!(sha256
                .verify_signature(public_key, message, signature)
                .is_err());
        }
        // The same bytes under another algorithm are that algorithm's to judge.
        assert!(p256("SHA384")
            .verify_signature(&public_key, message, &signature)
            .is_err());
    }

    #[test]
    fn a_failed_signature_is_not_remembered() {
        let message = b"a_failed_signature_is_not_remembered";
        let (public_key, mut signature) = signed(message);
        *signature.last_mut().unwrap() ^= 1;
        let sha256 = p256("SHA256");
        for _ in 0..2 {
            assert!(sha256
                .verify_signature(&public_key, message, &signature)
                .is_err());
        }
        for index in 0..algorithms().len() {
            assert!(!verified().contains(&digest_of(index, &public_key, message, &signature)));
        }
    }

    #[test]
    fn the_memory_is_bounded_and_keeps_what_is_asked_for() {
        let mut generations = Generations::default();
        let digest = |n: usize| {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&(n as u64).to_be_bytes());
            key
        };
        let kept = digest(usize::MAX);
        generations.add(kept);
        for n in 0..5 * GENERATION {
            generations.add(digest(n));
            assert!(generations.young.len() + generations.old.len() <= 2 * GENERATION);
            // Asked for once per generation: it moves to the young one.
            if n % (GENERATION / 2) == 0 {
                let found = generations.young.contains(&kept) || generations.old.remove(&kept);
                assert!(found, "a digest still asked for was dropped at {n}");
                generations.add(kept);
            }
        }
        assert!(!generations.young.contains(&digest(0)) && !generations.old.contains(&digest(0)));
    }
}

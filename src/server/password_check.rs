//! Checking basic-auth passwords against the bcrypt hashes of
//! `--web.config.file`, without letting a flood of guesses burn the CPU.
//!
//! bcrypt is slow on purpose (a cost of 10 is tens of milliseconds, 18 is
//! seconds), so whoever may send requests could keep every core busy with
//! wrong passwords. Three things bound that:
//!
//! - **A cache of verdicts**, as exporter-toolkit keeps: a scraper sends the
//!   same credentials every time, so only its first request pays for bcrypt.
//!   An entry is keyed by an HMAC (with a key random per process) of the user,
//!   the hash and the password, so no password is kept in memory, and a
//!   changed hash in the file misses the cache by itself. Admitted and refused
//!   verdicts are kept apart, each bounded (oldest out first): guesses can
//!   evict only other guesses, never the scraper's entry.
//! - **One bcrypt at a time**, on a blocking thread, never on the threads that
//!   serve requests (exporter-toolkit also runs one at a time). A computation
//!   keeps its slot until it ends, even when its client hung up.
//! - **A bounded queue**: beyond [`MAX_WAITING`] checks waiting for the slot,
//!   a request that needs bcrypt is answered 503 at once.
//!
//! An unknown user is checked against the costliest user's hash and refused
//! whatever the outcome, so the time taken does not tell which users exist.
//! bcrypt compares its output in constant time.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
};

use prometheus_client::metrics::{counter::Counter, family::Family};
use tokio::sync::Semaphore;

use crate::{config::PasswordHash, telemetry::metrics::AuthCheckLabels};

/// Checks that may wait for the bcrypt slot; more are refused at once.
pub(crate) const MAX_WAITING: usize = 32;
/// Admitted credentials remembered: a handful of users, each one password.
const ADMITTED_ENTRIES: usize = 64;
/// Refused credentials remembered (a scraper with a stale password).
const REFUSED_ENTRIES: usize = 1024;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The user exists and the password matches its hash.
    Admitted,
    /// Unknown user or wrong password.
    Refused,
    /// Too many checks are waiting for bcrypt: try again later.
    Busy,
}

/// The bcrypt slot, the verdict cache and their counters.
#[derive(Debug)]
pub(crate) struct PasswordCheck {
    key: ring::hmac::Key,
    cache: Mutex<Cache>,
    slot: Arc<Semaphore>,
    waiting: AtomicUsize,
    checks: Family<AuthCheckLabels, Counter>,
}

#[derive(Debug, Default)]
struct Cache {
    admitted: Bounded,
    refused: Bounded,
}

/// A set of digests that forgets its oldest beyond its capacity.
#[derive(Debug, Default)]
struct Bounded {
    entries: HashMap<[u8; 32], ()>,
    order: VecDeque<[u8; 32]>,
}

impl Bounded {
    fn contains(&self, key: &[u8; 32]) -> bool {
        self.entries.contains_key(key)
    }

    fn insert(&mut self, key: [u8; 32], capacity: usize) {
        if self.entries.insert(key, ()).is_none() {
            self.order.push_back(key);
            while self.order.len() > capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.entries.remove(&oldest);
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

impl PasswordCheck {
    /// A check counting its work in `checks`.
    pub(crate) fn new(checks: Family<AuthCheckLabels, Counter>) -> Result<Self, String> {
        let random = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &random)
            .map_err(|_| "no random numbers for the password cache key".to_owned())?;
        Ok(Self {
            key,
            cache: Mutex::new(Cache::default()),
            slot: Arc::new(Semaphore::new(1)),
            waiting: AtomicUsize::new(0),
            checks,
        })
    }

    /// Whether `password` is `user`'s, with `users` as the file lists them
    /// and `decoy` the hash unknown users are checked against.
    pub(crate) async fn check(
        &self,
        users: &std::collections::BTreeMap<String, PasswordHash>,
        decoy: &PasswordHash,
        user: &[u8],
        password: &[u8],
    ) -> Verdict {
        let known = std::str::from_utf8(user)
            .ok()
            .and_then(|name| users.get(name));
        let hash = known.unwrap_or(decoy);
        let key = self.cache_key(user, hash.as_str(), password);
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            let admitted = cache.admitted.contains(&key);
            if admitted || cache.refused.contains(&key) {
                self.count("cached");
                return if admitted && known.is_some() {
                    Verdict::Admitted
                } else {
                    Verdict::Refused
                };
            }
        }
        let Some(_waiting) = Waiting::enter(&self.waiting) else {
            self.count("busy");
            return Verdict::Busy;
        };
        let Ok(permit) = Arc::clone(&self.slot).acquire_owned().await else {
            // The semaphore is never closed.
            return Verdict::Busy;
        };
        self.count("bcrypt");
        let (hash_text, password) = (hash.as_str().to_owned(), password.to_vec());
        // The permit goes with the computation: an abandoned request's bcrypt
        // still holds the slot until it ends.
        let matched = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            bcrypt::verify(password, &hash_text).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let admitted = matched && known.is_some();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if admitted {
            cache.admitted.insert(key, ADMITTED_ENTRIES);
        } else {
            cache.refused.insert(key, REFUSED_ENTRIES);
        }
        if admitted {
            Verdict::Admitted
        } else {
            Verdict::Refused
        }
    }

    fn cache_key(&self, user: &[u8], hash: &str, password: &[u8]) -> [u8; 32] {
        let mut context = ring::hmac::Context::with_key(&self.key);
        // Lengths first, so no two triples run together the same way.
        for part in [user, hash.as_bytes(), password] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(context.sign().as_ref());
        key
    }

    fn count(&self, outcome: &'static str) {
        self.checks
            .get_or_create(&AuthCheckLabels { outcome })
            .inc();
    }

    #[cfg(test)]
    fn cached(&self) -> (usize, usize) {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        (cache.admitted.len(), cache.refused.len())
    }
}

/// One check waiting for (or holding) the bcrypt slot.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WAITING).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, str::FromStr};

    use super::*;

    fn hash(password: &str) -> PasswordHash {
        PasswordHash::from_str(&bcrypt::hash(password, 4).unwrap()).unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    fn outcome(check: &PasswordCheck, outcome: &'static str) -> u64 {
        check
            .checks
            .get_or_create(&AuthCheckLabels { outcome })
            .get()
    }

    #[test]
    fn unknown_users_cost_a_bcrypt_as_known_ones_do_and_verdicts_are_remembered() {
        let check = PasswordCheck::new(Family::default()).unwrap();
        let users = BTreeMap::from([("alice".to_owned(), hash("s3cret"))]);
        let decoy = users["alice"].clone();
        runtime().block_on(async {
            let verdict = |user: &'static str, password: &'static str| {
                check.check(&users, &decoy, user.as_bytes(), password.as_bytes())
            };
            assert_eq!(verdict("alice", "s3cret").await, Verdict::Admitted);
            assert_eq!(verdict("alice", "s3cret").await, Verdict::Admitted);
            assert_eq!(verdict("alice", "wrong").await, Verdict::Refused);
            assert_eq!(verdict("alice", "S3cret").await, Verdict::Refused);
            // The decoy is alice's own hash: her password still gets no one
            // else in, computed or cached.
            assert_eq!(verdict("mallory", "s3cret").await, Verdict::Refused);
            assert_eq!(verdict("mallory", "s3cret").await, Verdict::Refused);
            assert_eq!(verdict("", "s3cret").await, Verdict::Refused);
        });
        assert_eq!(outcome(&check, "bcrypt"), 5);
        assert_eq!(outcome(&check, "cached"), 2);
        assert_eq!(check.cached(), (1, 4));
    }

    #[test]
    fn a_user_name_that_is_not_utf8_is_unknown() {
        let check = PasswordCheck::new(Family::default()).unwrap();
        let users = BTreeMap::from([("alice".to_owned(), hash("pw"))]);
        let decoy = users["alice"].clone();
        let verdict = runtime().block_on(check.check(&users, &decoy, b"al\xffice", b"pw"));
        assert_eq!(verdict, Verdict::Refused);
    }

    #[test]
    fn a_changed_hash_misses_the_cache() {
        let check = PasswordCheck::new(Family::default()).unwrap();
        let old = BTreeMap::from([("alice".to_owned(), hash("one"))]);
        let new = BTreeMap::from([("alice".to_owned(), hash("two"))]);
        runtime().block_on(async {
            assert_eq!(
                check.check(&old, &old["alice"], b"alice", b"one").await,
                Verdict::Admitted
            );
            assert_eq!(
                check.check(&new, &new["alice"], b"alice", b"one").await,
                Verdict::Refused
            );
            assert_eq!(
                check.check(&new, &new["alice"], b"alice", b"two").await,
                Verdict::Admitted
            );
        });
    }

    #[test]
    fn guesses_never_evict_admitted_credentials_and_both_caches_are_bounded() {
        let check = PasswordCheck::new(Family::default()).unwrap();
        let users = BTreeMap::from([("alice".to_owned(), hash("s3cret"))]);
        let decoy = users["alice"].clone();
        runtime().block_on(async {
            assert_eq!(
                check.check(&users, &decoy, b"alice", b"s3cret").await,
                Verdict::Admitted
            );
            // A flood of refused guesses, as far as the cache sees it.
            for guess in 0..REFUSED_ENTRIES + 50 {
                let key = check.cache_key(b"alice", decoy.as_str(), guess.to_string().as_bytes());
                check
                    .cache
                    .lock()
                    .unwrap()
                    .refused
                    .insert(key, REFUSED_ENTRIES);
            }
            let before = outcome(&check, "bcrypt");
            assert_eq!(
                check.check(&users, &decoy, b"alice", b"s3cret").await,
                Verdict::Admitted
            );
            assert_eq!(outcome(&check, "bcrypt"), before, "answered from the cache");
        });
        assert_eq!(check.cached(), (1, REFUSED_ENTRIES));
        let mut bounded = Bounded::default();
        for i in 0..100u8 {
            bounded.insert([i; 32], 10);
        }
        assert_eq!(bounded.len(), 10);
        assert!(bounded.contains(&[99; 32]) && !bounded.contains(&[89; 32]));
    }

    #[test]
    fn beyond_the_queue_a_check_is_busy_and_computes_nothing() {
        let check = PasswordCheck::new(Family::default()).unwrap();
        let hold: Vec<_> = (0..MAX_WAITING)
            .map(|_| Waiting::enter(&check.waiting).unwrap())
            .collect();
        let users = BTreeMap::from([("alice".to_owned(), hash("s3cret"))]);
        let decoy = users["alice"].clone();
        let verdict = runtime().block_on(check.check(&users, &decoy, b"alice", b"s3cret"));
        assert_eq!(verdict, Verdict::Busy);
        assert_eq!(outcome(&check, "busy"), 1);
        assert_eq!(outcome(&check, "bcrypt"), 0);
        drop(hold);
        let verdict = runtime().block_on(check.check(&users, &decoy, b"alice", b"s3cret"));
        assert_eq!(verdict, Verdict::Admitted);
    }
}

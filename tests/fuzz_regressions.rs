//! Replays the fuzzers' seeds (`fuzz/corpus/<target>/`) and every crash they
//! found (`fuzz/regressions/<target>/`) through the checks the fuzz targets
//! run, on stable Rust and without the fuzzing dependencies. The checks are
//! `fuzz/checks.rs` itself, so replay and fuzzing cannot drift apart.

// A failed unwrap in a test is a failed test, with the location.
#![allow(clippy::unwrap_used)]

#[path = "../fuzz/checks.rs"]
mod checks;

use std::{
    fs,
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
};

/// A fuzz target's check of one input: panics when an invariant fails.
type Check = fn(&[u8]);

/// Each fuzz target with its check.
const TARGETS: [(&str, Check); 7] = [
    ("modules_file", checks::modules_file),
    ("probe_query", checks::probe_query),
    ("duration", checks::duration),
    ("policy_rule", checks::policy_rule),
    ("target_url", checks::target_url),
    ("regexp", checks::regexp),
    ("dns_message", checks::dns_message),
];

/// The files directly in `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every file of `dir`; returns how many ran and the
/// failures, each with the file and the panic message.
fn replay(dir: &Path, check: Check) -> (usize, Vec<String>) {
    let files = inputs(dir);
    let mut failures = Vec::new();
    for file in &files {
        let data = fs::read(file).unwrap();
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    (files.len(), failures)
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn seeds_and_fuzz_regressions_keep_their_invariants() {
    let mut failures = Vec::new();
    for (target, check) in TARGETS {
        let (seeds, mut failed) = replay(&fuzz_dir().join("corpus").join(target), check);
        assert!(seeds > 0, "no seeds for {target} in fuzz/corpus/{target}/");
        failures.append(&mut failed);
        let (crashes, mut failed) = replay(&fuzz_dir().join("regressions").join(target), check);
        failures.append(&mut failed);
        println!("{target}: {seeds} seeds and {crashes} regressions replayed");
    }
    assert!(
        failures.is_empty(),
        "{} fuzz inputs break an invariant:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn probe_inputs_split_at_the_first_newline() {
    assert_eq!(
        checks::split_probe_input(b"10.5\ntarget=x\ny"),
        (Some(&b"10.5"[..]), &b"target=x\ny"[..])
    );
    assert_eq!(
        checks::split_probe_input(b"target=x"),
        (None, &b"target=x"[..])
    );
    assert_eq!(checks::split_probe_input(b"\n"), (Some(&b""[..]), &b""[..]));
}

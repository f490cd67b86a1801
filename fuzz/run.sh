#!/usr/bin/env bash
# Runs lookout's fuzz targets for a chosen time each:
#
#   fuzz/run.sh SECONDS [TARGET...]      (default: every target in fuzz/Cargo.toml)
#
# and prints, per target, the runs executed, the corpus size and the crashes
# found. Exits 1 when a target crashed (the input is saved under
# fuzz/artifacts/TARGET/; minimise it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin --debug-assertions TARGET FILE
# and keep the result in fuzz/regressions/TARGET/, which `cargo test` replays).
#
# Toolchain: cargo-fuzz passes nightly-only flags to rustc (-Zsanitizer=address
# and the sanitizer-coverage passes; not -Zbuild-std, which it leaves off), and
# this project's machines have a stable Rust only, with no way to fetch a
# nightly. RUSTC_BOOTSTRAP=1 makes the stable compiler accept those flags;
# nothing else is needed (checked with stable 1.95 and cargo-fuzz 0.13.2). The stable toolchain ships the AddressSanitizer
# runtime (librustc-stable_rt.asan.a), so targets run under ASan, cargo-fuzz's
# default, which matters here: the YAML parser underneath (unsafe-libyaml) is
# unsafe code. FUZZ_SANITIZER=none runs without it, faster.
# Builds are release with debug assertions and overflow checks (cargo-fuzz's
# default), so an arithmetic overflow is a crash too.
#
# Corpus: the tracked seeds are fuzz/corpus/TARGET/; what the fuzzer adds goes
# to fuzz/generated/TARGET/ (ignored by git), read back on the next run. A
# dictionary, fuzz/dicts/TARGET.dict (the modules file's keys, /probe's
# parameters), is used when there is one.
# One job per target, one target at a time: the machine has two cores.
#
# A target stops at its first crash; FUZZ_KEEP_GOING=1 runs libFuzzer's fork
# mode instead (one child process), which saves each crashing input and goes
# on for the whole time, so "crashes" then counts inputs, not distinct bugs.
set -euo pipefail

usage() {
  echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2
  exit 2
}
die() {
  echo "fuzz/run.sh: $*" >&2
  exit 1
}

[[ $# -ge 1 && $1 =~ ^[1-9][0-9]*$ ]] || usage
seconds=$1
shift
cd "$(dirname "$0")/.."
root=$PWD

export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install --locked cargo-fuzz" >&2
  cargo install --locked cargo-fuzz ||
    die "could not install cargo-fuzz (is crates.io reachable?)"
fi
command -v c++ >/dev/null 2>&1 ||
  die "no C++ compiler (c++): libfuzzer-sys builds libFuzzer from C++ (apt-get install g++)"

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(cargo fuzz list)
fi
[[ ${#targets[@]} -gt 0 ]] || die "no fuzz targets found"
known=$(cargo fuzz list)
for target in "${targets[@]}"; do
  grep -qx "$target" <<<"$known" || die "unknown target $target (known: $(tr "\n" " " <<<"$known"))"
done

build_flags=(--sanitizer "$sanitizer" --debug-assertions)
echo "building ${targets[*]} (sanitizer: $sanitizer, debug assertions on)"
for target in "${targets[@]}"; do
  cargo fuzz build "${build_flags[@]}" "$target" ||
    die "building $target failed: cargo-fuzz needs RUSTC_BOOTSTRAP=1 on stable Rust (set here) and, for --sanitizer address, the ASan runtime of the toolchain; FUZZ_SANITIZER=none avoids the latter"
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
summary=()
crashed=0
for target in "${targets[@]}"; do
  generated=fuzz/generated/$target
  artifacts=fuzz/artifacts/$target
  mkdir -p "$generated" "$artifacts"
  before=$(find "$artifacts" -type f | sort)
  log=$logs/$target.log
  echo
  echo "=== $target: ${seconds}s"
  fuzzer_flags=(-max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10)
  if [[ -n ${FUZZ_KEEP_GOING:-} ]]; then
    # libFuzzer's fork mode with one child: a crash is saved and fuzzing goes on.
    fuzzer_flags+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  if [[ -f fuzz/dicts/$target.dict ]]; then
    fuzzer_flags+=(-dict="fuzz/dicts/$target.dict")
  fi
  start=$SECONDS
  status=0
  cargo fuzz run "${build_flags[@]}" "$target" "$generated" "fuzz/corpus/$target" -- \
    "${fuzzer_flags[@]}" >"$log" 2>&1 || status=$?
  elapsed=$((SECONDS - start))
  grep -E '^(INFO: (seed|Loaded|-max_len|exiting)|Dictionary:|#[0-9]+[[:space:]]+(INITED|DONE)|Done [0-9]+ runs)' "$log" || true
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [[ -n $runs ]] || runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  fuzzed=$(sed -nE 's/^(Done [0-9]+ runs in ([0-9]+) second.*|INFO: exiting: [0-9-]+ time: ([0-9]+)s.*)$/\2\3/p' "$log" | tail -1)
  corpus=$(grep -oE 'corp: [0-9]+(/[0-9]+[a-zA-Z]*)?' "$log" | tail -1 | sed 's/corp: //' || true)
  new=$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort) | grep -v '^$' || true)
  crashes=$(grep -c . <<<"$new" || true)
  if [[ $status -ne 0 && $crashes -eq 0 ]]; then
    tail -40 "$log" >&2
    die "$target: the fuzzer failed (exit $status) without saving a crash; log above"
  fi
  if [[ $crashes -gt 0 ]]; then
    crashed=1
    grep -E -m1 -A3 "panicked at|ERROR: (libFuzzer|AddressSanitizer)" "$log" || true
    echo "saved: $new"
  fi
  summary+=("$(printf '%-14s fuzzed %4ss (wall %4ss, build included)  %10s runs   corpus %-12s crashes %s' \
    "$target" "${fuzzed:-?}" "$elapsed" "${runs:-?}" "${corpus:-?}" "$crashes")")
done

echo
echo "=== fuzz summary (${seconds}s per target, sanitizer $sanitizer)"
printf '%s\n' "${summary[@]}"
if [[ $crashed -ne 0 ]]; then
  echo "crashes were found: minimise each with 'RUSTC_BOOTSTRAP=1 cargo fuzz tmin --debug-assertions TARGET FILE' (from $root) and copy it to fuzz/regressions/TARGET/" >&2
  exit 1
fi

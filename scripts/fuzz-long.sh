#!/usr/bin/env bash
# Long random fuzz runs: a discovery tool, outside the CI gate (the test
# command runs a short deterministic replay instead, scripts/test.sh).
#
#   bash scripts/fuzz-long.sh [RUNS] [TARGET ...]
#
# RUNS new executions per target (default 10,000,000) from a random seed
# (libFuzzer picks one and prints it: "Seed: N", so a run can be repeated
# with -seed=N). Overflow checks are on (cargo-fuzz builds with debug
# assertions). New interesting inputs go to a scratch corpus, not the
# committed one; a crash is saved as fuzz/artifacts/TARGET/crash-*. Every
# crash becomes a committed seed in fuzz/corpus/TARGET/ and a regression test.
# Prints one line per target: executions, seconds, crashes.
#
# FUZZ_SANITIZER (default none) is cargo-fuzz's -s: the core and the fuzz
# crate have no unsafe code on the host (kernels::arm is built for Armv7E-M
# only), so AddressSanitizer finds nothing there that the overflow checks
# and bounds checks do not, and costs 3.6x in executions per second (30,000
# runs of `model` from the committed corpus, seed 5: 18 s with address,
# 5 s with none). FUZZ_SANITIZER=address restores it.
# FUZZ_LOG_DIR keeps each target's libFuzzer log there (TARGET.log), so
# the status lines survive a run that is stopped before it ends.
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10000000}"
shift || true
targets=("$@")
if [ ${#targets[@]} = 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
status=0
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  cp -r "fuzz/corpus/$t/." "$scratch/" 2>/dev/null || true
  if [ -n "${FUZZ_LOG_DIR:-}" ]; then
    mkdir -p "$FUZZ_LOG_DIR"; log="$FUZZ_LOG_DIR/$t.log"
  else
    log=$(mktemp)
  fi
  start=$(date +%s)
  cargo +nightly fuzz run -s "${FUZZ_SANITIZER:-none}" "$t" "$scratch" -- -runs="$runs" -rss_limit_mb=2048 >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  seed=$(grep -o 'Seed: [0-9]*' "$log" | head -n1)
  done_runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -n1)
  crashes=$([ "$rc" = 0 ] && echo 0 || echo 1)
  echo "fuzz-long: $t: ${done_runs:-?} executions in ${secs} s (${seed:-seed ?}), crashes: $crashes"
  if [ "$rc" != 0 ]; then
    status=1
    tail -n 40 "$log"
  fi
  rm -rf "$scratch"
  [ -n "${FUZZ_LOG_DIR:-}" ] || rm -f "$log"
done
exit $status

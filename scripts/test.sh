#!/usr/bin/env bash
# The test command: installs what it needs, then runs formatting, lints,
# the no_std target builds, the golden-vector freshness check and every test.
# Closes with one line "tests: N passed, M failed".
set -uo pipefail
# No tool here reads standard input; a caller's odd stdin (a file being
# written, a closed descriptor) must not reach rustc's probes, which read "-".
exec </dev/null
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

# The shared data sets (binarized MNIST, MNIST, Penn Treebank, Tiny Shakespeare;
# ../shared/data/README.md):
# $TINYINFER_DATA, else ../shared/data beside the repository.
if [ -z "${TINYINFER_DATA:-}" ] && [ -d ../shared/data ]; then
  TINYINFER_DATA="$(cd ../shared/data && pwd)"
fi
for f in binarized_mnist/binarized_mnist_test-images-idx3-ubyte.gz ptb/ptb.test.txt tinyshakespeare/input.txt; do
  if [ ! -f "${TINYINFER_DATA:-../shared/data}/$f" ]; then
    echo "test: $f not found under ${TINYINFER_DATA:-../shared/data}; set TINYINFER_DATA to the shared data directory (see its README.md)"
    echo "tests: 0 passed, 1 failed"
    exit 1
  fi
done
export TINYINFER_DATA

# The gate is deterministic: property tests draw from a fixed seed (proptest
# seeds from the OS otherwise); the seeded loops in the tests are fixed too.
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261203}"

log=$(mktemp)
status=0
step() {
  echo "==> $*"
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then echo "FAILED ($rc): $*"; status=1; fi
}

step cargo fmt --all -- --check
step cargo clippy --release --workspace --all-targets --features tinyinfer/emit -- -D warnings
# The main job's build: host tools without `simulate` and `flash`.
step cargo clippy --release -p tinyinfer-tools --no-default-features --all-targets -- -D warnings
# The DSP kernels (kernels::arm) compile only for Arm targets with the DSP
# extension: lint them there, with every driver and as the classifier-only
# firmware builds them (`compact`: the reference for pooling and fully
# connected layers, no single-pixel tail path; docs/firmware.md).
step cargo clippy --release -p tinyinfer --target thumbv7em-none-eabihf --lib -- -D warnings
step cargo clippy --release -p tinyinfer --target thumbv7em-none-eabihf --no-default-features --features compact --lib -- -D warnings
# The core without the density and language families (the classifier-only
# firmware's core): lints, its unit tests and the test of the ops it
# refuses (tests/classifier_ops.rs, which the workspace run also runs with
# them), a few seconds.
step cargo clippy --release -p tinyinfer --no-default-features --lib -- -D warnings
step cargo test --release -p tinyinfer --no-default-features --features emit --lib --test classifier_ops
step cargo build --release -p tinyinfer --target thumbv6m-none-eabi
# The other CPU profiles the core targets: Cortex-M3, Cortex-M33, and
# RISC-V (ESP32-C3 class).
step cargo build --release -p tinyinfer --target thumbv7m-none-eabi
step cargo build --release -p tinyinfer --target thumbv8m.main-none-eabihf
step cargo build --release -p tinyinfer --target riscv32imc-unknown-none-elf
step cargo build --release -p tinyinfer --target thumbv7em-none-eabihf --features defmt
step cargo run --release -q --example golden --features emit -- --check
step cargo test --release --workspace --features tinyinfer/emit
# The core again with overflow checks on (debug), on the host and on a
# 32-bit target: every size and fixed-point computation must be 32-bit clean.
step cargo test -p tinyinfer --features emit
step cargo test -p tinyinfer --features emit --target i686-unknown-linux-gnu
if [ -x firmware/test.sh ]; then step firmware/test.sh; fi
# The DSP kernels (kernels::arm) against the reference on QEMU's Cortex-M4.
step bash firmware/kernel-check.sh

# A short, deterministic fuzz run (libFuzzer via cargo-fuzz, nightly, overflow
# checks on): the committed corpus is replayed, then a fixed number of new
# executions from a fixed seed. The same code gives the same verdict; long
# random runs are a discovery tool outside this gate (scripts/fuzz-long.sh,
# docs/reliability.md), and what they find is committed to the corpus.
# libFuzzer writes new inputs into its first corpus directory: a scratch copy,
# so the working tree stays clean.
if rustup toolchain list | grep -q '^nightly'; then
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked -q
  for target in $(cd fuzz && cargo +nightly fuzz list); do
    # New executions per target: about a minute each on a loaded 2-core machine.
    case "$target" in
      valid_models) runs=10000 ;; # whole generated models, run on every path
      crc_fixed) runs=50000 ;;
      *) runs=100000 ;;
    esac
    scratch=$(mktemp -d)
    cp -r "fuzz/corpus/$target/." "$scratch/" 2>/dev/null || true
    step cargo +nightly fuzz run "$target" "$scratch" -- -seed="${FUZZ_SEED:-1}" -runs="${FUZZ_RUNS:-$runs}" -rss_limit_mb=2048
    rm -rf "$scratch"
  done
else
  echo "==> fuzz: skipped, no nightly toolchain (rustup toolchain install nightly)"
fi

read -r passed failed < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) }
  } END { print p+0, f+0 }' "$log")
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
rm -f "$log"
echo "tests: ${passed} passed, ${failed} failed"
exit $status

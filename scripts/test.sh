#!/usr/bin/env bash
# The test command: installs what it needs, then runs formatting, lints,
# the no_std target builds, the golden-vector freshness check and every test.
# Closes with one line "tests: N passed, M failed".
set -uo pipefail
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
step cargo build --release -p tinyinfer --target thumbv7em-none-eabihf
step cargo build --release -p tinyinfer --target thumbv6m-none-eabi
step cargo build --release -p tinyinfer --target thumbv7em-none-eabihf --features defmt
step cargo run --release -q --example golden --features emit -- --check
step cargo test --release --workspace --features tinyinfer/emit
if [ -x firmware/test.sh ]; then step firmware/test.sh; fi
# The DSP kernels (kernels::arm) against the reference on QEMU's Cortex-M4.
step bash firmware/kernel-check.sh

# A short fuzz run of the model checker (libFuzzer via cargo-fuzz, nightly).
if rustup toolchain list | grep -q '^nightly'; then
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked -q
  step cargo +nightly fuzz run model fuzz/corpus/model -- -max_total_time="${FUZZ_SECONDS:-30}" -rss_limit_mb=2048
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

#!/usr/bin/env bash
# Bit-exactness of the DSP kernels (tinyinfer::kernels::arm) on the
# Cortex-M4 itself: builds the `kernel-check` app and runs it on QEMU's
# mps2-an386 under `timeout`. The app runs seeded random cases of every arm
# kernel against the reference and exits 0, or 1 at the first difference
# (3 panic, 4 HardFault). Its text report (semihosting stdout) is printed;
# under -icount it also gives the instructions of the reference, fast and
# arm conv2d on DiracNet's layer shapes.
#
#   TINYINFER_CHECK_SEED=7 TINYINFER_CHECK_CASES=2000 bash firmware/kernel-check.sh
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --no-default-features --features semihosting --bin kernel-check --target thumbv7em-none-eabihf
elf=target/thumbv7em-none-eabihf/release/kernel-check
set +e
timeout --kill-after=5 "${KERNEL_CHECK_TIMEOUT:-600}" qemu-system-arm \
  -machine mps2-an386 -cpu cortex-m4 \
  -display none -serial none -monitor none \
  -icount shift=0,align=off,sleep=off \
  -semihosting-config enable=on,target=native \
  -kernel "$elf" </dev/null 2>&1 | cat
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" != 0 ]; then
  echo "kernel-check: FAILED (exit $rc: 1 mismatch, 3 panic, 4 HardFault, 124 timeout)"
  exit 1
fi
echo "kernel-check: ok"

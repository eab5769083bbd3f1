#!/usr/bin/env bash
# Bit-exactness of the DSP kernels (tinyinfer::kernels::arm) on the cores
# themselves: builds the `kernel-check` app for the Cortex-M4F (mps2-an386)
# and `kernel-check-m33` for the Cortex-M33 with its DSP extension
# (mps2-an505, `-C target-feature=+dsp` from .cargo/config.toml), and runs
# each on QEMU under `timeout`. The app runs seeded random cases of every
# arm kernel against the reference and exits 0, or 1 at the first
# difference (3 panic, 4 HardFault). Its text report (semihosting stdout) is
# printed; under -icount it also gives the instructions of the reference,
# fast and arm conv2d on DiracNet's layer shapes.
#
#   TINYINFER_CHECK_SEED=7 TINYINFER_CHECK_CASES=2000 bash firmware/kernel-check.sh
set -euo pipefail
cd "$(dirname "$0")"
run() { # bin target machine cpu
  cargo build --release --no-default-features --features semihosting --bin "$1" --target "$2"
  local elf="target/$2/release/$1" rc
  set +e
  timeout --kill-after=5 "${KERNEL_CHECK_TIMEOUT:-600}" qemu-system-arm \
    -machine "$3" -cpu "$4" \
    -display none -serial none -monitor none \
    -icount shift=0,align=off,sleep=off \
    -semihosting-config enable=on,target=native \
    -kernel "$elf" </dev/null 2>&1 | cat
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" != 0 ]; then
    echo "kernel-check ($4): FAILED (exit $rc: 1 mismatch, 3 panic, 4 HardFault, 124 timeout)"
    exit 1
  fi
}
run kernel-check thumbv7em-none-eabihf mps2-an386 cortex-m4
run kernel-check-m33 thumbv8m.main-none-eabihf mps2-an505 cortex-m33
echo "kernel-check: ok"

#!/usr/bin/env bash
# The main job, from a fresh Debian machine: install what is needed, then
# train a DiracNet on Fashion-MNIST, quantize it to int8, export the .tinf
# blob (plus its Intel HEX image), evaluate it through the no_std core, and
# end on the simulated microcontroller: the exported model on QEMU. Extra
# arguments go to `tinyinfer pipeline` (e.g. --epochs 30 for the longer
# documented run). ON_BOARD=0 skips the board run (and QEMU, flip-link and
# the firmware build it needs).
set -euo pipefail
# No tool here reads standard input; a caller's odd stdin (a file being
# written, a closed descriptor) must not reach rustc's probes, which read "-".
exec </dev/null
cd "$(dirname "$0")/.."
if [ "${ON_BOARD:-1}" = 1 ]; then
  # The board run below: QEMU's Arm machines, the Cortex-M4F target,
  # flip-link, and the tool with `simulate` (no `flash`: probe-rs is the
  # longest part of a cold build, and no probe is needed here).
  bash scripts/setup.sh board
  cargo build --release -p tinyinfer-tools --no-default-features --features simulate
else
  bash scripts/setup.sh data
  # The smallest tool: without `simulate` (QEMU, defmt) and `flash` (probe-rs).
  cargo build --release -p tinyinfer-tools --no-default-features
fi
# lr 0.4 without augmentation measured best for short schedules
# (docs/training.md). 2 epochs keep the cold run, board included, within
# 15 minutes (README).
./target/release/tinyinfer pipeline --epochs "${EPOCHS:-2}" --lr 0.4 --augment false --out runs/diracnet "$@"

# The end, on the simulated microcontroller: the exported model runs on
# QEMU's mps2-an386 (Cortex-M4F) linked under the nRF52840's limits (the
# firmware is built here, in firmware/target): its self-test, the per-layer
# benchmark, BOARD_IMAGES test images compared with the host core bit for
# bit, instructions per inference and an estimate of the milliseconds at
# 64 MHz (docs/firmware.md, "The main job on the board").
if [ "${ON_BOARD:-1}" = 1 ]; then
  ./target/release/tinyinfer simulate runs/diracnet/model.tinf --nrf-budget --eval "${BOARD_IMAGES:-300}"
fi

#!/usr/bin/env bash
# The main job, from a fresh Debian machine: install what is needed, then
# train a DiracNet on Fashion-MNIST, quantize it to int8, export the .tinf
# blob (plus its Intel HEX image) and evaluate it through the no_std core.
# Ends with a summary table; with ON_BOARD=1, then with the model's run on
# the simulated board. Extra arguments go to `tinyinfer pipeline` (e.g.
# --epochs 30 for the longer documented run).
set -euo pipefail
# No tool here reads standard input; a caller's odd stdin (a file being
# written, a closed descriptor) must not reach rustc's probes, which read "-".
exec </dev/null
cd "$(dirname "$0")/.."
if [ "${ON_BOARD:-0}" = 1 ]; then
  # The board run below: QEMU, the Cortex-M targets, flip-link, and the tool
  # with `simulate`, built once (a second build with other features would
  # rebuild much of its dependency tree).
  bash scripts/setup.sh
  cargo build --release -p tinyinfer-tools --no-default-features --features simulate
else
  bash scripts/setup.sh data
  # The smallest tool: without `simulate` (QEMU, defmt) and `flash` (probe-rs).
  cargo build --release -p tinyinfer-tools --no-default-features
fi
# lr 0.4 without augmentation measured best for short schedules (docs/training.md).
./target/release/tinyinfer pipeline --epochs "${EPOCHS:-4}" --lr 0.4 --augment false --out runs/diracnet "$@"

# ON_BOARD=1: end on the simulated microcontroller. The exported model runs
# on QEMU's mps2-an386 (Cortex-M4F) linked under the nRF52840's limits: its
# self-test, the per-layer benchmark, BOARD_IMAGES test images compared with
# the host core, instructions per inference and an estimate of the
# milliseconds at 64 MHz. Opt-in: it installs QEMU, the Cortex-M targets and
# flip-link, and builds the tool with `simulate` and the firmware, which the
# 15-minute cold budget of the default run does not cover (docs/firmware.md).
if [ "${ON_BOARD:-0}" = 1 ]; then
  ./target/release/tinyinfer simulate runs/diracnet/model.tinf --nrf-budget --eval "${BOARD_IMAGES:-300}"
fi

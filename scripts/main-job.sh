#!/usr/bin/env bash
# The main job, from a fresh Debian machine: install what is needed, then
# train a DiracNet on Fashion-MNIST, quantize it to int8, export the .tinf
# blob (plus its Intel HEX image) and evaluate it through the no_std core.
# Ends with a summary table. Extra arguments go to `tinyinfer pipeline`
# (e.g. --epochs 30 for the longer documented run).
set -euo pipefail
# No tool here reads standard input; a caller's odd stdin (a file being
# written, a closed descriptor) must not reach rustc's probes, which read "-".
exec </dev/null
cd "$(dirname "$0")/.."
bash scripts/setup.sh data
# The smallest tool: without `simulate` (QEMU, defmt) and `flash` (probe-rs).
cargo build --release -p tinyinfer-tools --no-default-features
# lr 0.4 without augmentation measured best for short schedules (docs/training.md).
exec ./target/release/tinyinfer pipeline --epochs "${EPOCHS:-4}" --lr 0.4 --augment false --out runs/diracnet "$@"

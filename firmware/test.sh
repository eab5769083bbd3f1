#!/usr/bin/env bash
# Lints of the firmware workspace (its own target, so the root workspace's
# fmt/clippy steps do not reach it): rustfmt, and clippy -D warnings for each
# board build. The QEMU tests themselves (self-test, bad blobs, nRF budget,
# nrf52840-dk build, bit-exact DiracNet) are host-tools/tests/firmware_qemu.rs,
# which `cargo test --workspace` at the root runs.
set -euo pipefail
cd "$(dirname "$0")"
cargo fmt -- --check # this package only (--all would reach the root workspace through the path dependency)
cargo clippy --release --no-default-features --features qemu,density,language -- -D warnings
cargo clippy --release --no-default-features --features qemu,nrf-budget,density,language -- -D warnings
# The classifier-only app (no density or language driver).
cargo clippy --release --no-default-features --features qemu,nrf-budget -- -D warnings
cargo clippy --release -- -D warnings # nrf52840-dk (the default feature)
echo "firmware: fmt and clippy clean for qemu, qemu+nrf-budget (all drivers and classifier-only), nrf52840-dk"

#!/usr/bin/env bash
# Lints and builds of the firmware workspace (its own target, so the root
# workspace's fmt/clippy steps do not reach it): rustfmt, clippy -D warnings
# for every board of boards.rs on its own target, and full builds (links
# included: memory map, RAM check, target check) of the real boards' apps.
# The QEMU runs themselves (self-test and benchmark on the four CPU
# profiles and RISC-V, bad blobs, nRF budget, bit-exact DiracNet, ...) are
# host-tools/tests/firmware_qemu.rs, which `cargo test --workspace` at the
# root runs.
set -euo pipefail
cd "$(dirname "$0")"
cargo fmt -- --check # this package only (--all would reach the root workspace through the path dependency)
sh="--no-default-features --features semihosting"
# mps2-an386 (Cortex-M4F): the app, its nRF-budget link, the DSP kernel check.
cargo clippy --release $sh,density,language,panic-location --bin mps2-an386 --bin mps2-an386-nrf-budget --bin kernel-check -- -D warnings
# The classifier-only app (no density or language driver).
cargo clippy --release $sh,few-vectors --bin mps2-an386-nrf-budget -- -D warnings
# The other QEMU CPU profiles, each on its target.
cargo clippy --release $sh,density,language,panic-location --bin mps2-an385 --target thumbv7m-none-eabi -- -D warnings
cargo clippy --release $sh,density,language,panic-location --bin mps2-an505 --bin kernel-check-m33 --target thumbv8m.main-none-eabihf -- -D warnings
cargo clippy --release $sh,density,language,panic-location --bin microbit --target thumbv6m-none-eabi -- -D warnings
# RISC-V (QEMU virt, RV32IMC): the same library on riscv-rt.
cargo clippy --release $sh,density,language,panic-location --bin riscv-virt --target riscv32imc-unknown-none-elf -- -D warnings
# The real boards over RTT (the default features): lints, then the linked apps.
cargo clippy --release --bin nrf52840-dk --bin nucleo-l4r5zi -- -D warnings
cargo build --release --bin nrf52840-dk --bin nucleo-l4r5zi
echo "firmware: fmt and clippy clean for every board (mps2-an386 + nrf-budget + classifier-only, mps2-an385, mps2-an505, microbit, riscv-virt, nrf52840-dk, nucleo-l4r5zi); real-board apps link"

#!/usr/bin/env bash
# Installs what tinyinfer needs on a fresh Debian machine (idempotent):
# Fashion-MNIST (Debian package), QEMU for the simulated Cortex-M boards and
# the RISC-V `virt` machine, the rustup targets and the lint components.
# `scripts/setup.sh board` installs only what the main job needs: the data
# set, and for its run on the simulated board QEMU's Arm machines, the
# Cortex-M4F target and flip-link. `scripts/setup.sh data`: the data set only.
set -euo pipefail
MODE="${1:-all}"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
if [ "$MODE" != data ]; then
  dpkg -s qemu-system-arm >/dev/null 2>&1 || need+=(qemu-system-arm)
fi
if [ "$MODE" = all ]; then
  # qemu-system-riscv32, for the firmware on RISC-V (board riscv-virt).
  dpkg -s qemu-system-misc >/dev/null 2>&1 || need+=(qemu-system-misc)
  # Links the core's 32-bit test build (i686-unknown-linux-gnu).
  dpkg -s gcc-multilib >/dev/null 2>&1 || need+=(gcc-multilib)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  # One package at a time: on a machine that carries a newer qemu-utils (from
  # bookworm-backports), asking for QEMU 7.2's system packages together with
  # the others makes apt's resolver give up ("generated breaks"), while each
  # alone resolves (it replaces qemu-utils by 7.2's). apt's own error is shown.
  for pkg in "${need[@]}"; do
    if ! out=$(DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$pkg" 2>&1); then
      echo "$out" | tail -n 20
      echo "setup: apt-get could not install $pkg"
      exit 1
    fi
  done
fi

if [ "$MODE" = data ]; then
  echo "setup: ok (data only)"
  exit 0
fi
# The firmware links through flip-link (firmware/.cargo/config.toml): a stack
# overflow faults instead of overwriting the arena.
install_flip_link() {
  command -v flip-link >/dev/null || cargo install flip-link --locked -q
}
if [ "$MODE" = board ]; then
  rustup target add thumbv7em-none-eabihf >/dev/null 2>&1 || rustup target add thumbv7em-none-eabihf
  install_flip_link
  echo "setup: ok (the main job and its board run: $(qemu-system-arm --version | head -n1))"
  exit 0
fi
targets=(thumbv7em-none-eabihf thumbv6m-none-eabi thumbv7m-none-eabi thumbv8m.main-none-eabihf
  riscv32imc-unknown-none-elf i686-unknown-linux-gnu)
rustup target add "${targets[@]}" >/dev/null 2>&1 || rustup target add "${targets[@]}"
rustup component add clippy rustfmt >/dev/null 2>&1 || true
install_flip_link
echo "setup: ok ($(rustc --version), $(qemu-system-arm --version | head -n1), $(qemu-system-riscv32 --version | head -n1))"

#!/usr/bin/env bash
# Installs what tinyinfer needs on a fresh Debian machine (idempotent):
# Fashion-MNIST (Debian package), QEMU for the simulated Cortex-M4, the
# Cortex-M rustup targets and the lint components.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
dpkg -s qemu-system-arm >/dev/null 2>&1 || need+=(qemu-system-arm)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi >/dev/null 2>&1 || rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi
rustup component add clippy rustfmt >/dev/null 2>&1 || true
echo "setup: ok ($(rustc --version), $(qemu-system-arm --version | head -n1))"

#!/usr/bin/env bash
# The speed benchmark of the three families on QEMU's Cortex-M4
# (mps2-an386, nRF52840-budget link, exact instruction counts under
# -icount): the committed benchmark models of models/bench, DiracNet's
# per-layer table beside CMSIS-NN's figures, then one summary table.
#
#   bash scripts/device-bench.sh            # this tree
#   FIRMWARE_DIR=/path/to/old/firmware bash scripts/device-bench.sh   # "before"
#
# Counts depend on the model's shapes and, slightly, on its data (see
# docs/firmware.md, "What the counts depend on"); these models are fixed, so
# before/after figures measure the same work.
set -euo pipefail
cd "$(dirname "$0")/.."
T=./target/release/tinyinfer
[ -x "$T" ] || cargo build --release -p tinyinfer-tools
fw=()
if [ -n "${FIRMWARE_DIR:-}" ]; then fw=(--firmware-dir "$FIRMWARE_DIR"); fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# DiracNet: the per-layer table (text), then the figures (JSON).
$T simulate models/bench/diracnet-bench.tinf --nrf-budget "${fw[@]}" </dev/null
$T simulate models/bench/diracnet-bench.tinf --nrf-budget --eval 200 --json "${fw[@]}" \
  </dev/null >"$out/dirac.json" 2>/dev/null
# The same DiracNet with its 3×3 convs in the pairs layout (weights widened
# at export for the DSP kernels): its per-layer table, then its figures.
$T simulate models/bench/diracnet-bench-pairs.tinf --nrf-budget "${fw[@]}" </dev/null
$T simulate models/bench/diracnet-bench-pairs.tinf --nrf-budget --eval 200 --json "${fw[@]}" \
  </dev/null >"$out/pairs.json" 2>/dev/null
$T simulate models/bench/pixelcnn-bench.tinf --nrf-budget --samples 1 --seed 3 --json "${fw[@]}" \
  </dev/null >"$out/pcnn.json" 2>/dev/null
$T simulate models/bench/char-mos-lm-bench.tinf --prompt "ROMEO:" --tokens 200 --seed 7 \
  --nrf-budget --json "${fw[@]}" </dev/null >"$out/lm.json" 2>/dev/null
python3 - "$out" <<'PY'
import json, sys
o = sys.argv[1]
d, q, p, l = (json.load(open(f"{o}/{n}.json")) for n in ("dirac", "pairs", "pcnn", "lm"))
rows = [
    ("DiracNet", "per inference", d["instructions_per_inference"], d["macs_per_inference"],
     "≈ 19.8 M (sum of its per-layer figures)", d["matches_host"]),
    ("DiracNet, pairs layout", "per inference", q["instructions_per_inference"],
     q["macs_per_inference"], "≈ 19.8 M", q["matches_host"]),
    ("PixelCNN", "per scored image (whole-map)", p["instructions_per_scored_image"], None, "—",
     p["nll_matches_host"]),
    ("PixelCNN", "per scored image (streaming)", p["instructions_per_scored_image_streaming"], None,
     "—", p["nll_matches_host"]),
    ("PixelCNN", "per sampled image (incremental)", p["instructions_per_sampled_image"], None, "—",
     p["samples_match_host"]),
    ("char MoS LM", "per generated character", l["instructions_per_token"], l["macs_per_token"],
     "≈ 2.3/MAC for its LSTM and FC parts", l["text_matches_host"]),
]
print("\n| family | figure | instructions | instr/MAC | CMSIS-NN | equal to the host |")
print("| --- | --- | ---: | ---: | --- | --- |")
for fam, fig, n, macs, cmsis, ok in rows:
    per = f"{n / macs:.2f}" if macs else "–"
    print(f"| {fam} | {fig} | {n:,} | {per} | {cmsis} | {'yes' if ok else 'NO'} |")
print(f"\nmodel flash: DiracNet {d['model_flash_bytes']:,} bytes, pairs layout {q['model_flash_bytes']:,}")
print(f"firmware flash {d['firmware_flash_bytes']:,} bytes (all three drivers); "
      f"RAM: DiracNet {d['ram_bytes']:,}, PixelCNN {p['ram_bytes']:,}, LM {l['ram_bytes']:,} bytes")
PY

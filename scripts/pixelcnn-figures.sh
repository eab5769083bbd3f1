#!/usr/bin/env bash
# The PixelCNN figures of docs/pixelcnn.md from a trained checkpoint:
# export (8 self-test images), eval (float vs int8 on the 10,000 test images),
# a sample grid, anomaly AUROC, and QEMU runs (full plan under the nRF52840
# budget with the full-recomputation baseline; streaming plan).
#
#   bash scripts/pixelcnn-figures.sh runs/pcnn6/final.json runs/pcnn6
#
# Writes OUT/model.tinf, OUT/eval.json, OUT/samples.png, OUT/anomaly.json,
# OUT/qemu-full.json, OUT/qemu-full.png, OUT/qemu-streaming.json.
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT="${1:?usage: pixelcnn-figures.sh CHECKPOINT.json OUT_DIR}"
OUT="${2:?usage: pixelcnn-figures.sh CHECKPOINT.json OUT_DIR}"
mkdir -p "$OUT"
T=./target/release/tinyinfer
[ -x "$T" ] || cargo build --release -p tinyinfer-tools
$T export --checkpoint "$CKPT" --family density --out "$OUT/model.tinf" --calib 2000 --selftest 8
$T inspect "$OUT/model.tinf"
$T eval "$OUT/model.tinf" --checkpoint "$CKPT" --json > "$OUT/eval.json"
$T sample "$OUT/model.tinf" --seed 0 --count 32 --cols 8 --out "$OUT/samples.png"
$T anomaly "$OUT/model.tinf" --count 2000 --json > "$OUT/anomaly.json"
$T simulate "$OUT/model.tinf" --nrf-budget --samples 4 --seed 0 --full-pixels 28 \
  --png "$OUT/qemu-full.png" --json > "$OUT/qemu-full.json"
$T simulate "$OUT/model.tinf" --nrf-budget --streaming --samples 1 --seed 0 \
  --json > "$OUT/qemu-streaming.json"
python3 - "$OUT" <<'EOF'
import json, sys
o = sys.argv[1]
e = json.load(open(f"{o}/eval.json"))
a = json.load(open(f"{o}/anomaly.json"))
f = json.load(open(f"{o}/qemu-full.json"))
s = json.load(open(f"{o}/qemu-streaming.json"))
rows = [
    ("params", e["params"]),
    ("float test NLL (nats)", round(e["float_nll_nats"], 2)),
    ("int8 test NLL (nats, core)", round(e["int8_nll_nats"], 2)),
    ("quantization loss (nats)", round(e["quantization_loss_nats"], 3)),
    ("blob bytes", e["blob_bytes"]),
    ("arena bytes (full plan / streaming)", f'{e["arena_bytes"]} / {e["sample_arena_bytes"]}'),
    ("MACs per scored image", e["macs"]),
    ("anomaly AUROC (MNIST vs Fashion-MNIST)", round(a["auroc"], 4)),
    ("QEMU instructions per scored image (full / streaming)", f'{f["instructions_per_scored_image"]} / {s["instructions_per_scored_image"]}'),
    ("QEMU instructions per sampled image (incremental)", f["instructions_per_sampled_image"]),
    ("QEMU instructions per sampled image (full recomputation)", f["instructions_per_sampled_image_full"]),
    ("speed-up of incremental sampling", round(f["instructions_per_sampled_image_full"] / f["instructions_per_sampled_image"], 1)),
    ("QEMU NLLs and samples bit-exact with the host", f["nll_matches_host"] and f["samples_match_host"] and s["nll_matches_host"] and s["samples_match_host"]),
    ("RAM on the device (full / streaming)", f'{f["ram_bytes"]} / {s["ram_bytes"]}'),
    ("flash (firmware + model)", f["flash_bytes"]),
]
for k, v in rows:
    print(f"| {k} | {v} |")
EOF

#!/usr/bin/env bash
# The language-model figures of docs/lm.md from trained checkpoints:
# export, eval (perplexity float vs int8 through the core), rank of the
# log-probability matrix, and, for the character model, generation on QEMU
# under the nRF52840 budget compared with the host.
#
#   bash scripts/lm-figures.sh runs/lm-softmax/final.json runs/lm-moc/final.json \
#        runs/lm-mos/final.json runs/lm-char/final.json runs/lm-figures
#
# Writes OUT/{softmax,moc,mos,char}.tinf, OUT/*.eval.json, OUT/*.rank.json,
# OUT/char.qemu.json and prints the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 5 ] || { echo "usage: lm-figures.sh SOFTMAX.json MOC.json MOS.json CHAR.json OUT_DIR" >&2; exit 2; }
OUT="$5"
mkdir -p "$OUT"
T=./target/release/tinyinfer
[ -x "$T" ] || cargo build --release -p tinyinfer-tools
CONTEXTS="${RANK_CONTEXTS:-2000}"
for pair in "softmax:$1" "moc:$2" "mos:$3"; do
  name="${pair%%:*}"; ckpt="${pair#*:}"
  $T export --checkpoint "$ckpt" --family language --out "$OUT/$name.tinf"
  $T eval "$OUT/$name.tinf" --checkpoint "$ckpt" --json > "$OUT/$name.eval.json"
  $T rank "$ckpt" --contexts "$CONTEXTS" --json > "$OUT/$name.rank.json"
done
$T export --checkpoint "$4" --family language --out "$OUT/char.tinf" --selftest 4
$T eval "$OUT/char.tinf" --checkpoint "$4" --json > "$OUT/char.eval.json"
$T rank "$4" --contexts 1000 --json > "$OUT/char.rank.json"
$T simulate "$OUT/char.tinf" --nrf-budget --prompt "ROMEO:" --tokens 300 --seed 1 --json > "$OUT/char.qemu.json"
python3 - "$OUT" <<'PY'
import json, sys
o = sys.argv[1]
print("| model | head | K | params | blob bytes | float ppl | int8 ppl | int8 vs float | rank (N contexts) |")
print("|---|---|---|---|---|---|---|---|---|")
for n in ["softmax", "moc", "mos", "char"]:
    e = json.load(open(f"{o}/{n}.eval.json")); r = json.load(open(f"{o}/{n}.rank.json"))
    print(f'| {n} | {e["head"]} | {e["k"]} | {e["params"]:,} | {e["blob_bytes"]:,} | {e["float_perplexity"]:.2f} | '
          f'{e["int8_perplexity"]:.2f} | {e["int8_vs_float_percent"]:+.2f} % | {r["rank"]} of {r["full_rank"]} ({r["contexts"]}) |')
e = json.load(open(f"{o}/char.eval.json")); q = json.load(open(f"{o}/char.qemu.json"))
print()
print(f'char: validation bits/char float {e["float_bits_per_token"]:.4f}, int8 {e["int8_bits_per_token"]:.4f}')
print(f'QEMU: {q["instructions_per_token"]:,} instructions/token ({q["macs_per_token"]:,} MACs), '
      f'RAM {q["ram_bytes"]:,} bytes, flash {q["firmware_flash_bytes"]:,} + {q["model_flash_bytes"]:,} bytes, '
      f'ids match host: {q["matches_host"]}, text matches host: {q["text_matches_host"]}')
print("QEMU sample (prompt ROMEO:, seed 1):")
print("ROMEO:" + q["generated_text"])
PY

#!/usr/bin/env bash
# Issue 13's sweep: word-level Penn Treebank LMs inside the nRF52840 budget
# (int8 blob <= 786,432 bytes, arena <= 65,536), three heads at equal
# parameter counts per embedding size, equal epochs, two seeds per cell.
#
#   bash scripts/ptb-sweep.sh            # run (or continue) every cell, in order
#   bash scripts/ptb-sweep.sh --table    # only print the table of the cells done
#   TINYINFER=/path/to/tinyinfer EPOCHS=6 THREADS=2 bash scripts/ptb-sweep.sh   # the defaults
#   CELLS="mos-k4-d32-h128-s0 softmax-k1-d32-h140-s0" bash scripts/ptb-sweep.sh
#
# Each cell trains into runs/ptb-sweep/CELL (ignored by git), checkpointing
# every epoch: a stopped sweep continues where it stopped (the cell in
# progress resumes from its resume.ckpt, bit for bit; finished cells are
# skipped). After training: export, int8 and float test perplexity over all
# 82,430 test tokens through the core (eval), the rank of the float model's
# log-probability matrix over 2,000 validation contexts (rank), and the
# blob and arena bytes, all in the cell's directory.
#
# Cells, per embedding size d, at equal parameters (H adjusted for softmax,
# which has no K-fold latent projection or prior):
#   d = 32: MoS / MoC K = 4, H = 128 (429,460 params, blob 762,876 bytes);
#           softmax H = 140 (431,392 params, blob 764,620 bytes)
#   d = 24: MoS / MoC K = 4, H = 160 (384,500; 719,996); softmax H = 170 (386,704; 722,124)
#   d = 16: MoS / MoC K = 4, H = 192 (343,636; 681,212); softmax H = 198 (343,464; 680,924)
# d = 48 does not fit: 10,000 words x (48 + 33) bytes is past the budget
# before any LSTM (docs/lm.md).
set -euo pipefail
cd "$(dirname "$0")/.."
# The CLI: $TINYINFER (a path, made absolute), else this checkout's release
# build, brought up to date first (cargo decides; niced, beside a run).
if [ -n "${TINYINFER:-}" ]; then
  T="$(cd "$(dirname "$TINYINFER")" && pwd)/$(basename "$TINYINFER")"
  [ -x "$T" ] || { echo "ptb-sweep: TINYINFER=$TINYINFER is not an executable" >&2; exit 1; }
else
  T="$PWD/target/release/tinyinfer"
fi
EPOCHS="${EPOCHS:-6}"
THREADS="${THREADS:-2}"
ROOT=runs/ptb-sweep
DEFAULT_CELLS="mos-k4-d32-h128-s0 softmax-k1-d32-h140-s0 moc-k4-d32-h128-s0
mos-k4-d32-h128-s1 softmax-k1-d32-h140-s1 moc-k4-d32-h128-s1
mos-k4-d24-h160-s0 softmax-k1-d24-h170-s0 moc-k4-d24-h160-s0
mos-k4-d24-h160-s1 softmax-k1-d24-h170-s1 moc-k4-d24-h160-s1
mos-k4-d16-h192-s0 softmax-k1-d16-h198-s0 moc-k4-d16-h192-s0
mos-k4-d16-h192-s1 softmax-k1-d16-h198-s1 moc-k4-d16-h192-s1"
CELLS="${CELLS:-$DEFAULT_CELLS}"
# The first budget cell's regularisation (docs/lm.md), the same for all.
REG="--bptt 35 --batch 32 --dropout-in 0.1 --dropout-out 0.2 --dropout-latent 0.1"

table() {
  python3 - "$ROOT" <<'PY'
import json, os, statistics, sys
root = sys.argv[1]
rows, groups = [], {}
for cell in sorted(os.listdir(root)) if os.path.isdir(root) else []:
    d = os.path.join(root, cell)
    try:
        e = json.load(open(f"{d}/eval.json"))
        r = json.load(open(f"{d}/rank.json"))
    except (OSError, ValueError):
        continue
    head, k, dd, h, s = cell.split("-")
    fits = e["blob_bytes"] <= 786432 and e["arena_bytes"] <= 65536
    rows.append((cell, e, r, fits))
    groups.setdefault((int(dd[1:]), head), []).append(e["int8_perplexity"])
print("| cell | params | blob / arena bytes | fits | float ppl | int8 ppl | rank |")
print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
for cell, e, r, fits in rows:
    print(f'| {cell} | {e["params"]:,} | {e["blob_bytes"]:,} / {e["arena_bytes"]:,} | '
          f'{"yes" if fits else "NO"} | {e["float_perplexity"]:.2f} | {e["int8_perplexity"]:.2f} | '
          f'{r["rank"]} of {r["full_rank"]} |')
print()
print("| d | head | seeds | int8 test ppl, mean | spread (max - min) |")
print("| ---: | --- | ---: | ---: | ---: |")
for (dd, head), v in sorted(groups.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
    print(f"| {dd} | {head} | {len(v)} | {statistics.mean(v):.2f} | {max(v) - min(v):.2f} |")
PY
}

if [ "${1:-}" = "--table" ]; then table; exit 0; fi
[ -n "${TINYINFER:-}" ] || nice cargo build --release -p tinyinfer-tools </dev/null
mkdir -p "$ROOT"
# Results are written to NAME.tmp and renamed: none is left behind by a
# failed or interrupted step.
# Only this run's cells: two sweeps may run side by side on other cells.
cleanup() { for c in $CELLS; do rm -f "$ROOT/$c"/*.tmp; done; }
trap cleanup EXIT
for cell in $CELLS; do
  IFS=- read -r head k d h s <<<"$cell"
  dir="$ROOT/$cell"
  if [ -f "$dir/rank.json" ]; then continue; fi
  # A cell stopped after its last epoch's checkpoint but before final.json
  # (its resume.ckpt has every epoch: nothing to resume) takes that epoch's
  # model, which is final.json's model (train-lm writes both from the same
  # weights).
  if [ ! -f "$dir/final.json" ] && [ -f "$dir/epoch-$EPOCHS.json" ]; then
    echo "== $cell: every epoch trained; final.json from epoch-$EPOCHS.json" >&2
    cp "$dir/epoch-$EPOCHS.json" "$dir/final.json.tmp"
    mv "$dir/final.json.tmp" "$dir/final.json"
  fi
  if [ ! -f "$dir/final.json" ]; then
    resume=()
    if [ -f "$dir/resume.ckpt" ]; then resume=(--resume "$dir"); fi
    echo "== $cell: training ($EPOCHS epochs${resume:+, resumed})" >&2
    # shellcheck disable=SC2086
    $T train-lm --dataset ptb --out "$dir" --head "$head" --k "${k#k}" --emb "${d#d}" \
      --hidden "${h#h}" $REG --epochs "$EPOCHS" --threads "$THREADS" --seed "${s#s}" \
      "${resume[@]}" </dev/null
  fi
  $T export --checkpoint "$dir/final.json" --out "$dir/model.tinf" </dev/null
  # (export writes the blob through its own temporary file and rename.)
  $T eval "$dir/model.tinf" --checkpoint "$dir/final.json" --json </dev/null > "$dir/eval.json.tmp"
  mv "$dir/eval.json.tmp" "$dir/eval.json"
  $T rank "$dir/final.json" --contexts 2000 --json </dev/null > "$dir/rank.json.tmp"
  mv "$dir/rank.json.tmp" "$dir/rank.json"
done
table

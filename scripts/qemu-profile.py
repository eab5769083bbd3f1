#!/usr/bin/env python3
"""Instruction profile of a firmware run on QEMU.

Record a trace by pointing `tinyinfer simulate` at a QEMU wrapper that logs
every translated block and every block executed (large: ~2 GB per 15 M
instructions), then count:

    cat > /tmp/qemu-trace.sh <<'SH'
    #!/bin/sh
    exec qemu-system-arm "$@" -d in_asm,exec,nochain -D /tmp/trace.log
    SH
    chmod +x /tmp/qemu-trace.sh
    TINYINFER_QEMU=/tmp/qemu-trace.sh tinyinfer simulate MODEL.tinf --nrf-budget --json
    python3 scripts/qemu-profile.py /tmp/trace.log ELF [TOP [LO HI]]

ELF is the `elf` field of simulate's JSON. Prints instructions per function
and per source line (addr2line, binutils), and with LO HI (hex addresses)
every instruction in that range with its count. Counts are per translated
block times its instructions, so they are exact under `-icount` as long as
a block is not retranslated with another length.
"""
import collections
import re
import subprocess
import sys


def main():
    trace, elf = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    tbs, sym, cnt = {}, {}, collections.Counter()
    cur, name = None, "?"
    with open(trace, errors="replace") as f:
        for line in f:
            if line.startswith("Trace "):
                cnt[int(line.split("[", 1)[1].split("/")[1], 16)] += 1
                cur = None
            elif line.startswith("IN:"):
                cur, name = [], line[3:].strip()
            elif cur is not None and line.startswith("0x"):
                a, rest = line.split(":", 1)
                a = int(a, 16)
                if not cur:
                    tbs[a], sym[a] = cur, name
                cur.append((a, rest.strip()))
    per_ins, text = collections.Counter(), {}
    per_fn = collections.Counter()
    for pc, n in cnt.items():
        block = tbs.get(pc, [])
        per_fn[sym.get(pc, "?")] += n * len(block)
        for a, t in block:
            per_ins[a] += n
            text[a] = t
    total = sum(per_ins.values())
    print(f"total instructions {total}")
    print("\n== per function ==")
    for fn, n in per_fn.most_common(top):
        print(f"{n:>12} {100 * n / total:5.1f}%  {fn}")
    addrs = sorted(per_ins)
    out = subprocess.run(
        ["addr2line", "-e", elf],
        input="\n".join(hex(a) for a in addrs),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    per_line = collections.Counter()
    for a, loc in zip(addrs, out):
        loc = re.sub(r".*/(src|registry/src/[^/]+)/", "", loc).split(" (")[0]
        per_line[loc] += per_ins[a]
    print("\n== per source line ==")
    for loc, n in per_line.most_common(2 * top):
        print(f"{n:>12} {100 * n / total:5.1f}%  {loc}")
    if len(sys.argv) > 5:
        lo, hi = int(sys.argv[4], 16), int(sys.argv[5], 16)
        print("\n== instructions ==")
        for a in addrs:
            if lo <= a < hi:
                print(f"{per_ins[a]:>10} {a:08x} {text[a]}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Training curves of PixelCNN runs as a PNG (matplotlib: `pip install
matplotlib`; a documentation tool, not part of the test command).

    python3 scripts/plot-curve.py OUT.png LABEL=runs/X/summary.json [...]

Each summary.json is the one `tinyinfer train-pixelcnn` writes: its
`history` gives per epoch the training NLL (mean over the epoch) and the
validation NLL (first `valid_images` validation images). Both are drawn per
run (validation solid, training dashed), with the run's float test NLL as
a dot after its last epoch.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    out = sys.argv[1]
    fig, ax = plt.subplots(figsize=(8, 4.6), dpi=100)
    for i, arg in enumerate(sys.argv[2:]):
        label, path = arg.split("=", 1)
        s = json.load(open(path))
        h = s["history"]
        eps = [e["epoch"] for e in h]
        c = f"C{i}"
        ax.plot(eps, [e["valid_nll_nats"] for e in h], "-o", color=c, ms=3,
                label=f"{label}: valid ({h[0]['valid_images']} images)")
        ax.plot(eps, [e["train_nll_nats"] for e in h], "--", color=c, label=f"{label}: train")
        test = s.get("float_test_nll_nats")
        if test:
            ax.plot([eps[-1] + 0.3], [test], "D", color=c, label=f"{label}: float test {test:.2f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL, nats per image")
    ax.set_ylim(top=min(ax.get_ylim()[1], 95))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main()

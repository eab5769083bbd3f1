#!/usr/bin/env python3
"""Training curves of PixelCNN or language-model runs as a PNG
(matplotlib: `pip install matplotlib`; a documentation tool, not part of
the test command).

    python3 scripts/plot-curve.py OUT.png LABEL=runs/X/summary.json [...]

Each summary.json is the one `tinyinfer train-pixelcnn` or `train-lm`
writes: its `history` gives per epoch the training loss (mean over the
epoch) and the validation figure. PixelCNN runs are drawn in nats per
image, language models in perplexity (the family is read from the
history's fields). Both curves per run (validation solid, training
dashed), with the run's float test figure as a dot after its last epoch.
A run still training has no summary.json yet: pass its training log
(the `--quiet` epoch lines of `train-pixelcnn` or `train-lm`) instead.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    """A summary.json, or the epoch lines of a training log (a run still
    in progress: no test figure yet)."""
    if not path.endswith(".log"):
        return json.load(open(path))
    import re
    hist = []
    for line in open(path):
        m = re.match(r"epoch\s+(\d+)/\d+: train nll ([\d.]+) \| valid nll ([\d.]+) nats \((\d+) images", line)
        if m:
            hist.append({"epoch": int(m[1]), "train_nll_nats": float(m[2]),
                         "valid_nll_nats": float(m[3]), "valid_images": int(m[4])})
        m = re.match(r"epoch\s+(\d+)/\d+: train loss [\d.]+ \(ppl ([\d.]+)\) \| valid ppl ([\d.]+) \((\d+) tokens", line)
        if m:
            hist.append({"epoch": int(m[1]), "train_ppl": float(m[2]),
                         "valid_ppl": float(m[3]), "valid_tokens": int(m[4])})
    return {"history": hist}


def main():
    out = sys.argv[1]
    fig, ax = plt.subplots(figsize=(8, 4.6), dpi=100)
    lm = False
    for i, arg in enumerate(sys.argv[2:]):
        label, path = arg.split("=", 1)
        s = load(path)
        h = s["history"]
        eps = [e["epoch"] for e in h]
        c = f"C{i}"
        lm = "valid_ppl" in h[0]
        if lm:
            valid, train = "valid_ppl", "train_ppl"
            what = f"{h[0]['valid_tokens']:,} tokens"
            test = s.get("test_ppl")
        else:
            valid, train = "valid_nll_nats", "train_nll_nats"
            what = f"{h[0]['valid_images']} images"
            test = s.get("float_test_nll_nats")
        ax.plot(eps, [e[valid] for e in h], "-o", color=c, ms=3, label=f"{label}: valid ({what})")
        ax.plot(eps, [e[train] for e in h], "--", color=c, label=f"{label}: train")
        if test:
            ax.plot([eps[-1] + 0.3], [test], "D", color=c, label=f"{label}: float test {test:.2f}")
    ax.set_xlabel("epoch")
    if lm:
        ax.set_ylabel("perplexity")
        ax.set_ylim(top=min(ax.get_ylim()[1], 300))
    else:
        ax.set_ylabel("NLL, nats per image")
        ax.set_ylim(top=min(ax.get_ylim()[1], 95))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Training throughput of the DiracNet in PyTorch, for comparison with burn.

The same network as host-tools/src/families/classifier/model.rs (stem 3x3 conv 1->16 + BN;
per width in 16,32,64 two blocks x -> BN(dirac_conv(relu(x))) with
W_hat = diag(a) I + diag(b) W/||W||; 2x2 max pool between groups; ReLU,
global average pool, FC 64->10), the same step (SGD, Nesterov momentum 0.9,
lr 0.4, weight decay 5e-4, batch 128, mixup alpha 0.2 with soft-target
cross-entropy) on real Fashion-MNIST, on N CPU threads.

    python3 scripts/bench_torch.py --threads 2 --images 5000

Prints images/second over the timed steps (after warm-up). Needs torch and
numpy (`pip install torch numpy`); not part of the test command.
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load_images(path, n):
    with gzip.open(path, "rb") as f:
        data = f.read()
    x = np.frombuffer(data, dtype=np.uint8, offset=16)[: n * 784]
    return x.reshape(-1, 1, 28, 28)


def load_labels(path, n):
    with gzip.open(path, "rb") as f:
        data = f.read()
    return np.frombuffer(data, dtype=np.uint8, offset=8)[:n]


class DiracConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3) * (2.0 / (cin * 9)) ** 0.5)
        self.alpha = nn.Parameter(torch.ones(cout))
        self.beta = nn.Parameter(torch.full((cout,), 0.1))
        delta = torch.zeros(cout, cin, 3, 3)
        for c in range(min(cin, cout)):
            delta[c, c, 1, 1] = 1.0
        self.register_buffer("delta", delta)

    def forward(self, x):
        w = self.weight
        norm = w.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        wh = self.delta * self.alpha.view(-1, 1, 1, 1) + w / norm * self.beta.view(-1, 1, 1, 1)
        return F.conv2d(x, wh, padding=1)


class DiracNet(nn.Module):
    def __init__(self, widths=(16, 32, 64), depth=2, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(1, widths[0], 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(widths[0])
        blocks, prev = [], widths[0]
        for w in widths:
            for _ in range(depth):
                blocks.append(nn.ModuleList([DiracConv(prev, w), nn.BatchNorm2d(w)]))
                prev = w
        self.blocks = nn.ModuleList(blocks)
        self.depth, self.n = depth, len(blocks)
        self.fc = nn.Linear(widths[-1], classes)

    def forward(self, x):
        h = self.stem_bn(self.stem(x))
        for i, (conv, bn) in enumerate(self.blocks):
            h = bn(conv(F.relu(h)))
            if (i + 1) % self.depth == 0 and i + 1 < self.n:
                h = F.max_pool2d(h, 2)
        return self.fc(F.relu(h).mean(dim=(2, 3)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = load_images(f"{a.data}/train-images-idx3-ubyte.gz", a.images)
    y = load_labels(f"{a.data}/train-labels-idx1-ubyte.gz", a.images)
    x = torch.from_numpy((x.astype(np.float32) - 73.0) / 90.0)
    y = torch.from_numpy(y.astype(np.int64))
    net = DiracNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.4, momentum=0.9, nesterov=True, weight_decay=5e-4)
    beta = torch.distributions.Beta(0.2, 0.2)
    steps = a.images // a.batch
    warm = min(5, steps // 4)
    t0 = None
    for s in range(steps):
        if s == warm:
            t0 = time.perf_counter()
        xb, yb = x[s * a.batch:(s + 1) * a.batch], y[s * a.batch:(s + 1) * a.batch]
        lam = float(beta.sample())
        perm = torch.randperm(xb.shape[0])
        xm = lam * xb + (1 - lam) * xb[perm]
        target = lam * F.one_hot(yb, 10).float() + (1 - lam) * F.one_hot(yb[perm], 10).float()
        loss = -(target * F.log_softmax(net(xm), dim=1)).sum(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    n = (steps - warm) * a.batch
    print(f"torch {torch.__version__}: {n / dt:.0f} img/s ({n} images in {dt:.1f} s, {a.threads} threads, batch {a.batch})")


if __name__ == "__main__":
    main()

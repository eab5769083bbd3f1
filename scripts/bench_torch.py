#!/usr/bin/env python3
"""Training throughput in PyTorch of the models tinyinfer trains with burn, for comparison.

Each case rebuilds the burn model and its training step in PyTorch (same layers,
initialisation, loss, optimiser, schedule and batch as the tinyinfer trainer's
defaults), runs it on real data on N CPU threads and prints the throughput over the
timed steps (after a few warm-up steps). Needs torch and numpy (`pip install torch
numpy`); not part of the test command. Data: --data DIR, or as tinyinfer finds it
($TINYINFER_DATA, then ../shared/data, then <repo>/../shared/data; the DiracNet
reads the Debian Fashion-MNIST package).

--model diracnet (default): the DiracNet classifier
    (host-tools/src/families/classifier/model.rs): stem 3x3 conv 1->16 + BN; per
    width in 16,32,64 two blocks x -> BN(dirac_conv(relu(x))) with
    W_hat = diag(a) I + diag(b) W/||W||; 2x2 max pool between groups; ReLU, global
    average pool, FC 64->10. Step: SGD, Nesterov momentum 0.9, lr 0.4, weight decay
    5e-4, batch 128, mixup alpha 0.2 with soft-target cross-entropy, on real
    Fashion-MNIST. --images N is the whole run; min(5, steps/4) steps are warm-up.

        python3 scripts/bench_torch.py --threads 2 --images 6400
        tinyinfer train --train-limit 6400 --epochs 1 --threads 2

--model lm: the word-level LSTM language model of `tinyinfer train-lm`
    (host-tools/src/families/language/{model,float,train}.rs) on Penn Treebank
    (ptb/ptb.train.txt; every line split on whitespace, then <eos>; vocabulary
    in order of first appearance, V = 10,000). Tied embedding E [V, d] (U(+-0.1));
    LSTM layer(s) of --hidden H, gates i,f,g,o, one combined bias (0, forget gate
    1), weights U(+-1/sqrt(H)); head: latents tanh(W_k g + b_k), k = 1..K (one
    [K*d, H] projection, U(+-1/sqrt(H)), bias 0), prior softmax(W_pi g + b_pi)
    when K > 1, tied decoder h E^T + b with b the centred add-one log-unigram of
    the training stream. softmax: K = 1; moc: one softmax of sum_k pi_k h_k; mos:
    log sum_k pi_k softmax(h_k E^T + b)[x] (mixture in probability space). Loss:
    mean NLL per token. Locked dropouts (all 0 by default, as in the trainer).
    Step: truncated BPTT of --bptt 35 on --batch 32 contiguous columns (state
    carried, detached), Adam (0.9, 0.999, eps 1e-8), lr 2e-3 with linear warm-up
    over 1% of the steps (at most 300) then cosine decay to 2%, gradient clipped
    to global L2 norm 1.0. --tokens N is the timed part (ceil(N / (bptt * batch))
    steps), after 3 warm-up steps. The LSTM is torch's nn.LSTM (its bias_hh is
    frozen at 0, so the trainable parameters are burn's); --lstm loop runs the
    cell step by step with explicit matmuls, as burn does.

        python3 scripts/bench_torch.py --model lm --head mos --k 4 --emb 32 --hidden 128 \
            --tokens 56000 --threads 2
        tinyinfer train-lm --dataset ptb --head mos --k 4 --emb 32 --hidden 128 \
            --epochs 1 --train-limit 56000 --valid-limit 1000 --no-test --threads 2 \
            --out /tmp/bench-lm

    (burn's "tok/s" is over its whole epoch, first steps included: here 50 steps of
    32 x 35, the last of 34, against torch's 50 timed steps of 32 x 35.)

--model pixelcnn: the PixelCNN of `tinyinfer train-pixelcnn`
    (host-tools/src/families/density/{model,float,train}.rs) on the fixed
    binarized MNIST (binarized_mnist/binarized_mnist_train-images-idx3-ubyte.gz).
    A 7x7 mask-A conv 1->64 + ReLU; 5 residual bottleneck blocks
    a -> relu(a + expand(conv(reduce(a)))) with reduce 1x1 64->32 + ReLU, conv 3x3
    mask B 32->32 + ReLU, expand 1x1 32->64 (no ReLU); head 1x1 64->64 + ReLU, 1x1
    64->1 logit. Masks multiplied into the weights in every forward pass; Kaiming
    normal init over the unmasked taps (gain 1/sqrt(blocks) on expand, 0.5 on the
    logit), biases 0 but the logit's (-2). Loss: Bernoulli NLL (nats per image,
    summed over pixels, mean over the batch). Step: Adam (0.9, 0.999, eps 1e-5 -
    burn's default), lr 1.5e-3 with linear warm-up over 1% of the steps then cosine
    decay to 2%, batch 16, images shuffled. --images N is the whole run;
    min(5, steps/4) steps are warm-up.

        python3 scripts/bench_torch.py --model pixelcnn --images 1600 --threads 2
        tinyinfer train-pixelcnn --epochs 1 --train-limit 1600 --valid-limit 100 \
            --no-test --threads 2 --out /tmp/bench-pixelcnn
"""
import argparse
import gzip
import math
import os
import struct
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


def bench_diracnet(a):
    images = a.images or 5000
    batch = a.batch or 128
    data = a.data or "/usr/share/datasets/fashion-mnist"
    x = load_images(f"{data}/train-images-idx3-ubyte.gz", images)
    y = load_labels(f"{data}/train-labels-idx1-ubyte.gz", images)
    x = torch.from_numpy((x.astype(np.float32) - 73.0) / 90.0)
    y = torch.from_numpy(y.astype(np.int64))
    net = DiracNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.4, momentum=0.9, nesterov=True, weight_decay=5e-4)
    beta = torch.distributions.Beta(0.2, 0.2)
    steps = images // batch
    warm = min(5, steps // 4)
    t0 = None
    for s in range(steps):
        if s == warm:
            t0 = time.perf_counter()
        xb, yb = x[s * batch:(s + 1) * batch], y[s * batch:(s + 1) * batch]
        lam = float(beta.sample())
        perm = torch.randperm(xb.shape[0])
        xm = lam * xb + (1 - lam) * xb[perm]
        target = lam * F.one_hot(yb, 10).float() + (1 - lam) * F.one_hot(yb[perm], 10).float()
        loss = -(target * F.log_softmax(net(xm), dim=1)).sum(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    n = (steps - warm) * batch
    print(f"torch {torch.__version__}: {n / dt:.0f} img/s ({n} images in {dt:.1f} s, {a.threads} threads, batch {batch})")


# ---------------------------------------------------------------------------------------
# Shared by the LM and the PixelCNN.


def shared_data_dir(flag):
    """The data directory as tinyinfer resolves it (host-tools/src/common/data.rs)."""
    if flag:
        return flag
    env = os.environ.get("TINYINFER_DATA")
    if env:
        return env
    if os.path.isdir("../shared/data"):
        return "../shared/data"
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


def warmup_cosine(base, step, warmup, progress, floor):
    """Linear warm-up, then cosine decay to floor * base (common/trainer.rs)."""
    if step < warmup:
        return base * (step + 1) / max(warmup, 1)
    p = min(max(progress, 0.0), 1.0)
    return base * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p)))


def trainable(module):
    return [p for p in module.parameters() if p.requires_grad]


def count(params):
    return sum(p.numel() for p in params)


# ---------------------------------------------------------------------------------------
# --model lm


def load_ptb_train(data_dir):
    """Training ids and vocabulary size, as language/data.rs builds them."""
    path = os.path.join(data_dir, "ptb", "ptb.train.txt")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    ids, stream = {}, []
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        for w in line.split() + ["<eos>"]:
            i = ids.get(w)
            if i is None:
                i = ids[w] = len(ids)
            stream.append(i)
    return stream, len(ids)


def locked_mask(p, shape):
    """0 or 1/(1-p), one draw per entry of `shape` (broadcast over time), or None."""
    if p <= 0.0:
        return None
    return torch.bernoulli(torch.full(shape, 1.0 - p)) / (1.0 - p)


class LstmLayer(nn.Module):
    """One LSTM layer, gates i, f, g, o, one combined bias (burn's LstmLayer).

    fused: torch's nn.LSTM, whose bias_ih is the combined bias and whose bias_hh is
    frozen at 0 (not trained, not counted). loop: z_t = x_t W_ih^T + h W_hh^T + b step
    by step, as burn computes it."""

    def __init__(self, inp, hid, fused):
        super().__init__()
        self.hid, self.fused = hid, fused
        a = 1.0 / math.sqrt(hid)
        bias = torch.zeros(4 * hid)
        bias[hid:2 * hid] = 1.0
        if fused:
            self.lstm = nn.LSTM(inp, hid)
            with torch.no_grad():
                self.lstm.weight_ih_l0.uniform_(-a, a)
                self.lstm.weight_hh_l0.uniform_(-a, a)
                self.lstm.bias_ih_l0.copy_(bias)
                self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_hh_l0.requires_grad_(False)
        else:
            self.w_ih = nn.Parameter(torch.empty(4 * hid, inp).uniform_(-a, a))
            self.w_hh = nn.Parameter(torch.empty(4 * hid, hid).uniform_(-a, a))
            self.bias = nn.Parameter(bias)

    def forward(self, x, h, c, w_mask):
        """x [T, B, I], state [B, H] each, w_mask [4H, H] or None -> [T, B, H], (h, c)."""
        if self.fused:
            state = (h.unsqueeze(0), c.unsqueeze(0))
            if w_mask is None:
                out, (h, c) = self.lstm(x, state)
            else:
                w = {"weight_hh_l0": self.lstm.weight_hh_l0 * w_mask}
                out, (h, c) = torch.func.functional_call(self.lstm, w, (x, state))
            return out, h.squeeze(0), c.squeeze(0)
        w_hh = self.w_hh if w_mask is None else self.w_hh * w_mask
        hd, outs = self.hid, []
        for xt in x.unbind(0):
            z = xt @ self.w_ih.t() + h @ w_hh.t() + self.bias
            s = torch.sigmoid(z[:, :2 * hd])
            i, f = s[:, :hd], s[:, hd:]
            g = torch.tanh(z[:, 2 * hd:3 * hd])
            o = torch.sigmoid(z[:, 3 * hd:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), h, c


class LM(nn.Module):
    """language/model.rs: tied embedding, LSTM stack, softmax / MoC / MoS head."""

    def __init__(self, vocab, emb, hidden, head, k, fused):
        super().__init__()
        self.head, self.k, self.emb = head, k, emb
        self.embedding = nn.Parameter(torch.empty(vocab, emb).uniform_(-0.1, 0.1))
        layers, inp = [], emb
        for h in hidden:
            layers.append(LstmLayer(inp, h, fused))
            inp = h
        self.layers = nn.ModuleList(layers)
        a = 1.0 / math.sqrt(inp)
        # Row k*d + j is latent j of component k (burn's proj_w column k*d + j).
        self.proj_w = nn.Parameter(torch.empty(k * emb, inp).uniform_(-a, a))
        self.proj_b = nn.Parameter(torch.zeros(k * emb))
        if k > 1:
            self.prior_w = nn.Parameter(torch.empty(k, inp).uniform_(-a, a))
            self.prior_b = nn.Parameter(torch.zeros(k))
        self.dec_b = nn.Parameter(torch.zeros(vocab))

    def init_unigram_bias(self, stream):
        """Decoder bias = centred add-one log unigram frequencies (init_unigram_bias)."""
        v = self.dec_b.numel()
        counts = np.bincount(np.asarray(stream), minlength=v)[:v].astype(np.float64) + 1.0
        logs = np.log(counts / counts.sum())
        with torch.no_grad():
            self.dec_b.copy_(torch.from_numpy(logs - logs.mean()).float())

    def zero_state(self, batch):
        return [(torch.zeros(batch, l.hid), torch.zeros(batch, l.hid)) for l in self.layers]

    def masks(self, d, batch):
        """One segment's locked masks (LmModel::masks); all None at the defaults."""
        nl = len(self.layers)
        return {
            "embedding": locked_mask(d["embedding"], (self.embedding.shape[0], 1)),
            "input": locked_mask(d["input"], (1, batch, self.emb)),
            "hidden": [locked_mask(d["hidden"], (1, batch, l.hid)) for l in self.layers[:nl - 1]] + [None],
            "output": locked_mask(d["output"], (1, batch, self.layers[-1].hid)),
            "latent": locked_mask(d["latent"], (1, batch, self.k * self.emb)),
            "weight": [locked_mask(d["weight"], (4 * l.hid, l.hid)) for l in self.layers],
        }

    def loss(self, x, y, state, m):
        """Mean NLL of targets y [T, B] given inputs x [T, B]; returns (loss, new state)."""
        t_len, b = x.shape
        n, k, d = t_len * b, self.k, self.emb
        e = self.embedding if m["embedding"] is None else self.embedding * m["embedding"]
        h = F.embedding(x, e)
        if m["input"] is not None:
            h = h * m["input"]
        new = []
        for l, (h0, c0), mh, mw in zip(self.layers, state, m["hidden"], m["weight"]):
            h, hn, cn = l(h, h0, c0, mw)
            new.append((hn, cn))
            if mh is not None:
                h = h * mh
        if m["output"] is not None:
            h = h * m["output"]
        g = h.reshape(n, -1)
        lat = torch.tanh(F.linear(g, self.proj_w, self.proj_b))
        if m["latent"] is not None:
            lat = (lat.view(t_len, b, k * d) * m["latent"]).view(n, k * d)
        lat = lat.view(n, k, d)
        log_pi = F.log_softmax(F.linear(g, self.prior_w, self.prior_b), dim=1) if k > 1 else None
        y = y.reshape(n)
        if self.head == "mos":
            z = F.linear(lat.reshape(n * k, d), self.embedding, self.dec_b)
            lp = -F.cross_entropy(z, y.repeat_interleave(k), reduction="none").view(n, k)
            if log_pi is not None:
                lp = lp + log_pi
            loss = -torch.logsumexp(lp, dim=1).mean()
        else:
            if self.head == "moc" and log_pi is not None:
                hm = (lat * log_pi.exp().unsqueeze(2)).sum(dim=1)
            else:
                hm = lat.reshape(n, d)
            loss = F.cross_entropy(F.linear(hm, self.embedding, self.dec_b), y)
        return loss, new


def clip_global(params, max_norm):
    """Scale all gradients by max/norm when their global L2 norm exceeds max (clip_global)."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
    if max_norm > 0 and norm > max_norm:
        for g in grads:
            g.mul_(max_norm / norm)


def bench_lm(a):
    k = a.k if a.k is not None else (1 if a.head == "softmax" else 4)
    if a.head == "softmax" and k != 1:
        raise SystemExit(f"a softmax head has --k 1, not {k}")
    hidden = [int(h) for h in (a.hidden or "256").split(",")]
    if len(hidden) == 1:
        hidden = hidden * a.layers
    batch, bptt, emb = a.batch or 32, a.bptt, a.emb
    lr0 = a.lr or 2e-3
    dir_ = shared_data_dir(a.data)
    stream, vocab = load_ptb_train(dir_)
    warm = 3
    timed = max(1, -(-a.tokens // (bptt * batch)))
    steps = warm + timed
    # The first tokens of the training stream, cut into `batch` columns as train.rs does
    # (column b is stream[b*cols : (b+1)*cols]); past its end, a new epoch (zero state).
    n_stream = min(len(stream), batch * (steps * bptt + 1))
    cols = n_stream // batch
    if cols < 2:
        raise SystemExit(f"too few tokens for --batch {batch}")
    stream = stream[:n_stream]
    data = torch.tensor(stream[:batch * cols], dtype=torch.int64).view(batch, cols).t().contiguous()
    net = LM(vocab, emb, hidden, a.head, k, fused=(a.lstm == "fused"))
    net.init_unigram_bias(stream)
    params = trainable(net)
    drop = {"input": a.dropout_in, "hidden": a.dropout_out if a.dropout_hid is None else a.dropout_hid,
            "output": a.dropout_out, "latent": a.dropout_latent, "embedding": a.dropout_emb,
            "weight": a.dropout_weight}
    opt = torch.optim.Adam(params, lr=lr0, betas=(0.9, 0.999), eps=1e-8)
    warmup = min(max(steps // 100, 1), 300)
    print(f"LM ptb {a.head} K {k} d {emb} H {','.join(map(str, hidden))}: {count(params)} parameters "
          f"(V {vocab}; {a.lstm} LSTM); {warm} warm-up + {timed} timed steps of {batch} x {bptt}; "
          f"Adam lr {lr0} clip {a.clip} warm-up {warmup}; dropout {drop}")
    state = net.zero_state(batch)
    i, t0, loss_sum, seen = 0, None, 0.0, 0
    for s in range(steps):
        if s == warm:
            t0 = time.perf_counter()
        if i >= cols - 1:
            i, state = 0, net.zero_state(batch)
        t = min(bptt, cols - 1 - i)
        x, y = data[i:i + t], data[i + 1:i + 1 + t]
        i += t
        lr = warmup_cosine(lr0, s, warmup, s / steps, 0.02)
        for group in opt.param_groups:
            group["lr"] = lr
        loss, state = net.loss(x, y, state, net.masks(drop, batch))
        state = [(h.detach(), c.detach()) for h, c in state]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.clip > 0:
            clip_global(params, a.clip)
        opt.step()
        lv = loss.item()
        if s >= warm:
            loss_sum += lv * t * batch
            seen += t * batch
    dt = time.perf_counter() - t0
    print(f"torch {torch.__version__}: {seen / dt:.0f} tok/s ({seen} tokens in {dt:.1f} s, {a.threads} threads, "
          f"batch {batch} x bptt {bptt}; loss {loss_sum / seen:.3f})")


# ---------------------------------------------------------------------------------------
# --model pixelcnn


def load_binarized_mnist(data_dir, n):
    path = os.path.join(data_dir, "binarized_mnist", "binarized_mnist_train-images-idx3-ubyte.gz")
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count_, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 0x803 or (rows, cols) != (28, 28):
        raise SystemExit(f"{path}: not an IDX3 file of 28x28 images")
    x = np.frombuffer(data, dtype=np.uint8, offset=16)[: min(n, count_) * 784]
    return x.reshape(-1, 1, 28, 28)


def mask_allows(kind, k, ky, kx):
    """density/float.rs Mask::allows: A excludes the centre tap, B includes it."""
    c = (max(k, 1) - 1) // 2
    return ky < c or (ky == c and (kx < c if kind == "A" else kx <= c))


class MaskedConv(nn.Module):
    """k x k conv, stride 1, same padding, bias; the mask multiplied into the weight in
    every forward pass; Kaiming normal (gain sqrt(2) * gain) over the unmasked taps."""

    def __init__(self, cin, cout, k, kind, relu, gain):
        super().__init__()
        m = torch.tensor([[float(mask_allows(kind, k, ky, kx)) for kx in range(k)] for ky in range(k)])
        taps = max(int(m.sum()), 1)
        self.register_buffer("mask", m.expand(cout, cin, k, k).contiguous())
        std = gain * math.sqrt(2.0 / (cin * taps))
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k) * std * self.mask)
        self.bias = nn.Parameter(torch.zeros(cout))
        self.pad, self.relu = (k - 1) // 2, relu

    def forward(self, x):
        y = F.conv2d(x, self.weight * self.mask, self.bias, padding=self.pad)
        return F.relu(y) if self.relu else y


class PixelCnn(nn.Module):
    """density/model.rs PixelCnn with PixelCnnConfig::default()."""

    def __init__(self, channels=64, hidden=32, blocks=5, kernel=3, first_kernel=7, head=64):
        super().__init__()
        c, h = channels, hidden
        self.first = MaskedConv(1, c, first_kernel, "A", True, 1.0)
        expand_gain = 1.0 / math.sqrt(max(blocks, 1))
        self.blocks = nn.ModuleList(
            nn.ModuleList([
                MaskedConv(c, h, 1, "B", True, 1.0),
                MaskedConv(h, h, kernel, "B", True, 1.0),
                MaskedConv(h, c, 1, "B", False, expand_gain),
            ])
            for _ in range(blocks)
        )
        heads, prev = [], c
        if head > 0:
            heads.append(MaskedConv(c, head, 1, "B", True, 1.0))
            prev = head
        last = MaskedConv(prev, 1, 1, "B", False, 0.5)
        with torch.no_grad():
            last.bias.fill_(-2.0)
        heads.append(last)
        self.head = nn.ModuleList(heads)
        self.cfg = (channels, hidden, blocks, kernel, first_kernel, head)

    def forward(self, x):
        a = self.first(x)
        for reduce, conv, expand in self.blocks:
            a = F.relu(a + expand(conv(reduce(a))))
        for h in self.head:
            a = h(a)
        return a


def bench_pixelcnn(a):
    images, batch = a.images or 2000, a.batch or 16
    lr0 = a.lr or 1.5e-3
    dir_ = shared_data_dir(a.data)
    x = torch.from_numpy(load_binarized_mnist(dir_, images).astype(np.float32))
    bs = min(batch, x.shape[0])
    steps = x.shape[0] // bs
    warm = min(5, steps // 4)
    warmup = min(max(steps // 100, 1), steps)
    net = PixelCnn()
    opt = torch.optim.Adam(net.parameters(), lr=lr0, betas=(0.9, 0.999), eps=1e-5)
    print("PixelCNN C {} h {} blocks {} kernel {} first {} head {}: ".format(*net.cfg)
          + f"{count(trainable(net))} parameters; {x.shape[0]} images, {warm} warm-up + {steps - warm} timed "
          f"steps of {bs}; Adam lr {lr0} warm-up {warmup}")
    order = torch.randperm(x.shape[0])
    t0, loss_sum = None, 0.0
    for s in range(steps):
        if s == warm:
            t0 = time.perf_counter()
        lr = warmup_cosine(lr0, s, warmup, (s - warmup) / max(steps - warmup, 1), 0.02)
        for group in opt.param_groups:
            group["lr"] = lr
        xb = x[order[s * bs:(s + 1) * bs]]
        loss = F.binary_cross_entropy_with_logits(net(xb), xb, reduction="sum") / bs
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lv = loss.item()
        if s >= warm:
            loss_sum += lv
    dt = time.perf_counter() - t0
    n = (steps - warm) * bs
    print(f"torch {torch.__version__}: {n / dt:.1f} img/s ({n} images in {dt:.1f} s, {a.threads} threads, "
          f"batch {bs}; nll {loss_sum / (steps - warm):.2f} nats)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["diracnet", "lm", "pixelcnn"], default="diracnet")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, help="lm: 2e-3, pixelcnn: 1.5e-3 (peak of the schedule)")
    ap.add_argument("--batch", type=int, help="default: 128 diracnet, 32 lm, 16 pixelcnn")
    ap.add_argument("--data", help="default: /usr/share/datasets/fashion-mnist for diracnet, "
                    "else $TINYINFER_DATA, ../shared/data, <repo>/../shared/data")
    ap.add_argument("--images", type=int, help="diracnet, pixelcnn: images in all (default 5000, 2000)")
    g = ap.add_argument_group("lm (defaults: tinyinfer train-lm's)")
    g.add_argument("--tokens", type=int, default=56000, help="timed training tokens")
    g.add_argument("--head", choices=["softmax", "moc", "mos"], default="softmax")
    g.add_argument("--k", type=int, help="mixture components (default: 1 for softmax, 4 otherwise)")
    g.add_argument("--emb", type=int, default=128)
    g.add_argument("--hidden", default="256", help="one size (repeated --layers times) or a comma list")
    g.add_argument("--layers", type=int, default=1)
    g.add_argument("--bptt", type=int, default=35)
    g.add_argument("--clip", type=float, default=1.0)
    g.add_argument("--lstm", choices=["fused", "loop"], default="fused",
                   help="fused: nn.LSTM; loop: step by step, as burn")
    g.add_argument("--dropout-in", type=float, default=0.0)
    g.add_argument("--dropout-hid", type=float)
    g.add_argument("--dropout-out", type=float, default=0.0)
    g.add_argument("--dropout-latent", type=float, default=0.0)
    g.add_argument("--dropout-emb", type=float, default=0.0)
    g.add_argument("--dropout-weight", type=float, default=0.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    {"diracnet": bench_diracnet, "lm": bench_lm, "pixelcnn": bench_pixelcnn}[a.model](a)


if __name__ == "__main__":
    main()

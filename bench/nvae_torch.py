#!/usr/bin/python3
"""The PyTorch twin of NVAE-small (lib/models/nvae.hpp): the same cells, the same
hierarchy, the same parameterisation, so that

  * tests/golden/make_golden_nvae.py takes its float64 numbers (cells, a 2-group model's
    loss and gradients) from it, with the parameters exported in the suite's names and
    layouts (export / export_grads), and
  * `bench/nvae_torch.py --bench` times its training step on MNIST-sized batches on one
    thread, beside `vae bench-nvae`-style timing of the C++ model (bench/nvae_speed.sh).

Written from the paper (Vahdat & Kautz 2020) and the structure of their code (cells,
combiners, samplers, residual normal, soft clamp), not copied from it. Layouts: the suite
is channels-last, so a Conv2d weight [cout, cin, k, k] is exported as .permute(0, 2, 3, 1),
a depthwise weight [C, 1, k, k] as [k*k, C], images and maps as [B, H, W, C].
The KL here is torch.distributions.kl_divergence of the two Normals (not the closed form
the C++ code writes), so the golden values check that formula too.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

BN_EPS = 1e-5
RES_SCALE = 0.1


def soft_clamp(x):
    return 5.0 * torch.tanh(x / 5.0)


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = max(c // 16, 4)
        self.fc1 = nn.Linear(c, h)
        self.fc2 = nn.Linear(h, c)

    def forward(self, x):
        g = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=[2, 3])))))
        return x * g[:, :, None, None]


class Upsample(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest")


def bn(c, momentum):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=momentum)


class Cell(nn.Module):
    """out = skip(x) + 0.1 main(x); an empty skip is the identity."""

    def __init__(self, main, skip):
        super().__init__()
        self.main = nn.Sequential(*main)
        self.skip = nn.Sequential(*skip)

    def forward(self, x):
        s = self.skip(x) if len(self.skip) else x
        return s + RES_SCALE * self.main(x)


def encoder_cell(c, down, momentum):
    cout = 2 * c if down else c
    main = [bn(c, momentum), Swish(), nn.Conv2d(c, cout, 3, 2 if down else 1, 1),
            bn(cout, momentum), Swish(), nn.Conv2d(cout, cout, 3, 1, 1), SE(cout)]
    skip = [Swish(), nn.Conv2d(c, cout, 2, 2, 0)] if down else []
    return Cell(main, skip)


def decoder_cell(c, up, expand, momentum):
    cout = c // 2 if up else c
    e = c * expand
    main = ([Upsample()] if up else []) + [
        bn(c, momentum), nn.Conv2d(c, e, 1), bn(e, momentum), Swish(),
        nn.Conv2d(e, e, 5, 1, 2, groups=e), bn(e, momentum), Swish(),
        nn.Conv2d(e, cout, 1), bn(cout, momentum), SE(cout)]
    skip = [Upsample(), nn.Conv2d(c, cout, 1)] if up else []
    return Cell(main, skip)


class Group(nn.Module):
    def __init__(self, c, z, first):
        super().__init__()
        self.enc_sampler = nn.Sequential(nn.Conv2d(c, 2 * z, 3, 1, 1))
        self.dec_sampler = nn.Sequential() if first else nn.Sequential(nn.ELU(), nn.Conv2d(c, 2 * z, 3, 1, 1))
        self.enc_comb = nn.Sequential() if first else nn.Sequential(nn.Conv2d(c, c, 1))
        self.comb_s = nn.Sequential(nn.Conv2d(c, c, 1))
        self.comb_z = nn.Sequential(nn.Conv2d(z, c, 1))


class NvaeSmall(nn.Module):
    def __init__(self, rows=28, cols=28, channels=16, scales=2, groups=2, latent=8, pre=2, cells=1,
                 expand=6, momentum=0.05):
        super().__init__()
        self.rows, self.cols, self.Z = rows, cols, latent
        m = 2 ** (pre + scales - 1)
        self.Hp, self.Wp = -(-rows // m) * m, -(-cols // m) * m
        self.top, self.left = (self.Hp - rows) // 2, (self.Wp - cols) // 2
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, 1, 1))
        c, h = channels, self.Hp
        enc, self.record = [], []
        for _ in range(pre):
            enc.append(encoder_cell(c, True, momentum)); c *= 2; h //= 2
        for sc in range(scales):
            for g in range(groups):
                for _ in range(cells):
                    enc.append(encoder_cell(c, False, momentum))
                if not (sc == scales - 1 and g == groups - 1):
                    self.record.append(len(enc) - 1)
            if sc < scales - 1:
                enc.append(encoder_cell(c, True, momentum)); c *= 2; h //= 2
        self.enc = nn.ModuleList(enc)
        self.enc0 = nn.Sequential(nn.ELU(), nn.Conv2d(c, c, 1), nn.ELU())
        self.prior_ftr = nn.Parameter(torch.rand(1, c, self.Hp // m, self.Wp // m))
        dec, grp, self.nodes = [], [], []
        for sc in range(scales):
            for g in range(groups):
                if grp:
                    for _ in range(cells):
                        dec.append(decoder_cell(c, False, expand, momentum)); self.nodes.append(("cell", len(dec) - 1))
                grp.append(Group(c, latent, not grp)); self.nodes.append(("group", len(grp) - 1))
            if sc < scales - 1:
                dec.append(decoder_cell(c, True, expand, momentum)); c //= 2; self.nodes.append(("cell", len(dec) - 1))
        for _ in range(pre):
            dec.append(decoder_cell(c, True, expand, momentum)); c //= 2; self.nodes.append(("cell", len(dec) - 1))
        self.grp = nn.ModuleList(grp)
        self.dec = nn.ModuleList(dec)
        self.head = nn.Sequential(nn.ELU(), nn.Conv2d(c, 1, 3, 1, 1))

    def forward(self, x, eps):
        """x [B, 1, rows, cols] in {0, 1}, eps: one [B, Z, h, w] per group (top first) ->
        rec [B] (-log p(x|z), Bernoulli), kl: one [B, Z, h, w] per group."""
        K = len(self.grp)
        xp = F.pad(x, (self.left, self.Wp - self.cols - self.left, self.top, self.Hp - self.rows - self.top))
        s = self.stem(2 * xp - 1)
        feats = []
        for cell in self.enc:
            s = cell(s)
            feats.append(s)
        top = self.enc0(s)
        s = self.prior_ftr.expand(x.shape[0], -1, -1, -1)
        kls = []
        for kind, i in self.nodes:
            if kind == "cell":
                s = self.dec[i](s)
                continue
            g = self.grp[i]
            if i == 0:
                f, mp, sp = top, 0.0, 0.0
            else:
                mp_raw, sp_raw = torch.chunk(g.dec_sampler(s), 2, dim=1)
                mp, sp = soft_clamp(mp_raw), soft_clamp(sp_raw)
                f = feats[self.record[K - 1 - i]] + g.enc_comb(s)
            dm_raw, r_raw = torch.chunk(g.enc_sampler(f), 2, dim=1)
            dm, r = soft_clamp(dm_raw), soft_clamp(r_raw)
            mq, lsq = mp + dm, sp + r
            z = mq + torch.exp(lsq) * eps[i]
            q = Normal(mq, torch.exp(lsq))
            p = Normal(mp + torch.zeros_like(dm), torch.exp(sp + torch.zeros_like(r)))
            kls.append(kl_divergence(q, p))
            s = g.comb_s(s) + g.comb_z(z)
        logits = self.head(s)[:, :, self.top:self.top + self.rows, self.left:self.left + self.cols]
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=[1, 2, 3])
        return rec, kls

    def latent_shapes(self, B):
        shapes, h = [], self.prior_ftr.shape[2]
        w = self.prior_ftr.shape[3]
        for kind, i in self.nodes:
            if kind == "group":
                shapes.append((B, self.Z, h, w))
            elif len(self.dec[i].skip):
                h, w = 2 * h, 2 * w
        return shapes


# ---- the suite's names and layouts ----

def _export_tensor(mod, name, t):
    """One parameter of a module in the suite's layout."""
    if isinstance(mod, nn.Conv2d) and name == "weight":
        if mod.groups > 1:  # depthwise [C, 1, k, k] -> [k*k, C]
            return t.reshape(t.shape[0], -1).t().flatten()
        return t.permute(0, 2, 3, 1).flatten()
    return t.flatten()


def _chain(prefix, seq, grad, out):
    for i, mod in enumerate(seq):
        p = f"{prefix}.{i}"
        get = (lambda v: v.grad) if grad else (lambda v: v)
        if isinstance(mod, nn.BatchNorm2d):
            out[p + ".gamma"] = get(mod.weight).flatten()
            out[p + ".beta"] = get(mod.bias).flatten()
        elif isinstance(mod, nn.Conv2d):
            out[p + ".W"] = _export_tensor(mod, "weight", get(mod.weight))
            out[p + ".b"] = get(mod.bias).flatten()
        elif isinstance(mod, SE):
            out[p + ".W1"] = get(mod.fc1.weight).flatten()
            out[p + ".b1"] = get(mod.fc1.bias).flatten()
            out[p + ".W2"] = get(mod.fc2.weight).flatten()
            out[p + ".b2"] = get(mod.fc2.bias).flatten()


def cell_export(prefix, cell, grad=False):
    out = {}
    _chain(prefix + ".main", cell.main, grad, out)
    _chain(prefix + ".skip", cell.skip, grad, out)
    return out


def export(model, grad=False):
    """{suite name: flat tensor} of every parameter (or its gradient)."""
    out = {}
    _chain("stem", model.stem, grad, out)
    for i, c in enumerate(model.enc):
        out.update(cell_export(f"enc{i}", c, grad))
    _chain("enc_top", model.enc0, grad, out)
    for l, g in enumerate(model.grp):
        for part in ("enc_sampler", "dec_sampler", "enc_comb", "comb_s", "comb_z"):
            _chain(f"g{l}.{part}", getattr(g, part), grad, out)
    for i, c in enumerate(model.dec):
        out.update(cell_export(f"dec{i}", c, grad))
    _chain("head", model.head, grad, out)
    pf = model.prior_ftr.grad if grad else model.prior_ftr
    out["prior_ftr"] = pf.permute(0, 2, 3, 1).flatten()
    return out


def nhwc(t):
    return t.permute(0, 2, 3, 1).flatten()


# ---- the throughput bench ----

def bench(args):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = NvaeSmall(channels=args.channels, scales=args.scales, groups=args.groups, latent=args.latent)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    B = args.batch
    x = (torch.rand(B, 1, 28, 28) < 0.3).double() if args.double else (torch.rand(B, 1, 28, 28) < 0.3).float()
    if args.double:
        model.double()
    shapes = model.latent_shapes(B)
    n_params = sum(p.numel() for p in model.parameters())

    def step():
        eps = [torch.randn(s, dtype=x.dtype) for s in shapes]
        rec, kls = model(x, eps)
        loss = rec.mean() + sum(k.sum(dim=[1, 2, 3]).mean() for k in kls)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    dt = time.perf_counter() - t0
    print(f"torch nvae: {n_params} parameters, batch {B}, {args.steps} steps, "
          f"{dt / args.steps * 1e3:.1f} ms/step, {B * args.steps / dt:.1f} samples/s (1 thread)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", action="store_true", help="time training steps on random binary 28x28 batches")
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--scales", type=int, default=2)
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--latent", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--double", action="store_true")
    a = ap.parse_args()
    if a.bench:
        bench(a)
    else:
        ap.print_help()

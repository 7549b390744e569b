#!/usr/bin/python3
"""Golden values for tests/test_nvae.cpp, from the PyTorch twin of NVAE-small
(bench/nvae_torch.py) in float64:
  * encoder and decoder cells (normal, down-, up-sampling; batch norm in training mode):
    output and the gradients of sum(y * R), parameters and input;
  * the residual-normal KL from torch.distributions.kl_divergence;
  * a weight's largest singular value (torch.linalg.svd) and 2 u1 v1^T;
  * a 2-scale, 1-group-per-scale model (2 groups) on 4x4 images: rec, KL per group, the
    loss mean(rec) + beta sum KL and its gradient for every parameter.
Everything is written in the suite's names and channels-last layouts. Run once:
    /usr/bin/python3 tests/golden/make_golden_nvae.py > tests/golden/nvae.json
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import nvae_torch as nt  # noqa: E402

torch.set_default_dtype(torch.float64)


def lst(t):
    return [float(v) for v in t.detach().flatten().tolist()]


def randomize_bn(module, gen):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)


def cell_case(kind, flag, B, C, H, W, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cell = nt.encoder_cell(C, flag, 0.05) if kind == "encoder" else nt.decoder_cell(C, flag, 6, 0.05)
    randomize_bn(cell, gen)
    cell.train()
    x = torch.randn(B, C, H, W, generator=gen).requires_grad_(True)
    y = cell(x)
    R = torch.randn(y.shape, generator=gen)
    (y * R).sum().backward()
    return {
        "B": B, "h": H, "w": W, "c": C, ("down" if kind == "encoder" else "up"): flag,
        "params": {k: lst(v) for k, v in nt.cell_export("b", cell).items()},
        "grads": {k: lst(v) for k, v in nt.cell_export("b", cell, grad=True).items()},
        "x": lst(nt.nhwc(x)), "R": lst(nt.nhwc(R)), "y": lst(nt.nhwc(y)), "dx": lst(nt.nhwc(x.grad)),
    }


def residual_kl_case(seed):
    gen = torch.Generator().manual_seed(seed)
    n = 20
    mp, s, dmu, r = (torch.randn(n, generator=gen) for _ in range(4))
    q = torch.distributions.Normal(mp + dmu, torch.exp(s + r))
    p = torch.distributions.Normal(mp, torch.exp(s))
    return {"dmu": lst(dmu), "s": lst(s), "r": lst(r), "kl": lst(torch.distributions.kl_divergence(q, p))}


def spectral_case(seed):
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(5, 7, generator=gen)
    U, S, Vh = torch.linalg.svd(W)
    return {"rows": 5, "cols": 7, "W": lst(W), "sigma_max": float(S[0]),
            "dsigma_dW_times_2": lst(2 * torch.outer(U[:, 0], Vh[0]))}


def model_case(seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    m = nt.NvaeSmall(rows=4, cols=4, channels=2, scales=2, groups=1, latent=2, pre=1, cells=1, expand=2)
    randomize_bn(m, gen)
    m.train()
    B, beta = 3, 0.7
    x = (torch.rand(B, 1, 4, 4, generator=gen) < 0.4).double()
    eps = [torch.randn(s, generator=gen) for s in m.latent_shapes(B)]
    rec, kls = m(x, eps)
    kl_rows = [k.sum(dim=[1, 2, 3]) for k in kls]
    loss = rec.mean() + beta * sum(k.mean() for k in kl_rows)
    loss.backward()
    return {
        "shape": {"rows": 4, "cols": 4, "channels": 2, "scales": 2, "groups": 1, "latent": 2, "pre": 1,
                  "cells": 1, "expand": 2},
        "B": B, "beta": beta, "x": lst(x),
        "eps": [lst(nt.nhwc(e)) for e in eps],
        "params": {k: lst(v) for k, v in nt.export(m).items()},
        "grads": {k: lst(v) for k, v in nt.export(m, grad=True).items()},
        "rec": lst(rec), "kl_groups": [float(k.mean()) for k in kl_rows], "loss": float(loss),
    }


print(json.dumps({
    "encoder_cell": cell_case("encoder", False, 2, 4, 4, 4, 1),
    "encoder_down_cell": cell_case("encoder", True, 2, 4, 4, 4, 2),
    "decoder_cell": cell_case("decoder", False, 2, 4, 4, 4, 3),
    "decoder_up_cell": cell_case("decoder", True, 2, 4, 4, 4, 4),
    "residual_kl": residual_kl_case(5),
    "spectral": spectral_case(6),
    "model": model_case(7),
}))

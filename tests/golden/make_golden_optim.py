#!/usr/bin/python3
"""Golden values for the optimizers (tests/test_optimizer.cpp): three steps of
torch.optim.Adam and torch.optim.Adagrad in float64 on fixed parameters and gradients.
    /usr/bin/python3 tests/golden/make_golden_optim.py > tests/golden/optimizers.json
"""
import json
import torch

torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(0)
p0 = torch.randn(7, generator=gen)
grads = [torch.randn(7, generator=gen) for _ in range(3)]


def run(make):
    p = p0.clone().requires_grad_(True)
    opt = make([p])
    out = []
    for g in grads:
        opt.zero_grad()
        p.grad = g.clone()
        opt.step()
        out.append(p.detach().tolist())
    return out


cases = {
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6,
             "steps": run(lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6))},
    "adagrad": {"lr": 0.1, "eps": 1e-10,
                "steps": run(lambda ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-10))},
}
print(json.dumps({"generator": "tests/golden/make_golden_optim.py", "torch": torch.__version__,
                  "p0": p0.tolist(), "grads": [g.tolist() for g in grads], "cases": cases}))

#!/usr/bin/python3
"""Golden values for tests/test_batchnorm.cpp: torch.nn.BatchNorm1d in float64.

For each case: an input x [B,N], gamma, beta, the running statistics before, and an
upstream gradient r [B,N] of the loss sum(y * r). Training mode gives y, dx, dgamma,
dbeta and the running statistics after one step (momentum 0.1, unbiased running
variance); evaluation mode gives y, dx, dgamma, dbeta with the running statistics fixed.
Run once with Debian's python3-torch:
    /usr/bin/python3 tests/golden/make_golden_batchnorm.py > tests/golden/batchnorm.json
"""
import json
import torch

torch.set_default_dtype(torch.float64)


def case(name, B, N, seed, training):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, generator=gen) * 2.0 + 0.5
    r = torch.randn(B, N, generator=gen)
    bn = torch.nn.BatchNorm1d(N, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(N, generator=gen) + 0.5)
        bn.bias.copy_(torch.randn(N, generator=gen))
        bn.running_mean.copy_(torch.randn(N, generator=gen) * 0.3)
        bn.running_var.copy_(torch.rand(N, generator=gen) + 0.5)
    before_mean = bn.running_mean.clone()
    before_var = bn.running_var.clone()
    bn.train(training)
    xg = x.clone().requires_grad_(True)
    y = bn(xg)
    (y * r).sum().backward()
    t = lambda v: v.detach().flatten().tolist()
    return {
        "name": name, "training": training, "B": B, "N": N,
        "x": t(x), "r": t(r), "gamma": t(bn.weight), "beta": t(bn.bias),
        "running_mean_before": t(before_mean), "running_var_before": t(before_var),
        "y": t(y), "dx": t(xg.grad), "dgamma": t(bn.weight.grad), "dbeta": t(bn.bias.grad),
        "running_mean_after": t(bn.running_mean), "running_var_after": t(bn.running_var),
    }


cases = [
    case("training 6x4", 6, 4, 1, True),
    case("training 2x3 (smallest batch)", 2, 3, 2, True),
    case("training 17x5", 17, 5, 3, True),
    case("evaluation 6x4", 6, 4, 4, False),
    case("evaluation 1x5 (one row)", 1, 5, 5, False),
]
print(json.dumps({"generator": "tests/golden/make_golden_batchnorm.py", "torch": torch.__version__,
                  "eps": 1e-5, "momentum": 0.1, "cases": cases}))

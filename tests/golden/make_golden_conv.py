#!/usr/bin/python3
"""Golden values for tests/test_conv.cpp: torch.nn.Conv2d, ConvTranspose2d and
BatchNorm2d in float64, outputs and gradients.

Every tensor is written channels-last, as the suite stores it (lib/nn/conv.hpp):
images x.permute(0, 2, 3, 1), Conv2d weights [cout, k, k, cin] and ConvTranspose2d
weights [cin, k, k, cout] (both PyTorch's weight .permute(0, 2, 3, 1)). The loss is
sum(y * r) for a random upstream gradient r, so dx, dW, db are PyTorch's gradients.
It also records the parameter count of the peer's conv preset
(../shared/bench/torch_vae_baseline.py ConvVAE, BatchNorm2d affine parameters
included, running statistics not) for a few latent sizes. Run once with Debian's
python3-torch:
    /usr/bin/python3 tests/golden/make_golden_conv.py > tests/golden/conv.json
"""
import importlib.util
import json
import os
import torch

torch.set_default_dtype(torch.float64)


def t(v):
    return v.detach().flatten().tolist()


def nhwc(v):
    return t(v.permute(0, 2, 3, 1))


def conv_case(name, transposed, B, cin, cout, k, s, p, op, H, W, seed):
    gen = torch.Generator().manual_seed(seed)
    if transposed:
        layer = torch.nn.ConvTranspose2d(cin, cout, k, s, p, output_padding=op)
    else:
        layer = torch.nn.Conv2d(cin, cout, k, s, p)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 0.5)
        layer.bias.copy_(torch.randn(cout, generator=gen))
    x = torch.randn(B, cin, H, W, generator=gen).requires_grad_(True)
    y = layer(x)
    r = torch.randn(y.shape, generator=gen)
    (y * r).sum().backward()
    return {
        "name": name, "transposed": transposed, "B": B, "cin": cin, "cout": cout, "k": k,
        "stride": s, "pad": p, "out_pad": op, "H": H, "W": W, "Ho": y.shape[2], "Wo": y.shape[3],
        "x": nhwc(x), "weight": t(layer.weight.permute(0, 2, 3, 1)), "bias": t(layer.bias),
        "r": nhwc(r), "y": nhwc(y), "dx": nhwc(x.grad),
        "dweight": t(layer.weight.grad.permute(0, 2, 3, 1)), "dbias": t(layer.bias.grad),
    }


def bn_case(name, training, B, C, H, W, seed):
    gen = torch.Generator().manual_seed(seed)
    bn = torch.nn.BatchNorm2d(C, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(C, generator=gen) + 0.5)
        bn.bias.copy_(torch.randn(C, generator=gen))
        bn.running_mean.copy_(torch.randn(C, generator=gen) * 0.3)
        bn.running_var.copy_(torch.rand(C, generator=gen) + 0.5)
    before_mean, before_var = bn.running_mean.clone(), bn.running_var.clone()
    bn.train(training)
    x = (torch.randn(B, C, H, W, generator=gen) * 2.0 + 0.5).requires_grad_(True)
    y = bn(x)
    r = torch.randn(y.shape, generator=gen)
    (y * r).sum().backward()
    return {
        "name": name, "training": training, "B": B, "C": C, "H": H, "W": W,
        "x": nhwc(x), "r": nhwc(r), "gamma": t(bn.weight), "beta": t(bn.bias),
        "running_mean_before": t(before_mean), "running_var_before": t(before_var),
        "y": nhwc(y), "dx": nhwc(x.grad), "dgamma": t(bn.weight.grad), "dbeta": t(bn.bias.grad),
        "running_mean_after": t(bn.running_mean), "running_var_after": t(bn.running_var),
    }


convs = [
    # the preset's geometry: kernel 3, stride 2, padding 1, an odd size (7 -> 4)
    conv_case("conv2d k3 s2 p1 7x7", False, 2, 2, 3, 3, 2, 1, 0, 7, 7, 1),
    # stride and padding that do not divide evenly, even kernel, non-square image
    conv_case("conv2d k4 s3 p2 8x6", False, 2, 3, 2, 4, 3, 2, 0, 8, 6, 2),
    # the preset's decoder geometry with output padding 1 (4 -> 8) and 0 (4 -> 7)
    conv_case("convtranspose2d k3 s2 p1 op1 4x4", True, 2, 3, 2, 3, 2, 1, 1, 4, 4, 3),
    conv_case("convtranspose2d k3 s2 p1 op0 4x3", True, 3, 2, 2, 3, 2, 1, 0, 4, 3, 4),
    # uneven: kernel 4, stride 3, padding 1, output padding 2, non-square
    conv_case("convtranspose2d k4 s3 p1 op2 3x2", True, 2, 2, 3, 4, 3, 1, 2, 3, 2, 5),
]
norms = [
    bn_case("batchnorm2d training 3x4x3x2", True, 3, 4, 3, 2, 6),
    bn_case("batchnorm2d training 1x2x2x2 (one image)", True, 1, 2, 2, 2, 7),
    bn_case("batchnorm2d evaluation 2x3x2x3", False, 2, 3, 2, 3, 8),
]
peer_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..",
                         "shared", "bench", "torch_vae_baseline.py")
if not os.path.exists(peer_path):
    peer_path = "/work/shared/bench/torch_vae_baseline.py"
spec = importlib.util.spec_from_file_location("peer", peer_path)
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)
peer_params = {str(z): sum(p.numel() for p in peer.ConvVAE(z).parameters()) for z in (2, 8, 20)}
print(json.dumps({"generator": "tests/golden/make_golden_conv.py", "torch": torch.__version__,
                  "convs": convs, "norms": norms, "peer_conv_vae_params": peer_params}))

#!/usr/bin/python3
"""Golden values for tests/test_golden.cpp, computed with PyTorch in float64.

A small VAE (D=6, hidden [5, 4], latent 3) with fixed parameters, a fixed batch x and
fixed noise eps: outputs, loss parts and every parameter's gradient, for each decoder
likelihood and sigma mode. Run once with Debian's python3-torch:
    /usr/bin/python3 tests/golden/make_golden.py > tests/golden/vae_small.json
The numbers are committed; the C++ tests never need torch.
"""
import json, math
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
D, H, L, B = 6, [5, 4], 3, 4
LOG2PI = math.log(2 * math.pi)


def softclip(s, lb):
    return lb + F.softplus(s - lb)


def make_params(gen, per_pixel, learned):
    shapes = []
    sizes = [D] + H
    for i in range(len(H)):
        shapes.append((f"enc{i}", sizes[i + 1], sizes[i]))
    shapes += [("enc_mu", L, H[-1]), ("enc_logvar", L, H[-1])]
    dsizes = [L] + H[::-1]
    for i in range(len(H)):
        shapes.append((f"dec{i}", dsizes[i + 1], dsizes[i]))
    shapes.append(("dec_out", D, H[0]))
    if per_pixel:
        shapes.append(("dec_logsig", D, H[0]))
    params = {}
    for name, o, i in shapes:
        params[name + ".W"] = (torch.rand(o, i, generator=gen) * 2 - 1) / math.sqrt(i)
        params[name + ".b"] = (torch.rand(o, generator=gen) * 2 - 1) / math.sqrt(i)
    if learned:
        params["log_sigma"] = torch.tensor([-0.4])
    return {k: v.clone().requires_grad_(True) for k, v in params.items()}


def forward(p, x, eps, act, lik, sigma, beta, free_bits, fixed_log_sigma, lb):
    h = x
    for i in range(len(H)):
        h = act(h @ p[f"enc{i}.W"].T + p[f"enc{i}.b"])
    mu = h @ p["enc_mu.W"].T + p["enc_mu.b"]
    logvar = h @ p["enc_logvar.W"].T + p["enc_logvar.b"]
    z = mu + torch.exp(0.5 * logvar) * eps
    g = z
    for i in range(len(H)):
        g = act(g @ p[f"dec{i}.W"].T + p[f"dec{i}.b"])
    out = g @ p["dec_out.W"].T + p["dec_out.b"]
    if lik == "bernoulli":
        rec = F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
    else:
        mean = torch.sigmoid(out)
        if sigma == "fixed":
            s = torch.full_like(mean, fixed_log_sigma)
        elif sigma == "learned":
            s = softclip(p["log_sigma"], lb).expand_as(mean)
        elif sigma == "optimal":
            # Rybkin et al. 2020: sigma*^2 = MSE over the minibatch, no gradient through it.
            s = softclip(0.5 * torch.log(((x - mean) ** 2).mean()).detach(), lb).expand_as(mean)
        else:
            s = softclip(g @ p["dec_logsig.W"].T + p["dec_logsig.b"], lb)
        rec = (0.5 * ((x - mean) / torch.exp(s)) ** 2 + s + 0.5 * LOG2PI).sum(1)
    kl = 0.5 * (mu ** 2 + torch.exp(logvar) - 1 - logvar)  # [B, L]
    kl_dim = kl.mean(0)
    kl_term = torch.clamp(kl_dim, min=free_bits) if free_bits > 0 else kl_dim
    loss = rec.mean() + beta * kl_term.sum()
    return dict(mu=mu, logvar=logvar, z=z, out=out, rec=rec, kl=kl.sum(1), loss=loss)


def case(name, lik, sigma, act_name, beta, free_bits, seed):
    gen = torch.Generator().manual_seed(seed)
    acts = {"relu": F.relu, "tanh": torch.tanh, "elu": F.elu, "softplus": F.softplus, "sigmoid": torch.sigmoid}
    p = make_params(gen, sigma == "per-pixel", sigma == "learned")
    xr = torch.rand(B, D, generator=gen)
    x = (xr < 0.5).double() if lik == "bernoulli" else xr
    eps = torch.randn(B, L, generator=gen)
    fixed_log_sigma, lb = math.log(0.7), -2.0
    r = forward(p, x, eps, acts[act_name], lik, sigma, beta, free_bits, fixed_log_sigma, lb)
    r["loss"].backward()
    t = lambda v: v.detach().flatten().tolist()
    return {
        "name": name, "likelihood": lik, "sigma": sigma, "activation": act_name, "beta": beta,
        "free_bits": free_bits, "fixed_log_sigma": fixed_log_sigma, "min_log_sigma": lb,
        "D": D, "hidden": H, "latent": L, "batch": B,
        "x": t(x), "eps": t(eps),
        "params": {k: t(v) for k, v in p.items()},
        "grads": {k: t(v.grad) for k, v in p.items()},
        "mu": t(r["mu"]), "logvar": t(r["logvar"]), "z": t(r["z"]), "out": t(r["out"]),
        "rec": t(r["rec"]), "kl": t(r["kl"]), "loss": r["loss"].item(),
    }


cases = [
    case("bernoulli relu", "bernoulli", "fixed", "relu", 1.0, 0.0, 1),
    case("bernoulli tanh beta 4", "bernoulli", "fixed", "tanh", 4.0, 0.0, 2),
    case("bernoulli elu free bits", "bernoulli", "fixed", "elu", 1.0, 0.2, 3),
    case("gaussian fixed sigma 0.7", "gaussian", "fixed", "tanh", 1.0, 0.0, 4),
    case("gaussian learned sigma", "gaussian", "learned", "softplus", 1.0, 0.0, 5),
    case("gaussian optimal sigma", "gaussian", "optimal", "relu", 1.0, 0.0, 6),
    case("gaussian per-pixel sigma", "gaussian", "per-pixel", "sigmoid", 2.0, 0.0, 7),
]
print(json.dumps({"generator": "tests/golden/make_golden.py", "torch": torch.__version__, "cases": cases}))

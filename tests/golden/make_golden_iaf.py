#!/usr/bin/python3
"""Golden values for the IAF posterior (tests/test_iaf.cpp), computed with PyTorch in float64.

- "steps": one IAF step (Kingma et al. 2016) on its own: a MADE with context, then
  sigma = sigmoid(s + forget_bias), z_out = sigma * z + (1 - sigma) * m; outputs and the
  gradients of  loss = sum(r * z_out) - sum_{b,l} kw[l] * log sigma[b,l]  with respect to
  every parameter, z and h.
- "vaes": a whole small VAE with an IAF posterior: z_T, -log p(x|z), the single-sample
  KL log q(z_T|x) - log p(z_T), log q, the loss rec.mean() + beta * kl.mean() and every
  parameter's gradient (also with the "stl" gradient: mu and logvar detached in log q_0).

The masks are rebuilt here from the same degree rule as lib/nn/made.hpp, and masked weight
entries hold random values (the C++ side must ignore them). Run once with Debian's
python3-torch:
    /usr/bin/python3 tests/golden/make_golden_iaf.py > tests/golden/iaf_small.json
"""
import json, math
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
LOG2PI = math.log(2 * math.pi)
ACTS = {"relu": F.relu, "tanh": torch.tanh, "elu": F.elu, "softplus": F.softplus, "sigmoid": torch.sigmoid}


def order(L, t):
    o = list(range(L))
    return o[::-1] if t % 2 == 1 else o


def made_masks(L, W, layers, t):
    """Masks of lib/nn/made.hpp: input order[k] has degree k+1; hidden unit j has degree
    1 + j % max(L-1, 1); hidden sees degree <= own, outputs see degree < own."""
    deg_in = [0] * L
    for k, i in enumerate(order(L, t)):
        deg_in[i] = k + 1
    span = L - 1 if L > 1 else 1
    deg_h = [1 + j % span for j in range(W)]
    masks, prev = [], deg_in
    for _ in range(layers):
        masks.append(torch.tensor([[1.0 if deg_h[j] >= prev[i] else 0.0 for i in range(len(prev))] for j in range(W)]))
        prev = deg_h
    out = torch.tensor([[1.0 if deg_in[i] > prev[j] else 0.0 for j in range(W)] for i in range(L)])
    return masks, out


def uniform(gen, shape, fan_in):
    return (torch.rand(*shape, generator=gen) * 2 - 1) / math.sqrt(fan_in)


def made_params(gen, prefix, L, C, W, layers):
    p, sizes = {}, [L] + [W] * layers
    for k in range(layers):
        p[f"{prefix}h{k}.W"] = uniform(gen, (W, sizes[k]), sizes[k])
        p[f"{prefix}h{k}.b"] = uniform(gen, (W,), sizes[k])
    if C > 0:
        p[f"{prefix}ctx.W"] = uniform(gen, (W, C), C)
    for head in ("m", "s"):
        p[f"{prefix}{head}.W"] = uniform(gen, (L, W), W)
        p[f"{prefix}{head}.b"] = uniform(gen, (L,), W)
    return p


def iaf_step(p, prefix, z, h, act, masks, out_mask, layers, forget_bias):
    a = z
    for k in range(layers):
        pre = a @ (p[f"{prefix}h{k}.W"] * masks[k]).T + p[f"{prefix}h{k}.b"]
        if k == 0 and h is not None:
            pre = pre + h @ p[f"{prefix}ctx.W"].T
        a = act(pre)
    m = a @ (p[f"{prefix}m.W"] * out_mask).T + p[f"{prefix}m.b"]
    s = a @ (p[f"{prefix}s.W"] * out_mask).T + p[f"{prefix}s.b"]
    sig = torch.sigmoid(s + forget_bias)
    logsig = F.logsigmoid(s + forget_bias)
    return m, s, sig * z + (1 - sig) * m, logsig


t_ = lambda v: v.detach().flatten().tolist()


def step_case(name, B, L, C, W, layers, act_name, t, forget_bias, seed):
    gen = torch.Generator().manual_seed(seed)
    p = made_params(gen, "", L, C, W, layers)
    p = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    z = torch.randn(B, L, generator=gen).requires_grad_(True)
    h = torch.randn(B, C, generator=gen).requires_grad_(True)
    r = torch.randn(B, L, generator=gen)
    kw = torch.randn(L, generator=gen)
    masks, out_mask = made_masks(L, W, layers, t)
    m, s, z_out, logsig = iaf_step(p, "", z, h if C > 0 else None, ACTS[act_name], masks, out_mask, layers, forget_bias)
    loss = (r * z_out).sum() - (kw * logsig).sum()
    loss.backward()
    grads = {k: t_(v.grad) for k, v in p.items()}
    grads["z"] = t_(z.grad)
    if C > 0:
        grads["h"] = t_(h.grad)
    return {
        "name": name, "B": B, "L": L, "C": C, "W": W, "layers": layers, "activation": act_name, "t": t,
        "forget_bias": forget_bias, "params": {k: t_(v) for k, v in p.items()},
        "z": t_(z), "h": t_(h), "r": t_(r), "kw": t_(kw),
        "m": t_(m), "s": t_(s), "z_out": t_(z_out), "logsig": t_(logsig), "loss": loss.item(), "grads": grads,
    }


def vae_case(name, act_name, steps, made_width, made_layers, C, beta, forget_bias, seed, kl_est="sample"):
    D, H, L, B = 6, [5, 4], 3, 4
    gen = torch.Generator().manual_seed(seed)
    act = ACTS[act_name]
    p = {}
    sizes = [D] + H
    lin = lambda n, o, i: p.update({n + ".W": uniform(gen, (o, i), i), n + ".b": uniform(gen, (o,), i)})
    for k in range(len(H)):
        lin(f"enc{k}", sizes[k + 1], sizes[k])
    lin("enc_mu", L, H[-1])
    lin("enc_logvar", L, H[-1])
    dsizes = [L] + H[::-1]
    for k in range(len(H)):
        lin(f"dec{k}", dsizes[k + 1], dsizes[k])
    lin("dec_out", D, H[0])
    if C > 0:
        lin("enc_ctx", C, H[-1])
    for t in range(steps):
        p.update(made_params(gen, f"iaf{t}.", L, C, made_width, made_layers))
    p = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    x = (torch.rand(B, D, generator=gen) < 0.5).double()
    eps = torch.randn(B, L, generator=gen)

    a = x
    for k in range(len(H)):
        a = act(a @ p[f"enc{k}.W"].T + p[f"enc{k}.b"])
    mu = a @ p["enc_mu.W"].T + p["enc_mu.b"]
    logvar = a @ p["enc_logvar.W"].T + p["enc_logvar.b"]
    h = a @ p["enc_ctx.W"].T + p["enc_ctx.b"] if C > 0 else None
    z = mu + torch.exp(0.5 * logvar) * eps
    z0 = z
    log_q = (-0.5 * eps ** 2 - 0.5 * logvar - 0.5 * LOG2PI).sum(1)
    for t in range(steps):
        masks, out_mask = made_masks(L, made_width, made_layers, t)
        _, _, z, logsig = iaf_step(p, f"iaf{t}.", z, h, act, masks, out_mask, made_layers, forget_bias)
        log_q = log_q - logsig.sum(1)
    log_p = (-0.5 * z ** 2 - 0.5 * LOG2PI).sum(1)
    g = z
    for k in range(len(H)):
        g = act(g @ p[f"dec{k}.W"].T + p[f"dec{k}.b"])
    out = g @ p["dec_out.W"].T + p["dec_out.b"]
    rec = F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
    kl = log_q - log_p
    if kl_est == "sample":
        kl_train = kl
    else:  # stl: log q_0(z_0) with mu and logvar detached (no score term), the same value
        lv, m0 = logvar.detach(), mu.detach()
        log_q0 = (-0.5 * (z0 - m0) ** 2 / torch.exp(lv) - 0.5 * lv - 0.5 * LOG2PI).sum(1)
        log_q0_full = (-0.5 * eps ** 2 - 0.5 * logvar - 0.5 * LOG2PI).sum(1)
        kl_train = log_q0 + (log_q - log_q0_full) - log_p
    loss = rec.mean() + beta * kl_train.mean()
    loss.backward()
    return {
        "name": name, "activation": act_name, "D": D, "hidden": H, "latent": L, "batch": B, "steps": steps,
        "made_width": made_width, "made_layers": made_layers, "context": C, "forget_bias": forget_bias,
        "beta": beta, "kl_estimator": kl_est, "x": t_(x), "eps": t_(eps),
        "params": {k: t_(v) for k, v in p.items()}, "grads": {k: t_(v.grad) for k, v in p.items()},
        "z": t_(z), "rec": t_(rec), "kl": t_(kl_train), "log_q": t_(log_q), "loss": loss.item(),
    }


steps = [
    step_case("natural order, 1 layer, context", 3, 4, 2, 6, 1, "tanh", 0, 1.0, 1),
    step_case("reversed order, 2 layers, context", 3, 5, 3, 7, 2, "elu", 1, 1.0, 2),
    step_case("reversed order, 2 layers, no context, forget bias -0.5", 2, 4, 0, 5, 2, "relu", 1, -0.5, 3),
]
vaes = [
    vae_case("2 steps, elu, MADE 7x2, context 4, beta 1.5", "elu", 2, 7, 2, 4, 1.5, 1.0, 4),
    vae_case("3 steps, tanh, MADE 5x1, no context", "tanh", 3, 5, 1, 0, 1.0, 1.0, 5),
    vae_case("2 steps, elu, MADE 6x2, context 3, stl gradient", "elu", 2, 6, 2, 3, 1.0, 2.0, 6, "stl"),
]
print(json.dumps({"generator": "tests/golden/make_golden_iaf.py", "torch": torch.__version__,
                  "steps": steps, "vaes": vaes}))

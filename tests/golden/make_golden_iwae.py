#!/usr/bin/python3
"""Golden values for tests/test_golden.cpp ([golden][iwae]): the PyTorch reference of the IWAE
paper's protocol (bench/iwae_reference.py, its own Model and loss_fn) in float64, on small sizes.

The 1- and 2-stochastic-layer models of Burda et al. (2016) with fixed parameters, a fixed
binary batch and fixed noise, k samples per example: every log weight, the VAE objective
(the k-sample ELBO with the single-sample KL, the paper's "VAE" column) and the IWAE
objective, and every parameter's gradient of each. The expected-value tables of
`vae reproduce` come from that script, so this pins our objectives to exactly the functions
it trains. Run once with Debian's python3-torch:
    /usr/bin/python3 tests/golden/make_golden_iwae.py > tests/golden/iwae_models.json
The numbers are committed; the C++ tests never need torch.
"""
import json, os, sys

sys.argv = sys.argv[:1]  # iwae_reference reads --threads from argv when it loads
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import torch
import iwae_reference as ref

torch.set_default_dtype(torch.float64)
D, HIDDEN, B, K = 12, (6, 5), 4, 3
LATENT = {1: (3,), 2: (3, 2)}

# Our parameter group names (models/ladder.hpp and models/vae.hpp param_groups) for the
# reference's modules: q1 -> up1 or enc, q2 -> up2, p1 -> down1, px -> dec.
NAMES = {
    2: {"q1.net.0": "up1.0", "q1.net.2": "up1.1", "q1.mu": "up1.mu", "q1.logvar": "up1.var",
        "q2.net.0": "up2.0", "q2.net.2": "up2.1", "q2.mu": "up2.mu", "q2.logvar": "up2.var",
        "p1.net.0": "down1.0", "p1.net.2": "down1.1", "p1.mu": "down1.mu", "p1.logvar": "down1.var",
        "px.0.0": "dec.0", "px.0.2": "dec.1", "px.1": "dec.out"},
    1: {"q1.net.0": "enc0", "q1.net.2": "enc1", "q1.mu": "enc_mu", "q1.logvar": "enc_logvar",
        "px.0.0": "dec0", "px.0.2": "dec1", "px.1": "dec_out"},
}


def our_name(torch_name, layers):
    module, kind = torch_name.rsplit(".", 1)
    return NAMES[layers][module] + (".W" if kind == "weight" else ".b")


def case(layers, objective, seed):
    gen = torch.Generator().manual_seed(seed)
    model = ref.Model(layers, data=D, hidden=HIDDEN, latent=LATENT[layers])
    with torch.no_grad():  # every weight and bias nonzero, so that each shows in a gradient
        for p in model.parameters():
            p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * 0.8)
    x = torch.bernoulli(torch.full((B, D), 0.4), generator=gen)
    noise = [torch.randn((K, B, s), generator=gen) for s in LATENT[layers]]
    log_w = model.log_weights(x, K, noise)  # [K, B]
    loss = ref.loss_fn(log_w, objective)
    model.zero_grad()
    loss.backward()
    # Our rows are example-major (row b k + j is sample j of example b): [K, B] -> [B, K].
    rows = lambda t: t.transpose(0, 1).reshape(-1).tolist()
    return {
        "name": f"{layers} layer{'s' if layers > 1 else ''}, {objective}, k = {K}",
        "layers": layers, "objective": objective, "D": D, "hidden": list(HIDDEN),
        "latent": list(LATENT[layers]), "batch": B, "k": K,
        "params": {our_name(n, layers): p.detach().reshape(-1).tolist() for n, p in model.named_parameters()},
        "x": x.reshape(-1).tolist(),
        "eps": [e.transpose(0, 1).reshape(-1).tolist() for e in noise],  # [B K, latent] each
        "log_w": rows(log_w.detach()),
        "loss": loss.item(),
        "grads": {our_name(n, layers): p.grad.reshape(-1).tolist() for n, p in model.named_parameters()},
    }


def main():
    cases = [case(layers, objective, seed=10 * layers + i)
             for layers in (1, 2) for i, objective in enumerate(("vae", "iwae"))]
    print(json.dumps({"source": "tests/golden/make_golden_iwae.py (bench/iwae_reference.py's Model, "
                                f"loss_fn; torch {torch.__version__}, float64)", "cases": cases}))


if __name__ == "__main__":
    main()

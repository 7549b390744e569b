#!/usr/bin/python3
"""Golden values for tests/test_vq.cpp: a tiny VQ-VAE in PyTorch float64, its loss and
gradients, and one EMA codebook update (lib/nn/vq.hpp).

The model: z_e = x W_enc^T + b_enc (N rows of dimension D), nearest code of a codebook
E [K, D] (torch.argmin over squared distances), z_q with the straight-through estimator
z_e + (z_q - z_e).detach(), decoder logits = z_q W_dec^T + b_dec, Bernoulli NLL summed
over the P pixels, plus the codebook term ||sg(z_e) - z_q||^2 and the commitment term
beta ||z_e - sg(z_q)||^2 summed over D, all averaged over the rows (scale 1/N):
    loss = (1/N) sum_n [ nll_n + ||sg(z_e,n) - e_k||^2 + beta ||z_e,n - sg(e_k)||^2 ].
The EMA case: decay d, eps, start N_k, m_k; after one batch, N_k, m_k and the codebook
m_k / N~_k with Laplace smoothing N~_k = (N_k + eps) / (sum N + K eps) sum N.
Run once with Debian's python3-torch:
    /usr/bin/python3 tests/golden/make_golden_vq.py > tests/golden/vq.json
"""
import json
import torch

torch.set_default_dtype(torch.float64)


def t(v):
    return v.detach().flatten().tolist()


def model_case(seed, N=6, I=5, D=3, K=4, P=7, beta=0.25):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, I, generator=gen)
    W_enc = (torch.randn(D, I, generator=gen) * 0.7).requires_grad_(True)
    b_enc = (torch.randn(D, generator=gen) * 0.1).requires_grad_(True)
    E = torch.randn(K, D, generator=gen).requires_grad_(True)
    W_dec = (torch.randn(P, D, generator=gen) * 0.7).requires_grad_(True)
    b_dec = (torch.randn(P, generator=gen) * 0.1).requires_grad_(True)
    target = (torch.rand(N, P, generator=gen) < 0.4).double()
    ze = x @ W_enc.T + b_enc
    dist = (ze.unsqueeze(1) - E.unsqueeze(0)).pow(2).sum(-1)  # [N, K]
    idx = dist.argmin(1)
    e = E[idx]
    zq = ze + (e - ze).detach()
    logits = zq @ W_dec.T + b_dec
    nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
    codebook = (ze.detach() - e).pow(2).sum(1)
    commit = (ze - e.detach()).pow(2).sum(1)
    loss = (nll + codebook + beta * commit).mean()
    loss.backward()
    return {
        "N": N, "I": I, "D": D, "K": K, "P": P, "beta": beta,
        "x": t(x), "target": t(target), "W_enc": t(W_enc), "b_enc": t(b_enc), "E": t(E),
        "W_dec": t(W_dec), "b_dec": t(b_dec),
        "idx": idx.tolist(), "ze": t(ze), "nll": t(nll), "codebook": t(codebook), "loss": loss.item(),
        "dW_enc": t(W_enc.grad), "db_enc": t(b_enc.grad), "dE": t(E.grad),
        "dW_dec": t(W_dec.grad), "db_dec": t(b_dec.grad),
    }


def ema_case(seed, N=9, D=2, K=5, decay=0.9, eps=1e-5):
    gen = torch.Generator().manual_seed(seed)
    ze = torch.randn(N, D, generator=gen)
    E = torch.randn(K, D, generator=gen)
    n0 = torch.rand(K, generator=gen) * 3
    m0 = torch.randn(K, D, generator=gen)
    idx = (ze.unsqueeze(1) - E.unsqueeze(0)).pow(2).sum(-1).argmin(1)
    onehot = torch.nn.functional.one_hot(idx, K).double()
    n1 = decay * n0 + (1 - decay) * onehot.sum(0)
    m1 = decay * m0 + (1 - decay) * onehot.T @ ze
    total = n1.sum()
    smoothed = (n1 + eps) / (total + K * eps) * total
    E1 = m1 / smoothed.unsqueeze(1)
    return {
        "N": N, "D": D, "K": K, "decay": decay, "eps": eps, "ze": t(ze), "E": t(E), "n0": t(n0),
        "m0": t(m0), "idx": idx.tolist(), "n1": t(n1), "m1": t(m1), "E1": t(E1),
    }


if __name__ == "__main__":
    out = {"torch": torch.__version__, "model": model_case(5), "ema": ema_case(4)}
    print(json.dumps(out, indent=1))

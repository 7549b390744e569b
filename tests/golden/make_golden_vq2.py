#!/usr/bin/python3
"""Golden values for tests/test_vqvae.cpp: the two-level VQ-VAE (VQ-VAE-2, Razavi et al. 2019)
of models/vqvae.hpp at a tiny size, written here in PyTorch float64, its loss and the gradient
of every parameter group.

The model (C channels, R residual blocks of Ch hidden channels, codes of dimension D):
  h    = enc(x):   Conv2d(1, C, 4, 2, 1), ReLU, Conv2d(C, C, 4, 2, 1), ReLU, Conv2d(C, C, 3, 1, 1),
                   R residual blocks (h + Conv2d(Ch, C, 1)(ReLU(Conv2d(C, Ch, 3, 1, 1)(ReLU(h)))))
  z_e,t = enc_t(h): ReLU, Conv2d(C, C, 4, 2, 1), ReLU, Conv2d(C, C, 3, 1, 1), R residual blocks,
                   ReLU, Conv2d(C, D, 1)                             -- the top grid, half the bottom's
  z_q,t = nearest of the top codebook E_t, straight through: z_e,t + (z_q,t - z_e,t).detach()
  d_t  = dec_t(z_q,t): Conv2d(D, C, 3, 1, 1), R residual blocks, ReLU, ConvTranspose2d(C, D, 4, 2, 1)
  z_e,b = Conv2d(D + C, D, 1)(cat(d_t, ReLU(h)))                     -- quant_b
  z_q,b = nearest of the bottom codebook E_b, straight through
  u_t  = ConvTranspose2d(D, D, 4, 2, 1)(z_q,t)                       -- up_t
  logits = dec(cat(u_t, z_q,b)): Conv2d(2D, C, 3, 1, 1), R residual blocks, ReLU,
                   ConvTranspose2d(C, C, 4, 2, 1), ReLU, ConvTranspose2d(C, 1, 4, 2, 1)
Loss, the batch mean of: the Bernoulli NLL summed over pixels, plus at each level the codebook
term ||sg(z_e) - e||^2 and beta ||z_e - sg(e)||^2 summed over its grid, plus the uniform priors'
-log p(codes) = P_b log K_b + P_t log K_t (a constant).
The codebooks are put next to encoder outputs of the batch (the top's first, as the bottom
z_e depends on it) so that several codes are in use; the script asserts that no assignment is
within 1e-3 of a tie. Every tensor is written as the suite stores it (channels-last; Conv2d
weights [cout, k, k, cin], ConvTranspose2d weights [cin, k, k, cout]: PyTorch's weight
.permute(0, 2, 3, 1)), under the suite's parameter group names. Run once with Debian's
python3-torch:
    /usr/bin/python3 tests/golden/make_golden_vq2.py > tests/golden/vq2.json
"""
import json
import math
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
B, S, C, R, CH, D, KB, KT, BETA = 3, 8, 3, 1, 2, 2, 6, 3, 0.25


def flat(v):
    return v.detach().flatten().tolist()


class Stack:
    """A list of layers with the suite's group names (name + index)."""

    def __init__(self, name, gen):
        self.name, self.gen, self.layers = name, gen, []

    def conv(self, cin, cout, k, s, p, transposed=False):
        shape = (cin, cout, k, k) if transposed else (cout, cin, k, k)
        w = (torch.randn(shape, generator=self.gen) * 0.5).requires_grad_(True)
        b = (torch.randn(cout, generator=self.gen) * 0.1).requires_grad_(True)
        self.layers.append((w, b, s, p, transposed))
        return len(self.layers) - 1

    def apply(self, i, x, relu_in=False):
        w, b, s, p, transposed = self.layers[i]
        x = F.relu(x) if relu_in else x
        return F.conv_transpose2d(x, w, b, s, p) if transposed else F.conv2d(x, w, b, s, p)

    def res_blocks(self, c):
        return [(self.conv(c, CH, 3, 1, 1), self.conv(CH, c, 1, 1, 0)) for _ in range(R)]

    def run_res(self, blocks, h):
        for a, b in blocks:
            h = h + self.apply(b, self.apply(a, h, True), True)
        return h

    def groups(self):
        out = {}
        for i, (w, b, _, _, _) in enumerate(self.layers):
            out[f"{self.name}{i}.W"] = w
            out[f"{self.name}{i}.b"] = b
        return out


def quantise(ze, E):
    """Channels-first z_e [B, D, h, w] -> (straight-through z_q, codes, codebook + commitment
    terms per example, the smallest gap between the best and second-best distance)."""
    z = ze.permute(0, 2, 3, 1).reshape(-1, D)
    dist = (z.unsqueeze(1) - E.unsqueeze(0)).pow(2).sum(-1)
    idx = dist.argmin(1)
    gap = dist.sort(1).values[:, 1] - dist.sort(1).values[:, 0]
    e = E[idx]
    zq = z + (e - z).detach()
    per = ((z.detach() - e).pow(2).sum(1) + BETA * (z - e.detach()).pow(2).sum(1)).reshape(ze.shape[0], -1)
    return zq.reshape(ze.shape[0], ze.shape[2], ze.shape[3], D).permute(0, 3, 1, 2), idx, per.sum(1), gap.min()


def main():
    gen = torch.Generator().manual_seed(20)
    x = (torch.rand(B, 1, S, S, generator=gen) < 0.4).double()
    enc, enc_t, dec_t, quant_b, up_t, dec = (Stack(n, gen) for n in ("enc", "enc_t", "dec_t", "quant_b", "up_t", "dec"))
    enc.conv(1, C, 4, 2, 1), enc.conv(C, C, 4, 2, 1), enc.conv(C, C, 3, 1, 1)
    enc_res = enc.res_blocks(C)
    enc_t.conv(C, C, 4, 2, 1), enc_t.conv(C, C, 3, 1, 1)
    enc_t_res = enc_t.res_blocks(C)
    enc_t_out = enc_t.conv(C, D, 1, 1, 0)
    dec_t.conv(D, C, 3, 1, 1)
    dec_t_res = dec_t.res_blocks(C)
    dec_t_up = dec_t.conv(C, D, 4, 2, 1, True)
    quant_b.conv(D + C, D, 1, 1, 0)
    up_t.conv(D, D, 4, 2, 1, True)
    dec.conv(2 * D, C, 3, 1, 1)
    dec_res = dec.res_blocks(C)
    dec_up1 = dec.conv(C, C, 4, 2, 1, True)
    dec_up2 = dec.conv(C, 1, 4, 2, 1, True)

    def encode_top():
        h = enc.apply(2, enc.apply(1, enc.apply(0, x), True), True)
        h = enc.run_res(enc_res, h)
        t = enc_t.apply(1, enc_t.apply(0, h, True), True)
        t = enc_t.run_res(enc_t_res, t)
        return h, enc_t.apply(enc_t_out, t, True)

    def bottom_input(h, zq_t):
        d = dec_t.run_res(dec_t_res, dec_t.apply(0, zq_t))
        d = dec_t.apply(dec_t_up, d, True)
        return quant_b.apply(0, torch.cat([d, F.relu(h)], 1))

    # codebooks next to encoder outputs of the batch, the top's first
    with torch.no_grad():
        h, ze_t = encode_top()
        zt = ze_t.permute(0, 2, 3, 1).reshape(-1, D)
        E_t = torch.stack([zt[k % zt.shape[0]] + 0.01 * torch.arange(1, D + 1) for k in range(KT)])
        zq_t, _, _, _ = quantise(ze_t, E_t)
        zb = bottom_input(h, zq_t).permute(0, 2, 3, 1).reshape(-1, D)
        E_b = torch.stack([zb[(2 * k) % zb.shape[0]] + 0.01 * torch.arange(1, D + 1) for k in range(KB)])
    E_t.requires_grad_(True)
    E_b.requires_grad_(True)

    h, ze_t = encode_top()
    zq_t, idx_t, vq_t, gap_t = quantise(ze_t, E_t)
    ze_b = bottom_input(h, zq_t)
    zq_b, idx_b, vq_b, gap_b = quantise(ze_b, E_b)
    u = dec.run_res(dec_res, dec.apply(0, torch.cat([up_t.apply(0, zq_t), zq_b], 1)))
    logits = dec.apply(dec_up2, dec.apply(dec_up1, u, True), True)
    assert logits.shape == x.shape
    assert min(gap_t.item(), gap_b.item()) > 1e-3, "an assignment near a tie"
    Pb, Pt = ze_b.shape[2] * ze_b.shape[3], ze_t.shape[2] * ze_t.shape[3]
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    kl = Pb * math.log(KB) + Pt * math.log(KT)
    loss = (rec + vq_t + vq_b).mean() + kl
    loss.backward()

    params = {}
    for s in (enc, enc_t, dec_t, quant_b, up_t, dec):
        params.update(s.groups())
    params["codebook"] = E_b
    params["codebook_t"] = E_t
    out = {
        "torch": torch.__version__, "B": B, "size": S, "channels": C, "res_blocks": R, "res_hidden": CH,
        "code_dim": D, "codebook": KB, "top_codebook": KT, "beta": BETA,
        "x": flat(x), "idx_b": idx_b.tolist(), "idx_t": idx_t.tolist(),
        "rec": rec.mean().item(), "kl": kl, "loss": loss.item(),
        "params": {k: flat(v.permute(0, 2, 3, 1) if v.dim() == 4 else v) for k, v in params.items()},
        "grads": {k: flat(v.grad.permute(0, 2, 3, 1) if v.dim() == 4 else v.grad) for k, v in params.items()},
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch reference implementation of the IWAE paper's MNIST protocol (Burda, Grosse,
Salakhutdinov 2016, arXiv 1509.00519, section 5 and Table 1): the expected values that
`vae reproduce` compares our runs with when a table is run below the paper's budget, and
the peer that bench/ times the k-sample objectives against.

What it trains, as the paper states it:
  - 1 stochastic layer: x-200-200-z50; 2 layers: x-200-200-z100-100-100-z50 (q(z1|x),
    q(z2|z1), p(z1|z2) and p(x|z1) are each two tanh layers and linear heads);
  - diagonal Gaussians whose variances are exp of a linear output; Bernoulli p(x|z1);
  - Glorot (Xavier uniform) weights, zero biases;
  - Adam beta1 0.9, beta2 0.999, eps 1e-4, batch 20;
  - the schedule: 3^i passes at learning rate 1e-3 * 10^(-i/7), i = 0..7 (3280 passes);
    --stages S runs the first S stages only (S = 5: 121 passes), the reduced budget;
  - dynamic binarization (a fresh Bernoulli draw every epoch; the test set once, seed 0);
  - objectives with k samples per example:
      vae:  -(1/k) sum_j log w_j        (the k-sample ELBO, "VAE" column)
      iwae: -log (1/k) sum_j w_j        (the IWAE bound, "IWAE" column)
    with log w = log p(x, z) - log q(z | x) of each sample (single-sample densities: the
    same estimator for both objectives, as the paper's code uses).
Evaluation: NLL = mean over the test examples of -L_5000 (k = 5000 importance samples,
chunked, log-sum-exp in float64), the ELBO, and active units per layer: unit u is active
when Cov_x(E_q[u | x]) > 0.01, with E_q[z2 | x] estimated from --au-samples draws of z1.

Prints one JSON line with the settings, the results and the time. Run with Debian's
python3-torch: /usr/bin/python3 bench/iwae_reference.py --mnist ../shared/data/mnist ...
"""
import argparse, gzip, json, math, os, struct, subprocess, sys, time


def _option_from_argv(argv, name, default):
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


# OpenBLAS reads its thread count when it loads: pin it before torch does.
os.environ["OPENBLAS_NUM_THREADS"] = _option_from_argv(sys.argv, "--threads", "1")

import numpy as np
import torch
import torch.nn as nn

LOG_2PI = math.log(2 * math.pi)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = struct.unpack(">" + "I" * (magic & 0xFF), f.read(4 * (magic & 0xFF)))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    sys.exit(f"iwae_reference: {folder}: no {stem}[.gz]")


def load_mnist(folder):
    train = read_idx(find(folder, "train-images-idx3-ubyte")).reshape(-1, 784) / 255.0
    test = read_idx(find(folder, "t10k-images-idx3-ubyte")).reshape(-1, 784) / 255.0
    return torch.tensor(train, dtype=torch.float32), torch.tensor(test, dtype=torch.float32)


def mlp(sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.Tanh()]
    return nn.Sequential(*layers)


class GaussianLayer(nn.Module):
    """h -> two tanh layers -> (mu, log variance) of a diagonal Gaussian."""

    def __init__(self, n_in, hidden, n_out):
        super().__init__()
        self.net = mlp([n_in, hidden, hidden])
        self.mu = nn.Linear(hidden, n_out)
        self.logvar = nn.Linear(hidden, n_out)

    def forward(self, h):
        g = self.net(h)
        return self.mu(g), self.logvar(g)


def log_normal(z, mu, logvar):
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 / logvar.exp()).sum(-1)


def log_standard(z):
    return -0.5 * (LOG_2PI + z ** 2).sum(-1)


class Model(nn.Module):
    """The paper's 1- or 2-stochastic-layer model; sizes as in section 5."""

    def __init__(self, layers, data=784, hidden=(200, 100), latent=None):
        """The paper's sizes by default; tests/golden/make_golden_iwae.py builds small ones."""
        super().__init__()
        self.layers = layers
        latent = latent or ((50,) if layers == 1 else (100, 50))
        if layers == 1:
            self.q1 = GaussianLayer(data, hidden[0], latent[0])
            self.px = nn.Sequential(mlp([latent[0], hidden[0], hidden[0]]), nn.Linear(hidden[0], data))
        else:
            self.q1 = GaussianLayer(data, hidden[0], latent[0])
            self.q2 = GaussianLayer(latent[0], hidden[1], latent[1])
            self.p1 = GaussianLayer(latent[1], hidden[1], latent[0])
            self.px = nn.Sequential(mlp([latent[0], hidden[0], hidden[0]]), nn.Linear(hidden[0], data))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def log_weights(self, x, k, noise=None):
        """x [B, 784] -> log w [k, B]: log p(x, z) - log q(z | x) of k samples each. noise:
        the standard normal draws of each layer, [k, B, latent] (default: drawn here)."""
        mu1, lv1 = self.q1(x)
        z1 = mu1 + (0.5 * lv1).exp() * (torch.randn((k,) + mu1.shape) if noise is None else noise[0])
        log_q = log_normal(z1, mu1, lv1)
        if self.layers == 1:
            log_p = log_standard(z1)
        else:
            mu2, lv2 = self.q2(z1)
            z2 = mu2 + (0.5 * lv2).exp() * (torch.randn_like(mu2) if noise is None else noise[1])
            log_q = log_q + log_normal(z2, mu2, lv2)
            mp, lp = self.p1(z2)
            log_p = log_standard(z2) + log_normal(z1, mp, lp)
        logits = self.px(z1)
        log_px = -nn.functional.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none").sum(-1)
        return log_px + log_p - log_q

    def encoder_means(self, x, samples):
        """E_q[z_l | x] per layer: mu1, and mu2 averaged over draws of z1."""
        mu1, lv1 = self.q1(x)
        if self.layers == 1:
            return [mu1]
        z1 = mu1 + (0.5 * lv1).exp() * torch.randn((samples,) + mu1.shape)
        return [mu1, self.q2(z1)[0].mean(0)]


def loss_fn(log_w, objective):
    if objective == "iwae":
        return -(torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])).mean()
    return -log_w.mean()


def vae_loss_analytic_kl(model, x, k):
    """The VAE objective with the KL to N(0, I) in closed form (1 stochastic layer): the
    estimator of Kingma & Welling's eq. 10, which the IWAE paper's code does not use."""
    mu, lv = model.q1(x)
    z = mu + (0.5 * lv).exp() * torch.randn((k,) + mu.shape)
    log_px = -nn.functional.binary_cross_entropy_with_logits(
        model.px(z), x.expand(k, *x.shape), reduction="none").sum(-1)
    kl = 0.5 * (mu ** 2 + lv.exp() - lv - 1).sum(-1)
    return -(log_px.mean(0) - kl).mean()


def evaluate(model, test, k_nll, chunk, n_nll, au_samples):
    model.eval()
    with torch.no_grad():
        elbo = torch.cat([model.log_weights(test[i:i + 1000], 1)[0] for i in range(0, len(test), 1000)])
        nll = []
        for x in test[:n_nll]:
            lw = torch.cat([model.log_weights(x[None], min(chunk, k_nll - d))[:, 0]
                            for d in range(0, k_nll, chunk)]).double()
            nll.append(-(torch.logsumexp(lw, 0) - math.log(k_nll)).item())
        means = [torch.cat(parts) for parts in zip(*[model.encoder_means(test[i:i + 1000], au_samples)
                                                        for i in range(0, len(test), 1000)])]
        active = [int((m.var(0, unbiased=False) > 0.01).sum()) for m in means]
    model.train()
    return float(np.mean(nll)), float(elbo.mean()), active


def run_args(a):
    """The settings that make a run: a checkpoint resumes only the run it was written by (a
    --max-passes stop may be continued with another)."""
    return {k: v for k, v in sorted(vars(a).items()) if k not in ("checkpoint", "mnist", "threads", "max_passes")}


def save_checkpoint(a, model, opt, passes, train_s, total_s):
    """After each pass: the model, Adam's state, the RNG (so that a resumed run draws what
    the uninterrupted one would) and the clocks; written aside, then renamed over the old one,
    so that a stop during the write leaves the previous checkpoint whole."""
    tmp = a.checkpoint + ".tmp"
    torch.save({"args": run_args(a), "model": model.state_dict(), "opt": opt.state_dict(),
                "rng": torch.get_rng_state(), "passes": passes, "train_s": train_s, "total_s": total_s}, tmp)
    os.replace(tmp, a.checkpoint)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist", required=True, help="folder with the MNIST IDX files")
    ap.add_argument("--layers", type=int, choices=[1, 2], default=1)
    ap.add_argument("--objective", choices=["vae", "iwae"], default="vae")
    ap.add_argument("--k", type=int, default=1, help="samples per example in training")
    ap.add_argument("--stages", type=int, default=8, help="stages i = 0..S-1 of the schedule (8: the paper's)")
    ap.add_argument("--max-passes", type=int, default=0, help="stop after this many passes (0: the stages' all)")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nll-samples", type=int, default=5000)
    ap.add_argument("--nll-examples", type=int, default=10000, help="test examples for the NLL (10000: all)")
    ap.add_argument("--nll-chunk", type=int, default=1000)
    ap.add_argument("--au-samples", type=int, default=100)
    ap.add_argument("--time-only", action="store_true", help="train --max-passes passes, report samples/s only")
    ap.add_argument("--train-size", type=int, default=0, help="train on the first N images only (0: all 60000)")
    ap.add_argument("--kl", choices=["sampled", "analytic"], default="sampled",
                    help="the VAE objective's KL: single-sample log q - log p as the paper's code "
                         "(default), or in closed form (1 layer only)")
    ap.add_argument("--checkpoint", help="save the run here after each pass, and resume from it when it exists")
    a = ap.parse_args()
    if a.kl == "analytic" and (a.layers != 1 or a.objective != "vae"):
        sys.exit("iwae_reference: --kl analytic is for the 1-layer VAE objective only")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train, test = load_mnist(a.mnist)
    if a.train_size > 0:
        train = train[:a.train_size]
    test = torch.bernoulli(test, generator=torch.Generator().manual_seed(0))
    model = Model(a.layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-4)
    passes, t0, train_s, before_s = 0, time.time(), 0.0, 0.0
    done = 0  # passes restored from --checkpoint
    if a.checkpoint and os.path.exists(a.checkpoint):
        state = torch.load(a.checkpoint)
        if state["args"] != run_args(a):
            sys.exit(f"iwae_reference: {a.checkpoint} is of another run: {state['args']}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["rng"])
        done, train_s, before_s = state["passes"], state["train_s"], state["total_s"]
        print(f"iwae_reference: resumed from {a.checkpoint} after {done} passes", file=sys.stderr, flush=True)
    for i in range(a.stages):
        for g in opt.param_groups:
            g["lr"] = 1e-3 * 10 ** (-i / 7)
        for _ in range(3 ** i):
            if a.max_passes and passes >= a.max_passes:
                break
            if passes < done:  # trained before the stop: the RNG state restored is the one after it
                passes += 1
                continue
            t = time.time()
            xb = torch.bernoulli(train)
            for idx in torch.randperm(len(train)).split(a.batch):
                if a.kl == "analytic":
                    loss = vae_loss_analytic_kl(model, xb[idx], a.k)
                else:
                    loss = loss_fn(model.log_weights(xb[idx], a.k), a.objective)
                opt.zero_grad()
                loss.backward()
                opt.step()
            train_s += time.time() - t
            passes += 1
            if a.checkpoint:
                save_checkpoint(a, model, opt, passes, train_s, before_s + time.time() - t0)
    out = {"layers": a.layers, "objective": a.objective, "kl": a.kl, "k": a.k, "stages": a.stages, "passes": passes,
           "batch": a.batch, "seed": a.seed, "threads": a.threads, "train_s": train_s,
           "samples_per_s": passes * len(train) / train_s if train_s else None,
           "torch": torch.__version__}
    if not a.time_only:
        nll, elbo, active = evaluate(model, test, a.nll_samples, a.nll_chunk, a.nll_examples, a.au_samples)
        out.update({"test_nll": nll, "test_elbo": elbo, "active_units": active,
                    "nll_samples": a.nll_samples, "nll_examples": min(a.nll_examples, len(test))})
    try:
        out["commit"] = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse",
                                        "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    out["total_s"] = before_s + time.time() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main()

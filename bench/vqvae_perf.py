#!/usr/bin/python3
"""Training throughput of the VQ-VAE (issue 20): ours (`vae train --model vqvae`) against the
same model written in PyTorch here (the twin below), both on 1 thread, back to back; prints
each side's fastest epoch in samples/s (wall clock) and per CPU second, and writes
results/bench/vqvae_perf.json. One run by default (--reps).

The twin is layer for layer models/vqvae.hpp at the same settings: encoder Conv2d(1, C, 4, 2, 1),
ReLU, Conv2d(C, C, 4, 2, 1), ReLU, Conv2d(C, C, 3, 1, 1), R residual blocks (ReLU, Conv2d(C, Ch,
3, 1, 1), ReLU, Conv2d(Ch, C, 1), plus the input), ReLU, Conv2d(C, D, 1); nearest of K codes
(argmin of squared distances), straight-through z_e + (z_q - z_e).detach(); decoder Conv2d(D, C,
3, 1, 1), R residual blocks, ReLU, ConvTranspose2d(C, C, 4, 2, 1), ReLU, ConvTranspose2d(C, 1, 4,
2, 1): Bernoulli logits. Loss per example: BCE with logits summed over pixels + ||sg(z_e) - e||^2
+ beta ||z_e - sg(e)||^2 summed over the grid, batch mean; Adam 1e-3, batch 128, MNIST with a
fresh Bernoulli draw per epoch (drawn before the timer, as the peer of bench/conv_perf.py), the
first --train-size images. Ours times its epoch including the batch's Bernoulli draw. CPU
seconds: the twin's process time over its timed batches; ours, the CPU time of the run minus
that of the same run with 0 epochs (loading and evaluation).

    OPENBLAS_NUM_THREADS=1 nice -n 19 /usr/bin/python3 bench/vqvae_perf.py --build build
"""
import argparse, gzip, json, os, resource, struct, subprocess, sys, time

import blas_kernels

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before torch loads OpenBLAS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def settings(a):
    return ["--vq-channels", str(a.channels), "--vq-res-blocks", str(a.res_blocks), "--vq-res-hidden",
            str(a.res_hidden), "--vq-codebook", str(a.codebook), "--vq-dim", str(a.dim)]


def ours(a, epochs=None):
    epochs = a.epochs if epochs is None else epochs
    cmd = [os.path.join(a.build, "vae"), "train", "--model", "vqvae", "--dataset", "mnist", "--data-dir", a.mnist,
           "--binarize", "dynamic", "--likelihood", "bernoulli", "--batch", str(a.batch), "--train-size",
           str(a.train_size), "--test-size", "100", "--epochs", str(epochs), "--lr", "0.001", "--threads", "1",
           "--iw-samples", "0", "--json", "--quiet"] + settings(a)
    c0 = child_cpu()
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    cpu = child_cpu() - c0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    line = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line).get("best_epoch_samples_per_s", 0.0), cpu


def read_images(folder):
    path = os.path.join(folder, "train-images-idx3-ubyte")
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
    else:
        with gzip.open(path + ".gz", "rb") as f:
            data = f.read()
    n, rows, cols = struct.unpack(">III", data[4:16])
    return data[16:], n, rows * cols


def twin(a, torch):
    nn = torch.nn
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    raw, n_all, d = read_images(a.mnist)
    import numpy as np
    x = np.frombuffer(raw, dtype=np.uint8).reshape(n_all, 1, 28, 28)[: a.train_size]
    x = torch.from_numpy(x.astype("float32") / 255.0)
    C, R, Ch, K, D = a.channels, a.res_blocks, a.res_hidden, a.codebook, a.dim

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(C, Ch, 3, 1, 1), nn.Conv2d(Ch, C, 1)

        def forward(self, h):
            return h + self.b(torch.relu(self.a(torch.relu(h))))

    enc = nn.Sequential(nn.Conv2d(1, C, 4, 2, 1), nn.ReLU(), nn.Conv2d(C, C, 4, 2, 1), nn.ReLU(),
                        nn.Conv2d(C, C, 3, 1, 1), *[Res() for _ in range(R)], nn.ReLU(), nn.Conv2d(C, D, 1))
    dec = nn.Sequential(nn.Conv2d(D, C, 3, 1, 1), *[Res() for _ in range(R)], nn.ReLU(),
                        nn.ConvTranspose2d(C, C, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(C, 1, 4, 2, 1))
    E = nn.Parameter(torch.empty(K, D).uniform_(-1 / K, 1 / K))
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()) + [E], lr=1e-3)
    n, best, cpu = x.shape[0], 0.0, 0.0
    for _ in range(a.epochs):
        xb_all = torch.bernoulli(x, generator=gen)
        perm = torch.randperm(n, generator=gen)
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, n, a.batch):
            xb = xb_all[perm[i:i + a.batch]]
            ze = enc(xb).permute(0, 2, 3, 1).reshape(-1, D)
            idx = (ze.pow(2).sum(1, keepdim=True) - 2 * ze @ E.T + E.pow(2).sum(1)).argmin(1)
            e = E[idx]
            zq = ze + (e - ze).detach()
            logits = dec(zq.reshape(xb.shape[0], 7, 7, D).permute(0, 3, 1, 2))
            rec = nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
            vq = (ze.detach() - e).pow(2).sum() + 0.25 * (ze - e.detach()).pow(2).sum()
            loss = (rec + vq) / xb.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
        best = max(best, n / (time.perf_counter() - t))
        cpu += time.process_time() - c
    return best, n * a.epochs / cpu, torch.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--mnist", default=os.path.join(SHARED, "data", "mnist"))
    ap.add_argument("--train-size", type=int, default=3840)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--res-blocks", type=int, default=2)
    ap.add_argument("--res-hidden", type=int, default=32)
    ap.add_argument("--codebook", type=int, default=64)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "bench", "vqvae_perf.json"))
    blas_kernels.add_argument(ap)
    a = ap.parse_args()
    a.mnist = os.path.abspath(a.mnist)
    if not os.path.isdir(a.mnist):
        sys.exit(f"bench/vqvae_perf.py: no MNIST folder {a.mnist} (give --mnist DIR)")
    kernels = blas_kernels.choose(a.coretype)  # before torch loads OpenBLAS
    print(f"OpenBLAS kernels: {kernels} (--coretype {a.coretype})", flush=True)
    import torch
    runs = []
    load0 = os.getloadavg()
    for r in range(a.reps):
        o, cpu = ours(a)
        _, cpu0 = ours(a, 0)
        o_cpu = a.train_size * a.epochs / (cpu - cpu0)
        p, p_cpu, version = twin(a, torch)
        runs.append({"ours": round(o, 1), "peer": round(p, 1), "ours_cpu": round(o_cpu, 1), "peer_cpu": round(p_cpu, 1)})
        print(f"rep {r + 1}: ours {o:.1f} samples/s, PyTorch {p:.1f} samples/s, ratio {o / p:.2f}; "
              f"per CPU second: ours {o_cpu:.1f}, PyTorch {p_cpu:.1f}, ratio {o_cpu / p_cpu:.2f}", flush=True)
    best_o, best_p = max(x["ours"] for x in runs), max(x["peer"] for x in runs)
    best_oc, best_pc = max(x["ours_cpu"] for x in runs), max(x["peer_cpu"] for x in runs)
    result = {"openblas_kernels": kernels, "model": "vqvae", "channels": a.channels, "res_blocks": a.res_blocks, "res_hidden": a.res_hidden,
              "codebook": a.codebook, "dim": a.dim, "batch": a.batch, "threads": 1, "train_size": a.train_size,
              "epochs": a.epochs, "torch": version, "reps": runs, "ours_samples_per_s": best_o,
              "peer_samples_per_s": best_p, "ratio": round(best_o / best_p, 2),
              "ours_samples_per_cpu_s": best_oc, "peer_samples_per_cpu_s": best_pc,
              "cpu_ratio": round(best_oc / best_pc, 2), "loadavg_start": load0, "loadavg_end": os.getloadavg(),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"best: ours {best_o:.1f} samples/s, PyTorch {best_p:.1f} samples/s, ours/PyTorch {best_o / best_p:.2f}; "
          f"per CPU second: ours {best_oc:.1f}, PyTorch {best_pc:.1f}, ours/PyTorch {best_oc / best_pc:.2f}")


if __name__ == "__main__":
    main()

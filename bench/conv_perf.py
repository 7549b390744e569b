#!/usr/bin/python3
"""Training throughput of the conv VAE (issue 8): ours (`vae train --arch conv`) against
the same model in PyTorch, the peer's ConvVAE from ../shared/bench/torch_vae_baseline.py
(--arch conv), both on 1 thread, back to back, repeated; prints the best of each and
their ratio, and writes results/bench/conv_perf.json.

Equivalent work: the preset (Conv2d 1-32-64-128-256, kernel 3, stride 2, BatchNorm2d,
ReLU; linear heads; ConvTranspose2d back), latent 20, Bernoulli decoder (BCE with logits
summed over pixels), analytic KL, Adam 1e-3, batch 128, MNIST with dynamic binarization,
the first --train-size images. The peer script always trains on all 60000 images, so
this driver imports its ConvVAE and neg_elbo and runs the peer's own training loop on
the subset (a fresh Bernoulli draw and permutation per epoch, then timed batches).
Both sides report their fastest epoch in samples/s (wall clock); ours includes the
batch's Bernoulli draw, the peer draws the whole subset before its timer starts. On a
shared machine the wall clock mostly measures our share of the CPU, so the driver also
reports training samples per CPU second: the peer's process time over its timed batches,
and ours as the CPU time of the run minus that of the same run with 0 epochs (data
loading and evaluation).

    OPENBLAS_NUM_THREADS=1 nice -n 19 /usr/bin/python3 bench/conv_perf.py --build build
"""
import argparse, importlib.util, json, os, resource, subprocess, sys, time

import blas_kernels

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before torch loads OpenBLAS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The shared folder beside the repository holds the peer and the data (as for the tests).
SHARED = os.path.join(os.path.dirname(ROOT), "shared")


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ours(a, epochs=None):
    """(fastest epoch in samples/s, CPU seconds of the whole run)"""
    epochs = a.epochs if epochs is None else epochs
    cmd = [os.path.join(a.build, "vae"), "train", "--arch", "conv", "--dataset", "mnist", "--data-dir", a.mnist,
           "--binarize", "dynamic", "--likelihood", "bernoulli", "--latent", "20", "--batch", str(a.batch),
           "--train-size", str(a.train_size), "--test-size", "100", "--epochs", str(epochs), "--lr", "0.001",
           "--threads", "1", "--iw-samples", "0", "--json", "--quiet"]
    c0 = child_cpu()
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    cpu = child_cpu() - c0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    line = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line).get("best_epoch_samples_per_s", 0.0), cpu


def peer(a, mod, torch):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x = mod.read_idx(mod.find(a.mnist, "train-images-idx3-ubyte")).reshape(-1, 784)[: a.train_size]
    x = torch.from_numpy(x.astype("float32") / 255.0)
    model = mod.ConvVAE(20)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n, best, cpu = x.shape[0], 0.0, 0.0
    model.train()
    for _ in range(a.epochs):  # the peer's loop (torch_vae_baseline.py main)
        xb_all = torch.bernoulli(x, generator=gen)
        perm = torch.randperm(n, generator=gen)
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, n, a.batch):
            xb = xb_all[perm[i:i + a.batch]]
            logits, mu, logvar = model(xb)
            loss = mod.neg_elbo(logits, xb, mu, logvar) / xb.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
        best = max(best, n / (time.perf_counter() - t))
        cpu += time.process_time() - c
    return best, n * a.epochs / cpu, torch.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--mnist", default=os.path.join(SHARED, "data", "mnist"),
                    help="MNIST IDX folder (default: ../shared/data/mnist beside the repository)")
    ap.add_argument("--peer", default=os.path.join(SHARED, "bench", "torch_vae_baseline.py"),
                    help="the PyTorch peer script (default: ../shared/bench/torch_vae_baseline.py "
                         "beside the repository)")
    ap.add_argument("--train-size", type=int, default=6400)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "bench", "conv_perf.json"))
    blas_kernels.add_argument(ap)
    a = ap.parse_args()
    a.mnist, a.peer = os.path.abspath(a.mnist), os.path.abspath(a.peer)
    if not os.path.isdir(a.mnist):
        sys.exit(f"bench/conv_perf.py: no MNIST folder {a.mnist} (give --mnist DIR)")
    if not os.path.isfile(a.peer):
        sys.exit(f"bench/conv_perf.py: no PyTorch peer {a.peer} (give --peer PATH)")
    kernels = blas_kernels.choose(a.coretype)  # before the peer's module loads torch and OpenBLAS
    print(f"OpenBLAS kernels: {kernels} (--coretype {a.coretype})", flush=True)
    spec = importlib.util.spec_from_file_location("peer", a.peer)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import torch
    runs = []
    for r in range(a.reps):
        o, cpu = ours(a)
        _, cpu0 = ours(a, 0)
        o_cpu = a.train_size * a.epochs / (cpu - cpu0)
        p, p_cpu, version = peer(a, mod, torch)
        runs.append({"ours": round(o, 1), "peer": round(p, 1), "ours_cpu": round(o_cpu, 1), "peer_cpu": round(p_cpu, 1)})
        print(f"rep {r + 1}: ours {o:.1f} samples/s, PyTorch {p:.1f} samples/s, ratio {o / p:.2f}; "
              f"per CPU second: ours {o_cpu:.1f}, PyTorch {p_cpu:.1f}, ratio {o_cpu / p_cpu:.2f}", flush=True)
    best_o, best_p = max(x["ours"] for x in runs), max(x["peer"] for x in runs)
    best_oc, best_pc = max(x["ours_cpu"] for x in runs), max(x["peer_cpu"] for x in runs)
    result = {"openblas_kernels": kernels, "arch": "conv", "latent": 20, "batch": a.batch, "threads": 1, "train_size": a.train_size,
              "epochs": a.epochs, "torch": version, "reps": runs, "ours_samples_per_s": best_o,
              "peer_samples_per_s": best_p, "ratio": round(best_o / best_p, 2),
              "ours_samples_per_cpu_s": best_oc, "peer_samples_per_cpu_s": best_pc,
              "cpu_ratio": round(best_oc / best_pc, 2),
              "loadavg": os.getloadavg(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"best: ours {best_o:.1f} samples/s, PyTorch {best_p:.1f} samples/s, ours/PyTorch {best_o / best_p:.2f}; "
          f"per CPU second: ours {best_oc:.1f}, PyTorch {best_pc:.1f}, ours/PyTorch {best_oc / best_pc:.2f}")


if __name__ == "__main__":
    main()

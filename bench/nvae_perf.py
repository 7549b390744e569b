#!/usr/bin/python3
"""Training throughput of NVAE-small (issue 19): ours (`vae train --model nvae`) against its
PyTorch twin (bench/nvae_torch.py, the same cells, hierarchy and parameter count), both on 1
thread, back to back; prints each side's fastest epoch in samples/s and samples per CPU
second, and writes results/bench/nvae_perf.json.

Equivalent work: MNIST with dynamic binarization (the first --train-size images), the shape
given by --channels/--scales/--groups/--latent, Bernoulli decoder, the residual-normal KL,
Adam 1e-3, batch --batch; spectral regularisation, KL warm-up and balancing off on both sides
(the twin has none), batch norm in training mode. Ours: the CPU time of the run minus that
of the same run with 0 epochs (data loading, evaluation); the twin: process time over its
timed batches.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/nvae_perf.py --build build
"""
import argparse, json, os, resource, subprocess, sys, time

import blas_kernels

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before torch loads OpenBLAS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
sys.path.insert(0, os.path.join(ROOT, "bench"))


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def shape_args(a):
    return ["--nvae-channels", str(a.channels), "--nvae-scales", str(a.scales), "--nvae-groups", str(a.groups),
            "--nvae-latent-channels", str(a.latent)]


def ours(a, epochs=None):
    """(fastest epoch in samples/s, CPU seconds of the whole run, parameter count)"""
    epochs = a.epochs if epochs is None else epochs
    cmd = [os.path.join(a.build, "vae"), "train", "--model", "nvae", "--dataset", "mnist", "--data-dir", a.mnist,
           "--binarize", "dynamic", "--batch", str(a.batch), "--train-size", str(a.train_size), "--test-size",
           "100", "--epochs", str(epochs), "--lr", "0.001", "--threads", "1", "--iw-samples", "0",
           "--nvae-spectral", "0", "--json", "--quiet"] + shape_args(a)
    c0 = child_cpu()
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    cpu = child_cpu() - c0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    j = json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1])
    return j.get("best_epoch_samples_per_s", 0.0), cpu, j.get("metrics", {}).get("num_params", j.get("num_params"))


def read_mnist(folder, n):
    import gzip
    import numpy as np
    for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
                data = f.read()
            return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(-1, 784)[:n]
    sys.exit(f"bench/nvae_perf.py: no train-images-idx3-ubyte[.gz] in {folder}")


def twin(a, torch, nt):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.from_numpy(read_mnist(a.mnist, a.train_size).astype("float32") / 255.0).reshape(-1, 1, 28, 28)
    model = nt.NvaeSmall(channels=a.channels, scales=a.scales, groups=a.groups, latent=a.latent).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n, best, cpu = x.shape[0], 0.0, 0.0
    model.train()
    for _ in range(a.epochs):
        xb_all = torch.bernoulli(x, generator=gen)
        perm = torch.randperm(n, generator=gen)
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, n, a.batch):
            xb = xb_all[perm[i:i + a.batch]]
            eps = [torch.randn(s) for s in model.latent_shapes(xb.shape[0])]
            rec, kls = model(xb, eps)
            loss = rec.mean() + sum(k.sum(dim=[1, 2, 3]).mean() for k in kls)
            opt.zero_grad()
            loss.backward()
            opt.step()
        best = max(best, n / (time.perf_counter() - t))
        cpu += time.process_time() - c
    return best, n * a.epochs / cpu, sum(p.numel() for p in model.parameters()), torch.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--mnist", default=os.path.join(SHARED, "data", "mnist"))
    ap.add_argument("--train-size", type=int, default=1280)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--scales", type=int, default=2)
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--latent", type=int, default=8)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "bench", "nvae_perf.json"))
    blas_kernels.add_argument(ap)
    a = ap.parse_args()
    a.mnist = os.path.abspath(a.mnist)
    kernels = blas_kernels.choose(a.coretype)  # before torch loads OpenBLAS
    print(f"OpenBLAS kernels: {kernels} (--coretype {a.coretype})", flush=True)
    import torch
    import nvae_torch as nt
    runs = []
    for r in range(a.reps):
        load0 = os.getloadavg()
        o, cpu, _ = ours(a)
        _, cpu0, _ = ours(a, 0)
        o_cpu = a.train_size * a.epochs / (cpu - cpu0)
        p, p_cpu, n_params, version = twin(a, torch, nt)
        runs.append({"ours": round(o, 1), "twin": round(p, 1), "ours_cpu": round(o_cpu, 1), "twin_cpu": round(p_cpu, 1),
                     "loadavg_before": load0, "loadavg_after": os.getloadavg()})
        print(f"rep {r + 1}: ours {o:.1f} samples/s, PyTorch twin {p:.1f} samples/s, ratio {o / p:.2f}; per CPU "
              f"second: ours {o_cpu:.1f}, twin {p_cpu:.1f}, ratio {o_cpu / p_cpu:.2f} (load {load0[0]:.1f})", flush=True)
    best_o, best_p = max(x["ours"] for x in runs), max(x["twin"] for x in runs)
    best_oc, best_pc = max(x["ours_cpu"] for x in runs), max(x["twin_cpu"] for x in runs)
    result = {"openblas_kernels": kernels, "model": "nvae", "channels": a.channels, "scales": a.scales, "groups": a.groups, "latent": a.latent,
              "twin_params": n_params, "batch": a.batch, "threads": 1, "train_size": a.train_size,
              "epochs": a.epochs, "torch": version, "reps": runs, "ours_samples_per_s": best_o,
              "twin_samples_per_s": best_p, "ratio": round(best_o / best_p, 2), "ours_samples_per_cpu_s": best_oc,
              "twin_samples_per_cpu_s": best_pc, "cpu_ratio": round(best_oc / best_pc, 2),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"best: ours {best_o:.1f} samples/s, twin {best_p:.1f}, ours/twin {best_o / best_p:.2f}; per CPU second: "
          f"ours {best_oc:.1f}, twin {best_pc:.1f}, ours/twin {best_oc / best_pc:.2f}")


if __name__ == "__main__":
    main()

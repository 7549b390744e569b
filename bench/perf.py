#!/usr/bin/python3
"""Driver of bench/run.sh (issue 5): runs ours, the PyTorch peer and the BLAS limit
back to back, repeats, and reports the best of the repetitions and the ratios.

Equivalent work: the same model (784-400-20 MLP, ReLU, Bernoulli decoder, Adam 1e-3),
the same data (MNIST, 60000 training images, dynamic binarization), the same batch and
the same number of epochs; both sides report their fastest epoch (ours:
best_epoch_samples_per_s, the peer: samples_per_s = 60000 / min(epoch_s)). Our epoch
includes the batch's Bernoulli draw; the peer draws the whole set before its timer
starts, so the comparison, if anything, favours the peer.

The IWAE settings (issues 17 and 18) train the IWAE paper's 784-200-200-50 tanh model at
batch 20 with the IWAE objective at k = 1 (the ELBO), 5 and 50, on 1 and 2 threads, on the first
--iwae-train-size images, against bench/iwae_reference.py --time-only (the same model and
objective in PyTorch).

The limit (bench/limit_gemm.cpp) times the step's gemm/gemv calls alone, same shapes,
same thread count (for the IWAE settings: the encoder on B rows, the decoder on B k). The IW limit times the decoder's two products per chunk of 500
importance samples. Peak RSS is measured with /usr/bin/time -v on a 1-epoch run that
ends with a short IW evaluation, and compared with the bytes the run must hold
(see must_hold_bytes)."""
import argparse, datetime, json, os, platform, re, subprocess, sys, time

import blas_kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The shared folder beside the repository holds the peer and the data (as for the tests).
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
D, H, L, N_TRAIN, N_TEST = 784, 400, 20, 60000, 10000


def run(cmd, env_threads, timeout=3600):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(env_threads))
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return p


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output:\n" + text[-1000:])


# The IWAE paper's 1-layer model (Burda et al. 2016): 784-200-200-50, tanh, Glorot, Adam eps 1e-4.
IWAE_MODEL = ["--hidden", "200,200", "--latent", "50", "--activation", "tanh", "--init", "glorot",
              "--adam-eps", "1e-4"]


def ours_train(a, batch, threads, k=0, vae=None):
    """k = 0: the comparison model; k >= 1: the IWAE model with the IWAE objective at k.
    vae: another build's program (--compare) instead of ours."""
    model = (["--hidden", "400", "--latent", "20", "--activation", "relu"] if k == 0 else
             IWAE_MODEL + ["--objective", "iwae", "--k", str(k), "--train-size", str(a.iwae_train_size)])
    cmd = [vae or a.vae, "train", "--dataset", "mnist", "--data-dir", a.mnist, "--binarize", "dynamic"] + model + [
           "--likelihood", "bernoulli", "--optimizer", "adam", "--lr", "0.001", "--batch", str(batch),
           "--epochs", str(a.epochs), "--threads", str(threads), "--iw-samples", "0", "--json", "--quiet"]
    return last_json(run(cmd, threads).stdout)["best_epoch_samples_per_s"]


def peer_train(a, batch, threads, blas_threads, k=0):
    if k > 0:  # bench/iwae_reference.py: the same model and objective in PyTorch
        cmd = ["/usr/bin/python3", a.iwae_peer, "--mnist", a.mnist, "--objective", "iwae", "--k", str(k),
               "--batch", str(batch), "--threads", str(threads), "--time-only", "--max-passes", str(a.epochs),
               "--train-size", str(a.iwae_train_size)]
        j = last_json(run(cmd, threads).stdout)
        return j["samples_per_s"], j.get("torch")
    cmd = ["/usr/bin/python3", a.peer, "--mnist", a.mnist, "--batch", str(batch), "--epochs", str(a.epochs),
           "--threads", str(threads), "--blas-threads", str(blas_threads)]
    j = last_json(run(cmd, blas_threads).stdout)
    return j["samples_per_s"], j.get("torch")


def limit_train(a, batch, threads, k=0):
    cmd = [a.limit, "--mode", "train", "--batch", str(batch), "--threads", str(threads), "--epochs", str(a.epochs)]
    if k > 0:
        cmd += ["--hidden", "200,200", "--latent", "50", "--k", str(k), "--train-size", str(a.iwae_train_size)]
    return last_json(run(cmd, threads).stdout)["samples_per_s"]


def ours_iw(a, vae=None):
    cmd = [vae or a.vae, "train", "--dataset", "mnist", "--data-dir", a.mnist, "--epochs", "0", "--threads", "1",
           "--iw-samples", str(a.iw_samples), "--iw-examples", str(a.iw_examples), "--iw-chunk", "500",
           "--json", "--quiet"]
    j = last_json(run(cmd, 1).stdout)
    return j["iw_examples"] * j["iw_samples"] / j["iw_s"]


def limit_iw(a):
    cmd = [a.limit, "--mode", "iw", "--threads", "1", "--chunk", "500", "--samples", str(a.iw_samples),
           "--examples", str(a.iw_examples), "--reps", "1"]
    return last_json(run(cmd, 1).stdout)["samples_per_s"]


def must_hold_bytes(n_params, batch, chunk):
    """What a training run of the issue's model must hold, from the sizes:
    data: the uint8 pixels and labels of the 60000 training and 10000 test images;
    parameters, their gradients and Adam's two moments: 4 float buffers;
    training activations for one batch: each layer's input and output (x, h before and
    after ReLU, mu, logvar, eps, z, g before and after ReLU, logits) and one gradient
    per layer output (dlogits, dg, dz, dmu, dlogvar, dh): 3D + 6H + 7L floats a row;
    evaluation: one chunk of importance samples through the decoder, forward only
    (z, g before and after ReLU, logits, x): L + 2H + 2D floats a row."""
    data = (N_TRAIN + N_TEST) * (D + 1)
    state = 4 * n_params * 4
    train_act = batch * (3 * D + 6 * H + 7 * L) * 4
    eval_act = chunk * (L + 2 * H + 2 * D) * 4
    return {"data": data, "params_grads_adam": state, "train_activations": train_act,
            "eval_activations": eval_act, "total": data + state + train_act + eval_act}


def peak_rss(a):
    cmd = ["/usr/bin/time", "-v", a.vae, "train", "--dataset", "mnist", "--data-dir", a.mnist, "--epochs", "1",
           "--batch", "128", "--threads", "1", "--iw-samples", str(a.iw_samples), "--iw-examples", "2",
           "--iw-chunk", "500", "--json", "--quiet"]
    p = run(cmd, 1)
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return kb * 1024, int(last_json(p.stdout)["n_params"])


def machine():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "load_avg": os.getloadavg(),
            "env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_") and k != "OPENBLAS_NUM_THREADS"}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--iw-samples", type=int, default=5000)
    ap.add_argument("--iw-examples", type=int, default=20)
    ap.add_argument("--mnist", default=os.path.join(SHARED, "data", "mnist"),
                    help="MNIST IDX folder (default: ../shared/data/mnist beside the repository)")
    ap.add_argument("--peer", default=os.path.join(SHARED, "bench", "torch_vae_baseline.py"),
                    help="the PyTorch peer script (default: ../shared/bench/torch_vae_baseline.py "
                         "beside the repository)")
    ap.add_argument("--iwae-peer", default=os.path.join(ROOT, "bench", "iwae_reference.py"),
                    help="the PyTorch peer of the IWAE settings (default: bench/iwae_reference.py)")
    ap.add_argument("--iwae-train-size", type=int, default=5000,
                    help="training images per epoch in the IWAE settings (default 5000)")
    ap.add_argument("--settings", default="all",
                    help="comma-separated subset of b20,b128,b128x2,iwae5,iwae5x2,iwae50,iwae50x2,iw,rss "
                         "(default: all)")
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "bench", "perf.json"))
    ap.add_argument("--skip-peer", action="store_true", help="ours and the limits only")
    blas_kernels.add_argument(ap)
    ap.add_argument("--check", action="store_true", help="check the data and peer paths, then exit")
    ap.add_argument("--compare", metavar="BUILD",
                    help="a second build (e.g. VAE_NATIVE=OFF) whose vae runs beside ours in every setting; "
                         "reports ours / its throughput")
    a = ap.parse_args()
    a.mnist = os.path.abspath(a.mnist)
    a.peer = os.path.abspath(a.peer)
    if not os.path.isdir(a.mnist):
        sys.exit(f"bench/perf.py: no MNIST folder {a.mnist} (give --mnist DIR)")
    if not a.skip_peer and not os.path.isfile(a.peer):
        sys.exit(f"bench/perf.py: no PyTorch peer {a.peer} (give --peer PATH, or --skip-peer)")
    if a.check:
        return
    a.vae = os.path.join(a.build, "vae")
    a.limit = os.path.join(a.build, "limit_gemm")
    a.alt = os.path.join(a.compare, "vae") if a.compare else None
    started = time.time()
    kernels = blas_kernels.choose(a.coretype)
    info = dict(machine(), openblas_kernels=kernels, coretype=a.coretype)

    # (key, name, batch, our/limit BLAS threads, peer torch threads, peer BLAS threads, IWAE k or 0)
    all_settings = [("b20", "1 thread, batch 20", 20, 1, 1, 1, 0), ("b128", "1 thread, batch 128", 128, 1, 1, 1, 0),
                    ("b128x2", "2 threads, batch 128", 128, 2, 1, 2, 0)]
    for k in (1, 5, 50):
        all_settings += [(f"iwae{k}", f"IWAE k={k}, 1 thread", 20, 1, 1, 1, k),
                         (f"iwae{k}x2", f"IWAE k={k}, 2 threads", 20, 2, 2, 2, k)]
    keys = [s[0] for s in all_settings] + ["iw", "rss"]
    chosen = keys if a.settings == "all" else a.settings.split(",")
    for c in chosen:
        if c not in keys:
            sys.exit(f"bench/perf.py: unknown setting '{c}' in --settings (one of: {', '.join(keys)})")
    settings = [s for s in all_settings if s[0] in chosen]
    iw = "iw K=%d" % a.iw_samples
    samples = {s[1]: {"ours": [], "peer": [], "limit": [], "compare": []} for s in settings}
    if "iw" in chosen:
        samples[iw] = {"ours": [], "limit": [], "compare": []}
    torch_version = None
    for rep in range(a.reps):
        for _, name, batch, threads, pt, pb, k in settings:
            # Rotate the order so that no side always runs first (or last) under load drift.
            jobs = [("limit", lambda: limit_train(a, batch, threads, k)),
                    ("ours", lambda: ours_train(a, batch, threads, k))]
            if not a.skip_peer:
                jobs.append(("peer", lambda: peer_train(a, batch, pt, pb, k)))
            if a.alt:
                jobs.append(("compare", lambda: ours_train(a, batch, threads, k, a.alt)))
            jobs = jobs[rep % len(jobs):] + jobs[:rep % len(jobs)]
            for side, f in jobs:
                v = f()
                if side == "peer":
                    v, torch_version = v
                samples[name][side].append(v)
                print(f"rep {rep + 1}/{a.reps}  {name:22s} {side:5s} {v:10.0f} samples/s", file=sys.stderr, flush=True)
        if "iw" not in chosen:
            continue
        iw_jobs = [("ours", lambda: ours_iw(a)), ("limit", lambda: limit_iw(a))]
        if a.alt:
            iw_jobs.append(("compare", lambda: ours_iw(a, a.alt)))
        for side, f in iw_jobs[:: 1 if rep % 2 == 0 else -1]:
            v = f()
            samples[iw][side].append(v)
            print(f"rep {rep + 1}/{a.reps}  {iw:22s} {side:5s} {v:10.0f} samples/s", file=sys.stderr, flush=True)

    rss, n_params = peak_rss(a) if "rss" in chosen else (None, None)
    hold = must_hold_bytes(n_params, 128, 500) if rss else None

    rows = []
    for name, s in samples.items():
        best = {k: max(v) for k, v in s.items() if v}
        row = {"setting": name, "best": best, "all": s}
        if "peer" in best:
            row["ours_over_peer"] = best["ours"] / best["peer"]
        row["ours_over_limit"] = best["ours"] / best["limit"]
        if "compare" in best:
            row["ours_over_compare"] = best["ours"] / best["compare"]
        rows.append(row)
    by = {r["setting"]: r for r in rows}

    def at_least(name, key, bound):
        return None if name not in by else by[name].get(key, 0) >= bound

    # Issue 18's targets (issue 5's: 1 thread batch 20 >= 2 x peer, 2 threads batch 128 >= 1.4 x
    # peer, IW >= 0.85 x limit, peak RSS <= 1.5 x must hold); a setting left out is not judged.
    targets = {
        "18.1: 1 thread batch 20 >= 0.85 x limit": at_least("1 thread, batch 20", "ours_over_limit", 0.85),
        "18.2: IWAE k=5, 1 thread >= 0.85 x limit": at_least("IWAE k=5, 1 thread", "ours_over_limit", 0.85),
        "18.2: IWAE k=50, 1 thread >= 0.85 x limit": at_least("IWAE k=50, 1 thread", "ours_over_limit", 0.85),
        "18.3: 2 threads batch 128 >= 0.9 x limit": at_least("2 threads, batch 128", "ours_over_limit", 0.9),
        "18.3: IW evaluation >= 0.92 x limit": at_least(iw, "ours_over_limit", 0.92),
        "18.4: 1 thread batch 128 >= 0.90 x limit": at_least("1 thread, batch 128", "ours_over_limit", 0.90),
        "5.2: 1 thread batch 20 >= 2 x peer": at_least("1 thread, batch 20", "ours_over_peer", 2.0),
        "17.4: IWAE protocol k=1, 1 thread >= 2 x peer": at_least("IWAE k=1, 1 thread", "ours_over_peer", 2.0),
        "17.4: IWAE k=5, 1 thread >= 2 x peer": at_least("IWAE k=5, 1 thread", "ours_over_peer", 2.0),
        "17.4: IWAE k=50, 1 thread >= 2 x peer": at_least("IWAE k=50, 1 thread", "ours_over_peer", 2.0),
        "5.3: 2 threads batch 128 >= 1.4 x peer": at_least("2 threads, batch 128", "ours_over_peer", 1.4),
        "5.6: peak RSS <= 1.5 x must hold": None if rss is None else rss <= 1.5 * hold["total"],
    }
    targets = {k: v for k, v in targets.items() if v is not None}
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "bench/run.sh " + " ".join(sys.argv[3:]),
        "machine": dict(info, load_avg_end=os.getloadavg(), torch=torch_version),
        "compare": os.path.abspath(a.compare) if a.compare else None,
        "settings": {"reps": a.reps, "epochs": a.epochs, "iw_samples": a.iw_samples, "iw_examples": a.iw_examples,
                     "iw_chunk": 500, "model": "784-400-20 MLP VAE, ReLU, Bernoulli, Adam 1e-3, MNIST dynamic",
                     "iwae_model": "784-200-200-50 tanh, Glorot, Adam 1e-3 eps 1e-4, batch 20, IWAE objective, "
                                   "first %d MNIST training images (dynamic)" % a.iwae_train_size,
                     "chosen": chosen},
        "throughput": rows,
        "memory": None if rss is None else {"peak_rss_bytes": rss, "must_hold_bytes": hold,
                                            "ratio": rss / hold["total"]},
        "targets": targets,
        "seconds": round(time.time() - started, 1),
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")

    print(f"\n{info['cpu']}, {info['cores']} cores; OpenBLAS kernels {kernels} (--coretype {a.coretype}); "
          f"OPENBLAS_NUM_THREADS pinned per run; "
          f"best of {a.reps} x {a.epochs} epochs; load average {info['load_avg'][0]:.1f}")
    print(f"{'setting':24s} {'ours':>9s} {'peer':>9s} {'limit':>9s} {'ours/peer':>10s} {'ours/limit':>11s}")
    for r in rows:
        b = r["best"]
        peer = f"{b['peer']:9.0f}" if "peer" in b else f"{'-':>9s}"
        op = f"{r['ours_over_peer']:10.2f}" if "ours_over_peer" in r else f"{'-':>10s}"
        print(f"{r['setting']:24s} {b['ours']:9.0f} {peer} {b['limit']:9.0f} {op} {r['ours_over_limit']:11.2f}")
    print(f"(samples/s; IW: importance samples decoded per second, {a.iw_examples} test examples)")
    if a.alt:
        print(f"against {a.compare}/vae, run beside ours in every repetition:")
        for r in rows:
            print(f"  {r['setting']:24s} ours {r['best']['ours']:9.0f}  it {r['best']['compare']:9.0f}  "
                  f"ours/it {r['ours_over_compare']:.3f}")
    if rss is not None:
        print(f"peak RSS {rss / 2**20:.1f} MiB, must hold {hold['total'] / 2**20:.1f} MiB "
              f"(data {hold['data'] / 2**20:.1f}, params+grads+Adam {hold['params_grads_adam'] / 2**20:.1f}, "
              f"activations {(hold['train_activations'] + hold['eval_activations']) / 2**20:.1f}): "
              f"ratio {rss / hold['total']:.2f}")
    for k, ok in targets.items():
        print(f"  target {k}: {'holds' if ok else 'MISSED'}")
    print(f"wrote {os.path.relpath(a.out)}")


if __name__ == "__main__":
    main()

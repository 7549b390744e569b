#!/usr/bin/python3
"""A/B timing of two `vae` binaries on one training command, interleaved: each repetition
runs A then B (B then A on odd repetitions), so that both see the same machine load; prints
each side's best-epoch samples/s per repetition, the best of each and the ratio B/A, the
geometric mean of the pairs' ratios (the estimate to read: use an even --reps), with the
load average before and after.

  bench/ab.py --a /tmp/vae-before --b build-perf/vae --reps 5 --threads 1 -- \\
      --hidden 400 --latent 20 --batch 20 --epochs 1

Everything after -- is passed to `vae train` after the fixed part (--dataset mnist
--binarize dynamic --iw-samples 0 --json --quiet); OPENBLAS_NUM_THREADS and --threads
are pinned to --threads."""
import argparse, json, math, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST = os.path.join(os.path.dirname(ROOT), "shared", "data", "mnist")


def rate(vae, threads, mnist, extra):
    cmd = [vae, "train", "--dataset", "mnist", "--data-dir", mnist, "--binarize", "dynamic", "--iw-samples", "0",
           "--threads", str(threads), "--json", "--quiet"] + extra
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    line = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line)["best_epoch_samples_per_s"]


def main():
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="the baseline vae binary")
    ap.add_argument("--b", required=True, help="the changed vae binary")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mnist", default=MNIST)
    a = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    load0 = os.getloadavg()[0]
    res = {"a": [], "b": []}
    for r in range(a.reps):
        for side in ("a", "b") if r % 2 == 0 else ("b", "a"):
            res[side].append(rate(getattr(a, side), a.threads, a.mnist, extra))
        print(f"rep {r + 1}: A {res['a'][-1]:9.0f}  B {res['b'][-1]:9.0f}  B/A {res['b'][-1] / res['a'][-1]:.3f}",
              file=sys.stderr, flush=True)
    ratios = sorted(b / a_ for a_, b in zip(res["a"], res["b"]))
    # The side that runs first in a pair can be faster or slower on this VM (10-15% seen), and
    # the order alternates: over an even number of pairs the geometric mean cancels it, where
    # the median picks one order's pair.
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(json.dumps({"args": extra, "threads": a.threads, "a_best": max(res["a"]), "b_best": max(res["b"]),
                      "best_ratio": max(res["b"]) / max(res["a"]), "median_pair_ratio": ratios[len(ratios) // 2],
                      "geomean_pair_ratio": geo,
                      "load_avg": [load0, os.getloadavg()[0]], "a": res["a"], "b": res["b"]}))


if __name__ == "__main__":
    main()

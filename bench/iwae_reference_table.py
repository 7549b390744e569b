#!/usr/bin/python3
"""Runs bench/iwae_reference.py over every cell of an IWAE reproduction spec at one reduced
budget, and turns its results into the spec's expected values.

`vae reproduce` compares a cell run below the paper's budget with the PyTorch reference at
the same budget (issue "vae reproduce", section "Expected values at reduced budgets"). This
script is how those expected values are made:

  run       trains and evaluates each distinct (layers, objective, k, seed) of the spec at
            the budget, one reference process at a time, and appends its JSON line to OUT.
            Cells already in OUT are skipped, and the run under way at a stop goes on from
            its last pass: each run saves a checkpoint after every pass in OUT.ckpt/
            (removed when its line is written).
            --jobs N runs N of them at a time, longest first (one per free core); --shard I/N
            runs every N-th of them, so that processes on several machines fill one OUT.
  expected  prints the budget's `expected = {...}` table for the spec: mean, standard error
            and count over the seeds of test_nll and active_units per row and column, with
            the source (this script, the reference's commit, the torch version, OUT).
  --also FILE (repeatable) adds the runs of other JSON lines files, read only: `run` skips
            them and `expected` uses them (more seeds of a few cells beside a table's file).

The budget's schedule is the IWAE schedule's first S stages (epochs 1, 4, 13, 40, 121, ...);
its NLL settings (iw-samples, iw-examples) are the spec's, so both sides evaluate the same
bound on the same test images (the first iw-examples of the test set). At k = 1 the VAE and
IWAE objectives are the same function: one run serves both columns, as in the spec.

  /usr/bin/python3 bench/iwae_reference_table.py run experiments/iwae/table1.toml \\
      --budget stage3 --seeds 2 --mnist ../shared/data/mnist --out results/reference/x.jsonl
  /usr/bin/python3 bench/iwae_reference_table.py expected experiments/iwae/table1.toml \\
      --budget stage3 --out results/reference/x.jsonl
"""
import argparse, concurrent.futures, json, math, os, statistics, subprocess, sys, threading, tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
OBJECTIVES = {"elbo": "vae", "iwae": "iwae"}  # our --objective -> the reference's


def stages_of(epochs, where):
    """The number S of schedule stages whose passes (3^0 + ... + 3^(S-1)) make `epochs`."""
    total = 0
    for s in range(1, 9):
        total += 3 ** (s - 1)
        if total == epochs:
            return s
    sys.exit(f"{where}: epochs = {epochs} is not the IWAE schedule's first S stages (1, 4, 13, 40, 121, ...)")


def load_cells(spec_path, budget_name):
    """[(row id, column id, settings)] and the budget's shared reference options."""
    with open(spec_path, "rb") as f:
        spec = tomllib.load(f)
    budgets = spec.get("budget", {})
    if budget_name not in budgets:
        sys.exit(f"{spec_path}: no [budget.{budget_name}] (have: {', '.join(budgets)})")
    budget = budgets[budget_name].get("settings", {})
    settings = dict(spec.get("protocol", {}), **budget)
    common = {
        "stages": stages_of(settings.get("epochs", 0), f"{spec_path}: [budget.{budget_name}]"),
        "nll_samples": settings.get("iw-samples", 5000),
        "nll_examples": settings.get("iw-examples", 0) or 10000,
        "batch": settings.get("batch", 20),
    }
    cells = []
    for row in spec["row"]:
        for col in spec["column"]:
            s = dict(row["settings"], **col["settings"])
            layers = {"vae": 1, "hierarchical": 2}[s["model"]]
            k = int(s.get("k", 1))
            objective = "vae" if k == 1 else OBJECTIVES[s["objective"]]
            cells.append((row["id"], col["id"], col["metric"], {"layers": layers, "objective": objective, "k": k}))
    return spec, cells, common


def key_of(run):
    return (run["layers"], run["objective"], run["k"], run["seed"], run["stages"], run["nll_samples"],
            run["nll_examples"])


def read_out(path):
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    return {key_of(r): r for r in runs}


def read_all(a):
    """The runs of --out and of every --also file (read only): one result per run."""
    done = read_out(a.out)
    for path in a.also:
        if not os.path.exists(path):
            sys.exit(f"iwae_reference_table: --also {path}: no such file")
        for key, r in read_out(path).items():
            if key in done:
                sys.exit(f"iwae_reference_table: {path}: a run also in {a.out} or an earlier --also file: {r}")
            done[key] = r
    return done


def run(a):
    _, cells, common = load_cells(a.spec, a.budget)
    done = read_all(a)
    jobs = []
    for seed in range(a.seeds):
        for _, _, _, c in cells:
            job = dict(c, seed=seed, **common)
            if job not in jobs:
                jobs.append(job)
    # Shards are cut from the whole list, not from what is left, so that a shard started later
    # takes the same share; they share the output file (each line is one append).
    index, count = a.shard
    todo = [job for job in jobs[index::count] if key_of(job) not in done]
    print(f"iwae_reference_table: {len(todo)} runs to do (shard {index + 1} of {count}), {len(done)} done",
          flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    # Longest first (the decoder's work grows with k and the layers), so that N workers finish
    # close together instead of one core running the last k = 50 cell alone.
    todo.sort(key=lambda job: (job["k"], job["layers"]), reverse=True)
    lock = threading.Lock()
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        failures = [f.exception() for f in [pool.submit(run_one, a, job, lock) for job in todo]]
    failures = [str(e) for e in failures if e is not None]
    if failures:
        sys.exit(failures[0])


def run_one(a, job, lock):
    """Trains and evaluates one reference run (resuming its checkpoint) and appends its line."""
    cmd = [sys.executable, os.path.join(HERE, "iwae_reference.py"), "--mnist", a.mnist,
           "--layers", str(job["layers"]), "--objective", job["objective"], "--k", str(job["k"]),
           "--stages", str(job["stages"]), "--seed", str(job["seed"]), "--batch", str(job["batch"]),
           "--nll-samples", str(job["nll_samples"]), "--nll-examples", str(job["nll_examples"]),
           "--threads", "1"]
    ckpt = os.path.join(a.out + ".ckpt", "l{layers}-{objective}-k{k}-s{seed}-st{stages}.pt".format(**job))
    os.makedirs(os.path.dirname(ckpt), exist_ok=True)
    cmd += ["--checkpoint", ckpt]
    print("iwae_reference_table:", " ".join(cmd[1:]), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"iwae_reference_table: the run {os.path.basename(ckpt)} failed "
                           f"(exit {out.returncode}): {out.stderr.strip()[-500:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    with lock, open(a.out, "a") as f:  # one line per finished run
        f.write(json.dumps(result) + "\n")
    os.remove(ckpt)
    print(f"iwae_reference_table: NLL {result['test_nll']:.3f}, AU {result['active_units']}, "
          f"{result['total_s']:.0f} s ({os.path.basename(ckpt)})", flush=True)


def expected(a):
    spec, cells, common = load_cells(a.spec, a.budget)
    done = read_all(a)
    rows, commits, torches, seeds_seen = {}, set(), set(), set()
    for row_id, col_id, metric, c in cells:
        values = []
        for seed in range(a.seeds):
            r = done.get(key_of(dict(c, seed=seed, **common)))
            if r is None:
                sys.exit(f"iwae_reference_table: {' + '.join([a.out] + a.also)}: no run for {row_id} / {col_id}, seed {seed}: "
                         f"run the `run` command first")
            commits.add(r.get("commit", "?"))
            torches.add(r.get("torch", "?"))
            seeds_seen.add(seed)
            v = r[metric]
            values.append(float(sum(v)) if isinstance(v, list) else float(v))
        n = len(values)
        se = statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0
        rows.setdefault(row_id, []).append(f"{col_id} = {{ mean = {statistics.mean(values):.4f}, "
                                           f"se = {se:.4f}, n = {n} }}")
    source = (f"bench/iwae_reference.py (PyTorch {', '.join(sorted(torches))}, commit "
              f"{', '.join(sorted(commits))}), {len(seeds_seen)} seeds, {common['stages']} stages, "
              f"NLL over the first {common['nll_examples']} test images with k = {common['nll_samples']}: "
              f"{', '.join(os.path.relpath(p) for p in [a.out] + a.also)}")
    print(f"[budget.{a.budget}.expected]")
    print(f"source = {json.dumps(source)}")
    for row_id, parts in rows.items():
        print(f"{json.dumps(row_id)} = {{ {', '.join(parts)} }}")


def shard_of(text):
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected I/N, e.g. 1/2")
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: I must be between 1 and N")
    return i - 1, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["run", "expected"])
    ap.add_argument("spec", help="the reproduction spec, e.g. experiments/iwae/table1.toml")
    ap.add_argument("--budget", required=True, help="a reduced budget of the spec, e.g. stage3")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=1, help="reference processes at a time (one per free core)")
    ap.add_argument("--shard", type=shard_of, default=(0, 1), metavar="I/N",
                    help="run only the I-th of N interleaved shares of the runs to do (1-based), "
                         "so that N processes (on several machines) fill one output file")
    ap.add_argument("--out", required=True, help="JSON lines file of the reference's runs")
    ap.add_argument("--also", action="append", default=[], metavar="FILE",
                    help="more JSON lines files of the reference's runs (read only; e.g. earlier seeds): "
                         "their runs count as done, and `expected` uses them")
    ap.add_argument("--mnist", default=os.path.join(HERE, "..", "..", "shared", "data", "mnist"))
    a = ap.parse_args()
    if a.jobs < 1:
        ap.error(f"--jobs {a.jobs}: expected at least 1")
    run(a) if a.command == "run" else expected(a)


if __name__ == "__main__":
    main()

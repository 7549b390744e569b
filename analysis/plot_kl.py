"""vae plot kl: the KL of each latent dimension of a run (test set, nats), sorted from
the largest: the dimensions the model uses stand out from the collapsed ones. With
--vector NAME, any other per-unit vector the run's family reports (e.g. code_usage of a
VQ-VAE: the fraction of the test set's code positions that took each codebook entry)."""
import json

import plotlib

LABELS = {
    "kl_per_dim": ("latent dimension, sorted by KL", "KL (nats)", "KL per latent dimension"),
    "code_usage": ("codebook entry, sorted by usage", "fraction of code positions", "codebook usage"),
}


def unit_vectors(text):
    """The runs.kl_per_dim column: {name: [numbers]}, or (older databases) the KL array."""
    v = json.loads(text)
    return {"kl_per_dim": v} if isinstance(v, list) else v


def main():
    p = plotlib.parser(__doc__)
    p.add_argument("--run", required=True, help="run id or prefix")
    p.add_argument("--vector", default="kl_per_dim", help="which per-unit vector (default kl_per_dim)")
    args = p.parse_args()
    db = plotlib.open_db(args.db)
    run_id = plotlib.resolve_run(db, args.run)
    (text,) = db.execute("SELECT kl_per_dim FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if not text:
        plotlib.fail("run %s has no per-unit vectors (is it done?)" % run_id[:12])
    vectors = unit_vectors(text)
    if args.vector not in vectors:
        plotlib.fail("run %s has no vector '%s' (it has: %s)" % (run_id[:12], args.vector, ", ".join(sorted(vectors))))
    values = sorted((x if x is not None else float("nan") for x in vectors[args.vector]), reverse=True)
    xlabel, ylabel, what = LABELS.get(args.vector, ("unit, sorted by value", args.vector, args.vector))
    fig = plotlib.figure(args)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(range(1, len(values) + 1), values, color="tab:blue")
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(plotlib.MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    if args.vector == "kl_per_dim":
        title = "run %s: KL per latent dimension, total %.2f nats" % (run_id[:12], sum(values))
        au = db.execute("SELECT value FROM metrics WHERE run_id = ? AND name = 'active_units'", (run_id,)).fetchone()
        if au and au[0] is not None:
            title += ", %d active units" % int(au[0])
    else:
        used = sum(1 for x in values if x > 0)
        title = "run %s: %s, %d of %d nonzero" % (run_id[:12], what, used, len(values))
    ax.set_title(args.title or title, fontsize="medium")
    plotlib.save(fig, args)


if __name__ == "__main__":
    main()

"""vae plot kl: the KL of each latent dimension of a run (test set, nats), sorted from
the largest: the dimensions the model uses stand out from the collapsed ones."""
import json

import plotlib


def main():
    p = plotlib.parser(__doc__)
    p.add_argument("--run", required=True, help="run id or prefix")
    args = p.parse_args()
    db = plotlib.open_db(args.db)
    run_id = plotlib.resolve_run(db, args.run)
    (text,) = db.execute("SELECT kl_per_dim FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if not text:
        plotlib.fail("run %s has no KL per dimension (is it done?)" % run_id[:12])
    kl = sorted(json.loads(text), reverse=True)
    au = db.execute("SELECT value FROM metrics WHERE run_id = ? AND name = 'active_units'", (run_id,)).fetchone()
    fig = plotlib.figure(args)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(range(1, len(kl) + 1), kl, color="tab:blue")
    ax.set_xlabel("latent dimension, sorted by KL")
    ax.xaxis.set_major_locator(plotlib.MaxNLocator(integer=True))
    ax.set_ylabel("KL (nats)")
    ax.grid(True, axis="y", alpha=0.3)
    title = "run %s: KL per latent dimension, total %.2f nats" % (run_id[:12], sum(kl))
    if au and au[0] is not None:
        title += ", %d active units" % int(au[0])
    ax.set_title(args.title or title, fontsize="medium")
    plotlib.save(fig, args)


if __name__ == "__main__":
    main()

"""vae plot curves: learning curves, a per-epoch metric (default: train_loss) of the
chosen runs against the epoch."""
import plotlib


def main():
    p = plotlib.parser(__doc__)
    p.add_argument("--run", action="append", default=[], help="run id or prefix (repeatable)")
    p.add_argument("--sweep", help="every run of this sweep")
    p.add_argument("--metric", default="train_loss", help="an epoch metric: train_loss, valid_elbo, test_elbo, ...")
    p.add_argument("--label", action="append", default=[], help="label lines by these settings (repeatable)")
    p.add_argument("--logy", action="store_true", help="logarithmic y axis")
    args = p.parse_args()
    db = plotlib.open_db(args.db)
    ids = [plotlib.resolve_run(db, r) for r in args.run]
    if args.sweep:
        ids += [r for r in plotlib.sweep_runs(db, args.sweep) if r not in ids]
    if not ids:
        plotlib.fail("which runs? give --run ID (repeatable) or --sweep NAME")
    fig = plotlib.figure(args)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    for run_id in ids:
        pts = db.execute("SELECT epoch, value FROM epoch_metrics WHERE run_id = ? AND name = ? AND value IS NOT NULL "
                         "ORDER BY epoch", (run_id, args.metric)).fetchall()
        if not pts:
            continue
        pr = plotlib.params(db, run_id)
        label = run_id[:12]
        if args.label:
            label += " " + ", ".join("%s=%s" % (k, pr.get(k)) for k in args.label)
        ax.plot([e for e, _ in pts], [v for _, v in pts], marker="." if len(pts) < 50 else None, label=label)
        drawn += 1
    if drawn == 0:
        plotlib.fail("none of the %d runs has epoch metric '%s'" % (len(ids), args.metric))
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(plotlib.MaxNLocator(integer=True))
    ax.set_ylabel(args.metric)
    if args.logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(args.title or "%s per epoch" % args.metric)
    plotlib.save(fig, args)


if __name__ == "__main__":
    main()

"""vae plot metric: a final metric against one parameter (default: latent), one line
per value of another (default: beta), mean over seeds with standard-error bars."""
import math
from collections import defaultdict

import plotlib


def main():
    p = plotlib.parser(__doc__)
    p.add_argument("--sweep", help="only the runs of this sweep")
    p.add_argument("--metric", default="test_nll", help="a final metric (vae query lists them)")
    p.add_argument("--x", default="latent", help="the parameter on the x axis")
    p.add_argument("--line", default="beta", help="one line per value of this parameter ('none': one line)")
    p.add_argument("--logx", action="store_true", help="logarithmic x axis")
    args = p.parse_args()
    db = plotlib.open_db(args.db)
    ids = set(plotlib.sweep_runs(db, args.sweep)) if args.sweep else None
    rows = db.execute(
        "SELECT r.run_id, m.value FROM runs r JOIN metrics m ON m.run_id = r.run_id AND m.name = ? "
        "WHERE r.status = 'done'", (args.metric,)).fetchall()
    groups = defaultdict(list)  # (line value, x value) -> metric values over seeds
    for run_id, value in rows:
        if (ids is not None and run_id not in ids) or value is None:
            continue
        pr = plotlib.params(db, run_id)
        if args.x not in pr:
            plotlib.fail("parameter '%s' is not a setting of the runs" % args.x)
        line = None if args.line == "none" else pr.get(args.line)
        if args.line != "none" and args.line not in pr:
            plotlib.fail("parameter '%s' is not a setting of the runs" % args.line)
        groups[(line, pr[args.x])].append(value)
    if not groups:
        plotlib.fail("no done run has metric '%s'%s" % (args.metric, " in sweep " + args.sweep if args.sweep else ""))
    fig = plotlib.figure(args)
    ax = fig.add_subplot(1, 1, 1)
    lines = sorted({k[0] for k in groups}, key=lambda v: (v is None, v))
    for line in lines:
        xs = sorted(x for (l, x) in groups if l == line)
        means, errs, ns = [], [], []
        for x in xs:
            v = groups[(line, x)]
            m = sum(v) / len(v)
            sd = math.sqrt(sum((a - m) ** 2 for a in v) / (len(v) - 1)) if len(v) > 1 else 0.0
            means.append(m)
            errs.append(sd / math.sqrt(len(v)))
            ns.append(len(v))
        label = None if line is None else "%s = %g" % (args.line, line) if isinstance(line, (int, float)) \
            else "%s = %s" % (args.line, line)
        if label is not None:
            label += " (n = %d)" % max(ns) if min(ns) == max(ns) else " (n = %d-%d)" % (min(ns), max(ns))
        ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=label)
    ax.set_xlabel(args.x)
    ax.set_ylabel(args.metric)
    if args.logx:
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    if any(l is not None for l in lines):
        ax.legend()
    ax.set_title(args.title or "%s against %s (mean and standard error over seeds)" % (args.metric, args.x))
    plotlib.save(fig, args)


if __name__ == "__main__":
    main()

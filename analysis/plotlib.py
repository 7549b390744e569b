"""Shared by the plot_*.py scripts that `vae plot` runs: the results database opened
read-only, run ids by prefix, figures of an exact pixel size, one-line errors."""
import argparse
import sqlite3
import sys

try:
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt  # noqa: F401  (re-exported)
    from matplotlib.ticker import MaxNLocator  # noqa: F401
except ImportError:
    sys.exit("vae plot: matplotlib is missing (Debian: apt-get install python3-matplotlib)")


def fail(message):
    """One line on stderr, exit code 1."""
    sys.exit("vae plot: " + message)


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--db", default="results/results.db", help="results database")
    p.add_argument("--out", "-o", required=True, help="the PNG file to write")
    p.add_argument("--width", type=int, default=640, help="width in pixels")
    p.add_argument("--height", type=int, default=480, help="height in pixels")
    p.add_argument("--title", help="title (default: what is plotted)")
    return p


def open_db(path):
    try:
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        db.execute("SELECT 1 FROM runs LIMIT 1")
    except sqlite3.Error as e:
        fail("%s: not a results database (%s)" % (path, e))
    return db


def resolve_run(db, prefix):
    if len(prefix) < 4:
        fail("run '%s': give at least 4 hex digits" % prefix)
    ids = [r[0] for r in db.execute("SELECT run_id FROM runs WHERE run_id LIKE ? || '%'", (prefix,))]
    if not ids:
        fail("run '%s': no such run" % prefix)
    if len(ids) > 1:
        fail("run '%s': %d runs match; give more digits" % (prefix, len(ids)))
    return ids[0]


def sweep_runs(db, sweep):
    """Run ids of a sweep, in sweep order."""
    ids = [r[0] for r in db.execute(
        "SELECT run_id FROM sweep_runs JOIN sweeps USING (sweep_id) WHERE name = ? ORDER BY position", (sweep,))]
    if not ids:
        fail("sweep '%s': no such sweep, or it has no runs" % sweep)
    return ids


def params(db, run_id):
    return {k: v for k, v in db.execute("SELECT key, value FROM params WHERE run_id = ?", (run_id,))}


def figure(args):
    if args.width < 100 or args.height < 100 or args.width > 10000 or args.height > 10000:
        fail("--width and --height: 100 to 10000 pixels")
    return plt.figure(figsize=(args.width / 100.0, args.height / 100.0), dpi=100)


def save(fig, args):
    fig.tight_layout()
    try:
        fig.savefig(args.out, dpi=100)
    except OSError as e:
        fail("%s: cannot write (%s)" % (args.out, e.strerror))
    print("vae plot: -> %s (%d x %d)" % (args.out, args.width, args.height), file=sys.stderr)

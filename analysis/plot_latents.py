"""vae plot latents: the test set's posterior means (`vae encode`'s CSV) in two latent
dimensions, coloured by class."""
import csv

import plotlib


def main():
    p = plotlib.parser(__doc__)
    p.add_argument("--encodings", required=True, help="CSV of vae encode: index, label, z0, z1, ...")
    p.add_argument("--dims", default="0,1", help="the two latent dimensions shown")
    args = p.parse_args()
    try:
        dims = [int(d) for d in args.dims.split(",")]
    except ValueError:
        dims = []
    if len(dims) != 2:
        plotlib.fail("--dims '%s': expected two dimensions, e.g. 0,1" % args.dims)
    try:
        with open(args.encodings, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        plotlib.fail("%s: %s" % (args.encodings, e.strerror))
    if not rows:
        plotlib.fail("%s: no encodings" % args.encodings)
    for d in dims:
        if "z%d" % d not in rows[0]:
            plotlib.fail("--dims: the latent space has no dimension %d" % d)
    xs = [float(r["z%d" % dims[0]]) for r in rows]
    ys = [float(r["z%d" % dims[1]]) for r in rows]
    labels = [r["label"] for r in rows]
    fig = plotlib.figure(args)
    ax = fig.add_subplot(1, 1, 1)
    if all(labels):
        classes = sorted(set(labels), key=int)
        cmap = plotlib.plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for k, c in enumerate(classes):
            sel = [i for i, l in enumerate(labels) if l == c]
            ax.scatter([xs[i] for i in sel], [ys[i] for i in sel], s=3, color=cmap(k % cmap.N), label=c, alpha=0.7)
        ax.legend(markerscale=4, fontsize="small", title="class", loc="best")
    else:
        ax.scatter(xs, ys, s=3, alpha=0.7)
    ax.set_xlabel("z%d" % dims[0])
    ax.set_ylabel("z%d" % dims[1])
    ax.grid(True, alpha=0.3)
    ax.set_title(args.title or "posterior means of %d test images" % len(rows))
    plotlib.save(fig, args)


if __name__ == "__main__":
    main()

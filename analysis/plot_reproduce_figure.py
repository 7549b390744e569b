"""vae reproduce, figure specs: one PNG per panel of the curves `vae reproduce --report`
read from the database (--data: its JSON, reproduce::figure_json): the train (dashed) and
test (solid) bound of each row against the training samples seen, log x axis as in
Kingma & Welling 2013, Figure 2."""
import argparse
import json
import textwrap

import plotlib


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", required=True, help="the curves, as vae reproduce writes them")
    p.add_argument("--width", type=int, default=640, help="width in pixels")
    p.add_argument("--height", type=int, default=480, help="height in pixels")
    args = p.parse_args()
    with open(args.data) as f:
        data = json.load(f)
    for panel in data["panels"]:
        if not panel["png"]:  # none of its runs is done
            continue
        fig = plotlib.figure(args)
        ax = fig.add_subplot(1, 1, 1)
        drawn = 0
        for i, c in enumerate(panel["curves"]):
            if not c["samples"]:
                continue
            colour = "C%d" % (i % 10)
            ax.plot(c["samples"], c["train"], color=colour, linestyle="--", linewidth=1)
            ax.plot(c["samples"], c["test"], color=colour, linestyle="-", linewidth=1.5,
                    label="%s" % c["label"])
            drawn += 1
        if drawn == 0:
            plotlib.fail("panel '%s': no curve has per-epoch values" % panel["id"])
        ax.set_xscale("log")
        ax.set_xlabel("training samples evaluated")
        ax.set_ylabel("lower bound, nats per example (test solid, train dashed)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
        # The budget's description is long: wrapped to the axes' width rather than cut off.
        title = textwrap.fill("%s: %s" % (panel["id"], data["citation"]), 90) + "\n" + textwrap.fill(data["budget"], 90)
        ax.set_title(title, fontsize="small")
        args.out = panel["png"]
        plotlib.save(fig, args)
        plotlib.plt.close(fig)


if __name__ == "__main__":
    main()

"""Quality against training time: `evaluate` on every `weights-step<N>.mfc` of a run trained
with `--keep-every`, written as a CSV and a plot.

The minutes axis is steps times the wall-clock seconds a step of that run takes on a quiet
machine, held-out evaluations and checkpoints included (`--seconds-per-step`, measured with
`date` over a quiet stretch of the run), so that builds sharing the machine during the run
do not bend the curve. Needs only the standard library and, for the plot, matplotlib.

    bench/.venv/bin/python bench/time_to_quality.py --run runs/ttq --seconds-per-step 0.33
"""

import argparse
import csv
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path)
    parser.add_argument("--seconds-per-step", type=float)
    parser.add_argument(
        "--replot", action="store_true", help="only redraw the plot from --csv"
    )
    parser.add_argument("--title", default="default configuration")
    parser.add_argument("--mnist-flow", default="target/release/mnist-flow")
    parser.add_argument(
        "--guidance", help="guidance scale to score at (default: evaluate's own default)"
    )
    parser.add_argument(
        "--only", help="comma-separated steps to evaluate (default: every kept file)"
    )
    parser.add_argument("--csv", type=Path, default=ROOT / "docs/time-to-quality.csv")
    parser.add_argument(
        "--plot", type=Path, default=ROOT / "docs/pictures/time-to-quality.png"
    )
    args = parser.parse_args()
    if args.replot:
        with open(args.csv, newline="") as f:
            rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
        plot(rows, args)
        return
    if args.run is None or args.seconds_per_step is None:
        parser.error("--run and --seconds-per-step are needed unless --replot")

    kept = sorted(
        (int(m.group(1)), p)
        for p in args.run.glob("weights-step*.mfc")
        if (m := re.fullmatch(r"weights-step(\d+)\.mfc", p.name))
    )
    if args.only:
        wanted = {int(step) for step in args.only.split(",")}
        kept = [(step, path) for step, path in kept if step in wanted]
    if not kept:
        sys.exit(f"no weights-step<N>.mfc in {args.run}: train with --keep-every")
    rows = []
    for step, path in kept:
        command = shlex.split(args.mnist_flow) + ["evaluate", "--weights", str(path), "--json"]
        if args.guidance:
            command += ["--guidance", args.guidance]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
        report = json.loads(done.stdout)
        s, f = report["samples"], report["floor"]
        row = {
            "step": step,
            "minutes": round(step * args.seconds_per_step / 60, 2),
            "accuracy": round(s["accuracy"], 4),
            "fid": round(s["fid"], 3),
            "fid_floor": round(f["fid"], 3),
            "fid_over_floor": round(s["fid"] / f["fid"], 2),
            "precision": round(s["precision"], 4),
            "recall": round(s["recall"], 4),
        }
        print(row, flush=True)
        rows.append(row)

    with open(args.csv, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args)


def plot(rows, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["minutes"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(minutes, [100 * r["accuracy"] for r in rows], "o-")
    left.axhline(98, color="grey", ls="--", label="target 98 %")
    left.set(xlabel="training minutes", ylabel="class accuracy (%)")
    right.plot(minutes, [r["fid_over_floor"] for r in rows], "o-")
    right.axhline(5, color="grey", ls="--", label="target 5x floor")
    right.set(xlabel="training minutes", ylabel="FID / floor", yscale="log")
    for ax in (left, right):
        ax.axvline(10, color="red", ls=":", label="10 minutes")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"{args.title}, evaluate defaults, N = 1000")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)
    print(f"wrote {args.csv} and {args.plot}")


if __name__ == "__main__":
    main()

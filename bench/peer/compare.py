"""PyTorch against mnist-flow: training and guided-sampling step times, side by side.

Runs ``mnist-flow bench --json`` and ``bench.py`` for the same presets, batches and
thread count, alternating the sides (and which goes first in each round) so that both
see the same machine, then prints one table per preset. Over the rounds, the min is the
least of the rounds' mins and the median the median of their medians. The ratio is
PyTorch time / mnist-flow time: above 1, mnist-flow is faster.

    bench/.venv/bin/python bench/peer/compare.py --repeats 5
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MEASURES = [("train step", "train_step_s"), ("guided step", "guided_step_s")]


def run_side(side, preset, args):
    """The JSON line one side prints for one preset."""
    common = ["--repeats", str(args.repeats), "--train-batch", str(args.train_batch)]
    common += ["--sample-batch", str(args.sample_batch)]
    env = dict(os.environ)
    if side == "mnist-flow":
        command = shlex.split(args.mnist_flow) + ["bench", "--json"]
        command += ["--presets", preset]
        env["RAYON_NUM_THREADS"] = str(args.threads)
    else:
        command = [sys.executable, str(HERE / "bench.py"), "--presets", preset]
        command += ["--threads", str(args.threads)]
    print(f"  {side}: {shlex.join(command + common)}", file=sys.stderr, flush=True)
    done = subprocess.run(
        command + common, cwd=ROOT, env=env, capture_output=True, text=True
    )
    lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"{side} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def summarise(results):
    """Min of mins and median of medians, per measure."""
    return {
        key: {
            "min": min(r[key]["min"] for r in results),
            "median": statistics.median(r[key]["median"] for r in results),
        }
        for _, key in MEASURES
    }


def seconds(summary):
    return f"{summary['min']:.4f} / {summary['median']:.4f} s"


def table(preset, results, args):
    torch_runs, flow_runs = results["PyTorch"], results["mnist-flow"]
    torch_s, flow_s = summarise(torch_runs), summarise(flow_runs)
    params = {r["params"] for r in torch_runs + flow_runs}
    agree = len(params) == 1
    count = "/".join(f"{p:,}" for p in sorted(params))
    print(
        f"\n{preset}: {count} parameters{'' if agree else ' (MISMATCH)'}, "
        f"train batch {args.train_batch}, guided batch {args.sample_batch} "
        f"({2 * args.sample_batch} rows a pass), {args.threads} threads, "
        f"{args.repeats} repeats x {args.rounds} rounds"
    )
    header = ["PyTorch min / median", "mnist-flow min / median", "ratio min / median"]
    print(f"{'':<12}{header[0]:>24}{header[1]:>26}{header[2]:>22}")
    for label, key in MEASURES:
        t, f = torch_s[key], flow_s[key]
        ratio = f"{t['min'] / f['min']:.2f} / {t['median'] / f['median']:.2f}"
        print(f"{label:<12}{seconds(t):>24}{seconds(f):>26}{ratio:>22}")
    # The same network on both sides, so mnist-flow's count of its FLOPs serves both.
    flops = flow_runs[0].get("forward_flops_per_image")
    if flops:
        work = {
            "train_step_s": 3 * flops * args.train_batch,
            "guided_step_s": 2 * flops * args.sample_batch,
        }
        rates = [
            f"{label} {work[key] / torch_s[key]['median'] / 1e9:.1f} / "
            f"{work[key] / flow_s[key]['median'] / 1e9:.1f}"
            for label, key in MEASURES
        ]
        print(f"GFLOP/s at the median, PyTorch / mnist-flow: {'; '.join(rates)}")
    return agree


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="small,reference", help="comma-separated")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side")
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--sample-batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--mnist-flow",
        default="cargo run --release --quiet --",
        help="how to run mnist-flow (default: %(default)s)",
    )
    parser.add_argument("--raw", type=Path, help="also write every JSON line here")
    args = parser.parse_args()
    if min(args.repeats, args.rounds, args.train_batch, args.sample_batch) < 1:
        parser.error("repeats, rounds and batches must be at least 1")

    raw, agree = [], True
    for preset in filter(None, args.presets.split(",")):
        print(f"{preset}:", file=sys.stderr, flush=True)
        results = {"PyTorch": [], "mnist-flow": []}
        for round_ in range(args.rounds):
            sides = ["mnist-flow", "PyTorch"][:: 1 if round_ % 2 == 0 else -1]
            for side in sides:
                line = run_side(side, preset, args)
                results[side].append(line)
                raw.append({"side": side, "round": round_, **line})
        agree &= table(preset, results, args)

    if args.raw:
        args.raw.write_text("".join(json.dumps(r) + "\n" for r in raw))
    if not agree:
        sys.exit("parameter counts differ: peer.PRESETS no longer matches mnist-flow")


if __name__ == "__main__":
    main()

"""Checks that the PyTorch network computes mnist-flow's velocity on exported weights.

    mnist-flow export --out model.safetensors --probe probe.safetensors
    bench/.venv/bin/python bench/peer/check_export.py model.safetensors \
        probe.safetensors

The probe holds a fixed input (``x``, ``t``, labels ``y`` as floats, 10 = no label) and
mnist-flow's velocity ``v`` there, computed without autodiff, so BatchNorm used its
running statistics: the eval-mode difference is the check (exit 1 above the tolerance).
The train-mode difference (batch statistics) is printed beside it for information: equal
for GroupNorm networks, far off for BatchNorm ones.
"""

import argparse
import copy
import sys

import torch
from safetensors.torch import load_file

import peer


def max_difference(model, probe):
    with torch.no_grad():
        v = model(probe["x"], probe["t"], probe["y"].round().long())
    expected = probe["v"]
    assert v.shape == expected.shape, f"velocity {v.shape}, probe {expected.shape}"
    return (v - expected).abs().max().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a file written by `mnist-flow export`")
    parser.add_argument("probe", help="the file written by its `--probe`")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    torch.set_num_threads(2)
    model, config = peer.load(args.weights)
    probe = load_file(args.probe)
    missing = {"x", "t", "y", "v"} - probe.keys()
    if missing:
        sys.exit(f"{args.probe} lacks tensors {sorted(missing)}")

    eval_diff = max_difference(model.eval(), probe)
    # A copy, so that the running statistics of the checked model stay as loaded.
    train_diff = max_difference(copy.deepcopy(model).train(), probe)
    scale = probe["v"].abs().max().item()
    print(f"{args.weights}: {peer.count_params(model)} parameters, config {config}")
    print(f"max |v_torch - v_mnist_flow| (eval, running statistics): {eval_diff:.3e}")
    print(f"max |v_torch - v_mnist_flow| (train, batch statistics):  {train_diff:.3e}")
    print(f"max |v_mnist_flow|: {scale:.3e}")
    if not eval_diff <= args.tolerance:
        sys.exit(f"FAIL: {eval_diff:.3e} exceeds the tolerance {args.tolerance:.0e}")
    print(f"OK: within {args.tolerance:.0e}")


if __name__ == "__main__":
    main()

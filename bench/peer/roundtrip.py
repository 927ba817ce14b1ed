"""Checks the PyTorch network against mnist-flow on configurations no preset covers.

For each configuration below, a PyTorch network with random weights (and random
normalisation statistics) is saved with :func:`peer.save`; ``mnist-flow export`` reads
it back and writes it out again with a velocity probe. The check passes when the weights
come back bit for bit and the two velocities agree within the tolerance, so it covers
both directions of the interchange and every option of the configuration schema.

    bench/.venv/bin/python bench/peer/roundtrip.py [--binary target/release/mnist-flow]
"""

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

import peer
from check_export import max_difference

ROOT = Path(__file__).resolve().parents[2]

# Together these take every value of every option; small so that the check is quick.
CONFIGS = {
    "batch-shared-patch2-resize": {
        "channels": [8, 16, 32],
        "blocks": 2,
        "embed_dim": 16,
        "norm": "batch",
        "skips": "before_down",
        "conditioning": "shared",
        "upsample": "bilinear",
        "input_size": 32,
        "image_size": 28,
        "patch": 2,
    },
    "group-per_block-nearest": {
        "channels": [8, 16],
        "blocks": 1,
        "embed_dim": 8,
        "norm": {"group": 4},
        "skips": "after_down",
        "conditioning": "per_block",
        "upsample": "nearest",
        "input_size": 28,
        "image_size": 28,
    },
    "group-shrink-patch3": {
        "channels": [12, 24],
        "blocks": 1,
        "embed_dim": 12,
        "norm": {"group": 3},
        "skips": "after_down",
        "conditioning": "shared",
        "upsample": "bilinear",
        "input_size": 24,
        "image_size": 28,
        "patch": 3,
    },
}


def randomised(config, seed):
    """A network whose every tensor is random, norm statistics included."""
    torch.manual_seed(seed)
    model = peer.UNet(config)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith(("running_mean", ".bias")):
                tensor.normal_(0.0, 0.3)
            elif ".norm" in name and name.endswith(".weight"):
                tensor.uniform_(0.5, 1.5)
    return model.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--binary",
        default="cargo run --release --quiet --",
        help="how to run mnist-flow (default: %(default)s)",
    )
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    torch.set_num_threads(2)

    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for seed, (name, config) in enumerate(CONFIGS.items()):
            model = randomised(config, seed)
            sent, back, probe = (Path(tmp) / f"{name}.{k}.safetensors" for k in "sbp")
            peer.save(model, sent)
            command = shlex.split(args.binary) + ["export", "--weights", str(sent)]
            command += ["--out", str(back), "--probe", str(probe)]
            subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

            returned = load_file(back)
            same = returned.keys() == model.state_dict().keys() and all(
                torch.equal(returned[k], v) for k, v in model.state_dict().items()
            )
            diff = max_difference(model, load_file(probe))
            ok = same and diff <= args.tolerance
            failed |= not ok
            print(
                f"{name:<28} {peer.count_params(model):>7} params  weights back "
                f"{'identical' if same else 'CHANGED'}  max |dv| {diff:.3e}  "
                f"{'OK' if ok else 'FAIL'}"
            )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

"""Step times of the PyTorch network, measured as ``mnist-flow bench`` measures its own.

- Training step, as ``Trainer::train_step``: a batch of data ``x1`` by random indices,
  noise ``x0 ~ N(0, I)``, ``t ~ U[0, 1)``, labels dropped to 10 with probability 0.1;
  ``x_t = x0 + t (x1 - x0)``; loss ``mean((u(x_t, t, y) - (x1 - x0))^2)`` over all
  elements; backward; AdamW (lr 2e-3 after a 50-step linear warm-up, weight decay 1e-4,
  burn's betas 0.9/0.999 and epsilon 1e-5); the EMA ``e <- d e + (1 - d) theta`` with
  ``d = min(0.999, (1 + step) / (10 + step))`` over parameters and norm statistics.
- Guided step, as ``sample`` with one Euler step: noise, one network pass over 2B rows
  (B conditional, B with label 10), ``u = u_uncond + w (u_cond - u_uncond)`` at w = 3,
  ``x <- x + dt u``, and the conversion to bytes; the EMA network in eval mode, under
  ``torch.inference_mode``.

Each is run once to warm up, then ``--repeats`` times; one JSON line per preset, with
the keys of ``mnist-flow bench --json``. The data are synthetic: timing does not depend
on them.

    bench/.venv/bin/python bench/peer/bench.py --presets small,reference --repeats 5
"""

import argparse
import copy
import json
import math
import time

import torch

import peer

WARMUP_STEPS = 50
GUIDANCE = 3.0


class Trainer:
    """The work of one mnist-flow training step, on a fixed synthetic data set."""

    def __init__(self, model, batch, learning_rate=2e-3, weight_decay=1e-4):
        side = model.config["image_size"]
        count = max(batch, 16)
        self.images = torch.rand(count, 1, side, side) * 2 - 1
        self.labels = torch.arange(count) % 10
        self.batch, self.peak, self.step = batch, learning_rate, 0
        self.model = model.train()
        self.ema = copy.deepcopy(model).eval().requires_grad_(False)
        self.optim = torch.optim.AdamW(
            model.parameters(),
            lr=learning_rate,
            betas=(0.9, 0.999),
            eps=1e-5,
            weight_decay=weight_decay,
        )
        # Floats only: the EMA blends parameters and running statistics alike.
        floats = [k for k, v in self.ema.state_dict().items() if v.is_floating_point()]
        self.pairs = (
            [self.ema.state_dict()[k] for k in floats],
            [self.model.state_dict()[k] for k in floats],
        )

    def train_step(self):
        index = torch.randint(len(self.images), (self.batch,))
        x1, y = self.images[index], self.labels[index]
        x0, t = torch.randn_like(x1), torch.rand(self.batch)
        y = torch.where(torch.rand(self.batch) < 0.1, peer.NO_LABEL, y)

        velocity = x1 - x0
        x_t = x0 + velocity * t[:, None, None, None]
        loss = (self.model(x_t, t, y) - velocity).pow(2).mean()
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"loss {value} at step {self.step + 1}")

        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        for group in self.optim.param_groups:
            group["lr"] = self.peak * min(1.0, (self.step + 1) / WARMUP_STEPS)
        self.optim.step()

        decay = min(0.999, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            torch._foreach_lerp_(*self.pairs, 1.0 - decay)
        self.step += 1
        return value


@torch.inference_mode()
def guided_step(model, labels, steps=1):
    """Guided Euler sampling from noise, as ``sample`` does with ``steps = 1``."""
    n, side = len(labels), model.config["image_size"]
    x = torch.randn(n, 1, side, side)
    ys = torch.cat([labels, torch.full_like(labels, peer.NO_LABEL)])
    dt = 1.0 / steps
    for i in range(steps):
        t = torch.full((2 * n,), i * dt)
        out = model(torch.cat([x, x]), t, ys)
        conditional, unconditional = out[:n], out[n:]
        x = x + dt * (unconditional + GUIDANCE * (conditional - unconditional))
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def timed(step, repeats):
    """``(min, median)`` seconds of ``repeats`` calls after one warm-up call; the median
    is the upper one for an even count, as mnist-flow takes it."""
    step()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    return {"min": seconds[0], "median": seconds[len(seconds) // 2]}


def bench(name, config, args):
    torch.manual_seed(0)
    model = peer.UNet(config)
    trainer = Trainer(model, args.train_batch)
    train = timed(trainer.train_step, args.repeats)

    labels = torch.arange(args.sample_batch) % 10
    guided = timed(lambda: guided_step(trainer.ema, labels), args.repeats)
    return {
        "preset": name,
        "params": peer.count_params(model),
        "threads": torch.get_num_threads(),
        "train_batch": args.train_batch,
        "sample_batch": args.sample_batch,
        "train_step_s": train,
        "guided_step_s": guided,
    }


def configurations(args):
    """``(name, config)`` pairs: the named presets, then any exported files."""
    for name in filter(None, args.presets.split(",")):
        if name not in peer.PRESETS:
            raise SystemExit(f"unknown preset {name!r}; known: {sorted(peer.PRESETS)}")
        yield name, peer.PRESETS[name]
    for path in args.config:
        yield path, peer.read_config(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="small,reference", help="comma-separated")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="an exported .safetensors whose metadata names the network (repeatable)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--sample-batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if min(args.repeats, args.train_batch, args.sample_batch, args.threads) < 1:
        parser.error("repeats, batches and threads must be at least 1")

    torch.set_num_threads(args.threads)
    for name, config in configurations(args):
        print(json.dumps(bench(name, config, args)), flush=True)


if __name__ == "__main__":
    main()

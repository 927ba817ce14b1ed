"""mnist-flow's U-Net velocity field u(x_t, t, y) in PyTorch, for the peer comparison.

The module tree mirrors ``src/model/`` attribute by attribute, so ``state_dict()`` has
exactly the keys of the safetensors that ``mnist-flow export`` writes, and :func:`load`
reads such a file strictly. Any configuration mnist-flow accepts is built here the same
way (the JSON schema of ``UNetConfig``):

- time: learned Fourier features ``sqrt(2) [sin(2 pi t w), cos(2 pi t w)]``, ``w`` of
  ``embed_dim / 2`` entries; label: a table of 11 rows, row 10 meaning "no label";
- ``conditioning = "shared"``: ``c = silu(outer(silu(inner([time, label]))))`` once per
  pass, each block adds ``Linear(c)`` per channel; ``"per_block"``: each block adds
  ``Mlp_time(time) + Mlp_label(label)``, ``Mlp = outer(silu(inner(.)))``;
- a block is ``x + silu(norm2(conv2(silu(norm1(conv1(x))) + offsets)))``;
- ``skips = "after_down"`` adds the kept encoder output before up-sampling,
  ``"before_down"`` after the up-sampling convolution;
- ``input_size != image_size`` resizes bilinearly on the way in and out; ``patch > 1``
  folds ``patch x patch`` pixels into channels before the stem and back after the head.

Weights are initialised by PyTorch's defaults, not burn's: only loaded weights make the
two implementations compute the same function.
"""

import json
import math

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_KEY = "mnist_flow.config"
NO_LABEL = 10
LABEL_TOKENS = 11

# burn-nn 0.22.1 defaults for GroupNorm and BatchNorm.
NORM_EPSILON = 1e-5
BATCH_NORM_MOMENTUM = 0.1

# The presets of `UNetConfig::preset`, as mnist-flow serialises them. Only the JSON of
# an exported file is authoritative; `compare.py` checks the parameter counts against
# mnist-flow's own so that drift between the two lists is caught.
_FULL = {
    "blocks": 1,
    "embed_dim": 48,
    "norm": {"group": 8},
    "skips": "before_down",
    "conditioning": "shared",
    "upsample": "nearest",
    "input_size": 28,
    "image_size": 28,
    "patch": 1,
}
PRESETS = {
    "small": {**_FULL, "channels": [32, 64], "patch": 2},
    "full16": {**_FULL, "channels": [16, 32, 64]},
    "full24": {**_FULL, "channels": [24, 48, 96]},
    "full32": {**_FULL, "channels": [32, 64, 128]},
    "reference": {
        "channels": [32, 64, 128, 256],
        "blocks": 3,
        "embed_dim": 48,
        "norm": "batch",
        "skips": "after_down",
        "conditioning": "per_block",
        "upsample": "bilinear",
        "input_size": 32,
        "image_size": 28,
        "patch": 1,
    },
}


def check_config(config):
    """Returns ``config`` with defaults filled in, or raises ``ValueError`` saying what
    is wrong, with the checks of ``UNetConfig::validate``."""
    required = ["channels", "blocks", "embed_dim", "norm", "skips", "conditioning"]
    required += ["upsample", "input_size", "image_size"]
    missing = [k for k in required if k not in config]
    if missing:
        raise ValueError(f"configuration lacks {missing}: {config}")
    config = {"patch": 1, **config}
    channels, norm = config["channels"], config["norm"]
    if len(channels) < 2:
        raise ValueError(f"need at least 2 levels of channels, found {channels}")
    if min(channels) <= 0 or config["blocks"] <= 0 or config["embed_dim"] <= 0:
        raise ValueError("channels, blocks and embed_dim must all be positive")
    if config["embed_dim"] % 2:
        raise ValueError(f"embed_dim must be even, found {config['embed_dim']}")
    if norm != "batch":
        groups = norm.get("group", 0) if isinstance(norm, dict) else 0
        if groups <= 0 or any(c % groups for c in channels):
            raise ValueError(f"norm {norm} does not divide channels {channels}")
    for key, allowed in [
        ("skips", ("before_down", "after_down")),
        ("conditioning", ("shared", "per_block")),
        ("upsample", ("nearest", "bilinear")),
    ]:
        if config[key] not in allowed:
            raise ValueError(f"{key} must be one of {allowed}, found {config[key]!r}")
    patch, side = config["patch"], config["input_size"]
    if patch <= 0 or side % patch:
        raise ValueError(f"patch {patch} does not divide input size {side}")
    side //= patch
    for _ in channels[1:]:
        if side % 2:
            side = config["input_size"]
            raise ValueError(f"input size {side} cannot be halved evenly")
        side //= 2
    return config


class FourierTime(nn.Module):
    """``sqrt(2) [sin(2 pi t w), cos(2 pi t w)]``: ``[batch]`` -> ``[batch, dim]``."""

    def __init__(self, dim):
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(dim // 2))

    def forward(self, t):
        angles = t[:, None] * self.frequencies[None, :] * (2 * math.pi)
        return torch.cat([angles.sin(), angles.cos()], dim=1) * math.sqrt(2)


class LabelEmbedding(nn.Module):
    """Ten classes and the "no label" token 10: ``[batch]`` -> ``[batch, dim]``."""

    def __init__(self, dim):
        super().__init__()
        self.table = nn.Embedding(LABEL_TOKENS, dim)

    def forward(self, y):
        return self.table(y)


class Mlp(nn.Module):
    """Linear, SiLU, Linear."""

    def __init__(self, inputs, hidden, outputs):
        super().__init__()
        self.inner = nn.Linear(inputs, hidden)
        self.outer = nn.Linear(hidden, outputs)

    def forward(self, x):
        return self.outer(F.silu(self.inner(x)))


class BatchNorm(nn.BatchNorm2d):
    """burn's BatchNorm: epsilon 1e-5, momentum 0.1, and no ``num_batches_tracked``.

    burn keeps no such counter and PyTorch only reads it when ``momentum`` is None, so
    it is dropped: ``state_dict()`` then has burn's keys, a file saved from here loads
    back into mnist-flow (which refuses tensors it does not know), and loading is
    strict. One difference remains in training mode: burn moves ``running_var`` towards
    the biased batch variance, PyTorch towards the unbiased one (a factor n / (n - 1),
    n = batch x height x width >= 2048 at batch 128). Outputs are the same.
    """

    def __init__(self, channels):
        super().__init__(channels, eps=NORM_EPSILON, momentum=BATCH_NORM_MOMENTUM)
        self.num_batches_tracked = None

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        # Version 2 tells PyTorch the file is new enough to have no counter to invent.
        metadata = {**local_metadata, "version": 2}
        super()._load_from_state_dict(state_dict, prefix, metadata, *args)


class NormLayer(nn.Module):
    """Exactly one of ``batch`` and ``group`` is set, as in burn's ``NormLayer``."""

    def __init__(self, norm, channels):
        super().__init__()
        is_batch = norm == "batch"
        self.batch = BatchNorm(channels) if is_batch else None
        groups = None if is_batch else norm["group"]
        self.group = None if is_batch else nn.GroupNorm(groups, channels, NORM_EPSILON)

    def forward(self, x):
        return self.batch(x) if self.batch is not None else self.group(x)


class OffsetLayer(nn.Module):
    """Per-channel offsets ``[batch, channels]`` from the context of the pass."""

    def __init__(self, conditioning, embed, channels):
        super().__init__()
        per_block = conditioning == "per_block"
        self.time = Mlp(embed, embed, channels) if per_block else None
        self.label = Mlp(embed, embed, channels) if per_block else None
        self.shared = None if per_block else nn.Linear(embed, channels)

    def forward(self, context):
        if self.shared is not None:
            return self.shared(context)
        time, label = context
        return self.time(time) + self.label(label)


class ResBlock(nn.Module):
    """``x + silu(norm2(conv2(silu(norm1(conv1(x))) + offsets)))``."""

    def __init__(self, channels, norm, conditioning, embed):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.norm1 = NormLayer(norm, channels)
        self.offsets = OffsetLayer(conditioning, embed, channels)
        self.conv2 = conv3x3(channels, channels)
        self.norm2 = NormLayer(norm, channels)

    def forward(self, x, context):
        h = F.silu(self.norm1(self.conv1(x)))
        h = h + self.offsets(context)[:, :, None, None]
        h = F.silu(self.norm2(self.conv2(h)))
        return h + x


def conv3x3(inputs, outputs, stride=1):
    return nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1)


class DownLevel(nn.Module):
    def __init__(self, blocks, down):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.down = down


class UpLevel(nn.Module):
    def __init__(self, conv, blocks):
        super().__init__()
        self.conv = conv
        self.blocks = nn.ModuleList(blocks)


class UNet(nn.Module):
    """The velocity field ``u(x_t, t, y)`` for one mnist-flow configuration.

    Shapes: ``x`` ``[batch, 1, image_size, image_size]``, ``t`` ``[batch]`` in [0, 1],
    ``y`` ``[batch]`` of tokens 0..10 (10 = no label); the output is like ``x``.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config = check_config(config)
        e, ch = config["embed_dim"], config["channels"]

        def blocks(c):
            args = (c, config["norm"], config["conditioning"], e)
            return [ResBlock(*args) for _ in range(config["blocks"])]

        pairs = list(zip(ch[:-1], ch[1:]))
        self.time = FourierTime(e)
        self.label = LabelEmbedding(e)
        shared = config["conditioning"] == "shared"
        self.shared = Mlp(2 * e, e, e) if shared else None
        self.stem = conv3x3(config["patch"] ** 2, ch[0])
        downs = [DownLevel(blocks(a), conv3x3(a, b, 2)) for a, b in pairs]
        self.down = nn.ModuleList(downs)
        self.bottleneck = nn.ModuleList(blocks(ch[-1]))
        ups = [UpLevel(conv3x3(b, a), blocks(a)) for a, b in reversed(pairs)]
        self.up = nn.ModuleList(ups)
        self.head = conv3x3(ch[0], config["patch"] ** 2)

    def forward(self, x, t, y):
        assert x.dim() == 4 and x.shape[0] == t.shape[0] == y.shape[0], (
            f"x {tuple(x.shape)}, t {tuple(t.shape)} and y {tuple(y.shape)} "
            "must share their batch"
        )
        context = self.context(t, y)
        inner, outer = self.config["input_size"], self.config["image_size"]
        before_down = self.config["skips"] == "before_down"
        x = resize(x, inner)
        if self.config["patch"] > 1:
            x = F.pixel_unshuffle(x, self.config["patch"])

        x = F.silu(self.stem(x))
        kept = []
        for level in self.down:
            for block in level.blocks:
                x = block(x, context)
            if before_down:
                kept.append(x)
            x = level.down(x)
            if not before_down:
                kept.append(x)

        for block in self.bottleneck:
            x = block(x, context)

        for level in self.up:
            skip = kept.pop()
            if before_down:
                x = level.conv(self.upsample(x)) + skip
            else:
                x = level.conv(self.upsample(x + skip))
            for block in level.blocks:
                x = block(x, context)

        x = self.head(x)
        if self.config["patch"] > 1:
            x = F.pixel_shuffle(x, self.config["patch"])
        return resize(x, outer)

    def context(self, t, y):
        """Shared: one SiLU'd vector per row; per block: the time and label features."""
        time, label = self.time(t), self.label(y)
        if self.shared is None:
            return time, label
        return F.silu(self.shared(torch.cat([time, label], dim=1)))

    def upsample(self, x):
        # burn's `Nearest` takes floor(out * in / out_size), PyTorch's "nearest"; at an
        # exact factor of 2 it equals "nearest-exact" too. Bilinear: half-pixel centres,
        # no antialiasing.
        size = (2 * x.shape[-2], 2 * x.shape[-1])
        if self.config["upsample"] == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def resize(x, side):
    """Bilinear with half-pixel centres and no antialiasing, as burn resizes."""
    if x.shape[-1] == side and x.shape[-2] == side:
        return x
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)


def count_params(model):
    """Trainable parameters: BatchNorm running statistics are buffers, not counted."""
    return sum(p.numel() for p in model.parameters())


def read_config(path):
    """The configuration in a safetensors file's metadata, checked."""
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
    if CONFIG_KEY not in metadata:
        raise ValueError(f"{path} has no `{CONFIG_KEY}` metadata naming its network")
    return check_config(json.loads(metadata[CONFIG_KEY]))


def load(path):
    """``(model, config)`` from a file of ``mnist-flow export``, in eval mode.

    Loading is strict: every tensor of the network must be in the file with its shape,
    and nothing else may be.
    """
    config = read_config(path)
    model = UNet(config)
    model.load_state_dict(load_file(path), strict=True)
    return model.eval(), config


def save(model, path):
    """Writes ``model`` in the export's layout, so that mnist-flow reads it back."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, path, metadata={CONFIG_KEY: json.dumps(model.config)})

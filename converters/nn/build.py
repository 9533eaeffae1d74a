"""Build our YOLOv12 network from a model yaml dict (generic parse of depth/width/max_channels,
`from` indices and repeats, with the C3k2/A2C2f scale rules of spec §1.2)."""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from converters.nn.attention import A2C2f
from converters.nn.head import Detect
from converters.nn.layers import C3k2, Concat, Conv
from edge_yolo.errors import UnsupportedModelError


@dataclass(frozen=True)
class Variant:
    """The code-level differences between weight layouts that the yaml does not say.

    The per-layer dicts (keyed by layer index) override the rule-based defaults; the loader
    fills them from the checkpoint's state_dict shapes.
    """

    attn: str = "qkv"                  # "qkv" (A/B/E) or "qk_v" (turbo, C)
    pe_kernel: int = 7
    pe_bias: bool = False
    mlp_ratio_lx: float = 1.2          # A2C2f MLP ratio at scales l/x
    residual_all: bool = False         # gamma at every scale (layout E)
    fused: bool = False
    nc: int | None = None              # overrides the yaml nc
    reg_max: int = 16
    mlp_hidden: dict[int, int] = field(default_factory=dict)
    gamma: dict[int, bool] = field(default_factory=dict)
    conv_groups: dict[int, int] = field(default_factory=dict)


LAYOUTS: dict[str, Variant] = {
    "A": Variant(),
    "B": Variant(pe_bias=True),
    "C": Variant(attn="qk_v", pe_kernel=5, mlp_ratio_lx=1.5),
    "E": Variant(residual_all=True, mlp_ratio_lx=1.0),
}

SCALES = {
    "n": [0.50, 0.25, 1024],
    "s": [0.50, 0.50, 1024],
    "m": [0.50, 1.00, 512],
    "l": [1.00, 1.00, 512],
    "x": [1.00, 1.50, 512],
}


def stock_yaml(scale: str = "n", nc: int = 80, turbo: bool = False) -> dict:
    """The stock YOLO12 model yaml (spec §1.3) as a dict; `turbo` adds the grouped convs."""
    l1 = [128, 3, 2, 1, 2] if turbo else [128, 3, 2]
    l3 = [256, 3, 2, 1, 4] if turbo else [256, 3, 2]
    return {
        "nc": nc,
        "scales": copy.deepcopy(SCALES),
        "scale": scale,
        "backbone": [
            [-1, 1, "Conv", [64, 3, 2]],
            [-1, 1, "Conv", l1],
            [-1, 2, "C3k2", [256, False, 0.25]],
            [-1, 1, "Conv", l3],
            [-1, 2, "C3k2", [512, False, 0.25]],
            [-1, 1, "Conv", [512, 3, 2]],
            [-1, 4, "A2C2f", [512, True, 4]],
            [-1, 1, "Conv", [1024, 3, 2]],
            [-1, 4, "A2C2f", [1024, True, 1]],
        ],
        "head": [
            [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
            [[-1, 6], 1, "Concat", [1]],
            [-1, 2, "A2C2f", [512, False, -1]],
            [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
            [[-1, 4], 1, "Concat", [1]],
            [-1, 2, "A2C2f", [256, False, -1]],
            [-1, 1, "Conv", [256, 3, 2]],
            [[-1, 11], 1, "Concat", [1]],
            [-1, 2, "A2C2f", [512, False, -1]],
            [-1, 1, "Conv", [512, 3, 2]],
            [[-1, 8], 1, "Concat", [1]],
            [-1, 2, "C3k2", [1024, True]],
            [[14, 17, 20], 1, "Detect", ["nc"]],
        ],
    }


KNOWN_MODULES = {"Conv", "C3k2", "A2C2f", "nn.Upsample", "Upsample", "Concat", "Detect"}


def yaml_modules(yaml: dict) -> list[str]:
    """Module names of every layer in the yaml, in order."""
    return [str(layer[2]) for layer in list(yaml.get("backbone", [])) + list(yaml.get("head", []))]


def resolve_scale(yaml: dict) -> tuple[str, float, float, float]:
    """(scale letter, depth, width, max_channels) as Ultralytics' parse_model resolves them."""
    scales = yaml.get("scales")
    if scales:
        scale = yaml.get("scale")
        if not scale:
            m = re.search(r"yolov?\d+([nslmx])", str(yaml.get("yaml_file", "")))
            scale = m.group(1) if m else next(iter(scales))
        if scale not in scales:
            raise UnsupportedModelError(f"model yaml has no scale {scale!r} (it has {sorted(scales)})")
        depth, width, max_ch = scales[scale]
        return str(scale), float(depth), float(width), float(max_ch)
    return "", float(yaml.get("depth_multiple", 1.0)), float(yaml.get("width_multiple", 1.0)), math.inf


def make_divisible(x: float, divisor: int = 8) -> int:
    return int(math.ceil(x / divisor) * divisor)


class YOLOv12(nn.Module):
    """The detection network: `model` is the layer list (state_dict keys `model.<i>.*`); each
    layer's inputs come from `froms[i]` (-1 = previous layer)."""

    def __init__(self, layers: list[nn.Module], froms: list[int | list[int]], stride: list[float]) -> None:
        super().__init__()
        self.model = nn.Sequential(*layers)
        self.froms = froms
        self.save = {j for f in froms for j in ([f] if isinstance(f, int) else f) if j != -1}
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: dict[int, torch.Tensor] = {}
        for i, (layer, f) in enumerate(zip(self.model, self.froms)):
            if isinstance(f, int):
                inp = x if f == -1 else outputs[f]
            else:
                inp = [x if j == -1 else outputs[j] for j in f]
            x = layer(inp)
            if i in self.save:
                outputs[i] = x
        return x

    def fuse(self) -> "YOLOv12":
        """Fold every BatchNorm into its conv (in place); returns self."""
        for m in self.modules():
            if isinstance(m, Conv):
                m.fuse()
        return self

    @property
    def head(self) -> Detect:
        return self.model[-1]


def build_model(yaml: dict, variant: Variant | str = "A") -> YOLOv12:
    """Build an unloaded (randomly initialised) YOLOv12 from a model yaml and a layout variant."""
    if isinstance(variant, str):
        variant = LAYOUTS[variant]
    scale, depth, width, max_ch = resolve_scale(yaml)
    nc = variant.nc if variant.nc is not None else int(yaml.get("nc", 80))
    layer_defs = list(yaml.get("backbone", [])) + list(yaml.get("head", []))
    unknown = [m for m in yaml_modules(yaml) if m not in KNOWN_MODULES]
    if unknown:
        raise UnsupportedModelError(f"model yaml uses modules a YOLOv12 detector does not have: {sorted(set(unknown))}")
    c_image = int(yaml.get("channels", yaml.get("ch", 3)))
    ch: list[int] = []
    strides: list[float] = []
    layers: list[nn.Module] = []
    froms: list[int | list[int]] = []
    for i, (f, n, name, args) in enumerate(layer_defs):
        args = [nc if a == "nc" else a for a in args]
        idx = [j if j >= -1 else i + j for j in ([f] if isinstance(f, int) else f)]
        f = idx[0] if isinstance(f, int) else idx
        c_in = [ch[j] if j != -1 else (ch[-1] if ch else c_image) for j in idx]
        s_in = [strides[j] if j != -1 else (strides[-1] if strides else 1.0) for j in idx]
        c1, s1 = c_in[0], s_in[0]
        n = max(round(n * depth), 1) if n > 1 else n
        if name in ("Conv", "C3k2", "A2C2f"):
            c2 = make_divisible(min(args[0], max_ch) * width, 8)
        if name == "Conv":
            k, s = (list(args[1:3]) + [1, 1])[:2]
            p = args[3] if len(args) > 3 else None
            g = variant.conv_groups.get(i, args[4] if len(args) > 4 else 1)
            d = args[5] if len(args) > 5 else 1
            act = args[6] if len(args) > 6 else True
            layer: nn.Module = Conv(c1, c2, k, s, p, g, d, act=bool(act))
            c_out, s_out = c2, s1 * s
        elif name == "C3k2":
            c3k = bool(args[1]) if len(args) > 1 else False
            if scale in ("m", "l", "x"):
                c3k = True
            e = args[2] if len(args) > 2 else 0.5
            layer = C3k2(c1, c2, n, c3k, e)
            c_out, s_out = c2, s1
        elif name == "A2C2f":
            a2 = bool(args[1]) if len(args) > 1 else True
            area = int(args[2]) if len(args) > 2 else 1
            residual = bool(args[3]) if len(args) > 3 else False
            ratio = float(args[4]) if len(args) > 4 else 2.0
            if scale in ("l", "x"):
                residual, ratio = True, variant.mlp_ratio_lx
            if variant.residual_all:
                residual = True
            c_ = int(c2 * 0.5)
            layer = A2C2f(c1, c2, n, a2, area, gamma=variant.gamma.get(i, residual),
                          hidden=variant.mlp_hidden.get(i, int(c_ * ratio)), attn=variant.attn,
                          pe_kernel=variant.pe_kernel, pe_bias=variant.pe_bias)
            c_out, s_out = c2, s1
        elif name in ("nn.Upsample", "Upsample"):
            factor = float(args[1]) if len(args) > 1 and args[1] is not None else 2.0
            layer = nn.Upsample(None, factor, args[2] if len(args) > 2 else "nearest")
            c_out, s_out = c1, s1 / factor
        elif name == "Concat":
            layer = Concat(int(args[0]) if args else 1)
            c_out, s_out = sum(c_in), s1
        else:  # Detect
            layer = Detect(nc, c_in, s_in, reg_max=variant.reg_max)
            c_out, s_out = 0, s1
        layers.append(layer)
        froms.append(f)
        ch.append(c_out)
        strides.append(s_out)
    if not layers or not isinstance(layers[-1], Detect):
        raise UnsupportedModelError("model yaml does not end in a Detect head")
    model = YOLOv12(layers, froms, layers[-1].stride)
    if variant.fused:
        model.fuse()
    return model.eval()


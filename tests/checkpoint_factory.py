"""Writes checkpoints for the converters tests the way Ultralytics pickles them: every module
of our rebuild is re-classed to a same-named class in a throw-away fake `ultralytics` package
(removed again before anything is loaded), so the pickle references exactly the
`ultralytics.*` globals a real checkpoint does. Also the plain-dict format."""

from __future__ import annotations

import contextlib
import copy
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

_HOMES = {
    "Conv": "ultralytics.nn.modules.conv", "DWConv": "ultralytics.nn.modules.conv",
    "Concat": "ultralytics.nn.modules.conv", "Detect": "ultralytics.nn.modules.head",
    "Segment": "ultralytics.nn.modules.head", "DetectionModel": "ultralytics.nn.tasks",
    "SegmentationModel": "ultralytics.nn.tasks", "YOLO": "ultralytics.models.yolo.model",
}
_PACKAGES = ("ultralytics", "ultralytics.nn", "ultralytics.nn.modules", "ultralytics.nn.modules.conv",
             "ultralytics.nn.modules.block", "ultralytics.nn.modules.head", "ultralytics.nn.tasks",
             "ultralytics.utils", "ultralytics.utils.loss", "ultralytics.models", "ultralytics.models.yolo",
             "ultralytics.models.yolo.model")


class _Namespace(types.SimpleNamespace):
    """Pickles like Ultralytics' IterableSimpleNamespace (a SimpleNamespace subclass)."""


class _Loss:
    """Pickles like the criterion object a mid-training EMA may carry."""

    def __init__(self) -> None:
        self.hyp = {"box": 7.5}


def forward_fuse(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return self.conv(x)


@contextlib.contextmanager
def fake_ultralytics() -> Iterator[types.SimpleNamespace]:
    """Temporarily install empty `ultralytics.*` modules whose classes are created on demand."""
    assert not any(p in sys.modules for p in _PACKAGES), "a real ultralytics is imported"
    mods = {p: types.ModuleType(p) for p in _PACKAGES}
    classes: dict[str, type] = {}

    def make(name: str) -> type:
        if name not in classes:
            home = _HOMES.get(name, "ultralytics.nn.modules.block")
            cls = type(name, (nn.Module,), {"__module__": home, "__qualname__": name, "forward_fuse": forward_fuse})
            setattr(mods[home], name, cls)
            classes[name] = cls
        return classes[name]

    for cls, home, name in ((_Namespace, "ultralytics.utils", "IterableSimpleNamespace"),
                            (_Loss, "ultralytics.utils.loss", "v8DetectionLoss")):
        cls.__module__, cls.__qualname__ = home, name
        setattr(mods[home], name, cls)
    sys.modules.update(mods)
    try:
        yield types.SimpleNamespace(get=make)
    finally:
        for p in _PACKAGES:
            sys.modules.pop(p, None)


def save_ultralytics_style(path: Path, model: nn.Module, yaml: dict, names: dict[int, str], *,
                           imgsz: int = 640, entry: str = "model", half: bool = True,
                           fused_forward: bool = False, model_class: str = "DetectionModel",
                           bare: str | None = None) -> Path:
    """torch.save a trainer-style checkpoint dict whose `entry` ('model' or 'ema') is `model`
    pickled as Ultralytics classes. `fused_forward` pickles `Conv.forward = Conv.forward_fuse`
    (a bound method: `builtins.getattr` in the pickle), as Ultralytics' fused models do. An `ema`
    entry carries what a mid-training EMA does: IterableSimpleNamespace args and a criterion.
    `bare` saves no dict: "model" the DetectionModel itself, "wrapper" a YOLO() object holding it."""
    tree = copy.deepcopy(model.model)
    with fake_ultralytics() as fake:
        for m in tree.modules():
            if type(m).__module__.startswith("converters."):
                m.__class__ = fake.get(type(m).__name__)
                if fused_forward and type(m).__name__ in ("Conv", "DWConv"):
                    m.forward = m.forward_fuse
        top = fake.get(model_class)()
        top.model = tree
        top.yaml, top.names, top.nc, top.task = copy.deepcopy(yaml), dict(names), len(names), "detect"
        top.stride = torch.tensor([8.0, 16.0, 32.0])
        top.args = {"imgsz": imgsz, "task": "detect"}
        if entry == "ema":
            top.args, top.criterion = _Namespace(**top.args), _Loss()
        if half:
            top.half()
        if bare:
            obj = top
            if bare == "wrapper":
                obj = fake.get("YOLO")()
                obj.model, obj.task = top, "detect"
            torch.save(obj, path)
            return path
        other = "ema" if entry == "model" else "model"
        ckpt = {"date": "2026-01-01", "version": "8.4.190", "epoch": -1, entry: top, other: None,
                "train_args": {"imgsz": imgsz, "epochs": 1}, "optimizer": None}
        torch.save(ckpt, path)
    return path


def save_plain(path: Path, state_dict: dict[str, torch.Tensor], yaml: dict, names: dict[int, str],
               imgsz: int | None = None) -> Path:
    """The pickled-classes-free format: {'state_dict', 'yaml', 'names'(, 'imgsz')}."""
    ckpt: dict = {"state_dict": dict(state_dict), "yaml": copy.deepcopy(yaml), "names": dict(names)}
    if imgsz is not None:
        ckpt["imgsz"] = imgsz
    torch.save(ckpt, path)
    return path


def randomize(model: nn.Module, seed: int = 0, gain: float = 1.0) -> nn.Module:
    """Give every BatchNorm random affine/statistics and every gamma a random value, so a
    wrong rebuild shows in the outputs (fresh BNs are identities). `gain` scales every BN
    weight: 2 makes activations grow layer by layer until the outputs are ill-conditioned
    (float32 rounding alone moves boxes by pixels), as some real checkpoints are."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(gain * (0.5 + torch.rand(n, generator=g)))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
        for name, p in model.named_parameters():
            if name.endswith("gamma") or name.endswith("pe.conv.bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


def ill_conditioned(path: Path, layout: str = "A", scale: str = "n", *, seed: int = 0, imgsz: int = 192,
                    width: float | None = None, fused: bool = False, nc: int = 3, gain: float = 1.8) -> Path:
    """A random-weight checkpoint (plain-dict format) whose outputs are ill-conditioned on real
    photos: BN gains of `gain` make activations grow layer by layer, so float32 rounding alone
    moves boxes by tenths of a pixel to pixels against a float64 forward (layout E, whose
    residual gammas damp the growth, needs 2). `width` overrides the
    scale's width multiple (a custom-width yaml); `fused` saves the Conv+BN-folded weights."""
    from converters.nn import build_model, stock_yaml

    yaml = stock_yaml(scale, nc=nc, turbo=layout == "C")
    if width is not None:
        depth, _, max_ch = yaml["scales"][scale]
        yaml["scales"] = {scale: [depth, width, max_ch]}
    torch.manual_seed(seed)
    model = randomize(build_model(yaml, layout), seed, gain=gain).eval()
    if fused:
        model = model.fuse()
    return save_plain(path, model.state_dict(), yaml, {i: f"class{i}" for i in range(nc)}, imgsz=imgsz)

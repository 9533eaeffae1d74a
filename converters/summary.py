"""Size figures of a rebuilt network: parameter count and GFLOPs."""

from __future__ import annotations

import torch
from torch import nn

PROBE = 128   # convolution FLOPs grow with the pixel count, so a small probe input is scaled up


def parameter_count(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def conv_gflops(model: nn.Module, imgsz: tuple[int, int] = (640, 640)) -> float:
    """GFLOPs (2 x multiply-adds) of the model's convolutions for one (h, w) image, the figure
    Ultralytics' model summary gives (6.5 for yolo12n at 640); attention matmuls are not counted.
    Measured on a PROBE x PROBE input and scaled by the pixel ratio."""
    total = 0

    def count(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        k_h, k_w = module.kernel_size
        total += 2 * output.numel() * (module.in_channels // module.groups) * k_h * k_w

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, PROBE, PROBE))
    finally:
        for hook in hooks:
            hook.remove()
    return total * (imgsz[0] * imgsz[1]) / (PROBE * PROBE) / 1e9

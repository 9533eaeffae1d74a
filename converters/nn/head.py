"""Detect head with DFL box decoding (spec §2.7)."""

from __future__ import annotations

import torch
from torch import nn

from converters.nn.layers import Conv, DWConv


class DFL(nn.Module):
    """Distribution focal loss integral: softmax over `c1` bins, expectation by a fixed 1x1 conv."""

    def __init__(self, c1: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
        self.c1 = c1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def make_anchors(feats: list[torch.Tensor], strides: list[float], offset: float = 0.5
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid-cell centres (A, 2) in grid units and their strides (A, 1), from the real feature shapes."""
    points, stride_list = [], []
    for f, s in zip(feats, strides):
        h, w = f.shape[2], f.shape[3]
        sx = torch.arange(w, device=f.device, dtype=f.dtype) + offset
        sy = torch.arange(h, device=f.device, dtype=f.dtype) + offset
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((xx, yy), -1).view(-1, 2))
        stride_list.append(torch.full((h * w, 1), s, dtype=f.dtype, device=f.device))
    return torch.cat(points), torch.cat(stride_list)


class Detect(nn.Module):
    """Anchor-free decoupled head. Output (B, 4+nc, A): cx, cy, w, h in input pixels, then
    sigmoid class scores; anchors are rebuilt from the feature-map shapes on every call, so
    any input whose sides are multiples of the largest stride works (and traces dynamically)."""

    def __init__(self, nc: int, ch: list[int], strides: list[float], reg_max: int = 16) -> None:
        super().__init__()
        self.nc = nc
        self.nl = len(ch)
        self.reg_max = reg_max
        self.no = nc + reg_max * 4
        self.stride = [float(s) for s in strides]
        c2 = max(16, ch[0] // 4, reg_max * 4)
        c3 = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch
        )
        self.cv3 = nn.ModuleList(
            nn.Sequential(
                nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                nn.Conv2d(c3, nc, 1),
            )
            for x in ch
        )
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        b = x[0].shape[0]
        raw = [torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1) for i in range(self.nl)]
        flat = torch.cat([r.view(b, self.no, -1) for r in raw], 2)
        box, cls = flat.split((self.reg_max * 4, self.nc), 1)
        anchors, strides = make_anchors(raw, self.stride)
        dist = self.dfl(box)
        lt, rb = dist.chunk(2, 1)
        anchors = anchors.transpose(0, 1).unsqueeze(0)
        x1y1 = anchors - lt
        x2y2 = anchors + rb
        xywh = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides.transpose(0, 1)
        return torch.cat((xywh, cls.sigmoid()), 1)

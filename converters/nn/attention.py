"""Area attention (AAttn), ABlock and the R-ELAN block A2C2f (spec §2.4-2.5)."""

from __future__ import annotations

import torch
from torch import nn

from converters.nn.layers import C3k, Conv

HEAD_DIM = 32


class AAttn(nn.Module):
    """Area attention: the row-major token sequence is cut into `area` contiguous chunks and
    multi-head attention (32-dim heads) runs inside each chunk; a depthwise `pe` conv on V is
    added before the output projection.

    attn "qkv": one 1x1 conv C->3C, heads interleaved as [q_h | k_h | v_h] (Ultralytics, v1.0).
    attn "qk_v": qk conv C->2C (q block then k block) and a separate v conv (turbo); `pe` runs
    on the v conv output.
    """

    def __init__(self, dim: int, area: int = 1, attn: str = "qkv", pe_kernel: int = 7,
                 pe_bias: bool = False) -> None:
        super().__init__()
        if attn not in ("qkv", "qk_v"):
            raise ValueError(f"unknown attention variant {attn!r}")
        self.area = area
        self.num_heads = dim // HEAD_DIM
        self.variant = attn
        if attn == "qkv":
            self.qkv = Conv(dim, dim * 3, 1, act=False)
        else:
            self.qk = Conv(dim, dim * 2, 1, act=False)
            self.v = Conv(dim, dim, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, pe_kernel, 1, pe_kernel // 2, g=dim, act=False, bias=pe_bias)

    def _split_areas(self, t: torch.Tensor) -> torch.Tensor:
        """(B, C', H, W) -> (B*area, N/area, C'): contiguous chunks of the row-major tokens."""
        b, c = t.shape[0], t.shape[1]
        t = t.flatten(2).transpose(1, 2)
        return t.reshape(b * self.area, -1, c) if self.area > 1 else t

    def _to_image(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """(B*area, N/area, C) tokens back to (B, C, H, W) shaped like `like`."""
        b, c, h, w = like.shape
        return t.reshape(b, h, w, c).permute(0, 3, 1, 2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q, k, v: (B', heads, n, 32) -> (B', n, heads*32)."""
        attn = (q * HEAD_DIM**-0.5) @ k.transpose(-2, -1)
        out = attn.softmax(dim=-1) @ v
        return out.transpose(1, 2).flatten(2)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B', n, heads*d) -> (B', heads, n, d)."""
        return t.reshape(t.shape[0], t.shape[1], self.num_heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant == "qkv":
            qkv = self._heads(self._split_areas(self.qkv(x)))  # (B', heads, n, 96)
            q, k, v = qkv.split((HEAD_DIM, HEAD_DIM, HEAD_DIM), dim=-1)
            out = self._to_image(self._attend(q, k, v), x)
            v_img = self._to_image(v.transpose(1, 2).flatten(2), x)
            return self.proj(out + self.pe(v_img))
        c = x.shape[1]
        qk = self._split_areas(self.qk(x))
        v_img = self.v(x)
        q, k = qk.split((c, c), dim=-1)
        v = self._split_areas(v_img)
        out = self._to_image(self._attend(self._heads(q), self._heads(k), self._heads(v)), x)
        return self.proj(out + self.pe(v_img))


class ABlock(nn.Module):
    """x + AAttn(x), then x + MLP(x) with a 1x1 Conv(SiLU) -> 1x1 Conv MLP of width `hidden`."""

    def __init__(self, dim: int, hidden: int, area: int, attn: str, pe_kernel: int, pe_bias: bool) -> None:
        super().__init__()
        self.attn = AAttn(dim, area, attn, pe_kernel, pe_bias)
        self.mlp = nn.Sequential(Conv(dim, hidden, 1), Conv(hidden, dim, 1, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class A2C2f(nn.Module):
    """R-ELAN: cv1, then n chained blocks (two ABlocks each when a2, else a C3k), concatenate
    every intermediate, cv2; with `gamma`, a scaled residual x + gamma * out."""

    def __init__(self, c1: int, c2: int, n: int = 1, a2: bool = True, area: int = 1, gamma: bool = False,
                 hidden: int | None = None, attn: str = "qkv", pe_kernel: int = 7, pe_bias: bool = False,
                 e: float = 0.5, g: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        c_ = int(c2 * e)
        if c_ % HEAD_DIM:
            raise ValueError(f"A2C2f hidden width {c_} is not a multiple of {HEAD_DIM}")
        hidden = int(c_ * 2.0) if hidden is None else hidden
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv((1 + n) * c_, c2, 1)
        self.gamma = nn.Parameter(0.01 * torch.ones(c2)) if a2 and gamma else None
        self.m = nn.ModuleList(
            nn.Sequential(*(ABlock(c_, hidden, area, attn, pe_kernel, pe_bias) for _ in range(2)))
            if a2 else C3k(c_, c_, 2, shortcut, g)
            for _ in range(n)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for m in self.m:
            y.append(m(y[-1]))
        out = self.cv2(torch.cat(y, 1))
        if self.gamma is not None:
            return x + self.gamma.view(1, -1, 1, 1) * out
        return out

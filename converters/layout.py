"""Detect the weight layout of a YOLOv12 state_dict from its keys and shapes (spec §7.2).

Never from version strings or class paths: Ultralytics and the official fork pickle the same
class paths for different layouts."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from converters.nn.build import LAYOUTS, Variant
from edge_yolo.errors import UnsupportedModelError

Shapes = Mapping[str, Sequence[int]]

_ATTN_SETS = {frozenset({"qkv", "proj", "pe"}): "qkv", frozenset({"qk", "v", "proj", "pe"}): "qk_v"}


@dataclass(frozen=True)
class DetectedLayout:
    """The layout letter and the Variant that rebuilds this exact state_dict."""

    letter: str
    variant: Variant


def _foreign_model(keys: list[str]) -> str | None:
    """Name what a non-YOLOv12-detection state_dict looks like, or None."""
    joined = "\n".join(keys)
    if re.search(r"\.(proto|cv4)\.", joined):
        return "a segmentation head (Segment)" if ".proto." in joined else "a segmentation/pose/OBB head"
    if re.search(r"\.linear\.(weight|bias)$", joined, re.M) and ".dfl." not in joined:
        return "a classification head (Classify)"
    if "one2one_cv2" in joined:
        return "an end-to-end (one2one, NMS-free) head"
    return None


def detect_layout(shapes: Shapes) -> DetectedLayout:
    """Work out layout A/B/C/E, fused or not, nc, reg_max, per-layer MLP widths, gamma and conv
    groups from a state_dict's key -> shape map; raise UnsupportedModelError when it is not a
    YOLOv12 detector or its attention layout is unknown."""
    keys = list(shapes)
    foreign = _foreign_model(keys)
    if foreign:
        raise UnsupportedModelError(f"checkpoint is not a YOLOv12 detection model: it has {foreign}")
    attn_parts: dict[str, set[str]] = {}
    for k in keys:
        m = re.match(r"(model\.\d+\.m\.\d+\.\d+\.attn)\.([^.]+)\.", k)
        if m:
            attn_parts.setdefault(m.group(1), set()).add(m.group(2))
    if not attn_parts:
        raise UnsupportedModelError("checkpoint is not a YOLOv12 model: it has no area-attention (A2C2f/AAttn) blocks")
    kinds = {_ATTN_SETS.get(frozenset(p)) for p in attn_parts.values()}
    if None in kinds or len(kinds) != 1:
        found = sorted({name for p in attn_parts.values() for name in p})
        raise UnsupportedModelError(
            f"unknown YOLOv12 attention layout (AAttn sub-modules {found}); expected qkv/proj/pe or qk/v/proj/pe"
        )
    attn = kinds.pop()
    fused = not any(".bn." in k for k in keys)
    pe_key = next(k for k in keys if k.endswith(".attn.pe.conv.weight"))
    pe_kernel = int(shapes[pe_key][-1])
    # every fused conv has a bias, so a fused v1.0 (B) checkpoint cannot be told from A
    pe_bias = not fused and any(k.endswith(".attn.pe.conv.bias") for k in keys)

    mlp_hidden: dict[int, int] = {}
    gamma: dict[int, bool] = {}
    for k in keys:
        m = re.match(r"model\.(\d+)\.m\.0\.0\.mlp\.0\.conv\.weight$", k)
        if m:
            i = int(m.group(1))
            mlp_hidden[i] = int(shapes[k][0])
            gamma[i] = f"model.{i}.gamma" in shapes
    conv_groups: dict[int, int] = {}
    for k in keys:
        m = re.match(r"model\.(\d+)\.conv\.weight$", k)
        if m:
            i = int(m.group(1))
            c_in = _layer_out_channels(shapes, i - 1) if i > 0 else 3
            if c_in and c_in % int(shapes[k][1]) == 0:
                conv_groups[i] = c_in // int(shapes[k][1])

    nc_key = next((k for k in keys if re.search(r"\.cv3\.0\.2\.weight$", k)), None)
    dfl_key = next((k for k in keys if k.endswith(".dfl.conv.weight")), None)
    if nc_key is None:
        raise UnsupportedModelError("checkpoint is not a YOLOv12 detection model: no Detect class branch (cv3.0.2)")
    nc = int(shapes[nc_key][0])
    reg_max = int(shapes[dfl_key][1]) if dfl_key else 1

    if attn == "qk_v":
        letter = "C"
    elif pe_bias:
        letter = "B"
    elif _is_layout_e(shapes, mlp_hidden, gamma):
        letter = "E"
    else:
        letter = "A"
    base = LAYOUTS[letter]
    variant = Variant(attn=attn, pe_kernel=pe_kernel, pe_bias=pe_bias, mlp_ratio_lx=base.mlp_ratio_lx,
                      residual_all=base.residual_all, fused=fused, nc=nc, reg_max=reg_max,
                      mlp_hidden=mlp_hidden, gamma=gamma, conv_groups=conv_groups)
    return DetectedLayout(letter, variant)


def _layer_out_channels(shapes: Shapes, i: int) -> int | None:
    """Output channels of top-level layer i, from its conv / cv2 weight."""
    for k in (f"model.{i}.conv.weight", f"model.{i}.cv2.conv.weight", f"model.{i}.cv3.conv.weight"):
        if k in shapes:
            return int(shapes[k][0])
    return None


def _is_layout_e(shapes: Shapes, mlp_hidden: dict[int, int], gamma: dict[int, bool]) -> bool:
    """Seg/Cls-branch models: gamma with an MLP ratio that is not Ultralytics' l/x 1.2."""
    for i, has_gamma in gamma.items():
        if not has_gamma:
            continue
        c_ = int(shapes[f"model.{i}.cv1.conv.weight"][0])
        if mlp_hidden[i] != int(c_ * 1.2):
            return True
    return False

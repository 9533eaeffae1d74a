"""Option parsing shared by several commands."""

from __future__ import annotations

import re
from pathlib import Path

from edge_yolo.errors import EdgeYoloError, ModelLoadError


def parse_imgsz(value: str | None) -> int | tuple[int, int] | None:
    """`640` → 640, `480,640` / `480x640` → (480, 640) as (h, w); None stays None."""
    if value is None:
        return None
    parts = [p for p in re.split(r"[,x ]+", value.strip().lower()) if p]
    if not parts or len(parts) > 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise EdgeYoloError(f"--imgsz must be a size like 640 or H,W like 480,640, got {value!r}")
    sizes = [int(p) for p in parts]
    return sizes[0] if len(sizes) == 1 else (sizes[0], sizes[1])


def require_model(model: str) -> None:
    """Fail before any work unless MODEL can be used: a file or folder that exists, or a Triton
    URL whose server is up and whose model is ready (the backend's own one-line errors)."""
    from edge_yolo.backends.triton import is_triton_url, read_triton_info

    if is_triton_url(model):
        read_triton_info(model)
    elif not Path(model).exists():
        raise ModelLoadError(f"model not found: {model}")

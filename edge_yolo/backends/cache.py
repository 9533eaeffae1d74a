"""Where backends keep compiled artefacts (TensorRT engines, OpenVINO GPU kernels)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    """$EDGE_YOLO_CACHE, else $XDG_CACHE_HOME/edge-yolo, else ~/.cache/edge-yolo."""
    if env := os.environ.get("EDGE_YOLO_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edge-yolo"


def file_hash(path: str | Path, length: int = 16) -> str:
    """A short sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def keyed_dir(kind: str, *parts: str) -> Path:
    """`cache_root()/kind/<sanitised parts joined by '-'>`, created."""
    safe = "-".join("".join(c if c.isalnum() or c in "._" else "_" for c in p) for p in parts)
    path = cache_root() / kind / safe
    path.mkdir(parents=True, exist_ok=True)
    return path

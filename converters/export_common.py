"""What both exporters share: resolving the checkpoint and imgsz, default output names,
the traced export copy of the model, and the concise timed progress lines."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from edge_yolo.errors import ExportError
from edge_yolo.postprocess import MAX_WH

if TYPE_CHECKING:
    import torch

    from converters.checkpoint import LoadedCheckpoint

STRIDE = 32


def resolve_checkpoint(checkpoint: str | Path | LoadedCheckpoint) -> LoadedCheckpoint:
    """Load `checkpoint` if it is a path; a LoadedCheckpoint passes through."""
    if isinstance(checkpoint, (str, Path)):
        from converters import load_checkpoint

        with step(f"loaded {Path(checkpoint).name}"):
            return load_checkpoint(checkpoint)
    return checkpoint


def resolve_imgsz(imgsz: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """(h, w) from an int or a pair, None stays None; multiples of 32 only."""
    if imgsz is None:
        return None
    if isinstance(imgsz, int):
        hw = (imgsz, imgsz)
    else:
        values = [int(v) for v in imgsz]
        if len(values) == 1:
            values *= 2
        if len(values) != 2:
            raise ExportError(f"imgsz must be one size or a (height, width) pair, got {list(imgsz)}.")
        hw = (values[0], values[1])
    if any(v <= 0 or v % STRIDE for v in hw):
        raise ExportError(f"imgsz must be positive multiples of {STRIDE}, got {hw[0]}x{hw[1]}.")
    if max(hw) > MAX_WH:
        raise ExportError(f"imgsz {hw[0]}x{hw[1]} is too large: at most {MAX_WH} pixels a side.")
    return hw


def check_batch(batch: int) -> int:
    """The export batch size, validated."""
    if batch < 1:
        raise ExportError(f"batch must be at least 1, got {batch}.")
    return batch


def default_output(source: Path, suffix: str) -> Path:
    """`best.pt` + `.onnx` → `best.onnx`; + `_int8_openvino_model` → `best_int8_openvino_model`."""
    return source.with_name(source.stem + suffix)


def export_model(loaded: LoadedCheckpoint) -> torch.nn.Module:
    """A fused (Conv+BN folded) float32 eval copy of the model; the loaded one stays untouched."""
    model = copy.deepcopy(loaded.model).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if not loaded.fused:
        model = model.fuse()
    return model


@contextmanager
def step(label: str) -> Iterator[None]:
    """Print `label (1.23 s)` once the block has finished."""
    start = time.perf_counter()
    yield
    print(f"export: {label} ({time.perf_counter() - start:.2f} s)", flush=True)


def note(message: str) -> None:
    """One progress line without a timing."""
    print(f"export: {message}", flush=True)

"""What both exporters share: resolving the checkpoint and imgsz, default output names,
the guard against replacing another file, the traced export copy of the model, and the
concise timed progress lines."""

from __future__ import annotations

import ast
import copy
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from converters.metadata import build_metadata
from edge_yolo.errors import ExportError
from edge_yolo.postprocess import MAX_WH

if TYPE_CHECKING:
    import torch

    from converters.checkpoint import LoadedCheckpoint

STRIDE = 32
EXPORT_MODULES = ("torch", "onnx", "onnxslim", "onnxruntime")


def require_export_extra(task: str, extra_modules: tuple[str, ...] = ()) -> None:
    """ExportError with the install hint when a package of the export extra is missing
    (`task` says what needed it, e.g. "export" or "running best.pt")."""
    missing = [m for m in EXPORT_MODULES + extra_modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"{task} needs the export extra (missing: {', '.join(missing)}): "
                          "pip install 'edge-yolo[export]'")


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


def variant_suffix(precision: str, hw: tuple[int, int], training_hw: tuple[int, int], dynamic: bool,
                   batch: int) -> str:
    """The part of a default output name that tells a non-default export apart:
    `_fp16`/`_int8`, `_HxW` (not the training size), `_dynamic`, `_b<batch>` (batch > 1)."""
    parts = [] if precision == "fp32" else [precision]
    if tuple(hw) != tuple(training_hw):
        parts.append(f"{hw[0]}x{hw[1]}")
    if dynamic:
        parts.append("dynamic")
    if batch > 1:
        parts.append(f"b{batch}")
    return "".join(f"_{p}" for p in parts)


def plan_export(loaded: LoadedCheckpoint, hw: tuple[int, int], batch: int, precision: str,
                args: dict[str, Any], dynamic: bool, dynamic_batch: bool, output: str | Path | None,
                suffix: str, force: bool) -> tuple[dict[str, Any], Path]:
    """The export's metadata and where it goes: `output`, else the variant's default name next to
    the checkpoint ending in `suffix`; refuses to replace what is not the same variant (see
    check_overwrite)."""
    if dynamic_batch:
        args = {**args, "dynamic_batch": True}
    meta = build_metadata(loaded, hw, batch, precision, args)
    path = Path(output) if output is not None else default_output(
        loaded.source, variant_suffix(precision, hw, resolve_imgsz(loaded.imgsz), dynamic, batch) + suffix)
    check_overwrite(path, meta, force)
    return meta, path


def check_overwrite(path: Path, metadata: dict[str, Any], force: bool) -> None:
    """Refuse to replace an existing file or directory at `path` unless it is an edge-yolo
    export of the same variant (imgsz, batch, precision, dynamic) or `force` is set."""
    if force or not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    hint = "pass --force (force=True in Python) to replace it, or choose another --output"
    existing = _existing_metadata(path)
    if existing is None or not str(existing.get("exporter", "")).startswith("edge-yolo"):
        made_by = "" if existing is None else " ".join(
            str(existing[k]) for k in ("author", "version") if existing.get(k) is not None)
        origin = f"made by {made_by}" if made_by else "not an edge-yolo export"
        raise ExportError(f"{path} already exists ({origin}); {hint}.")
    old, new = _variant(existing), _variant(metadata)
    if old != new:
        raise ExportError(f"{path} already holds another edge-yolo export ({_describe(old)}, this one is "
                          f"{_describe(new)}); {hint}.")


def _existing_metadata(path: Path) -> dict[str, Any] | None:
    """The metadata of the export at `path`, None when it is not a model we can read."""
    from edge_yolo.errors import EdgeYoloError
    from edge_yolo.modelinfo import read_model_info

    try:
        return read_model_info(path).metadata
    except EdgeYoloError:
        return None


def _variant(metadata: dict[str, Any]) -> tuple[Any, ...]:
    """(imgsz, batch, precision, dynamic) of export metadata, whether the values are ONNX
    strings or YAML-typed."""
    def value(v: Any) -> Any:
        if isinstance(v, str):
            try:
                return ast.literal_eval(v)
            except (ValueError, SyntaxError):
                return v
        return v

    args = value(metadata.get("args")) or {}
    imgsz = value(metadata.get("imgsz"))
    return (tuple(imgsz) if isinstance(imgsz, (list, tuple)) else imgsz, value(metadata.get("batch")),
            str(metadata.get("precision")), bool(args.get("dynamic", False)) if isinstance(args, dict) else False)


def _describe(variant: tuple[Any, ...]) -> str:
    imgsz, batch, precision, dynamic = variant
    size = "x".join(str(v) for v in imgsz) if isinstance(imgsz, tuple) else str(imgsz)
    return f"{size} {precision} {'dynamic' if dynamic else 'static'} batch {batch}"


def export_model(loaded: LoadedCheckpoint) -> torch.nn.Module:
    """A fused (Conv+BN folded) float32 eval copy of the model; the loaded one stays untouched."""
    model = copy.deepcopy(loaded.model).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if not loaded.fused:
        model = model.fuse()
    return model


@contextmanager
def staged_output(final: Path) -> Iterator[Path]:
    """A temporary path beside `final` (same name, in a hidden folder) to write and verify an
    export at; it replaces `final` only when the block ends without an error. A refused or
    interrupted export leaves nothing behind, and an earlier file at `final` stays as it was."""
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    staged = scratch / final.name
    try:
        yield staged
        _replace(staged, final, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _replace(staged: Path, final: Path, scratch: Path) -> None:
    old = scratch / "replaced"
    try:
        if staged.is_dir() and final.is_dir():
            # A directory cannot replace a non-empty one in one rename: move the old one aside.
            os.replace(final, old)
        os.replace(staged, final)
    except OSError as exc:
        if old.exists() and not final.exists():
            os.replace(old, final)
        raise ExportError(f"cannot write {final}: {exc.strerror or exc}") from exc


@contextmanager
def step(label: str) -> Iterator[None]:
    """Print `label (1.23 s)` once the block has finished."""
    start = time.perf_counter()
    yield
    print(f"export: {label} ({time.perf_counter() - start:.2f} s)", flush=True)


def note(message: str) -> None:
    """One progress line without a timing."""
    print(f"export: {message}", flush=True)

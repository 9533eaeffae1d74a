"""INT8 post-training quantization of an OpenVINO model with NNCF.

Calibration images are letterboxed exactly as the runtime does it. Preset MIXED (symmetric
weights, asymmetric activations). Two ignored scopes (what stays in float):
- "head": the Detect decode, as Ultralytics does it: every Sigmoid and every op directly in
  the head's scope or its DFL (anchors, box arithmetic, DFL softmax); the head convs are INT8.
- "head+attention": the same plus the area attention (ScaledDotProductAttention, or its
  MatMul/Softmax), which is known to be INT8-sensitive (spec §4.3, §7).
"auto" quantizes with both and keeps the one whose detections agree best with the FP32 torch
model on the calibration images (ties go to "head"). Measured on the shapes model: at 640 on
all 80 val photos "head" 97.1% (433/446), "head+attention" 97.3% (439/451), which is kept; at
320 on 8 photos both 93.3% (42/45), "head" kept. Both run equally fast (22.9 vs 23.4 ms at 640,
FP32 at the default bf16 precision 28.2 ms, 2-core CPU).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edge_yolo.errors import DataError, ExportError

from converters.export_common import note, step

if TYPE_CHECKING:
    import openvino as ov

    from converters.checkpoint import LoadedCheckpoint

SCOPES = ("head", "head+attention")
# "auto" compares the candidates on at most this many calibration batches.
EVAL_BATCHES = 64
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# OpenVINO fuses each area attention into one ScaledDotProductAttention op on conversion; the
# MatMul/Softmax patterns cover a graph where it did not.
ATTENTION_TYPES = ["ScaledDotProductAttention"]
ATTENTION_PATTERN = r".*/attn/(MatMul|Softmax)[^/]*$"


def calibration_images(data: str | Path, fraction: float = 1.0) -> list[Path]:
    """The calibration images: every image under a directory, or the val split (else train) of
    a YOLO data.yaml; the first `fraction` of them (at least one)."""
    data = Path(data)
    if not 0 < fraction <= 1:
        raise DataError(f"fraction must be in (0, 1], got {fraction}.")
    if not data.exists():
        raise DataError(f"calibration data not found: {data}")
    if data.is_dir():
        paths = sorted(p for p in data.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    elif data.suffix.lower() in {".yaml", ".yml"}:
        paths = _yaml_images(data)
    else:
        raise DataError(f"calibration data must be a directory of images or a data.yaml, got {data}")
    if not paths:
        raise DataError(f"no images found in {data}")
    return paths[: max(1, round(len(paths) * fraction))]


def _yaml_images(path: Path) -> list[Path]:
    from edge_yolo.dataset import load_dataset

    try:
        return [im.path for im in load_dataset(path, split="val").images]
    except DataError:
        return [im.path for im in load_dataset(path, split="train").images]


def ignored_scope(model: ov.Model, scope: str):  # noqa: ANN201 - nncf.IgnoredScope, imported lazily
    """The NNCF ignored scope for `scope` ("head" or "head+attention") on this model's op names."""
    import nncf

    sigmoids = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        raise ExportError("cannot find the Detect head (no Sigmoid op) to keep it out of INT8.")
    # Op names follow the ONNX node names `/model.21/Sub`, `/model.21/dfl/Softmax`; the head's
    # convs (`/model.21/cv2.0/...`) are quantized.
    head = re.escape(sigmoids[-1].rsplit("/", 1)[0])
    patterns = [f"{head}/[^/]+$", f"{head}/dfl/.*"]
    types = ["Sigmoid"]
    if scope == "head+attention":
        patterns.append(ATTENTION_PATTERN)
        types += ATTENTION_TYPES
    return nncf.IgnoredScope(patterns=patterns, types=types, validate=False)


def quantize_int8(
    model: ov.Model,
    loaded: LoadedCheckpoint,
    images: Sequence[Path],
    hw: tuple[int, int],
    batch: int,
    scope: str = "auto",
) -> ov.Model:
    """Quantize `model` on `images`; with scope "auto" try both scopes and keep the better."""
    import nncf
    import numpy as np

    from converters.verify import agreement, fill_batch, letterboxed_batch, openvino_runner, torch_runner

    nncf.set_log_level(logging.ERROR)  # its per-node INFO lines drown the progress lines
    with step(f"letterboxed {len(images)} calibration images"):
        inputs = fill_batch(letterboxed_batch(images, hw), batch)
    dataset = nncf.Dataset(inputs, lambda x: np.ascontiguousarray(x))
    candidates = SCOPES if scope == "auto" else (scope,)
    if len(candidates) > 1:
        # The FP32 reference on the first EVAL_BATCHES batches, computed once for both candidates.
        evaluated = inputs[:EVAL_BATCHES]
        reference = torch_runner(loaded.model)
        expected = {id(x): reference(x) for x in evaluated}
    results = []
    for name in candidates:
        with step(f"NNCF INT8 (MIXED, {name} in float, {len(inputs)} batches)"):
            quantized = nncf.quantize(
                model, dataset, preset=nncf.QuantizationPreset.MIXED, subset_size=len(inputs),
                ignored_scope=ignored_scope(model, name),
            )
        if len(candidates) == 1:
            return quantized
        agree = agreement(lambda x: expected[id(x)], openvino_runner(quantized), evaluated)
        note(f"INT8 with {name} in float: detections agree with FP32 {agree}")
        results.append((agree.fraction, -len(results), name, quantized))
    fraction, _, name, quantized = max(results, key=lambda r: r[:2])
    note(f"kept INT8 with {name} in float ({fraction:.1%} agreement)")
    return quantized


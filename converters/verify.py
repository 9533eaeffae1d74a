"""Self-verification of an export: run the exported model and our torch model on the same
inputs (letterboxed real photos and random noise) and compare.

FP32 exports must match the torch rebuild to DESIGN.md's max |Δ| ≤ 1e-3 on output0.
FP16 and INT8 exports are compared by their decoded detections instead (`agreement`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge_yolo.errors import ExportError
from edge_yolo.preprocess import letterbox, read_image, to_nchw

from converters.export_common import note

if TYPE_CHECKING:
    import openvino as ov

ASSETS = Path(__file__).parent / "assets"
FP32_TOLERANCE = 1e-3
# Detection agreement below this fails an FP16 export (the model is then broken, not just rounded).
FP16_MIN_AGREEMENT = 0.9
# INT8 legitimately loses some detections; below this the quantized model is broken.
INT8_MIN_AGREEMENT = 0.5
CONF = 0.25
IOU_NMS = 0.7
IOU_MATCH = 0.5
# A detection counts as found when the other model has it at a score at least CONF - SLACK:
# a score that moves across the threshold by a hair is not a disagreement.
CONF_SLACK = 0.05

Runner = Callable[[np.ndarray], np.ndarray]


def verification_images() -> list[Path]:
    """The real photos bundled with the package (converters/assets/)."""
    return sorted(ASSETS.glob("*.jpg"))


def letterboxed_batch(paths: Sequence[Path], hw: tuple[int, int]) -> np.ndarray:
    """Images as the runtime feeds them: letterboxed to (h, w), RGB, 0..1, NCHW float32."""
    return to_nchw([letterbox(read_image(p), hw)[0] for p in paths])


def fill_batch(images: np.ndarray, batch: int) -> list[np.ndarray]:
    """Split (N,3,H,W) into inputs of exactly `batch` images (cycling through them)."""
    n = max(1, -(-len(images) // batch))
    idx = np.arange(n * batch) % len(images)
    return [images[idx[i * batch:(i + 1) * batch]] for i in range(n)]


def torch_runner(model) -> Runner:  # noqa: ANN001 - torch.nn.Module, torch imported lazily
    """Run our torch model on a float32 NCHW numpy array."""
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).float().numpy()

    return run


def onnx_runner(path: Path) -> Runner:
    """Run an ONNX model on ORT's CPU EP, casting the input to the model's input dtype."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {inp.name: x.astype(dtype)})[0].astype(np.float32)

    return run


def openvino_runner(model: Path | ov.Model, precision: str = "f32") -> Runner:
    """Run an OpenVINO IR file or in-memory model on the CPU with the given INFERENCE_PRECISION_HINT."""
    import openvino as ov

    source = str(model) if isinstance(model, Path) else model
    compiled = ov.Core().compile_model(source, "CPU", {"INFERENCE_PRECISION_HINT": precision})

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(compiled(x.astype(np.float32))[0], dtype=np.float32)

    return run


def max_abs_diff(reference: Runner, candidate: Runner, inputs: Sequence[np.ndarray]) -> float:
    """Largest |Δ| over all elements of output0 for all inputs."""
    return max(float(np.abs(reference(x) - candidate(x)).max()) for x in inputs)


@dataclass(frozen=True)
class Agreement:
    """How many detections two models share (same class, IoU ≥ 0.5), counted both ways."""

    matched: int
    total: int

    @property
    def fraction(self) -> float:
        return self.matched / self.total if self.total else 1.0

    def __str__(self) -> str:
        return f"{self.fraction:.1%} ({self.matched}/{self.total} detections)"


def detections(output0: np.ndarray, conf: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image (xyxy, score, class) after class-aware NMS at IoU 0.7, from (B, 4+nc, A)."""
    result = []
    for pred in output0:
        scores_all = pred[4:]
        cls = scores_all.argmax(0)
        score = scores_all.max(0)
        keep = score > conf
        xywh, score, cls = pred[:4, keep].T, score[keep], cls[keep]
        xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
        boxes = [[float(x), float(y), float(w), float(h)] for x, y, w, h in
                 np.concatenate([xyxy[:, :2], xywh[:, 2:]], 1)]
        idx = cv2.dnn.NMSBoxesBatched(boxes, score.tolist(), cls.tolist(), conf, IOU_NMS) if boxes else []
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        result.append((xyxy[idx], score[idx], cls[idx]))
    return result


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def _found(query: tuple, pool: tuple) -> int:
    """How many of `query`'s detections (score > CONF) have a same-class IoU ≥ 0.5 partner in `pool`."""
    boxes, scores, classes = query
    keep = scores > CONF
    boxes, classes = boxes[keep], classes[keep]
    if not len(boxes) or not len(pool[0]):
        return 0
    same = (classes[:, None] == pool[2][None, :]) & (_iou(boxes, pool[0]) >= IOU_MATCH)
    return int(same.any(1).sum())


def agreement(reference: Runner, candidate: Runner, inputs: Sequence[np.ndarray]) -> Agreement:
    """Detections (score > 0.25) of each model found by the other, over all inputs and images."""
    matched = total = 0
    for x in inputs:
        ref_all = detections(reference(x), CONF - CONF_SLACK)
        cand_all = detections(candidate(x), CONF - CONF_SLACK)
        for ref, cand in zip(ref_all, cand_all):
            matched += _found(ref, cand) + _found(cand, ref)
            total += int((ref[1] > CONF).sum() + (cand[1] > CONF).sum())
    return Agreement(matched, total)


def verification_inputs(hw: tuple[int, int], batch: int, images: Sequence[Path] | None = None
                        ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(real, random): letterboxed photos split into batches, and one batch of uniform noise."""
    real = fill_batch(letterboxed_batch(images or verification_images(), hw), batch)
    noise = np.random.default_rng(0).random((batch, 3, *hw), dtype=np.float32)
    return real, [noise]


def verify_fp32(reference: Runner, candidate: Runner, hw: tuple[int, int], batch: int) -> float:
    """Max |Δ| on real and random input; ExportError beyond 1e-3."""
    real, noise = verification_inputs(hw, batch)
    d_real = max_abs_diff(reference, candidate, real)
    d_noise = max_abs_diff(reference, candidate, noise)
    note(f"verified against torch: max |Δ| {d_real:.2e} on photos, {d_noise:.2e} on noise "
         f"(tolerance {FP32_TOLERANCE:g})")
    worst = max(d_real, d_noise)
    if not worst <= FP32_TOLERANCE:
        raise ExportError(f"exported model differs from the PyTorch model by max |Δ| {worst:.3g} "
                          f"(> {FP32_TOLERANCE:g}); the export is wrong.")
    return worst


def verify_reduced(reference: Runner, candidate: Runner, hw: tuple[int, int], batch: int,
                   label: str, min_agreement: float, images: Sequence[Path] | None = None) -> Agreement:
    """FP16/INT8: print raw max |Δ| and detection agreement; ExportError below `min_agreement`."""
    real, noise = verification_inputs(hw, batch, images)
    # Each model runs once per input; both comparisons read these outputs.
    expected = {id(x): reference(x) for x in real + noise}
    got = {id(x): candidate(x) for x in real + noise}
    d_real = max(float(np.abs(expected[id(x)] - got[id(x)]).max()) for x in real)
    d_noise = float(np.abs(expected[id(noise[0])] - got[id(noise[0])]).max())
    agree = agreement(lambda x: expected[id(x)], lambda x: got[id(x)], real)
    note(f"verified {label} against torch fp32: detections agree {agree} on {len(images or verification_images())} "
         f"photos; raw max |Δ| {d_real:.3g} on photos, {d_noise:.3g} on noise")
    if agree.fraction < min_agreement:
        raise ExportError(f"{label} model's detections agree with the FP32 model's only {agree}, "
                          f"below {min_agreement:.0%}; the export is wrong.")
    return agree

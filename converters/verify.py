"""Self-verification of an export: run the exported model and our torch model on the same
inputs (letterboxed real photos and random noise) and compare.

FP32 exports are judged against the model's own float32 conditioning (`verify_fp32`): a float64
forward of our torch rebuild is the reference, and the export may differ from it by at most
CONDITIONING_FACTOR times what torch's own float32 forward does, plus FP32_TOLERANCE (1e-3,
DESIGN.md's parity tolerance). A well-conditioned model (every checkpoint in the test fixtures:
torch float32 within ~2e-4 of float64) thus keeps a bound of about 1e-3 (measured: such exports
stay within 1.3e-4 of float64); an ill-conditioned one (some
trained and random-weight checkpoints, where float32 rounding alone moves boxes by pixels on
the bundled photos) is not refused for rounding it cannot avoid. Real export faults (a wrong
area split, a dropped bias, a wrong BN eps) move outputs by ≥ 0.06 px on real photos.
FP16 and INT8 exports are compared by their decoded detections instead (`agreement`).
"""

from __future__ import annotations

import copy
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
    import torch

    from converters.checkpoint import LoadedCheckpoint

ASSETS = Path(__file__).parent / "assets"
FP32_TOLERANCE = 1e-3
# An FP32 export may differ from float64 by this many times torch float32's own max |Δ| (+ 1e-3).
CONDITIONING_FACTOR = 8
FLOAT32_ULP = 2.0**-23  # relative spacing of float32 numbers
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


def torch_runner(model: torch.nn.Module, dtype: str = "float32", channels_last: bool = False,
                 reround_seed: int | None = None) -> Runner:
    """Run our torch model on an NCHW numpy array in `dtype` ("float32" or "float64": a float64
    copy of the model); returns output0 in `dtype`. Other float32 rounding of the same network:
    `channels_last` runs that memory format (other kernels); `reround_seed` runs a copy whose
    weights and BN statistics are each moved by up to one float32 ulp, as re-rounding them
    (folding BN into the convs does that) would."""
    import torch

    if dtype == "float64":
        model = copy.deepcopy(model).double()
    if reround_seed is not None:
        model = copy.deepcopy(model)
        g = torch.Generator().manual_seed(reround_seed)
        with torch.no_grad():
            for t in [*model.parameters(), *(b for b in model.buffers() if b.is_floating_point())]:
                factor = 1 + (2 * torch.rand(t.shape, generator=g, dtype=torch.float64) - 1) * FLOAT32_ULP
                t.mul_(factor.to(t.dtype))
    if channels_last:
        model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def run(x: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=dtype)).contiguous(memory_format=fmt)
        with torch.inference_mode():
            return model(tensor).numpy().astype(dtype, copy=False)

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


@dataclass(frozen=True)
class Fp32Check:
    """Max |Δ| against a float64 forward on one set of inputs: the export's and torch float32's."""

    inputs: str
    export: float
    torch32: float

    @property
    def allowed(self) -> float:
        return CONDITIONING_FACTOR * self.torch32 + FP32_TOLERANCE

    @property
    def ok(self) -> bool:
        return self.export <= self.allowed  # False for NaN too

    def __str__(self) -> str:
        return (f"max |Δ| vs float64 on {self.inputs}: export {self.export:.3g}, torch float32 {self.torch32:.3g} "
                f"(allowed {CONDITIONING_FACTOR}*{self.torch32:.3g} + {FP32_TOLERANCE:g} = {self.allowed:.3g})")


def fp32_check(label: str, inputs: Sequence[np.ndarray], reference: Runner, torch32: Sequence[Runner],
               candidate: Runner) -> Fp32Check:
    """Max |Δ| of `candidate` and of torch float32 (the worst of the `torch32` runners) against
    `reference`. Later runners run only while the export is outside the allowance: more samples
    can only raise it, so the verdict is the same as with all of them."""
    expected = [reference(x) for x in inputs]
    export = max(float(np.abs(candidate(x) - e).max()) for x, e in zip(inputs, expected))
    torch_err = 0.0
    for run in torch32:
        torch_err = max([torch_err] + [float(np.abs(run(x) - e).max()) for x, e in zip(inputs, expected)])
        check = Fp32Check(label, export, torch_err)
        if check.ok:
            break
    return check


def verify_fp32(loaded: LoadedCheckpoint, candidate: Runner, hw: tuple[int, int], batch: int) -> list[Fp32Check]:
    """Judge an FP32 export against a float64 forward of `loaded.model`, on photos and on noise:
    it must be within CONDITIONING_FACTOR x torch float32's own error + 1e-3 (ExportError otherwise).

    Torch float32's error is the worst of three samples of float32 rounding of the same network:
    as loaded, in channels-last (other kernels) and with its weights re-rounded by up to one ulp
    (what folding BN into the convs does to the export). Each runs the loaded model, never the
    fused export copy, so a fault in the export cannot raise its own allowance."""
    real, noise = verification_inputs(hw, batch)
    reference = torch_runner(loaded.model, "float64")
    torch32 = [torch_runner(loaded.model), torch_runner(loaded.model, channels_last=True),
               torch_runner(loaded.model, reround_seed=0)]
    checks = [fp32_check(label, inputs, reference, torch32, candidate)
              for label, inputs in (("photos", real), ("noise", noise))]
    for check in checks:
        note(str(check))
    for check in checks:
        if not check.ok:
            raise ExportError(
                f"exported model differs from a float64 PyTorch forward by max |Δ| {check.export:.3g} on "
                f"{check.inputs}, more than {CONDITIONING_FACTOR} x torch float32's own {check.torch32:.3g} "
                f"+ {FP32_TOLERANCE:g}; the export is wrong.")
    return checks


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

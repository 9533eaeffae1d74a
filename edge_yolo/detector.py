"""Detector: model info + backend + letterbox + NMS, behind one call."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backends.base import Backend, BackendInfo
from .backends.cache import file_hash
from .backends.select import create_backend, parse_device
from .backends.triton import is_triton_url
from .detections import Detections
from .errors import EdgeYoloError, InferenceError, ModelLoadError, SourceError, UnsupportedModelError
from .modelinfo import ModelInfo, metadata_value, read_model_info
from .postprocess import MAX_WH, postprocess
from .preprocess import (LetterboxMeta, as_bgr, letterbox_bgr_into, letterbox_into, letterbox_shape, read_image,
                         scale_boxes)

ImageLike = np.ndarray | str | Path
DEFAULT_IMGSZ = 640
DEFAULT_CONF = 0.25
MAX_DYNAMIC_BATCH = 8
LARGE_IMGSZ_PIXELS = 1920 * 1920  # above this a warning gives the cost relative to 640x640

log = logging.getLogger(__name__)


def checked_threshold(name: str, value: float) -> float:
    """`value` as a float; EdgeYoloError naming `name` unless it lies in 0..1."""
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise EdgeYoloError(f"{name} must be a number between 0 and 1, got {value}")
    return value


def _check_imgsz(h: int, w: int) -> None:
    """Refuse sizes class-aware NMS cannot separate; warn about sizes that cost far more than 640."""
    if max(h, w) > MAX_WH:
        raise EdgeYoloError(f"imgsz {h}x{w} is too large: at most {MAX_WH} pixels a side")
    if h * w > LARGE_IMGSZ_PIXELS:
        factor = h * w / DEFAULT_IMGSZ**2
        log.warning("imgsz %dx%d has %.0fx the pixels of %dx%d: expect about %.0fx the inference time and memory",
                    h, w, factor, DEFAULT_IMGSZ, DEFAULT_IMGSZ, factor)


def _pair(imgsz: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(imgsz, int):
        return (imgsz, imgsz)
    h, w = imgsz
    return (int(h), int(w))


def exported_onnx(checkpoint: Path, imgsz: tuple[int, int] | None,
                  frame_shape: tuple[int, int] | None = None) -> Path:
    """The verified ONNX export of `checkpoint` next to it, made on demand and reused only while
    its metadata names these exact checkpoint bytes (sha256) and says it was verified.

    Named `<stem>[_HxW][_forHxW].edge-yolo.onnx` so it never overwrites a user's own `<stem>.onnx`.
    With `frame_shape` (h, w) the export is static at the smallest stride-multiple rectangle
    holding such frames resized to fit imgsz (default the training size): 384x640 for
    720x1280 frames at 640, the input Ultralytics predict gives the .pt itself.
    """
    if not checkpoint.is_file():
        raise ModelLoadError(f"checkpoint not found: {checkpoint}")
    size = "" if imgsz is None else f"_{imgsz[0]}x{imgsz[1]}"
    if frame_shape is not None:
        size += f"_for{frame_shape[0]}x{frame_shape[1]}"
    onnx_path = checkpoint.with_name(f"{checkpoint.stem}{size}.edge-yolo.onnx")
    if onnx_path.exists() and _verified_export_of(onnx_path, file_hash(checkpoint, length=64)):
        return onnx_path
    from converters.export_common import require_export_extra

    require_export_extra(f"running {checkpoint.name} (exported to ONNX on first use)")
    from converters import load_checkpoint
    from converters.export_onnx import export_onnx

    source: Any = checkpoint
    if frame_shape is not None:
        source = load_checkpoint(checkpoint)
        stride = int(max(source.stride))
        base = tuple(math.ceil(v / stride) * stride for v in (imgsz or source.imgsz))
        imgsz = letterbox_shape(frame_shape, base, stride)
    return Path(export_onnx(source, output=onnx_path, imgsz=imgsz))


def _verified_export_of(onnx_path: Path, sha256: str) -> bool:
    try:
        meta = read_model_info(onnx_path).metadata
    except EdgeYoloError:  # unreadable: export again
        return False
    args = metadata_value(meta.get("args"))
    return meta.get("source_sha256") == sha256 and isinstance(args, dict) and args.get("verify") is True


class Detector:
    """A YOLOv12 detector on the best backend that works here.

    Args:
        model: .onnx, OpenVINO IR (.xml or `*_openvino_model/`), .pt checkpoint, or the URL of a
            model served by Triton (grpc://host:8001/NAME, http://host:8000/NAME).
        device: auto, cpu (ONNX Runtime CPU), openvino[:CPU|GPU|NPU|AUTO], cuda[:N], tensorrt[:N], torch,
            triton (a model URL; what auto picks for one).
        conf, iou, max_det, classes, agnostic, multi_label: NMS settings (see postprocess).
            conf defaults to 0.25; `track` runs at its tracker's confidence
            (edge_yolo.tracking.track_conf) unless conf is given.
        imgsz: network input (h, w) or side for dynamic models (rounded up to the stride);
            default the model's metadata imgsz, else 640.
        rect: a model with dynamic height/width gets each batch letterboxed to the smallest
            stride-multiple rectangle that holds the frames resized to fit imgsz (384x640 for
            16:9 frames at 640), as Ultralytics predict does; False pads to the full imgsz.
            Frames of different shapes in one batch always get the full imgsz.
        precision: "auto" (the backend's fastest default) or f32/f16/bf16 where the backend can choose.
        frame_shape: for a .pt run through its ONNX export, the (h, w) of the frames to come:
            the export is then static at their minimal rectangle (see exported_onnx).
        backend_options: backend tuning, e.g. {"threads": 2, "spinning": False} for ORT CPU.

    Calling it on a BGR image (also grayscale or BGRA), an image path, or a list of them
    returns Detections (a list for a list).
    """

    def __init__(self, model: str | Path, device: str = "auto", conf: float | None = None, iou: float = 0.7,
                 max_det: int = 300, classes: Sequence[int] | None = None, agnostic: bool = False,
                 imgsz: int | Sequence[int] | None = None, precision: str = "auto",
                 multi_label: bool = False, rect: bool = True, *, frame_shape: tuple[int, int] | None = None,
                 backend_options: dict[str, Any] | None = None) -> None:
        self._conf_given = conf is not None
        self.conf = checked_threshold("conf", DEFAULT_CONF if conf is None else conf)
        self.iou, self.max_det = checked_threshold("iou", iou), int(max_det)
        self.classes = None if classes is None else [int(c) for c in classes]
        self.agnostic, self.multi_label = bool(agnostic), bool(multi_label)
        requested = None if imgsz is None else _pair(imgsz)
        path: str | Path = model if is_triton_url(model) else Path(model)
        if isinstance(path, Path) and path.suffix.lower() == ".pt" and parse_device(device).kind != "torch":
            path = exported_onnx(path, requested, frame_shape)
            if frame_shape is not None:
                requested = None  # the export's own static size
        self.model_info: ModelInfo = read_model_info(path)
        self.imgsz = self._resolve_imgsz(requested)
        self.rect = bool(rect) and self.model_info.dynamic
        fixed = None if self.rect else self.imgsz  # a rect detector keeps the backend's height/width dynamic
        self.backend: Backend = create_backend(self.model_info, device, precision, fixed, backend_options)
        spec = self.backend.input_spec
        if spec.height is not None and spec.width is not None:
            self.imgsz = (spec.height, spec.width)
            self.rect = False

    def _resolve_imgsz(self, requested: tuple[int, int] | None) -> tuple[int, int]:
        info = self.model_info
        if not info.dynamic:
            fixed = (int(info.input_shape[2]), int(info.input_shape[3]))
            if requested is not None and requested != fixed:
                raise UnsupportedModelError(
                    f"{info.url or info.path.name} has a fixed {fixed[0]}x{fixed[1]} input, so imgsz={requested} "
                    "cannot be used; export it again with that imgsz or with dynamic shapes"
                )
            return fixed
        h, w = requested or info.imgsz or (DEFAULT_IMGSZ, DEFAULT_IMGSZ)
        s = info.stride
        size = (math.ceil(h / s) * s, math.ceil(w / s) * s)
        _check_imgsz(*size)
        return size

    @property
    def backend_info(self) -> BackendInfo:
        """Which backend, device and precision really run, and why better ones were skipped."""
        return self.backend.info

    @property
    def names(self) -> dict[int, str]:
        """Class id → name."""
        return self.model_info.names

    @property
    def batch_size(self) -> int:
        """Frames per backend call: the model's fixed batch, else up to MAX_DYNAMIC_BATCH."""
        return self.backend.input_spec.batch or MAX_DYNAMIC_BATCH

    def preprocess(self, frames: Sequence[np.ndarray]) -> tuple[np.ndarray, list[LetterboxMeta]]:
        """Letterbox up to `batch_size` frames into one backend input; a fixed-batch model's
        input is padded to its batch (the metas list has one entry per real frame)."""
        if not frames:
            raise SourceError("no frames to preprocess")
        spec = self.backend.input_spec
        if spec.batch is not None and len(frames) > spec.batch:
            raise SourceError(f"{len(frames)} frames given but the model takes batches of {spec.batch}")
        frames = [as_bgr(frame) for frame in frames]
        stride = self.model_info.stride if self.rect and len({f.shape[:2] for f in frames}) == 1 else None
        shape = letterbox_shape(frames[0].shape, self.imgsz, stride) if stride else self.imgsz
        if spec.layout == "NHWC":
            inputs = np.empty((spec.batch or len(frames), *shape, 3), np.uint8)
            fill = letterbox_bgr_into
        else:
            inputs = np.empty((spec.batch or len(frames), 3, *shape), spec.dtype)
            fill = letterbox_into
        metas = [fill(frame, dst, self.imgsz, stride) for frame, dst in zip(frames, inputs)]
        inputs[len(frames) :] = inputs[len(frames) - 1]   # pad a fixed-batch model's batch
        return inputs, metas

    def postprocess(self, output0: np.ndarray, metas: Sequence[LetterboxMeta],
                    conf: float | None = None) -> list[Detections]:
        """NMS on a backend output and boxes mapped back onto each frame (one per meta), at
        `conf` or the detector's own confidence threshold."""
        try:
            results = postprocess(output0[: len(metas)], self.conf if conf is None else conf, self.iou,
                                  self.max_det, self.classes, self.agnostic, self.multi_label)
        except UnsupportedModelError as exc:  # not a detector's output: say which model
            raise UnsupportedModelError(f"{self.model_info.path.name}: {exc}") from exc
        names = self.names
        return [
            Detections(scale_boxes(boxes, meta), scores, cls, names, orig_shape=meta.orig_shape)
            for (boxes, scores, cls), meta in zip(results, metas)
        ]

    def _load(self, item: ImageLike) -> np.ndarray:
        if isinstance(item, (str, Path)):
            return read_image(item)
        if isinstance(item, np.ndarray):
            return item
        raise SourceError(f"expected an image array or an image path, got {type(item).__name__}")

    def __call__(self, source: ImageLike | Sequence[ImageLike]) -> Detections | list[Detections]:
        """Detect objects in one image (→ Detections) or a list of images (→ list). Each
        Detections carries its image's `orig_shape`, `path` (for files) and `speed` (ms of the
        three stages for its batch, divided by the batch's frames)."""
        single = isinstance(source, (np.ndarray, str, Path))
        items = [source] if single else list(source)
        out: list[Detections] = []
        step = self.batch_size
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            frames = [self._load(item) for item in chunk]
            t0 = time.perf_counter()
            inputs, metas = self.preprocess(frames)
            t1 = time.perf_counter()
            try:
                output0 = self.backend.infer(inputs)
            except Exception as exc:  # noqa: BLE001 - any backend failure, as our error type
                raise InferenceError.wrap(exc, f"on image {start + 1} of {len(items)}")
            t2 = time.perf_counter()
            results = self.postprocess(output0, metas)
            t3 = time.perf_counter()
            speed = {name: 1e3 * dt / len(frames) for name, dt in
                     (("preprocess", t1 - t0), ("inference", t2 - t1), ("postprocess", t3 - t2))}
            for item, dets in zip(chunk, results):
                dets.speed = speed
                if isinstance(item, (str, Path)):
                    dets.path = str(item)
            out += results
        return out[0] if single else out

    def stream(self, source: Any, **kwargs: Any) -> Any:
        """Detections for every frame of a video, camera, stream, directory or glob, or of a list
        of them run at once through shared backend calls (see pipeline.stream and Pipeline).
        `conf=` sets this run's confidence threshold (default: the detector's)."""
        from .pipeline import stream

        return stream(self, source, **kwargs)

    def track(self, source: Any, tracker: Any = "bytetrack", **kwargs: Any) -> Any:
        """Like `stream`, with each source's detections tracked: they come with `tracker_id` set.

        tracker: bytetrack (default), botsort, ocsort, sort, or an `edge_yolo.tracking.ObjectTracker`
        made with options (`create_tracker("bytetrack", lost_track_buffer=60)`). Needs the
        `track` extra. Unless the detector was made with a conf (or `conf=` is passed here),
        detections are made at the tracker kind's confidence, as `edge-yolo track` does
        (`edge_yolo.tracking.track_conf`: 0.05 for ByteTrack, whose second stage follows
        tracks through low-score boxes).
        """
        kind = tracker if isinstance(tracker, str) else getattr(tracker, "kind", None)
        if "conf" not in kwargs and not self._conf_given and kind is not None:
            from .tracking import track_conf

            kwargs["conf"] = track_conf(kind)
        return self.stream(source, tracker=tracker, **kwargs)

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Detector({self.model_info.path.name}, {self.backend_info.describe()})"


__all__ = ["Detector", "exported_onnx"]

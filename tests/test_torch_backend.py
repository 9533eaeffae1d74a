"""TorchBackend: the Backend protocol over our rebuild, checked against Ultralytics' own `.pt`
predictions on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from converters import LoadedCheckpoint, load_checkpoint
from converters.torch_backend import TorchBackend
from edge_yolo.backends.base import AsyncInfer, Backend
from edge_yolo.errors import EdgeYoloError
from edge_yolo.postprocess import postprocess
from edge_yolo.preprocess import letterbox, read_image, scale_boxes, to_nchw

SHAPES = Path(__file__).parent / "fixtures" / "shapes"


@pytest.fixture(scope="module")
def loaded(shapes_pt: Path) -> LoadedCheckpoint:
    return load_checkpoint(shapes_pt)


@pytest.fixture(scope="module")
def backend(loaded: LoadedCheckpoint) -> TorchBackend:
    return TorchBackend(loaded)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(rb - lt, 0, None)))
    area = lambda r: float((r[2] - r[0]) * (r[3] - r[1]))  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def matched(xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, ref: dict) -> tuple[int, int]:
    """(ours matched in ref, ref matched in ours): same class, IoU >= 0.99, |Δconf| <= 1e-3."""
    rx, rc, rk = np.array(ref["xyxy"]).reshape(-1, 4), np.array(ref["conf"]), np.array(ref["cls"])

    def hit(b: np.ndarray, c: float, k: int, xs: np.ndarray, cs: np.ndarray, ks: np.ndarray) -> bool:
        return any(k == kk and abs(c - cc) <= 1e-3 and iou(b, bb) >= 0.99 for bb, cc, kk in zip(xs, cs, ks))

    ours = sum(hit(b, c, k, rx, rc, rk) for b, c, k in zip(xyxy, conf, cls))
    theirs = sum(hit(b, c, k, xyxy, conf, cls) for b, c, k in zip(rx, rc, rk))
    return ours, theirs


def test_protocol_and_info(backend: TorchBackend) -> None:
    assert isinstance(backend, Backend)
    assert (backend.info.backend, backend.info.device, backend.info.precision) == ("torch", "CPU", "f32")
    spec = backend.input_spec
    assert (spec.layout, spec.dtype, spec.batch, spec.height, spec.width) == ("NCHW", np.float32, None, None, None)


def test_matches_ultralytics_pt_predictions(backend: TorchBackend, val_images: list[Path]) -> None:
    """Rect letterbox (640x480 -> 480x640) as Ultralytics' .pt predict does, 8 photos in one batch."""
    reference = json.loads((SHAPES / "reference_pt_rect.json").read_text())
    s = reference["settings"]
    images = val_images[:8]
    frames, metas = zip(*(letterbox(read_image(p), (480, 640)) for p in images))
    out = backend.infer(to_nchw(list(frames)))
    assert out.dtype == np.float32 and out.shape == (8, 7, 60 * 80 + 30 * 40 + 15 * 20)
    total = ours_hit = ref_hit = ref_total = 0
    for path, meta, (boxes, scores, cls) in zip(images, metas,
                                                 postprocess(out, s["conf"], s["iou"], s["max_det"])):
        ref = reference["images"][path.name]
        a, b = matched(scale_boxes(boxes, meta), scores, cls, ref)
        total, ours_hit, ref_total, ref_hit = total + len(scores), ours_hit + a, ref_total + len(ref["conf"]), ref_hit + b
    assert ref_total > 0
    assert ours_hit >= 0.99 * total and ref_hit >= 0.99 * ref_total


def test_fixed_imgsz_and_bad_input(loaded: LoadedCheckpoint) -> None:
    b = TorchBackend(loaded, imgsz=320)
    assert (b.input_spec.height, b.input_spec.width) == (320, 320)
    assert b.infer(np.zeros((2, 3, 320, 320), np.float32)).shape == (2, 7, 2100)
    with pytest.raises(EdgeYoloError, match="320x320"):
        b.infer(np.zeros((1, 3, 256, 320), np.float32))
    with pytest.raises(EdgeYoloError, match=r"\(B, 3, H, W\)"):
        b.infer(np.zeros((3, 320, 320), np.float32))
    with pytest.raises(EdgeYoloError, match="multiple"):
        TorchBackend(loaded, imgsz=(320, 300))
    with pytest.raises(EdgeYoloError, match="multiples of 32"):
        TorchBackend(loaded).infer(np.zeros((1, 3, 320, 300), np.float32))
    b.close()
    with pytest.raises(EdgeYoloError, match="closed"):
        b.infer(np.zeros((1, 3, 320, 320), np.float32))


def test_async_queue_calls_back_in_order(backend: TorchBackend) -> None:
    x = np.random.default_rng(0).random((1, 3, 256, 256)).astype(np.float32)
    expected = backend.infer(x)
    got: list[tuple[int, np.ndarray]] = []
    queue = backend.async_queue(lambda out, tag: got.append((tag, out)))
    assert isinstance(queue, AsyncInfer)
    for tag in range(3):
        queue.submit(x, tag)
    queue.wait_all()
    assert [t for t, _ in got] == [0, 1, 2]
    for _, out in got:
        np.testing.assert_array_equal(out, expected)


def test_from_path_and_fused_parity(shapes_pt: Path, loaded: LoadedCheckpoint, backend: TorchBackend) -> None:
    """The backend runs a BN-folded copy: the caller's model stays unfused, outputs agree."""
    b = TorchBackend(shapes_pt)
    assert b.loaded.names == {0: "circle", 1: "square", 2: "triangle"}
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in loaded.model.modules())
    x = np.random.default_rng(2).random((1, 3, 320, 320)).astype(np.float32)
    with torch.inference_mode():
        ref = loaded.model(torch.from_numpy(x)).numpy()
    assert float(np.abs(b.infer(x) - ref).max()) <= 1e-3
    assert float(np.abs(backend.infer(x) - ref).max()) <= 1e-3

"""Letterbox and box rescaling, per DESIGN.md (Ultralytics' static-model letterbox)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_yolo.errors import SourceError
from edge_yolo.preprocess import (
    PAD_VALUE, LetterboxMeta, as_bgr, letterbox, letterbox_bgr_into, letterbox_into, letterbox_shape, read_image,
    scale_boxes, to_nchw, to_nhwc,
)


@pytest.mark.parametrize(
    ("h", "w", "resized", "pads"),
    [
        (480, 640, (480, 640), (0, 80, 0, 80)),        # landscape photo: no resize, 80 px top and bottom
        (720, 1280, (360, 640), (0, 140, 0, 140)),     # video frame halves
        (481, 640, (481, 640), (0, 79, 0, 80)),        # odd pad: top round(79.5-0.1)=79, bottom round(79.5+0.1)=80
        (640, 481, (640, 481), (79, 0, 80, 0)),        # portrait, odd pad on the sides
        (1, 1, (640, 640), (0, 0, 0, 0)),              # upscaled without limit
        (4000, 30, (640, 5), (317, 0, 318, 0)),        # very tall: 30*0.16 = 4.8 -> 5 px wide
        (30, 4000, (5, 640), (0, 317, 0, 318)),        # very wide
    ],
)
def test_letterbox_sizes_and_pads(h: int, w: int, resized: tuple[int, int], pads: tuple[int, int, int, int]) -> None:
    image = np.full((h, w, 3), 200, np.uint8)
    out, meta = letterbox(image, (640, 640))
    assert out.shape == (640, 640, 3)
    left, top, right, bottom = pads
    assert meta.pad == (left, top)
    assert meta.orig_shape == (h, w)
    assert meta.ratio == pytest.approx(min(640 / h, 640 / w))
    rh, rw = resized
    assert (out[top : top + rh, left : left + rw] == 200).all()          # the image area
    assert out.sum() == 200 * rh * rw * 3 + PAD_VALUE * (640 * 640 - rh * rw) * 3  # the rest is pad 114
    assert right == 640 - rw - left and bottom == 640 - rh - top


def test_letterbox_uses_inter_linear_resize() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (720, 1280, 3), np.uint8)
    out, meta = letterbox(image, (640, 640))
    expected = cv2.resize(image, (640, 360), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(out[140:500], expected)


def test_letterbox_rectangular_target() -> None:
    out, meta = letterbox(np.zeros((480, 640, 3), np.uint8), (480, 640))
    assert out.shape == (480, 640, 3) and meta.pad == (0, 0) and meta.ratio == 1.0


@pytest.mark.parametrize("shape", [(4000, 30), (30, 4000), (1, 1), (333, 517), (517, 333), (720, 1280)])
def test_box_round_trip(shape: tuple[int, int]) -> None:
    """A square drawn in the original lands where the forward mapping says, and scale_boxes maps back."""
    h, w = shape
    image = np.zeros((h, w, 3), np.uint8)
    box = np.array([[w * 0.25, h * 0.25, w * 0.75, h * 0.75]], np.float32)
    out, meta = letterbox(image, (640, 640))
    forward = box * meta.ratio
    forward[:, [0, 2]] += meta.pad[0]
    forward[:, [1, 3]] += meta.pad[1]
    back = scale_boxes(forward, meta)
    np.testing.assert_allclose(back, box, rtol=1e-5, atol=1e-3)


def test_scale_boxes_clips_to_the_image() -> None:
    meta = LetterboxMeta(orig_shape=(480, 640), ratio=1.0, pad=(0, 80))
    boxes = np.array([[-5, 60, 700, 600]], np.float32)
    np.testing.assert_array_equal(scale_boxes(boxes, meta), [[0, 0, 640, 480]])


def test_grayscale_and_bgra_inputs() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for img in (gray, gray[..., None]):
        bgr = as_bgr(img)
        assert bgr.shape == (3, 4, 3) and (bgr == gray[..., None]).all()
    bgra = np.dstack([np.full((2, 2), v, np.uint8) for v in (10, 20, 30, 255)])
    assert as_bgr(bgra).tolist() == [[[10, 20, 30]] * 2] * 2
    with pytest.raises(SourceError, match="shape"):
        as_bgr(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(SourceError, match="uint8"):
        as_bgr(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(SourceError):
        letterbox(np.zeros((0, 5, 3), np.uint8), (640, 640))


def test_to_nchw_is_rgb_scaled_float() -> None:
    frame = np.zeros((2, 3, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 255, 51, 0     # B, G, R
    x = to_nchw([frame, frame])
    assert x.shape == (2, 3, 2, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[1, :, 0, 0], [0.0, 0.2, 1.0], atol=1e-7)   # R, G, B
    assert to_nchw([frame], np.dtype(np.float16)).dtype == np.float16
    assert to_nhwc([frame]).shape == (1, 2, 3, 3) and to_nhwc([frame, frame]).dtype == np.uint8


def test_read_image_errors(tmp_path) -> None:
    with pytest.raises(SourceError, match="cannot read image"):
        read_image(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(SourceError, match="cannot read image"):
        read_image(bad)


@pytest.mark.parametrize("shape", [(720, 1280), (481, 640), (640, 481), (4000, 30), (1, 1), (480, 640)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_letterbox_into_equals_letterbox_then_to_nchw(shape: tuple[int, int], dtype: type) -> None:
    image = np.random.default_rng(1).integers(0, 255, (*shape, 3), np.uint8)
    boxed, meta = letterbox(image, (640, 640))
    expected = to_nchw([boxed], np.dtype(dtype))[0]
    out = np.full((3, 640, 640), np.nan, dtype)
    assert letterbox_into(image, out) == meta
    np.testing.assert_array_equal(out, expected)
    assert out[0, 0, 0] == dtype(np.float32(114) / np.float32(255)) or meta.pad == (0, 0)


@pytest.mark.parametrize("shape", [(720, 1280), (481, 640), (640, 640), (1, 1), (4000, 30)])
@pytest.mark.parametrize("stride", [None, 32])
def test_letterbox_bgr_into_equals_letterbox(shape: tuple[int, int], stride: int | None) -> None:
    """Letterboxing into a slice of a batch gives letterbox's pixels and meta, whatever the
    buffer held before."""
    image = np.random.default_rng(2).integers(0, 255, (*shape, 3), np.uint8)
    boxed, meta = letterbox(image, (640, 640), stride)
    batch = np.random.default_rng(3).integers(0, 255, (2, *letterbox_shape(shape, (640, 640), stride), 3), np.uint8)
    assert letterbox_bgr_into(image, batch[1], (640, 640), stride) == meta
    np.testing.assert_array_equal(batch[1], boxed)

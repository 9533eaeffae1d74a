"""Letterboxing and batching: frames in, network input out (numpy + OpenCV only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import SourceError

PAD_VALUE = 114


@dataclass(frozen=True)
class LetterboxMeta:
    """How one frame was letterboxed: enough to map boxes back onto it."""

    orig_shape: tuple[int, int]   # (h, w) of the original frame
    ratio: float                  # resize gain r
    pad: tuple[int, int]          # (left, top) padding in network-input pixels


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Return a 3-channel uint8-compatible BGR view of a BGR, grayscale (HxW or HxWx1) or BGRA image."""
    if not isinstance(image, np.ndarray):
        raise SourceError(f"expected an image as a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise SourceError(f"expected an 8-bit image (uint8), got {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise SourceError(f"an image must be HxW, HxWx1, HxWx3 (BGR) or HxWx4 (BGRA), got shape {image.shape}")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR; SourceError when it is missing or not an image."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"cannot read image {path}: missing or not a supported image file")
    return image


@dataclass(frozen=True)
class _Geometry:
    """Where the resized image sits inside the letterboxed input."""

    size: tuple[int, int]         # (w, h) after resizing
    left: int
    top: int
    right: int
    bottom: int
    ratio: float


def _geometry(shape: tuple[int, ...], new_shape: tuple[int, int], stride: int | None = None) -> _Geometry:
    if shape[0] == 0 or shape[1] == 0:
        raise SourceError(f"cannot letterbox an empty image of shape {shape}")
    h, w = shape[:2]
    new_h, new_w = new_shape
    r = min(new_h / h, new_w / w)
    # A 1-pixel-wide image must still have at least one pixel after resizing.
    unpad_w = max(1, min(int(round(w * r)), new_w))
    unpad_h = max(1, min(int(round(h * r)), new_h))
    dw, dh = new_w - unpad_w, new_h - unpad_h
    if stride:  # minimal rectangle: pad only up to the next multiple of the stride
        dw, dh = dw % stride, dh % stride
    dw, dh = dw / 2, dh / 2
    return _Geometry(
        (unpad_w, unpad_h),
        int(round(dw - 0.1)), int(round(dh - 0.1)), int(round(dw + 0.1)), int(round(dh + 0.1)), r,
    )


def letterbox_shape(shape: tuple[int, ...], new_shape: tuple[int, int], stride: int | None = None) -> tuple[int, int]:
    """(h, w) of the letterboxed input for an image of `shape`: `new_shape` itself, or with
    `stride` the smallest stride-multiple rectangle holding the image resized to fit `new_shape`
    (what Ultralytics predict feeds a dynamic model: 384x640 for a 16:9 frame at 640)."""
    g = _geometry(shape, new_shape, stride)
    return (g.size[1] + g.top + g.bottom, g.size[0] + g.left + g.right)


def _resized(image: np.ndarray, g: _Geometry) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == g.size:
        return image
    return cv2.resize(image, g.size, interpolation=cv2.INTER_LINEAR)


def letterbox(image: np.ndarray, new_shape: tuple[int, int],
              stride: int | None = None) -> tuple[np.ndarray, LetterboxMeta]:
    """Resize keeping the aspect ratio and pad to `new_shape` (h, w), as Ultralytics predict does.

    r = min(H/h, W/w) with no upscale limit, INTER_LINEAR, centred, pad 114, pads split with
    the ±0.1 rounding (top = round(dh/2 - 0.1), bottom = round(dh/2 + 0.1)). With `stride`,
    pad only to the minimal stride-multiple rectangle (see letterbox_shape).
    """
    g = _geometry(image.shape, new_shape, stride)
    if not (g.top or g.bottom or g.left or g.right):
        return _resized(image, g), LetterboxMeta(image.shape[:2], g.ratio, (g.left, g.top))
    out = np.empty((g.size[1] + g.top + g.bottom, g.size[0] + g.left + g.right, 3), np.uint8)
    return out, _letterbox_bgr_into(image, out, g)


def letterbox_bgr_into(image: np.ndarray, out: np.ndarray, new_shape: tuple[int, int] | None = None,
                       stride: int | None = None) -> LetterboxMeta:
    """Letterbox a BGR frame straight into `out`, an (H, W, 3) uint8 slice of the network
    input: the same pixels as `letterbox(image, new_shape, stride)[0]` without an intermediate
    image. `new_shape`/`stride` as in letterbox (default: `out`'s own size); `out` must have
    letterbox_shape's size."""
    return _letterbox_bgr_into(image, out, _geometry(image.shape, new_shape or out.shape[:2], stride))


def _letterbox_bgr_into(image: np.ndarray, out: np.ndarray, g: _Geometry) -> LetterboxMeta:
    w, h = g.size
    out[: g.top] = PAD_VALUE
    out[g.top + h :] = PAD_VALUE
    out[g.top : g.top + h, : g.left] = PAD_VALUE
    out[g.top : g.top + h, g.left + w :] = PAD_VALUE
    inner = out[g.top : g.top + h, g.left : g.left + w]
    if (image.shape[1], image.shape[0]) == g.size:
        inner[...] = image
    else:
        cv2.resize(image, g.size, dst=inner, interpolation=cv2.INTER_LINEAR)
    return LetterboxMeta(image.shape[:2], g.ratio, (g.left, g.top))


def letterbox_into(image: np.ndarray, out: np.ndarray, new_shape: tuple[int, int] | None = None,
                   stride: int | None = None) -> LetterboxMeta:
    """Letterbox a BGR frame straight into `out`, a (3, H, W) float slice of the network
    input, as RGB / 255: the same values as `to_nchw(letterbox(...))` without the float
    work on the padding or a separate colour-swap pass. `new_shape`/`stride` as in
    letterbox (default: `out`'s own size); `out` must have letterbox_shape's size."""
    g = _geometry(image.shape, new_shape or out.shape[1:], stride)
    pad = np.float32(PAD_VALUE) / np.float32(255)
    w, h = g.size
    out[:, : g.top] = pad
    out[:, g.top + h :] = pad
    out[:, g.top : g.top + h, : g.left] = pad
    out[:, g.top : g.top + h, g.left + w :] = pad
    planes = cv2.split(_resized(image, g))
    for channel, plane in enumerate(reversed(planes)):  # BGR -> RGB
        np.divide(plane, np.float32(255), out=out[channel, g.top : g.top + h, g.left : g.left + w], casting="unsafe")
    return LetterboxMeta(image.shape[:2], g.ratio, (g.left, g.top))


def to_nchw(frames: list[np.ndarray], dtype: np.dtype = np.float32) -> np.ndarray:
    """Stack letterboxed BGR uint8 frames into an RGB 0..1 NCHW tensor of `dtype`."""
    h, w = frames[0].shape[:2]
    out = np.empty((len(frames), 3, h, w), dtype)
    for frame, dst in zip(frames, out):
        for channel, plane in enumerate(reversed(cv2.split(frame))):
            np.divide(plane, np.float32(255), out=dst[channel], casting="unsafe")
    return out


def to_nhwc(frames: list[np.ndarray]) -> np.ndarray:
    """Stack letterboxed BGR uint8 frames into an NHWC uint8 tensor (for in-graph preprocessing)."""
    return np.stack(frames) if len(frames) > 1 else frames[0][None]


def scale_boxes(boxes: np.ndarray, meta: LetterboxMeta) -> np.ndarray:
    """Map xyxy boxes from network-input pixels back onto the original frame, clipped to it."""
    left, top = meta.pad
    out = boxes.astype(np.float32, copy=True)
    out[:, [0, 2]] -= left
    out[:, [1, 3]] -= top
    out /= meta.ratio
    h, w = meta.orig_shape
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out

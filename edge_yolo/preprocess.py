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


def letterbox(image: np.ndarray, new_shape: tuple[int, int]) -> tuple[np.ndarray, LetterboxMeta]:
    """Resize keeping the aspect ratio and pad to `new_shape` (h, w), as Ultralytics predict does.

    r = min(H/h, W/w) with no upscale limit, INTER_LINEAR, centred, pad 114, pads split with
    the ±0.1 rounding (top = round(dh/2 - 0.1), bottom = round(dh/2 + 0.1)).
    """
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise SourceError(f"cannot letterbox an empty image of shape {image.shape}")
    h, w = image.shape[:2]
    new_h, new_w = new_shape
    r = min(new_h / h, new_w / w)
    unpad_w, unpad_h = int(round(w * r)), int(round(h * r))
    # A 1-pixel-wide image must still have at least one pixel after resizing.
    unpad_w, unpad_h = max(1, min(unpad_w, new_w)), max(1, min(unpad_h, new_h))
    dw, dh = (new_w - unpad_w) / 2, (new_h - unpad_h) / 2
    if (w, h) != (unpad_w, unpad_h):
        image = cv2.resize(image, (unpad_w, unpad_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    if top or bottom or left or right:
        image = cv2.copyMakeBorder(
            image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
        )
    return image, LetterboxMeta((h, w), r, (left, top))


def to_nchw(frames: list[np.ndarray], dtype: np.dtype = np.float32) -> np.ndarray:
    """Stack letterboxed BGR uint8 frames into an RGB 0..1 NCHW tensor of `dtype`."""
    blob = cv2.dnn.blobFromImages(frames, scalefactor=1 / 255, swapRB=True, crop=False)
    return blob if blob.dtype == dtype else blob.astype(dtype)


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

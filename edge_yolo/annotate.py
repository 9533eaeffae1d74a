"""Drawing detections on BGR frames: a box per detection and a filled label with name and score."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

# A fixed palette of distinct colours (BGR), indexed by class id.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
    (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
    (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203),
    (200, 149, 255), (199, 55, 255),
)


def class_color(class_id: int) -> tuple[int, int, int]:
    """The BGR colour used for a class."""
    return PALETTE[int(class_id) % len(PALETTE)]


def _text_color(color: tuple[int, int, int]) -> tuple[int, int, int]:
    b, g, r = color
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def draw_detections(
    image: np.ndarray,
    detections: Any,
    line_width: int | None = None,
    labels: bool = True,
    confidence: bool = True,
) -> np.ndarray:
    """Draw `detections` (xyxy in image pixels) onto `image` in place and return it.

    line_width defaults to about 0.3% of the image diagonal; labels show the class name
    (and the confidence unless `confidence` is False).
    """
    h, w = image.shape[:2]
    lw = line_width or max(round((h + w) / 2 * 0.003), 2)
    font_scale = lw / 3
    thickness = max(lw - 1, 1)
    names = getattr(detections, "names", {}) or {}
    for (x1, y1, x2, y2), score, k in zip(
        np.asarray(detections.xyxy).reshape(-1, 4), detections.confidence, detections.class_id
    ):
        color = class_color(k)
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(image, p1, p2, color, lw, cv2.LINE_AA)
        if not labels:
            continue
        text = str(names.get(int(k), int(k)))
        if confidence:
            text += f" {float(score):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        above = p1[1] - th - base - 3 >= 0
        top = p1[1] - th - base - 3 if above else p1[1]
        cv2.rectangle(image, (p1[0], top), (p1[0] + tw + 2, top + th + base + 3), color, -1, cv2.LINE_AA)
        cv2.putText(image, text, (p1[0] + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    _text_color(color), thickness, cv2.LINE_AA)
    return image

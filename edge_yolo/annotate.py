"""Drawing on BGR frames: a box per detection with a filled label (track id, name, score),
and counting lines and zones with their counts."""

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


def track_color(track_id: int) -> tuple[int, int, int]:
    """The BGR colour of a track: fixed per id, neighbouring ids far apart in the palette."""
    return PALETTE[(int(track_id) * 7) % len(PALETTE)]


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
    (and the confidence unless `confidence` is False). Tracked detections (tracker_id set)
    are coloured by track, and their labels start with `#id`.
    """
    lw = _line_width(image, line_width)
    names = getattr(detections, "names", {}) or {}
    track_ids = getattr(detections, "tracker_id", None)
    for i, ((x1, y1, x2, y2), score, k) in enumerate(zip(
        np.asarray(detections.xyxy).reshape(-1, 4), detections.confidence, detections.class_id
    )):
        color = class_color(k) if track_ids is None else track_color(track_ids[i])
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(image, p1, p2, color, lw, cv2.LINE_AA)
        if not labels:
            continue
        text = str(names.get(int(k), int(k)))
        if track_ids is not None:
            text = f"#{int(track_ids[i])} {text}"
        if confidence:
            text += f" {float(score):.2f}"
        _label(image, text, p1, color, lw)
    return image


def _line_width(image: np.ndarray, line_width: int | None) -> int:
    h, w = image.shape[:2]
    return line_width or max(round((h + w) / 2 * 0.003), 2)


def _label(image: np.ndarray, text: str, corner: tuple[int, int], color: tuple[int, int, int], lw: int) -> None:
    """A filled label above `corner` (below it when there is no room above)."""
    font_scale = lw / 3
    thickness = max(lw - 1, 1)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    above = corner[1] - th - base - 3 >= 0
    top = corner[1] - th - base - 3 if above else corner[1]
    cv2.rectangle(image, (corner[0], top), (corner[0] + tw + 2, top + th + base + 3), color, -1, cv2.LINE_AA)
    cv2.putText(image, text, (corner[0] + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                _text_color(color), thickness, cv2.LINE_AA)


def _format_counts(counts: dict[str, int]) -> str:
    return " ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "0"


COUNTER_COLOR = (255, 255, 255)


def draw_counters(image: np.ndarray, lines: Any = (), zones: Any = (), line_width: int | None = None) -> np.ndarray:
    """Draw `edge_yolo.counting` LineCounters (segment, in/out counts) and ZoneCounters
    (outline, objects inside now and entries so far) onto `image` in place and return it."""
    lw = _line_width(image, line_width)
    for zone in zones:
        corners = np.round(zone.polygon).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [corners], True, COUNTER_COLOR, lw, cv2.LINE_AA)
        c = zone.counts()
        x, y = (int(v) for v in zone.polygon.min(axis=0))
        _label(image, f"inside {_format_counts(c['inside'])} | entries {_format_counts(c['entries'])}",
               (x, y), COUNTER_COLOR, lw)
    for line in lines:
        p1 = tuple(int(round(v)) for v in line.start)
        p2 = tuple(int(round(v)) for v in line.end)
        cv2.line(image, p1, p2, COUNTER_COLOR, lw, cv2.LINE_AA)
        c = line.counts()
        _label(image, f"in {_format_counts(c['in'])} | out {_format_counts(c['out'])}",
               min(p1, p2, key=lambda p: p[0]), COUNTER_COLOR, lw)
    return image

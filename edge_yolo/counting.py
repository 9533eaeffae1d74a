"""Counting tracked objects: crossings of a line (in/out per class) and presence in a zone.

    from edge_yolo.counting import LineCounter, ZoneCounter

    line = LineCounter((0, 360), (1280, 360))           # "in" = crossing downwards here
    zone = ZoneCounter([(100, 100), (600, 100), (600, 500), (100, 500)])
    for frame, detections in detector.track("video.mp4"):
        line.update(detections)
        zone.update(detections)
    print(line.counts(), zone.counts())

Both need detections with `tracker_id` (from a tracker) and follow each track by a point of
its box: the centre by default (`anchor="bottom"`: the middle of the bottom edge, where a
person or car touches the ground). Counts are per class name.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from .errors import EdgeYoloError

ANCHORS = ("center", "bottom")


def anchor_points(detections: Any, anchor: str = "center") -> np.ndarray:
    """(N, 2) points that stand for each box: its centre or the middle of its bottom edge."""
    xyxy = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)
    x = (xyxy[:, 0] + xyxy[:, 2]) / 2
    y = (xyxy[:, 1] + xyxy[:, 3]) / 2 if anchor == "center" else xyxy[:, 3]
    return np.stack([x, y], axis=1)


def _check_anchor(anchor: str) -> str:
    if anchor not in ANCHORS:
        raise EdgeYoloError(f"anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}")
    return anchor


def _tracked(detections: Any) -> tuple[np.ndarray, list[str]]:
    if getattr(detections, "tracker_id", None) is None:
        raise EdgeYoloError("counting needs tracked detections (tracker_id set): track them first")
    return np.asarray(detections.tracker_id), list(detections.class_names)


def parse_numbers(text: str, what: str) -> list[float]:
    """`"10,20,30,40"` → [10.0, 20.0, 30.0, 40.0], with a clear error naming `what`."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise EdgeYoloError(f"{what} must be numbers separated by commas, got {text!r}") from None
    return values


class LineCounter:
    """Counts tracks crossing the segment start→end, per class, in each direction.

    "in" is a crossing from the left of the direction start→end to its right as seen on the
    image (y grows downwards): for a line drawn left to right, moving down; "out" the other
    way. A track is counted each time its anchor point moves from one side to the other
    through the segment (not through the line's extension). `crossed_in` / `crossed_out`
    hold the track ids that crossed in the latest update.
    """

    def __init__(self, start: Sequence[float], end: Sequence[float], anchor: str = "center") -> None:
        self.start = np.asarray(start, dtype=np.float64).reshape(2)
        self.end = np.asarray(end, dtype=np.float64).reshape(2)
        if np.allclose(self.start, self.end):
            raise EdgeYoloError("a counting line needs two different end points")
        self.anchor = _check_anchor(anchor)
        self.in_counts: Counter[str] = Counter()
        self.out_counts: Counter[str] = Counter()
        self.crossed_in: list[int] = []
        self.crossed_out: list[int] = []
        self._last: dict[int, tuple[float, np.ndarray]] = {}  # track id -> (side, point) when last off the line

    @classmethod
    def from_text(cls, text: str, anchor: str = "center") -> LineCounter:
        """From `x1,y1,x2,y2` (the CLI's --line)."""
        v = parse_numbers(text, "--line")
        if len(v) != 4:
            raise EdgeYoloError(f"--line takes x1,y1,x2,y2 (4 numbers), got {text!r}")
        return cls(v[:2], v[2:], anchor)

    def _side(self, points: np.ndarray) -> np.ndarray:
        d = self.end - self.start
        v = points - self.start
        return np.sign(d[0] * v[:, 1] - d[1] * v[:, 0])

    def _through_segment(self, p: np.ndarray, q: np.ndarray) -> bool:
        """Whether the move p→q passes the line within the segment (p and q on opposite sides)."""
        d = self.end - self.start
        m = q - p
        denom = d[0] * m[1] - d[1] * m[0]
        if denom == 0:
            return False
        w = p - self.start
        u = (w[0] * m[1] - w[1] * m[0]) / denom  # where p + t·m meets the line: start + u·d
        return 0.0 <= u <= 1.0

    def update(self, detections: Any) -> None:
        """Account one frame's tracked detections."""
        ids, names = _tracked(detections)
        points = anchor_points(detections, self.anchor)
        sides = self._side(points)
        self.crossed_in, self.crossed_out = [], []
        for tid, name, point, side in zip(ids.tolist(), names, points, sides):
            if side == 0:
                continue
            last = self._last.get(tid)
            self._last[tid] = (side, point)
            if last is None or last[0] == side or not self._through_segment(last[1], point):
                continue
            if side > 0:
                self.in_counts[name] += 1
                self.crossed_in.append(tid)
            else:
                self.out_counts[name] += 1
                self.crossed_out.append(tid)

    def counts(self) -> dict[str, Any]:
        """{"line": [x1, y1, x2, y2], "in": {class: n}, "out": {class: n}} so far."""
        return {"line": [float(v) for v in (*self.start, *self.end)],
                "in": dict(self.in_counts), "out": dict(self.out_counts)}


class ZoneCounter:
    """Objects inside a polygon: how many in the latest frame and how many entries so far, per class.

    An entry is a track whose anchor point comes inside (its first frame inside, or again
    after leaving). `inside_ids` holds the track ids inside after the latest update.
    """

    def __init__(self, polygon: Sequence[Sequence[float]], anchor: str = "center") -> None:
        self.polygon = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(self.polygon) < 3:
            raise EdgeYoloError("a zone needs at least 3 corners")
        self.anchor = _check_anchor(anchor)
        self.inside: Counter[str] = Counter()
        self.entries: Counter[str] = Counter()
        self.inside_ids: set[int] = set()

    @classmethod
    def from_text(cls, text: str, anchor: str = "center") -> ZoneCounter:
        """From `x1,y1,x2,y2,x3,y3,...` (the CLI's --zone)."""
        v = parse_numbers(text, "--zone")
        if len(v) < 6 or len(v) % 2:
            raise EdgeYoloError(f"--zone takes x1,y1,x2,y2,x3,y3,... (3 corners or more), got {text!r}")
        return cls(np.asarray(v).reshape(-1, 2), anchor)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which (N, 2) points lie inside the polygon (even-odd rule; edges count as inside)."""
        import cv2

        contour = self.polygon.astype(np.float32).reshape(-1, 1, 2)
        return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points],
                        dtype=bool)

    def update(self, detections: Any) -> None:
        """Account one frame's tracked detections."""
        ids, names = _tracked(detections)
        inside = self.contains(anchor_points(detections, self.anchor))
        self.inside = Counter(name for name, flag in zip(names, inside) if flag)
        now = {tid for tid, flag in zip(ids.tolist(), inside) if flag}
        for tid, name, flag in zip(ids.tolist(), names, inside):
            if flag and tid not in self.inside_ids:
                self.entries[name] += 1
        self.inside_ids = now

    def counts(self) -> dict[str, Any]:
        """{"zone": [[x, y], ...], "inside": {class: n} (latest frame), "entries": {class: n} (so far)}."""
        return {"zone": self.polygon.tolist(), "inside": dict(self.inside), "entries": dict(self.entries)}

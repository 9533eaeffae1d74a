"""Detections: the result of running a detector on one image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np


class Detections:
    """Boxes found in one image, in that image's pixel coordinates.

    Attributes:
        xyxy: (N, 4) float32 corners x1, y1, x2, y2.
        confidence: (N,) float32 scores.
        class_id: (N,) int64 class indices.
        names: class index -> class name.
        tracker_id: (N,) int64 track ids when a tracker set them, else None.
        orig_shape: (h, w) of the image the boxes belong to (needed by the normalised forms).
        path: the image file, when the detections came from one.
        frame_index: the frame's number in its video or stream, when they came from one.
        speed: milliseconds spent in "preprocess", "inference" and "postprocess".
    """

    __slots__ = ("xyxy", "confidence", "class_id", "names", "tracker_id", "orig_shape", "path",
                 "frame_index", "speed")

    def __init__(
        self,
        xyxy: np.ndarray,
        confidence: np.ndarray,
        class_id: np.ndarray,
        names: dict[int, str] | None = None,
        tracker_id: np.ndarray | None = None,
        orig_shape: tuple[int, int] | None = None,
        path: str | Path | None = None,
        frame_index: int | None = None,
        speed: dict[str, float] | None = None,
    ) -> None:
        self.xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(class_id, dtype=np.int64).reshape(-1)
        self.tracker_id = None if tracker_id is None else np.asarray(tracker_id, dtype=np.int64).reshape(-1)
        n = len(self.xyxy)
        if not (n == len(self.confidence) == len(self.class_id)) or (
                self.tracker_id is not None and len(self.tracker_id) != n):
            raise ValueError("xyxy, confidence, class_id (and tracker_id) must have the same length")
        self.names = dict(names) if names else {}
        self.orig_shape = None if orig_shape is None else (int(orig_shape[0]), int(orig_shape[1]))
        self.path = None if path is None else str(path)
        self.frame_index = None if frame_index is None else int(frame_index)
        self.speed = speed

    @classmethod
    def empty(cls, names: dict[int, str] | None = None, orig_shape: tuple[int, int] | None = None) -> Detections:
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), names,
                   orig_shape=orig_shape)

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """One Detections holding the rows of `parts` in order (e.g. the tiles of one image);
        names and image attributes come from the first part."""
        if not parts:
            return cls.empty()
        first = parts[0]
        tracked = [p.tracker_id for p in parts if len(p)]
        if any(t is None for t in tracked) and not all(t is None for t in tracked):
            raise ValueError("cannot merge tracked with untracked detections")
        tracker = np.concatenate(tracked) if tracked and tracked[0] is not None else None
        return cls(np.concatenate([p.xyxy for p in parts]), np.concatenate([p.confidence for p in parts]),
                   np.concatenate([p.class_id for p in parts]), first.names, tracker,
                   first.orig_shape, first.path, first.frame_index)

    def _with_rows(self, index: Any) -> Detections:
        tracker = None if self.tracker_id is None else self.tracker_id[index]
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], self.names, tracker,
                          self.orig_shape, self.path, self.frame_index, self.speed)

    def __len__(self) -> int:
        return len(self.class_id)

    def __iter__(self) -> Iterator[Detections]:
        for i in range(len(self)):
            yield self[i : i + 1]

    def __getitem__(self, index: int | slice | np.ndarray | list) -> Detections:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return self._with_rows(index)

    def __eq__(self, other: object) -> bool:
        """Same boxes, scores, classes, track ids, names and image shape (speed is ignored)."""
        if not isinstance(other, Detections):
            return NotImplemented
        same_tracks = (self.tracker_id is None and other.tracker_id is None) or (
            self.tracker_id is not None and other.tracker_id is not None
            and np.array_equal(self.tracker_id, other.tracker_id))
        return (same_tracks and np.array_equal(self.xyxy, other.xyxy)
                and np.array_equal(self.confidence, other.confidence)
                and np.array_equal(self.class_id, other.class_id)
                and self.names == other.names and self.orig_shape == other.orig_shape)

    __hash__ = None  # mutable arrays

    def __repr__(self) -> str:
        return f"Detections(n={len(self)}, classes={sorted(set(self.class_names))})"

    @property
    def class_names(self) -> list[str]:
        """The name of each detection's class (the id as text when the model has no names)."""
        return [self.names.get(int(k), str(int(k))) for k in self.class_id]

    @property
    def xywh(self) -> np.ndarray:
        """(N, 4) float32 box centre x, y, width, height in pixels."""
        return _xywh(self.xyxy)

    def _image_scale(self, shape: tuple[int, int] | None = None) -> np.ndarray:
        shape = shape or self.orig_shape
        if shape is None:
            raise ValueError("normalised boxes need orig_shape (the image's (h, w)); "
                             "Detector sets it, or pass orig_shape= when building Detections")
        h, w = shape
        return np.array([w, h, w, h], np.float32)

    @property
    def xyxyn(self) -> np.ndarray:
        """xyxy divided by the image width/height (0..1)."""
        return self.xyxy / self._image_scale()

    @property
    def xywhn(self) -> np.ndarray:
        """xywh divided by the image width/height (0..1): YOLO label coordinates."""
        return self.xywh / self._image_scale()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: {"detections": [{"xyxy", "confidence", "class_id", "class_name"
        [, "track_id"]}]}."""
        rows = [
            {"xyxy": [float(v) for v in box], "confidence": float(c), "class_id": int(k), "class_name": name}
            for box, c, k, name in zip(self.xyxy, self.confidence, self.class_id, self.class_names)
        ]
        if self.tracker_id is not None:
            for row, track in zip(rows, self.tracker_id):
                row["track_id"] = int(track)
        return {"detections": rows}

    def to_json(self, **kwargs: Any) -> str:
        """`to_dict()` as a JSON string (kwargs go to json.dumps, e.g. indent=2)."""
        return json.dumps(self.to_dict(), **kwargs)

    def yolo_lines(self, save_conf: bool = True, shape: tuple[int, int] | None = None) -> list[str]:
        """YOLO label lines `class cx cy w h [conf]`, coordinates normalised to the image
        (of (h, w) `shape`, default orig_shape)."""
        boxes = _xywh(self.xyxy.astype(np.float64)) / self._image_scale(shape).astype(np.float64)
        return [
            f"{int(k)} {a:.6f} {b:.6f} {c:.6f} {d:.6f}" + (f" {float(s):.6f}" if save_conf else "")
            for k, (a, b, c, d), s in zip(self.class_id, boxes, self.confidence)
        ]

    def save_txt(self, path: str | Path, save_conf: bool = True) -> Path:
        """Write YOLO-format labels (one `class cx cy w h [conf]` line per detection) to `path`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in self.yolo_lines(save_conf)))
        return path

    def plot(self, image: np.ndarray | None = None, line_width: int | None = None, labels: bool = True,
             confidence: bool = True) -> np.ndarray:
        """An annotated copy of `image` (BGR), or of the image file at `path` when no image is given."""
        from .annotate import draw_detections
        from .preprocess import as_bgr, read_image

        if image is None:
            if self.path is None:
                raise ValueError("plot() needs the image: pass it, or detect on an image path")
            image = read_image(self.path)
        return draw_detections(as_bgr(image).copy(), self, line_width=line_width, labels=labels,
                               confidence=confidence)

    def to_pandas(self) -> Any:
        """A pandas DataFrame with columns x1, y1, x2, y2, confidence, class_id, class_name
        [, track_id] (needs the `pandas` package)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_pandas() needs the pandas package: pip install pandas") from exc
        columns: dict[str, Any] = {
            "x1": self.xyxy[:, 0], "y1": self.xyxy[:, 1], "x2": self.xyxy[:, 2], "y2": self.xyxy[:, 3],
            "confidence": self.confidence, "class_id": self.class_id, "class_name": self.class_names,
        }
        if self.tracker_id is not None:
            columns["track_id"] = self.tracker_id
        return pd.DataFrame(columns)

    def to_supervision(self) -> Any:
        """These detections as a `supervision.Detections` (needs the `supervision` package)."""
        try:
            import supervision as sv
        except ImportError as exc:
            raise ImportError(
                "to_supervision() needs the supervision package: pip install supervision"
            ) from exc
        return sv.Detections(
            xyxy=self.xyxy.copy(),
            confidence=self.confidence.copy(),
            class_id=self.class_id.astype(int),
            tracker_id=None if self.tracker_id is None else self.tracker_id.astype(int),
            data={"class_name": np.array(self.class_names, dtype=str)},
        )


def _xywh(xyxy: np.ndarray) -> np.ndarray:
    out = np.empty_like(xyxy)
    out[:, :2] = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    out[:, 2:] = xyxy[:, 2:] - xyxy[:, :2]
    return out

"""Detections: the result of running a detector on one image."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np


class Detections:
    """Boxes found in one image, in that image's pixel coordinates.

    Attributes:
        xyxy: (N, 4) float32 corners x1, y1, x2, y2.
        confidence: (N,) float32 scores.
        class_id: (N,) int64 class indices.
        names: class index -> class name.
        tracker_id: (N,) int64 track ids when a tracker has seen these boxes, else None.
    """

    __slots__ = ("xyxy", "confidence", "class_id", "names", "tracker_id")

    def __init__(
        self,
        xyxy: np.ndarray,
        confidence: np.ndarray,
        class_id: np.ndarray,
        names: dict[int, str] | None = None,
        tracker_id: np.ndarray | None = None,
    ) -> None:
        self.xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(class_id, dtype=np.int64).reshape(-1)
        if not (len(self.xyxy) == len(self.confidence) == len(self.class_id)):
            raise ValueError("xyxy, confidence and class_id must have the same length")
        self.names = dict(names) if names else {}
        self.tracker_id = None if tracker_id is None else np.asarray(tracker_id, dtype=np.int64).reshape(-1)
        if self.tracker_id is not None and len(self.tracker_id) != len(self.class_id):
            raise ValueError("tracker_id must have one id per detection")

    @classmethod
    def empty(cls, names: dict[int, str] | None = None) -> Detections:
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), names)

    def __len__(self) -> int:
        return len(self.class_id)

    def __iter__(self) -> Iterator[Detections]:
        for i in range(len(self)):
            yield self[i : i + 1]

    def __getitem__(self, index: int | slice | np.ndarray | list) -> Detections:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        tracker_id = None if self.tracker_id is None else self.tracker_id[index]
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], self.names, tracker_id)

    def __repr__(self) -> str:
        return f"Detections(n={len(self)}, classes={sorted(set(self.class_names))})"

    @property
    def class_names(self) -> list[str]:
        """The name of each detection's class (the id as text when the model has no names)."""
        return [self.names.get(int(k), str(int(k))) for k in self.class_id]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: {"detections": [{"xyxy", "confidence", "class_id", "class_name"}]},
        each with "track_id" too when the detections carry tracker ids."""
        rows = [
            {"xyxy": [float(v) for v in box], "confidence": float(c), "class_id": int(k), "class_name": name}
            for box, c, k, name in zip(self.xyxy, self.confidence, self.class_id, self.class_names)
        ]
        if self.tracker_id is not None:
            for row, tid in zip(rows, self.tracker_id):
                row["track_id"] = int(tid)
        return {"detections": rows}

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

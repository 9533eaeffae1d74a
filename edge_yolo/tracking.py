"""Multi-object tracking of Detections with the `trackers` library: ByteTrack, BoT-SORT, OC-SORT, SORT.

    from edge_yolo import Detector
    from edge_yolo.tracking import create_tracker, track_conf

    tracker = create_tracker("bytetrack")
    detector = Detector("model.onnx", conf=track_conf("bytetrack"))  # 0.05: low-score boxes keep tracks alive
    for frame, detections in detector.stream("video.mp4", tracker=tracker):
        print(frame.index, detections.tracker_id)

A tracker keeps state across the frames of one source: use one per camera (`SourceTrackers`
does that for a multi-source stream). `update()` returns the detections that belong to a
confirmed track, with `tracker_id` set (ids start at 1, unique within the source); boxes the
tracker has not confirmed yet are left out.
Needs the `track` extra (`pip install "edge-yolo[track]"`).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .detections import Detections
from .errors import EdgeYoloError

# kind -> class name in the `trackers` package
TRACKER_CLASSES: dict[str, str] = {
    "bytetrack": "ByteTrackTracker",
    "botsort": "BoTSORTTracker",
    "ocsort": "OCSORTTracker",
    "sort": "SORTTracker",
}
TRACKER_KINDS = tuple(TRACKER_CLASSES)

# Where edge-yolo's defaults differ from the `trackers` library's. Chosen across 14 generated
# sequences (benchmarks/make_track_sequence.py) on two runtimes against Ultralytics' trackers,
# then checked on the fixture; see the README's "Tracking accuracy". The library's 0.6/0.7
# thresholds never start tracks for objects the detector scores lower, and BoT-SORT's
# camera-motion compensation costs 6-40 ms a frame here for no accuracy gain on those sequences.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "bytetrack": {"high_conf_det_threshold": 0.7, "minimum_iou_threshold": 0.2},
    "botsort": {"enable_cmc": False, "track_activation_threshold": 0.5, "high_conf_det_threshold": 0.5,
                "minimum_iou_threshold_first_assoc": 0.3, "minimum_iou_threshold_second_assoc": 0.3},
}

# The detector confidence `track` runs at per kind: ByteTrack's second stage keeps tracks alive
# through boxes scored down to 0.05; SORT has no such stage and only gains false matches from
# them, and BoT-SORT ignores boxes at or below 0.1.
TRACK_CONFS: dict[str, float] = {"bytetrack": 0.05, "botsort": 0.1, "ocsort": 0.1, "sort": 0.1}

# Trackers that use the image itself (BoT-SORT's camera-motion compensation).
_USES_FRAME = {"botsort"}


def track_conf(kind: str) -> float:
    """The detector confidence threshold to track with `kind` at."""
    _tracker_class(kind)
    return TRACK_CONFS[kind]


def _tracker_class(kind: str) -> type:
    if kind not in TRACKER_CLASSES:
        raise EdgeYoloError(f"unknown tracker {kind!r}: choose one of {', '.join(TRACKER_KINDS)}")
    try:
        import trackers
    except ImportError as exc:
        raise EdgeYoloError("tracking needs the trackers package: pip install 'edge-yolo[track]'") from exc
    return getattr(trackers, TRACKER_CLASSES[kind])


def tracker_parameters(kind: str) -> dict[str, Any]:
    """The options a tracker kind accepts, with edge-yolo's defaults (DEFAULT_OPTIONS over the library's)."""
    cls = _tracker_class(kind)
    params = {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name not in ("self", "frame_rate") and p.kind is p.POSITIONAL_OR_KEYWORD
        and isinstance(p.default, (int, float, bool, str))
    }
    return {**params, **DEFAULT_OPTIONS.get(kind, {})}


class ObjectTracker:
    """One tracker (one video source's worth of state) that assigns track ids to Detections.

    Args:
        kind: bytetrack (default), botsort, ocsort or sort.
        frame_rate: the source's frames per second (scales the lost-track buffer and the
            motion model's time step); 30 when unknown.
        **options: the `trackers` class's own settings, e.g. lost_track_buffer=60,
            track_activation_threshold=0.5, minimum_iou_threshold=0.2 (see `tracker_parameters`).
    """

    def __init__(self, kind: str = "bytetrack", frame_rate: float | None = None, **options: Any) -> None:
        cls = _tracker_class(kind)
        accepted = tracker_parameters(kind)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise EdgeYoloError(
                f"{kind} has no option {', '.join(unknown)}; its options are: {', '.join(sorted(accepted))}")
        for name, value in options.items():
            _check_option(kind, name, value, accepted[name])
        self.kind = kind
        self.frame_rate = float(frame_rate) if frame_rate and frame_rate > 0 else 30.0
        self.options = dict(options)
        try:
            self._impl = cls(frame_rate=self.frame_rate, **{**DEFAULT_OPTIONS.get(kind, {}), **self.options})
        except (TypeError, ValueError) as exc:
            raise EdgeYoloError(f"bad {kind} options {self.options}: {exc}") from exc

    def update(self, detections: Detections, frame: np.ndarray | None = None,
               timestamp: float | None = None) -> Detections:
        """Match one frame's detections to the tracks; returns the tracked ones, `tracker_id` set.

        frame: the BGR image (used by BoT-SORT's camera-motion compensation, ignored by the
        others). timestamp: the frame's time in seconds, for sources whose frames are not
        evenly spaced (dropped or skipped frames); None steps the motion model one frame.
        """
        import supervision as sv

        n = len(detections)
        sv_dets = sv.Detections(
            xyxy=detections.xyxy.astype(np.float64),
            confidence=detections.confidence.astype(np.float64),
            class_id=detections.class_id.astype(int),
            data={"index": np.arange(n)},
        ) if n else sv.Detections.empty()
        image = frame if self.kind in _USES_FRAME else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the library warns about its own edge cases per frame
            out = self._impl.update(sv_dets, image, timestamp)
        if len(out) == 0 or out.tracker_id is None:
            return _with_ids(detections, np.zeros(0, np.int64), np.zeros(0, np.int64))
        ids = np.asarray(out.tracker_id, dtype=np.int64)
        index = np.asarray(out.data["index"], dtype=np.int64)
        keep = ids >= 0
        order = np.argsort(index[keep], kind="stable")
        return _with_ids(detections, index[keep][order], ids[keep][order] + 1)  # ids from 1, as in MOTChallenge

    def reset(self) -> None:
        """Forget every track (a new video or scene); ids start again from the beginning."""
        self._impl.reset()

    def __repr__(self) -> str:
        return f"ObjectTracker({self.kind}, {self.options})"


_KIND_OF_VALUE = {bool: "true or false", int: "a whole number", float: "a number", str: "a text"}


def _check_option(kind: str, name: str, value: Any, default: Any) -> None:
    """A tracker option must have its default's type (an int is a valid float), a threshold 0..1."""
    expected = type(default)
    if expected is bool or isinstance(value, bool):
        valid = expected is bool and isinstance(value, bool)
    else:
        valid = isinstance(value, (int, float) if expected is float else expected)
    if not valid:
        raise EdgeYoloError(f"{kind} option {name} takes {_KIND_OF_VALUE[expected]}, got {value!r}")
    if name.endswith("threshold") and not 0 <= value <= 1:
        raise EdgeYoloError(f"{kind} option {name} must be between 0 and 1, got {value}")


def _with_ids(detections: Detections, index: np.ndarray, ids: np.ndarray) -> Detections:
    picked = detections[index]
    return Detections(picked.xyxy, picked.confidence, picked.class_id, picked.names, ids, picked.orig_shape,
                      picked.path, picked.frame_index, picked.speed)


def create_tracker(kind: str = "bytetrack", frame_rate: float | None = None, **options: Any) -> ObjectTracker:
    """A tracker for one source: `create_tracker("bytetrack", lost_track_buffer=60)`."""
    return ObjectTracker(kind, frame_rate, **options)


class SourceTrackers:
    """One tracker per source of a (multi-source) stream, made on the source's first frame.

    tracker: a kind name (options as keywords), or an ObjectTracker used for the first source,
    with new ones of its kind and options for the others. frame_rates: each source's frames per second by source index
    (after any frame skipping), when known.
    """

    def __init__(self, tracker: str | ObjectTracker = "bytetrack", frame_rates: Sequence[float | None] = (),
                 **options: Any) -> None:
        if isinstance(tracker, ObjectTracker):
            self._given: ObjectTracker | None = tracker
            self.kind, self.options = tracker.kind, dict(tracker.options)
        else:
            create_tracker(tracker, **options)  # fail on a bad kind or option before any frame is read
            self._given, self.kind, self.options = None, tracker, dict(options)
        self.frame_rates = list(frame_rates)
        self.trackers: dict[int, ObjectTracker] = {}

    def for_source(self, source_index: int) -> ObjectTracker:
        """The tracker of one source."""
        if source_index not in self.trackers:
            if self._given is not None and not self.trackers:
                self.trackers[source_index] = self._given
            else:
                rate = self.frame_rates[source_index] if source_index < len(self.frame_rates) else None
                self.trackers[source_index] = create_tracker(self.kind, rate, **self.options)
        return self.trackers[source_index]

    def update(self, frame: Any, detections: Detections) -> Detections:
        """Track one `edge_yolo.sources.Frame`'s detections with its source's tracker.

        Each frame is one step of the motion model at the source's frame rate: a live
        source's frame times are read times, which bunch up whenever inference falls behind.
        """
        return self.for_source(frame.source_index).update(detections, frame.image)


def source_frame_rates(sources: Sequence[Any]) -> list[float | None]:
    """Each source's frames per second after its frame skipping (None when unknown)."""
    return [s.fps / getattr(s, "vid_stride", 1) if s.fps else None for s in sources]


def track_frames(pairs: Iterable[tuple[Any, Detections]], trackers: SourceTrackers) -> Iterator[tuple[Any, Detections]]:
    """(frame, detections) → (frame, tracked detections), one tracker per source."""
    for frame, detections in pairs:
        yield frame, trackers.update(frame, detections)

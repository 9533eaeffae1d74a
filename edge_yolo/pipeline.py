"""The threaded detection pipeline behind `Detector.stream` and `edge-yolo detect`.

    reader per source ──► lane (bounded) ─┐
    reader per source ──► lane (bounded) ─┼─► scheduler: batch ready frames, pre, submit
    reader per source ──► lane (bounded) ─┘            │ backend async queue (N requests)
    caller ◄── (frame, detections) per source in order ◄── resequence + post (+ tracker) ◄──┘

Every source has its own reader thread and its own bounded lane: a file's reader waits when
its lane is full, a webcam's lane drops its oldest frame instead (a camera does not wait).
The scheduler gathers the frames that are ready in all lanes, round robin, into one backend
call of up to the model's batch (a fixed-batch model's own batch, a dynamic one up to
`max_batch`); a batch-1 model gets single-frame requests, as many in flight as the backend
takes. Results come back per source in frame order, so a source that stalls, reconnects or
dies holds up nobody else. Decoding, pre-processing, inference and the caller's own work
overlap; a budget of frames alive at once keeps memory flat on endless streams.

Usage::

    for frame, detections in Detector("model.onnx").stream(["cam1.mp4", "rtsp://cam2/live"]):
        print(frame.source, frame.index, frame.time, len(detections))

`frame` is a `edge_yolo.sources.Frame` (`.image` BGR uint8, `.index`, `.time`, `.source`,
`.path`, `.source_index`). Closing the generator (break, exception, Ctrl-C) stops the threads,
waits for in-flight requests and releases the sources.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .detector import checked_threshold
from .errors import InferenceError, SourceError
from .memory import release_free_memory
from .sources import Frame, Source, number_sources, resolve_sources
from .summary import RunStats

log = logging.getLogger(__name__)

_POLL = 0.05
_MAX_WAIT = 1.0  # seconds ready frames wait for a free request before being submitted anyway
MAX_OPEN_FILES = 4


class _End:
    """Marks the end of all results."""


class _Failure:
    """An exception raised in a pipeline thread; `stage` "read" or "infer" (pre-processing
    and inference of a frame)."""

    def __init__(self, exc: BaseException, stage: str = "read") -> None:
        self.exc = exc
        self.stage = stage

    def error(self, frames_done: int) -> BaseException:
        """The exception for the caller: a failed frame becomes an InferenceError."""
        if self.stage != "infer" or not isinstance(self.exc, Exception):
            return self.exc
        return InferenceError.wrap(self.exc, f"after {frames_done} frames")


@dataclass
class _SourceEnd:
    """A lane's last frame has been submitted: it ends once `total` results have been yielded."""

    lane: int
    total: int


@dataclass
class _Lane:
    """One source's way through the pipeline: frames waiting for the scheduler, the sequence
    numbers given to them, and results waiting for their turn."""

    source: Source
    capacity: int
    frames: deque = field(default_factory=deque)
    started: bool = False        # a reader took it
    read_done: bool = False      # the reader finished (end, failure or stop)
    end_sent: bool = False
    submitted: int = 0           # next sequence number to give
    next_out: int = 0            # next sequence number to yield
    total: int | None = None     # frames submitted in all, once known
    pending: dict[int, tuple[np.ndarray, Frame, Any]] = field(default_factory=dict)
    tracker: Any = None
    dropped: int = 0             # webcam frames dropped because the lane was full
    ended: bool = False
    room: threading.Condition | None = None  # its reader waits here for room in `frames`


class Pipeline:
    """Runs `detector` over `sources` at once; iterate it for (Frame, Detections), each source's
    frames in their order (sources interleave as their results arrive).

    queue_size: frames waiting per source between its reader and the scheduler. jobs: backend
    requests in flight (None: the backend's optimal number). max_batch: frames per call to a
    dynamic-batch model (default `detector.batch_size`, 8); a fixed-batch model takes its own
    batch, padded when fewer frames are ready.
    max_open_files: files read at once (the others wait their turn; live sources are always
    read). tracker: None, a tracker (one source only), or a zero-argument factory called once
    per source; its `update(detections, frame)` gets every frame of that source in order and
    what it returns is yielded. on_source_end(source): called in the iterating thread once a
    source's last result has been yielded (also for a source that failed, see `failed`).
    stats: a RunStats to fill (decode, pre, infer, post, track); the caller may add its own
    stages to it. stop: an event that ends the iteration early (checked while waiting for
    results, e.g. on a silent stream). conf: the confidence threshold of this run's detections
    (default: the detector's).
    """

    def __init__(
        self,
        detector: Any,
        sources: Sequence[Source],
        queue_size: int = 2,
        jobs: int | None = None,
        stats: RunStats | None = None,
        stop: threading.Event | None = None,
        *,
        max_batch: int | None = None,
        max_open_files: int = MAX_OPEN_FILES,
        tracker: Any = None,
        on_source_end: Callable[[Source], None] | None = None,
        conf: float | None = None,
    ) -> None:
        if not sources:
            raise SourceError("no source given")
        self.detector = detector
        self.sources = number_sources(list(sources))
        self.stats = stats if stats is not None else RunStats()
        self.failed: list[tuple[Source, BaseException]] = []
        self._tracker_factory = _tracker_factory(tracker, len(self.sources))
        self._on_source_end = on_source_end
        self._conf = None if conf is None else checked_threshold("conf", conf)
        self._stop = threading.Event()
        self._external_stop = stop
        self._queue_size = max(1, queue_size)
        # One lock, and a condition per waiter: the scheduler waits on _work (frames, free
        # requests, frames yielded), each reader on its lane's `room`, so an event wakes only
        # the thread it concerns.
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._lanes = [_Lane(s, self._queue_size, room=threading.Condition(self._lock)) for s in self.sources]
        self._results: queue.Queue = queue.Queue()
        self._jobs = jobs
        self._batch = _batch_limit(detector, max_batch)
        self._max_open_files = max(1, max_open_files)
        self._threads: list[threading.Thread] = []
        self._in_flight = 0      # backend requests submitted and not called back
        self._alive = 0          # frames submitted and not yet yielded
        self._budget = 0
        self._job_limit = 1
        self._rr = 0             # the lane the next batch starts with
        self._started = False
        self._closed = False

    @property
    def dropped(self) -> dict[str, int]:
        """Frames a webcam's lane dropped because the pipeline was slower than the camera."""
        return {lane.source.name: lane.dropped for lane in self._lanes if lane.dropped}

    # -- readers -------------------------------------------------------------------------
    def _read_files(self, pending: deque) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not pending:
                    return
                lane = pending.popleft()
            self._read(lane)

    def _read(self, lane: _Lane) -> None:
        lane.started = True
        try:
            self._read_one(lane)
        except Exception as exc:  # noqa: BLE001 - a dead source ends its own lane only
            if len(self.sources) == 1:
                self._results.put(_Failure(exc))
            else:
                self.failed.append((lane.source, exc))
                log.warning("%s; continuing with the other sources", _describe(exc))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._results.put(_Failure(exc))
        finally:
            with self._lock:
                lane.read_done = True
                self._work.notify()

    def _read_one(self, lane: _Lane) -> None:
        source = lane.source
        it = iter(source)
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                self.stats.add("decode", time.perf_counter() - t0)
                if not self._push(lane, frame):
                    break
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
            source.close()

    def _push(self, lane: _Lane, frame: Frame) -> bool:
        """Put a frame in its lane: a webcam drops its oldest frame, any other source waits for room."""
        with self._lock:
            while len(lane.frames) >= lane.capacity:
                if self._stop.is_set():
                    return False
                if lane.source.kind == "webcam":  # a camera does not wait; a stream's own buffer does
                    lane.frames.popleft()
                    lane.dropped += 1
                    break
                lane.room.wait(_POLL)
            lane.frames.append(frame)
            self._work.notify()
        return not self._stop.is_set()

    # -- scheduler -----------------------------------------------------------------------
    def _submit(self, aq: Any) -> None:
        failure: BaseException | None = None
        try:
            while True:
                batch = self._gather()
                if not batch:
                    break
                t0 = time.perf_counter()
                inputs, metas = self.detector.preprocess([frame.image for _, _, frame in batch])
                t1 = time.perf_counter()
                for _ in batch:
                    self.stats.add("pre", (t1 - t0) / len(batch))
                items = [(lane, seq, frame, meta) for (lane, seq, frame), meta in zip(batch, metas)]
                aq.submit(inputs, (items, t1))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure = exc
        try:
            aq.wait_all()  # a request that fails last is reported here: never drop it
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure = failure or exc
        if failure is not None:
            self._results.put(_Failure(failure, stage="infer"))
        self._results.put(_End())

    def _gather(self) -> list[tuple[int, int, Frame]]:
        """Wait for a batch worth submitting: frames are ready and a request is free, or no
        more frames can join (the batch is full, or every lane still reading is full), or
        they waited _MAX_WAIT; then submitting waits inside the backend and surfaces a request
        that failed without calling back. Returns [] when every source is done (or on stop)."""
        since = time.monotonic()
        with self._lock:
            while not self._stop.is_set():
                ready = sum(len(lane.frames) for lane in self._lanes)
                room = min(self._batch, self._budget - self._alive)
                full = ready >= room or self._saturated() or time.monotonic() - since > _MAX_WAIT
                if ready and room > 0 and (self._in_flight < self._job_limit or full):
                    batch = self._take(room)
                    self._in_flight += 1
                    self._alive += len(batch)
                    self._send_ends()
                    for i in dict.fromkeys(i for i, _, _ in batch):
                        self._lanes[i].room.notify()
                    return batch
                self._send_ends()
                if all(lane.end_sent for lane in self._lanes):
                    return []
                self._work.wait(_POLL)
        return []

    def _saturated(self) -> bool:
        """No lane can add a frame now: each is full, done, or a file still waiting its turn."""
        return all(lane.read_done or not lane.started or len(lane.frames) >= lane.capacity for lane in self._lanes)

    def _take(self, room: int) -> list[tuple[int, int, Frame]]:
        """Up to `room` ready frames, one per lane per round, starting from a rotating lane."""
        batch: list[tuple[int, int, Frame]] = []
        n = len(self._lanes)
        order = [(self._rr + k) % n for k in range(n)]
        self._rr = (self._rr + 1) % n
        while len(batch) < room:
            took = False
            for i in order:
                lane = self._lanes[i]
                if lane.frames and len(batch) < room:
                    batch.append((i, lane.submitted, lane.frames.popleft()))
                    lane.submitted += 1
                    took = True
            if not took:
                break
        return batch

    def _send_ends(self) -> None:
        for i, lane in enumerate(self._lanes):
            if lane.read_done and not lane.frames and not lane.end_sent:
                lane.end_sent = True
                self._results.put(_SourceEnd(i, lane.submitted))

    def _on_result(self, output0: np.ndarray, userdata: Any) -> None:
        items, t_submit = userdata
        elapsed = time.perf_counter() - t_submit
        for _ in items:
            self.stats.add("infer", elapsed)
        self._results.put((items, output0))
        with self._lock:
            self._in_flight -= 1
            self._work.notify()

    # -- consumer side -------------------------------------------------------------------
    def start(self) -> None:
        """Start the threads (iteration does this on first use)."""
        if self._started:
            return
        self._started = True
        aq = self.detector.backend.async_queue(self._on_result, self._jobs)
        self._job_limit = max(1, int(aq.jobs))
        # Frames alive at once: full requests in flight, one finished batch the caller has not
        # taken yet (without it the next batch was cut to the frames already yielded) and one
        # lane's worth.
        self._budget = (self._job_limit + 1) * self._batch + self._queue_size
        files = deque(lane for lane in self._lanes if not lane.source.live)
        at_once = min(self._max_open_files, len(files)) + len(self._lanes) - len(files)
        for lane in self._lanes:
            lane.source.share_cpu(at_once)
        for i, lane in enumerate(lane for lane in self._lanes if lane.source.live):
            self._threads.append(threading.Thread(target=self._read, args=(lane,), name=f"read-live-{i}", daemon=True))
        for i in range(min(self._max_open_files, len(files))):
            self._threads.append(threading.Thread(target=self._read_files, args=(files,), name=f"read-files-{i}",
                                                  daemon=True))
        self._threads.append(threading.Thread(target=self._submit, args=(aq,), name="submit", daemon=True))
        for source in self.sources:  # the summary lists sources in their order, those without frames too
            self.stats.per_source.setdefault(source.name, 0)
        self.stats.started = time.perf_counter()
        for t in self._threads:
            t.start()

    def __iter__(self) -> Iterator[tuple[Frame, Any]]:
        self.start()
        try:
            while True:
                try:
                    item = self._results.get(timeout=_POLL)
                except queue.Empty:
                    if self._external_stop is not None and self._external_stop.is_set():
                        break
                    continue
                if isinstance(item, _Failure):
                    raise item.error(sum(lane.next_out for lane in self._lanes))
                if isinstance(item, _End):
                    break
                if isinstance(item, _SourceEnd):
                    lane = self._lanes[item.lane]
                    lane.total = item.total
                    yield from self._drain(lane)
                    continue
                items, out = item
                for k, (i, seq, frame, meta) in enumerate(items):
                    self._lanes[i].pending[seq] = (out[k : k + 1], frame, meta)
                for i in dict.fromkeys(i for i, _, _, _ in items):
                    yield from self._drain(self._lanes[i])
        finally:
            self.close()

    def _drain(self, lane: _Lane) -> Iterator[tuple[Frame, Any]]:
        """Yield the lane's results that are next in its order; report its end once reached."""
        while lane.next_out in lane.pending:
            output0, frame, meta = lane.pending.pop(lane.next_out)
            lane.next_out += 1
            t0 = time.perf_counter()
            detections = self.detector.postprocess(output0, [meta], self._conf)[0]
            detections.frame_index, detections.path = frame.index, frame.path
            t1 = time.perf_counter()
            self.stats.add("post", t1 - t0)
            if self._tracker_factory is not None:
                if lane.tracker is None:
                    lane.tracker = self._tracker_factory()
                detections = lane.tracker.update(detections, frame)
                self.stats.add("track", time.perf_counter() - t1)
            self.stats.frame_done(lane.source.name)
            yield frame, detections
            with self._lock:
                self._alive -= 1
                self._work.notify()
        if lane.total is not None and lane.next_out == lane.total and not lane.ended:
            lane.ended = True
            if lane.dropped:
                log.warning("%s: dropped %d frames (the pipeline was slower than the source)",
                            lane.source.name, lane.dropped)
            if self._on_source_end is not None:
                self._on_source_end(lane.source)
            release_free_memory()  # after the caller closed the source's outputs too

    def close(self) -> None:
        """Stop reading, finish in-flight requests, join the threads, release the sources."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for source in self.sources:
            stop = getattr(source, "stop", None)
            if stop is not None:
                stop.set()
        with self._lock:
            self._work.notify_all()
            for lane in self._lanes:
                lane.room.notify_all()
        for t in self._threads:
            # A reader blocked on a hung network read is left behind (daemon) rather than hang here.
            t.join(timeout=5.0 if t.name.startswith("read") else None)
        for lane in self._lanes:
            if not lane.started:  # a file whose turn never came
                lane.source.close()
        self.stats.dropped.update(self.dropped)
        self.stats.stop()


def _batch_limit(detector: Any, max_batch: int | None) -> int:
    """Frames per backend call: a fixed-batch model's batch, else `max_batch` or the detector's."""
    if max_batch is not None and max_batch < 1:
        raise SourceError(f"max_batch must be at least 1, got {max_batch}")
    fixed = getattr(getattr(detector.backend, "input_spec", None), "batch", None)
    if fixed:
        return int(fixed)
    return int(max_batch or getattr(detector, "batch_size", 1) or 1)


def _tracker_factory(tracker: Any, sources: int) -> Callable[[], Any] | None:
    """A factory giving each source its tracker: `tracker` itself when it is one (a class or
    a function), or one returning a single tracker instance (only for one source)."""
    if tracker is None:
        return None
    if hasattr(tracker, "update") and not isinstance(tracker, type):
        if sources > 1:
            raise ValueError("one tracker instance cannot follow several sources; pass a factory "
                             "(a function returning a new tracker) to give each source its own")
        return lambda: tracker
    if not callable(tracker):
        raise TypeError(f"tracker must be a tracker (with .update) or a factory making one, got {type(tracker).__name__}")
    return tracker


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, SourceError) else f"source failed: {type(exc).__name__}: {exc}"


def stream(
    detector: Any,
    source: Any,
    *,
    vid_stride: int = 1,
    queue_size: int = 2,
    jobs: int | None = None,
    stats: RunStats | None = None,
    max_batch: int | None = None,
    max_open_files: int = MAX_OPEN_FILES,
    tracker: Any = None,
    on_source_end: Callable[[Source], None] | None = None,
    conf: float | None = None,
) -> Iterator[tuple[Frame, Any]]:
    """Yield (Frame, Detections) for every frame of `source`, pipelined, each source in order.

    `source` is anything `edge_yolo.sources.resolve_sources` accepts (path, glob, directory,
    video, webcam index, stream URL, .txt list, or a list of those) or a list of Source
    objects. Several sources run at once through shared backend calls; `frame.source_index`
    and `frame.source` tell them apart. `tracker` (a kind such as "bytetrack", an
    `edge_yolo.tracking.ObjectTracker`, or a `SourceTrackers`) tracks each source's
    detections: they come with `tracker_id` set. See `Pipeline` for the other arguments.
    """
    if isinstance(source, Source):
        sources: list[Source] = [source]
    elif isinstance(source, (list, tuple)) and source and all(isinstance(s, Source) for s in source):
        sources = list(source)
    else:
        sources = resolve_sources(source, vid_stride=vid_stride)
    results: Iterator[tuple[Frame, Any]] = iter(Pipeline(
        detector, sources, queue_size=queue_size, jobs=jobs, stats=stats, max_batch=max_batch,
        max_open_files=max_open_files, on_source_end=on_source_end, conf=conf))
    if tracker is not None:
        from .tracking import SourceTrackers, source_frame_rates, track_frames

        if not isinstance(tracker, SourceTrackers):
            tracker = SourceTrackers(tracker, source_frame_rates(sources))
        results = track_frames(results, tracker)
    yield from results

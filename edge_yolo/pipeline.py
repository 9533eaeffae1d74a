"""The threaded detection pipeline behind `Detector.stream` and `edge-yolo detect`.

    reader thread(s) ──frames──► pre+submit thread ──► backend async queue (N requests)
                                                            │ callbacks, completion order
    caller ◄── (frame, detections), source order ◄── reorder + postprocess ◄──┘

Decoding, pre-processing and inference overlap; the caller's own work (drawing, writing)
overlaps with them too, because the pipeline keeps decoding and inferring while the caller
handles a result. Every queue is bounded and a semaphore limits the frames alive at once, so
memory stays flat on endless streams. Results come out in the order frames were read.

Usage::

    for frame, detections in Detector("model.onnx").stream("video.mp4"):
        print(frame.index, frame.time, len(detections))

`frame` is a `edge_yolo.sources.Frame` (`.image` BGR uint8, `.index`, `.time`, `.source`,
`.path`, `.source_index`). Closing the generator (break, exception, Ctrl-C) stops the threads,
waits for in-flight requests and releases the sources.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Iterator, Sequence

import numpy as np

from .errors import SourceError
from .sources import Frame, Source, resolve_sources
from .summary import RunStats

log = logging.getLogger(__name__)

_POLL = 0.05


class _End:
    """Marks the end of one producer's frames (or of all results)."""


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Pipeline:
    """Runs `detector` over `sources`; iterate it for (Frame, Detections) in source order.

    queue_size: frames waiting between reader and pre-processing. jobs: backend requests in
    flight (None: the backend's optimal number). stats: a RunStats to fill (decode, pre,
    infer, post); the caller may add its own stages to it. stop: an event that ends the
    iteration early (checked while waiting for results, e.g. on a silent stream).
    """

    def __init__(
        self,
        detector: Any,
        sources: Sequence[Source],
        queue_size: int = 2,
        jobs: int | None = None,
        stats: RunStats | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        if not sources:
            raise SourceError("no source given")
        self.detector = detector
        self.sources = list(sources)
        self.stats = stats if stats is not None else RunStats()
        self.failed: list[tuple[Source, BaseException]] = []
        self._stop = threading.Event()
        self._external_stop = stop
        self._frames: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._done: queue.Queue = queue.Queue()
        self._jobs = jobs
        self._threads: list[threading.Thread] = []
        self._slots: threading.Semaphore | None = None
        self._started = False
        self._closed = False

    # -- producer side -------------------------------------------------------------------
    def _put(self, q: queue.Queue, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _read(self, sources: list[Source]) -> None:
        try:
            for source in sources:
                if self._stop.is_set():
                    break
                try:
                    self._read_one(source)
                except SourceError as exc:
                    if len(self.sources) == 1:
                        raise
                    self.failed.append((source, exc))
                    log.warning("%s; continuing with the other sources", exc)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._put(self._frames, _Failure(exc))
        finally:
            for source in sources:  # those not reached when stopped early
                source.close()
            self._put(self._frames, _End())

    def _read_one(self, source: Source) -> None:
        it = iter(source)
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                self.stats.add("decode", time.perf_counter() - t0)
                if not self._put(self._frames, frame):
                    break
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
            source.close()

    def _submit(self, producers: int, aq: Any) -> None:
        ended = 0
        seq = 0
        try:
            while ended < producers:
                try:
                    item = self._frames.get(timeout=_POLL)
                except queue.Empty:
                    if self._stop.is_set():
                        break
                    continue
                if isinstance(item, _End):
                    ended += 1
                    continue
                if isinstance(item, _Failure):
                    self._done.put(item)
                    break
                if not self._acquire_slot():
                    break
                t0 = time.perf_counter()
                inputs, metas = self.detector.preprocess([item.image])
                t1 = time.perf_counter()
                self.stats.add("pre", t1 - t0)
                aq.submit(inputs, (seq, item, metas[0], t1))
                seq += 1
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._done.put(_Failure(exc))
        finally:
            try:
                aq.wait_all()
            finally:
                self._done.put(_End())

    def _acquire_slot(self) -> bool:
        assert self._slots is not None
        while not self._stop.is_set():
            if self._slots.acquire(timeout=_POLL):
                return True
        return False

    def _on_result(self, output0: np.ndarray, userdata: Any) -> None:
        seq, frame, meta, t_submit = userdata
        self.stats.add("infer", time.perf_counter() - t_submit)
        # The backend may reuse its output buffer for the next request.
        self._done.put((seq, np.array(output0, copy=True), frame, meta))

    # -- consumer side -------------------------------------------------------------------
    def start(self) -> None:
        """Start the threads (iteration does this on first use)."""
        if self._started:
            return
        self._started = True
        aq = self.detector.backend.async_queue(self._on_result, self._jobs)
        # Frames alive at once: requests in flight plus one queue's worth waiting for the caller.
        in_flight = aq.jobs
        self._slots = threading.Semaphore(int(in_flight) + self._frames.maxsize)
        groups = [[s for s in self.sources if not s.live]] + [[s] for s in self.sources if s.live]
        groups = [g for g in groups if g]
        for i, group in enumerate(groups):
            self._threads.append(threading.Thread(target=self._read, args=(group,), name=f"read-{i}", daemon=True))
        self._threads.append(threading.Thread(target=self._submit, args=(len(groups), aq), name="submit", daemon=True))
        self.stats.started = time.perf_counter()
        for t in self._threads:
            t.start()

    def __iter__(self) -> Iterator[tuple[Frame, Any]]:
        self.start()
        pending: dict[int, tuple[np.ndarray, Frame, Any]] = {}
        next_seq = 0
        finished = False
        try:
            while True:
                if next_seq in pending:
                    output0, frame, meta = pending.pop(next_seq)
                    next_seq += 1
                    t0 = time.perf_counter()
                    detections = self.detector.postprocess(output0, [meta])[0]
                    detections.frame_index, detections.path = frame.index, frame.path
                    self.stats.add("post", time.perf_counter() - t0)
                    self.stats.frame_done()
                    yield frame, detections
                    assert self._slots is not None
                    self._slots.release()
                    continue
                if finished:
                    break
                try:
                    item = self._done.get(timeout=_POLL)
                except queue.Empty:
                    if self._external_stop is not None and self._external_stop.is_set():
                        break
                    continue
                if isinstance(item, _Failure):
                    raise item.exc
                if isinstance(item, _End):
                    finished = True
                    continue
                seq, output0, frame, meta = item
                pending[seq] = (output0, frame, meta)
        finally:
            self.close()

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
        if not self._started:
            for source in self.sources:
                source.close()
        for t in self._threads:
            # A reader blocked on a hung network read is left behind (daemon) rather than hang here.
            t.join(timeout=5.0 if t.name.startswith("read") else None)
        self.stats.stop()


def stream(
    detector: Any,
    source: Any,
    *,
    vid_stride: int = 1,
    queue_size: int = 2,
    jobs: int | None = None,
    stats: RunStats | None = None,
) -> Iterator[tuple[Frame, Any]]:
    """Yield (Frame, Detections) for every frame of `source`, pipelined, in order.

    `source` is anything `edge_yolo.sources.resolve_sources` accepts (path, glob, directory,
    video, webcam index, stream URL, .txt list, or a list of those) or a list of Source objects.
    """
    if isinstance(source, Source):
        sources: list[Source] = [source]
    elif isinstance(source, (list, tuple)) and source and all(isinstance(s, Source) for s in source):
        sources = list(source)
    else:
        sources = resolve_sources(source, vid_stride=vid_stride)
    yield from Pipeline(detector, sources, queue_size=queue_size, jobs=jobs, stats=stats)

"""The threaded pipeline with the real model: order, parity with the reference, bounded memory,
clean shutdown, error propagation, dead sources among live ones."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np
import pytest

from edge_yolo.backends.threaded import ThreadedAsyncInfer
from edge_yolo.detector import Detector
from edge_yolo.errors import InferenceError
from edge_yolo.pipeline import Pipeline, stream
from edge_yolo.sources import Frame, ImageFiles, LiveSource, Source, VideoFile


@pytest.fixture(scope="module")
def ort_detector(ul_onnx: Path) -> Iterator[Detector]:
    det = Detector(ul_onnx, device="cpu", backend_options={"spinning": False})
    yield det
    det.close()


def as_ref(dets: Any) -> dict:
    return {"xyxy": dets.xyxy.tolist(), "conf": dets.confidence.tolist(), "cls": dets.class_id.tolist()}


def test_stream_matches_reference_and_single_calls(ort_detector: Detector, video_path: Path,
                                                   reference_video: list[dict], match_fraction: Any) -> None:
    results = list(ort_detector.stream(video_path, vid_stride=5))
    indices = [frame.index for frame, _ in results]
    assert indices == list(range(0, 150, 5))
    ours = [as_ref(d) for _, d in results]
    assert min(match_fraction(ours, [reference_video[i] for i in indices])) >= 0.99
    for frame, dets in results[:5]:  # the Python call API gives the same detections
        single = ort_detector(frame.image)
        np.testing.assert_allclose(single.xyxy, dets.xyxy, atol=1e-4)
        np.testing.assert_array_equal(single.class_id, dets.class_id)


def test_openvino_async_queue_keeps_order(ul_openvino: Path, video_path: Path, reference_video: list[dict],
                                          match_fraction: Any) -> None:
    det = Detector(ul_openvino, device="openvino", precision="f32")
    results = list(stream(det, video_path, vid_stride=10, jobs=4))
    indices = [frame.index for frame, _ in results]
    assert indices == list(range(0, 150, 10))
    ours = [as_ref(d) for _, d in results]
    assert min(match_fraction(ours, [reference_video[i] for i in indices])) >= 0.99


class ShuffledQueue:
    """Real inference, but callbacks delivered in reverse order per group of 4 submissions:
    deterministic out-of-order completion to exercise the reorder buffer."""

    jobs = 4  # requests held before they call back

    def __init__(self, infer: Any, callback: Any) -> None:
        self.infer, self.callback, self.held = infer, callback, []

    def submit(self, inputs: np.ndarray, userdata: Any) -> None:
        self.held.append((self.infer(inputs), userdata))
        if len(self.held) == 4:
            self.wait_all()

    def wait_all(self) -> None:
        for out, userdata in reversed(self.held):
            self.callback(out, userdata)
        self.held = []


def wrapped(det: Detector, queue: Any = None, infer: Any = None) -> Any:
    backend = SimpleNamespace(
        infer=infer or det.backend.infer,
        async_queue=lambda cb, jobs=None: (queue or ShuffledQueue)(infer or det.backend.infer, cb),
    )
    return SimpleNamespace(preprocess=det.preprocess, postprocess=det.postprocess, backend=backend)


def test_reorder_buffer_restores_source_order(ort_detector: Detector, video_path: Path) -> None:
    plain = {f.index: d for f, d in stream(ort_detector, video_path, vid_stride=15)}
    shuffled = list(stream(wrapped(ort_detector), video_path, vid_stride=15))
    assert [f.index for f, _ in shuffled] == sorted(plain)
    for frame, dets in shuffled:
        np.testing.assert_array_equal(dets.xyxy, plain[frame.index].xyxy)


class Counting(Source):
    """Wraps a source and counts frames handed to the pipeline."""

    def __init__(self, inner: Source) -> None:
        self.inner, self.name, self.kind, self.produced = inner, inner.name, inner.kind, 0

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.inner:
            self.produced += 1
            yield frame

    def close(self) -> None:
        self.inner.close()


def test_slow_consumer_keeps_memory_bounded(ort_detector: Detector, video_path: Path) -> None:
    source = Counting(VideoFile(video_path, vid_stride=4))
    pipe = Pipeline(ort_detector, [source], queue_size=2, jobs=1)
    lead = 0
    for consumed, _ in enumerate(pipe, start=1):
        time.sleep(0.05)
        lead = max(lead, source.produced - consumed)
    assert consumed == 38
    assert lead <= 1 + 2 * 2 + 2  # in flight + two bounded queues + one frame in each thread's hand


def test_break_stops_threads_and_closes_source(ort_detector: Detector, video_path: Path) -> None:
    source = VideoFile(video_path)
    for i, _ in enumerate(stream(ort_detector, source)):
        if i == 2:
            break
    alive = [t.name for t in threading.enumerate() if t.name.startswith(("read-", "submit"))]
    assert alive == []
    assert source._container is None  # released


def failing_on(call: int, infer: Any) -> Any:
    """A real backend's infer that raises on its `call`-th call (a device failure cannot be
    provoked on demand here)."""
    calls = []

    def run(inputs: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == call:
            raise RuntimeError("device lost")
        return infer(inputs)

    return run


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("failing", [3, 15])  # 15: the last of the 15 frames, still in flight at the end
def test_backend_failure_reaches_the_caller(ort_detector: Detector, video_path: Path, failing: int,
                                            jobs: int) -> None:
    infer = failing_on(failing, ort_detector.backend.infer)
    det = wrapped(ort_detector, queue=lambda run, cb: ThreadedAsyncInfer(run, cb, jobs), infer=infer)
    delivered = []
    with pytest.raises(InferenceError, match="inference failed after [0-9]+ frames: RuntimeError: device lost"):
        for frame, _ in stream(det, video_path, vid_stride=10):
            delivered.append(frame.index)
    assert delivered == list(range(0, 10 * (failing - 1), 10))[: len(delivered)]
    assert len(delivered) < failing


def test_shuffled_queue_failure_reaches_the_caller(ort_detector: Detector, video_path: Path) -> None:
    det = wrapped(ort_detector, infer=failing_on(3, ort_detector.backend.infer))
    with pytest.raises(InferenceError, match="device lost"):
        list(stream(det, video_path, vid_stride=10))


class FinishesWhenPolled(Future):
    """A request that completes (with an error) exactly while the queue scans for failures:
    the first done() sees it running and then lets it fail, deterministically."""

    def done(self) -> bool:
        running = super().done()
        if not running:
            self.set_exception(RuntimeError("frame 7 failed"))
        return running


def test_threaded_queue_never_drops_a_failure_finishing_mid_scan() -> None:
    aq = ThreadedAsyncInfer(lambda x: x, lambda out, userdata: None)
    aq._futures.append(FinishesWhenPolled())
    aq.submit(np.zeros(1), None)  # the scan sees the request still running: it must keep it
    with pytest.raises(RuntimeError, match="frame 7 failed"):
        aq.wait_all()


class Closed:
    def isOpened(self) -> bool:  # noqa: N802
        return False

    def release(self) -> None:
        pass


def test_dead_stream_among_several_sources(ort_detector: Detector, val_images: list[Path],
                                           caplog: pytest.LogCaptureFixture) -> None:
    dead = LiveSource("rtsp://gone/cam", opener=lambda t: Closed(), reconnects=1, backoff=0.01)
    images = ImageFiles(val_images[:2], "val")
    images.source_index = 1
    pipe = Pipeline(ort_detector, [dead, images])
    with caplog.at_level(logging.WARNING):
        results = list(pipe)
    assert [f.path.name for f, _ in results] == [p.name for p in val_images[:2]]
    assert [s for s, _ in pipe.failed] == [dead]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.split(": failed after")[0] for w in warnings[:2]] == ["cannot open stream rtsp://gone/cam"] * 2
    assert warnings[2:] == ["cannot open stream rtsp://gone/cam (tried 2 times); continuing with the other sources"]


class SilentCamera(Closed):
    """Connects, but every read stalls and then fails, so no frame ever arrives."""

    def isOpened(self) -> bool:  # noqa: N802
        return True

    def read(self) -> tuple[bool, None]:
        time.sleep(0.05)
        return False, None


def test_stop_event_ends_a_wait_on_a_silent_stream(ort_detector: Detector) -> None:
    stop = threading.Event()
    silent = LiveSource("rtsp://quiet/cam", opener=lambda t: SilentCamera(), reconnects=1000, backoff=0.01)
    threading.Timer(0.3, stop.set).start()
    t0 = time.monotonic()
    assert list(Pipeline(ort_detector, [silent], stop=stop)) == []
    assert time.monotonic() - t0 < 3


def test_detector_call_failure_is_an_inference_error(ort_detector: Detector, val_images: list[Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort_detector.backend, "infer", failing_on(2, ort_detector.backend.infer))
    with pytest.raises(InferenceError, match="inference failed on image 2 of 3: RuntimeError: device lost"):
        ort_detector(val_images[:3])


def test_openvino_failure_inside_inference_is_raised(tmp_path: Path) -> None:
    # A real OpenVINO model whose inference fails for some input sizes (a Reshape to 7 rows:
    # 7x7 frames pass, 8x8 fail inside the CPU plugin, after start_async has returned).
    ov = pytest.importorskip("openvino")
    from openvino import opset13 as ops

    from edge_yolo.backends.openvino import OpenVinoBackend
    from edge_yolo.errors import EdgeYoloError

    images = ops.parameter([1, 3, -1, -1], np.float32, name="images")
    rows = ops.reshape(images, ops.constant(np.array([1, 7, -1], np.int64)), special_zero=False)
    ov.save_model(ov.Model([rows], [images], "fails_on_8x8"), str(tmp_path / "model.xml"))
    backend = OpenVinoBackend(tmp_path / "model.xml", "CPU", precision="f32")
    done: list[int] = []
    queue = backend.async_queue(lambda out, i: done.append(i))
    good, bad = np.zeros((1, 7, 7, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(EdgeYoloError, match="openvino inference failed: .*Reshape"):
        for i, frame in enumerate([good, bad] + [good] * (2 * queue.jobs)):
            queue.submit(frame, i)
        queue.wait_all()
    queue.wait_all()  # the failure is reported once; the other requests still finish
    assert 0 in done and 1 not in done
    queue.close()
    with pytest.raises(EdgeYoloError, match="closed"):
        queue.submit(good, 99)
    backend.close()

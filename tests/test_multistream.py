"""Many sources through one pipeline, on the real model and copies of the real video: each
source's detections and frame order equal a run of that source alone, frames of several
sources share backend calls, and a camera that stalls or dies holds up nobody else.

No camera can be attached here, so the cameras below are stand-ins (said where they are used):
a real cv2.VideoCapture on the fixture video, wrapped to stall or to fail after some frames."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import pytest

from edge_yolo.detector import Detector
from edge_yolo.errors import InferenceError
from edge_yolo.pipeline import Pipeline, stream
from edge_yolo.sources import Frame, LiveSource, Source, VideoFile, available_cores

from test_cli_detect import jsonl, run_cli, video_frames

STRIDE = 10
INDICES = list(range(0, 150, STRIDE))


@pytest.fixture(scope="module")
def ort_detector(ul_onnx: Path) -> Iterator[Detector]:
    det = Detector(ul_onnx, device="cpu", backend_options={"spinning": False})
    yield det
    det.close()


@pytest.fixture(scope="module")
def alone(ort_detector: Detector, video_path: Path) -> list[Any]:
    """The video's detections (every STRIDE-th frame) from a pipeline with that source alone."""
    results = list(stream(ort_detector, VideoFile(video_path, vid_stride=STRIDE)))
    assert [f.index for f, _ in results] == INDICES
    return [d for _, d in results]


def by_source(results: list[tuple[Frame, Any]]) -> dict[int, list[tuple[Frame, Any]]]:
    out: dict[int, list[tuple[Frame, Any]]] = {}
    for frame, dets in results:
        out.setdefault(frame.source_index, []).append((frame, dets))
    return out


def assert_same(ours: list[Any], ref: list[Any]) -> None:
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
        np.testing.assert_array_equal(a.confidence, b.confidence)
        np.testing.assert_array_equal(a.class_id, b.class_id)


def test_three_copies_equal_each_alone_and_interleave(ort_detector: Detector, video_path: Path,
                                                      alone: list[Any]) -> None:
    sources = [VideoFile(video_path, vid_stride=STRIDE) for _ in range(3)]
    ended: list[int] = []
    pipe = Pipeline(ort_detector, sources, on_source_end=lambda s: ended.append(s.source_index))
    results = list(pipe)
    groups = by_source(results)
    assert sorted(groups) == [0, 1, 2]
    for group in groups.values():
        assert [f.index for f, _ in group] == INDICES  # each source in its own frame order
        assert_same([d for _, d in group], alone)
    # All three ran at once: every source had a result before any source had all of them.
    order = [f.source_index for f, _ in results]
    assert max(order.index(i) for i in range(3)) < min(len(order) - order[::-1].index(i) - 1 for i in range(3))
    assert sorted(ended) == [0, 1, 2]
    assert pipe.stats.per_source == {"video": len(INDICES), "video_2": len(INDICES), "video_3": len(INDICES)}


def test_openvino_requests_in_flight_keep_each_source_exact(ul_openvino: Path, video_path: Path) -> None:
    det = Detector(ul_openvino, device="openvino", precision="f32")
    ref = [d for _, d in stream(det, VideoFile(video_path, vid_stride=15), jobs=4)]
    results = list(stream(det, [VideoFile(video_path, vid_stride=15) for _ in range(2)], jobs=4))
    for group in by_source(results).values():
        assert [f.index for f, _ in group] == list(range(0, 150, 15))
        assert_same([d for _, d in group], ref)
    det.close()


class RecordingInfer:
    """Counts the frames of every real backend call (inference itself is untouched)."""

    def __init__(self, infer: Any) -> None:
        self.infer, self.batches = infer, []

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        self.batches.append(len(inputs))
        return self.infer(inputs)


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory: pytest.TempPathFactory, shapes_pt: Path) -> Path:
    """shapes_pt exported with a dynamic batch (verification is the export tests' job)."""
    from converters import export_onnx

    return export_onnx(shapes_pt, output=tmp_path_factory.mktemp("dyn") / "dyn.onnx", imgsz=640, dynamic=True,
                       verify=False)


def test_dynamic_batch_model_batches_frames_of_several_sources(dynamic_onnx: Path, video_path: Path) -> None:
    det = Detector(dynamic_onnx, device="cpu", backend_options={"spinning": False})
    assert det.batch_size == 8
    alone = [det(frame.image) for frame in VideoFile(video_path, vid_stride=STRIDE)]  # one frame per call
    recorder = RecordingInfer(det.backend.infer)
    det.backend.infer = recorder  # async_queue runs `self.infer`
    results = list(stream(det, [VideoFile(video_path, vid_stride=STRIDE) for _ in range(4)], max_batch=4))
    for group in by_source(results).values():
        assert [f.index for f, _ in group] == INDICES
        assert_same([d for _, d in group], alone)  # the same model in batches: identical on ORT CPU
    assert sum(recorder.batches) == 4 * len(INDICES)
    assert max(recorder.batches) == 4  # ready frames of several sources went in one call, up to max_batch
    assert len(recorder.batches) < 4 * len(INDICES) / 2
    det.close()


def test_fixed_batch_model_gets_full_batches_of_several_sources(shapes_pt: Path, tmp_path: Path,
                                                                 video_path: Path) -> None:
    from converters import export_onnx

    det = Detector(export_onnx(shapes_pt, output=tmp_path / "b2.onnx", imgsz=640, batch=2, verify=False),
                   device="cpu", backend_options={"spinning": False})
    assert det.batch_size == 2
    alone = [det(frame.image) for frame in VideoFile(video_path, vid_stride=STRIDE)]  # padded single frames
    recorder = RecordingInfer(det.backend.infer)
    det.backend.infer = recorder
    results = list(stream(det, [VideoFile(video_path, vid_stride=STRIDE) for _ in range(3)]))
    for group in by_source(results).values():
        assert [f.index for f, _ in group] == INDICES
        assert_same([d for _, d in group], alone)
    assert set(recorder.batches) == {2}
    assert len(recorder.batches) < 3 * len(INDICES) * 0.75  # most calls carried two real frames
    det.close()


def test_backend_failure_in_a_worker_reaches_the_caller(ul_onnx: Path, dynamic_onnx: Path, video_path: Path) -> None:
    """A request that fails on the backend's worker thread never calls back; the next submit
    (or the final wait) re-raises it as an InferenceError, for a batch-1 and a batching model alike."""
    for model in (ul_onnx, dynamic_onnx):
        det = Detector(model, device="cpu", backend_options={"spinning": False})
        recorder = RecordingInfer(det.backend.infer)

        def failing(inputs: np.ndarray) -> np.ndarray:
            if len(recorder.batches) == 2:
                raise RuntimeError("device lost")
            return recorder(inputs)

        det.backend.infer = failing
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                list(stream(det, [VideoFile(video_path, vid_stride=STRIDE) for _ in range(3)]))
            except InferenceError as exc:
                outcome.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout=120)
        assert not worker.is_alive(), f"{model.name}: the pipeline hung after a failed request"
        assert len(outcome) == 1 and str(outcome[0]).startswith("inference failed after ")
        assert str(outcome[0]).endswith(" frames: RuntimeError: device lost")
        det.close()


class VideoCamera:
    """Stand-in for a camera (none can be attached here): a real cv2.VideoCapture on the
    fixture video, paced at its 25 fps, that stalls before the first frame until `resume` is
    set and raises (a device error) after `fail_after` frames."""

    def __init__(self, video: Path, fail_after: int | None = None, resume: threading.Event | None = None) -> None:
        self.capture = cv2.VideoCapture(str(video))
        self.fail_after, self.resume, self.reads = fail_after, resume, 0

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.capture.isOpened()

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.resume is not None:
            self.resume.wait(timeout=60)
        if self.fail_after is not None and self.reads >= self.fail_after:
            raise RuntimeError("device unplugged")
        self.reads += 1
        time.sleep(0.04)
        return self.capture.read()

    def release(self) -> None:
        self.capture.release()


class Unplugged:
    def isOpened(self) -> bool:  # noqa: N802
        return False

    def release(self) -> None:
        pass


def camera(video: Path, **kwargs: Any) -> LiveSource:
    """A LiveSource whose first connection is a VideoCamera and every reconnect fails."""
    opened: list[int] = []

    def opener(_target: str | int) -> Any:
        opened.append(1)
        return VideoCamera(video, **kwargs) if len(opened) == 1 else Unplugged()

    return LiveSource(0, opener=opener, reconnects=2, backoff=0.01)


def test_camera_dying_mid_run_does_not_stop_the_others(ort_detector: Detector, video_path: Path, alone: list[Any],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    cam = camera(video_path, fail_after=12)
    sources: list[Source] = [VideoFile(video_path, vid_stride=STRIDE), cam, VideoFile(video_path, vid_stride=STRIDE)]
    ended: list[str] = []
    with caplog.at_level(logging.WARNING):
        pipe = Pipeline(ort_detector, sources, on_source_end=lambda s: ended.append(s.name))
        results = list(pipe)
    groups = by_source(results)
    for i in (0, 2):
        assert [f.index for f, _ in groups[i]] == INDICES
        assert_same([d for _, d in groups[i]], alone)
    cam_frames = groups[1]
    indices = [f.index for f, _ in cam_frames]
    assert indices == sorted(set(indices)) and indices[-1] <= 11  # in order; only what it delivered
    assert len(cam_frames) + pipe.dropped.get("webcam0", 0) == 12  # each delivered frame: yielded or dropped
    for frame, dets in cam_frames[:3]:
        assert_same([dets], [ort_detector(frame.image)])
    assert cam.reconnect_count == 1
    assert "webcam 0 lost; gave up after 2 reconnect attempts" in [r.getMessage() for r in caplog.records]
    assert sorted(ended) == sorted(s.name for s in sources)


def test_stalled_camera_does_not_block_the_others(ort_detector: Detector, video_path: Path, alone: list[Any]) -> None:
    resume = threading.Event()
    released_by_video = []

    def on_end(source: Source) -> None:
        if source.kind == "video":  # the video finished while the camera was still stalled
            released_by_video.append(not resume.is_set())
            resume.set()

    cam = camera(video_path, fail_after=3, resume=resume)
    pipe = Pipeline(ort_detector, [cam, VideoFile(video_path, vid_stride=STRIDE)], on_source_end=on_end)
    results = list(pipe)
    groups = by_source(results)
    assert released_by_video == [True]
    assert_same([d for _, d in groups[1]], alone)
    assert 1 <= len(groups[0]) <= 3  # the camera went on once it resumed


class FastCamera(VideoCamera):
    """Stand-in camera delivering the video's frames as fast as they decode (no pacing)."""

    def read(self) -> tuple[bool, np.ndarray | None]:
        return self.capture.read()


def test_live_source_faster_than_the_pipeline_drops_its_oldest_frames(ort_detector: Detector, video_path: Path) -> None:
    fast = LiveSource(0, opener=lambda t: FastCamera(video_path), reconnects=0)
    pipe = Pipeline(ort_detector, [fast], queue_size=2)
    indices = [f.index for f, _ in pipe]
    assert indices == sorted(set(indices))  # order kept, frames skipped
    assert pipe.dropped["webcam0"] > 0 and len(indices) + pipe.dropped["webcam0"] == 150
    assert indices[-1] == 149  # the newest frame is kept, not the oldest
    assert pipe.stats.dropped == pipe.dropped


class RecordingTracker:
    """Test double for the tracker protocol: returns the detections of confidence >= 0.5 and
    records what it saw (the pipeline only routes frames to it)."""

    made: list[RecordingTracker] = []

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []
        RecordingTracker.made.append(self)

    def update(self, detections: Any, frame: Frame) -> Any:
        self.seen.append((frame.source_index, frame.index))
        return detections[detections.confidence >= 0.5]


def test_each_source_gets_its_own_tracker_in_frame_order(ort_detector: Detector, video_path: Path,
                                                         alone: list[Any]) -> None:
    RecordingTracker.made = []
    sources = [VideoFile(video_path, vid_stride=STRIDE) for _ in range(2)]
    results = list(Pipeline(ort_detector, sources, tracker=RecordingTracker))
    assert len(RecordingTracker.made) == 2
    assert sorted(t.seen for t in RecordingTracker.made) == [[(i, k) for k in INDICES] for i in (0, 1)]
    for group in by_source(results).values():
        assert_same([d for _, d in group], [d[d.confidence >= 0.5] for d in alone])
    with pytest.raises(ValueError, match="one tracker instance cannot follow several sources"):
        Pipeline(ort_detector, sources, tracker=RecordingTracker())


def test_cli_detect_two_videos_writes_both_outputs(tmp_path: Path, ul_onnx: Path, video_path: Path, alone: list[Any],
                                                   capfd: pytest.CaptureFixture) -> None:
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(video_path.read_bytes())
    out = tmp_path / "run"
    code, _, err = run_cli(["detect", tmp_path / "a.mp4", tmp_path / "b.mp4", "--model", ul_onnx, "--device", "cpu",
                            "--vid-stride", str(STRIDE), "--save-json", "-o", out], capfd)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.jsonl", "a.mp4", "b.jsonl", "b.mp4"]
    for stem in ("a", "b"):
        records = jsonl(out / f"{stem}.jsonl")
        assert [r["frame"] for r in records] == INDICES
        assert [len(r["detections"]) for r in records] == [len(d) for d in alone]
        assert video_frames(out / f"{stem}.mp4") == len(INDICES)
    assert f"{2 * len(INDICES)} frames in" in err
    assert f"per source: a {len(INDICES)} (" in err and f"b {len(INDICES)} (" in err


def test_python_api_takes_a_list_of_sources(ort_detector: Detector, video_path: Path, alone: list[Any]) -> None:
    results = list(ort_detector.stream([str(video_path), str(video_path)], vid_stride=STRIDE))
    groups = by_source(results)
    assert {f.source for f, _ in results} == {"video", "video_2"}  # names made unique
    for group in groups.values():
        assert_same([d for _, d in group], alone)


def test_more_files_than_open_at_once_all_finish(ort_detector: Detector, video_path: Path) -> None:
    sources = [VideoFile(video_path, vid_stride=50) for _ in range(5)]
    results = list(stream(ort_detector, sources, max_open_files=2))
    assert {i: [f.index for f, _ in g] for i, g in by_source(results).items()} == {i: [0, 50, 100] for i in range(5)}
    assert all(s._container is None for s in sources)  # every one read and released
    assert all(s.decode_threads == max(1, available_cores() // 2) for s in sources)  # 2 read at once

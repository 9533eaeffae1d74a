"""A Detector over a long life, on every backend: repeated streams keep memory flat, one
Detector serves several threads with the serial results, and a closed one says so."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from edge_yolo.detector import Detector
from edge_yolo.errors import EdgeYoloError

BACKENDS = ["openvino", "cpu", "torch"]
ROOT = Path(__file__).resolve().parents[1]


def model_for(device: str, ul_onnx: Path, ul_openvino: Path, shapes_pt: Path) -> Path:
    return {"openvino": ul_openvino, "cpu": ul_onnx, "torch": shapes_pt}[device]


@pytest.fixture(params=BACKENDS)
def detector(request: pytest.FixtureRequest, ul_onnx: Path, ul_openvino: Path, shapes_pt: Path) -> Iterator[Detector]:
    det = Detector(model_for(request.param, ul_onnx, ul_openvino, shapes_pt), device=request.param)
    yield det
    det.close()


@pytest.fixture(scope="module")
def images(val_images: list[Path]) -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in val_images[:6]]


# Run in a fresh process with glibc's mmap threshold fixed at 1 MiB: freed frame-sized buffers
# then go back to the OS instead of staying in per-thread malloc arenas (each stream starts new
# threads), so RSS measures what is really kept alive.
RSS_SCRIPT = """
import sys, psutil
from edge_yolo.detector import Detector
det = Detector(sys.argv[1], device=sys.argv[2])
sources = sys.argv[3:]
for _ in range(5):  # warm-up: lazily compiled models, allocator pools
    assert len(list(det.stream(sources))) == len(sources)
before = psutil.Process().memory_info().rss
for _ in range(30):
    assert len(list(det.stream(sources))) == len(sources)
print((psutil.Process().memory_info().rss - before) / 2**20)
"""


@pytest.mark.parametrize("device", ["openvino", "cpu"])
def test_repeated_streams_keep_memory_flat(device: str, ul_onnx: Path, ul_openvino: Path, shapes_pt: Path,
                                           val_images: list[Path]) -> None:
    # Each OpenVINO stream used to leak its AsyncInferQueue (~5 MiB here, 14-18 MiB on bigger CPUs).
    model = model_for(device, ul_onnx, ul_openvino, shapes_pt)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(2**20),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(model), device, *map(str, val_images[:2])],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    grown = float(done.stdout.split()[-1])
    assert grown < 10, f"RSS grew {grown:.1f} MiB over 30 streams"


EXIT_SCRIPT = """
import sys
from edge_yolo.detector import Detector
from edge_yolo.pipeline import Pipeline
from edge_yolo.sources import VideoFile
pipes = [Pipeline(Detector(sys.argv[1], device="openvino"), [VideoFile(sys.argv[2], vid_stride=15)]) for _ in range(3)]
for pipe in pipes:
    assert sum(1 for _ in pipe) > 0
"""


def test_exit_with_openvino_objects_alive(ul_onnx: Path, video_path: Path) -> None:
    # Detectors and finished streams still referenced when the interpreter exits: OpenVINO threads
    # that needed the GIL during Python's final clean-up aborted the process ("terminate called
    # without an active exception"), in 1 run of 20 on an idle machine and 1 of 4 on a busy one.
    # Four processes at a time make the load; 16 runs.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-c", EXIT_SCRIPT, str(ul_onnx), str(video_path)]
    for _ in range(4):
        procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(4)]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"exit {proc.returncode}: {err[-500:]}"


def test_one_detector_from_several_threads(detector: Detector, images: list[np.ndarray]) -> None:
    serial = [detector(image) for image in images]
    calls = list(range(4 * len(images)))
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda i: (i, detector(images[i % len(images)])), calls))
    for i, dets in threaded:
        np.testing.assert_array_equal(dets.class_id, serial[i % len(images)].class_id)
        np.testing.assert_allclose(dets.xyxy, serial[i % len(images)].xyxy, atol=1e-4)


def test_stream_and_calls_in_two_threads(detector: Detector, images: list[np.ndarray], video_path: Path) -> None:
    serial = [detector(image) for image in images]  # the first stream starts while calls run
    streamed: dict[int, object] = {}
    errors: list[BaseException] = []

    def run_stream() -> None:
        try:
            streamed.update({f.index: d for f, d in detector.stream(video_path, vid_stride=15)})
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    thread = threading.Thread(target=run_stream)
    thread.start()
    called = []
    while thread.is_alive() or len(called) < len(images):
        called.append(detector(images[len(called) % len(images)]))
    thread.join()
    assert errors == []
    serial_stream = {f.index: d for f, d in detector.stream(video_path, vid_stride=15)}
    assert sorted(streamed) == sorted(serial_stream)
    for index, dets in streamed.items():
        np.testing.assert_allclose(dets.xyxy, serial_stream[index].xyxy, atol=1e-4)
    for i, dets in enumerate(called):
        np.testing.assert_allclose(dets.xyxy, serial[i % len(images)].xyxy, atol=1e-4)


def test_close_then_use_is_a_clear_error(detector: Detector, images: list[np.ndarray], video_path: Path) -> None:
    detector(images[0])
    detector.close()
    with pytest.raises(EdgeYoloError, match="closed"):
        detector(images[0])
    with pytest.raises(EdgeYoloError, match="closed"):
        next(iter(detector.stream(video_path)))
    detector.close()  # twice is fine


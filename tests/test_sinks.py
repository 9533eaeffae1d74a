"""Sinks and drawing on real frames: H.264/mp4v video round trips, JSON lines, YOLO labels."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest

from edge_yolo.annotate import class_color, draw_detections
from edge_yolo.detections import Detections
from edge_yolo.sinks import JsonlWriter, TxtLabelWriter, VideoWriter, next_run_dir
from edge_yolo.sources import VideoFile

NAMES = {0: "circle", 1: "square", 2: "triangle"}


@pytest.fixture(scope="module")
def frames(video_path: Path) -> list[np.ndarray]:
    return [f.image for f, _ in zip(VideoFile(video_path, vid_stride=5), range(12))]


def decoded(path: Path) -> tuple[list[np.ndarray], str, float]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        images = [f.to_ndarray(format="bgr24") for f in c.decode(stream)]
        return images, stream.codec_context.name, float(stream.average_rate)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-9))


def test_h264_video_round_trip(tmp_path: Path, frames: list[np.ndarray]) -> None:
    encoded: list[float] = []
    with VideoWriter(tmp_path / "out.mp4", 1280, 720, 25.0, on_encoded=encoded.append) as writer:
        for image in frames:
            writer.write(image)
    assert writer.codec == "h264" and writer.frames == len(frames) == len(encoded)
    images, codec, fps = decoded(tmp_path / "out.mp4")
    assert (codec, fps, len(images)) == ("h264", 25.0, len(frames))
    assert images[0].shape == (720, 1280, 3)
    assert min(psnr(a, b) for a, b in zip(images, frames)) > 30


def test_mp4v_fallback_warns_and_plays(tmp_path: Path, frames: list[np.ndarray],
                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        writer = VideoWriter(tmp_path / "out.mp4", 1280, 720, 12.5, codec="mp4v")
    for image in frames[:5]:
        writer.write(image)
    writer.close()
    assert writer.codec == "mp4v"
    assert any("no H.264 encoder" in r.getMessage() for r in caplog.records)
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.5)


def test_odd_frame_size_still_writes_a_video(tmp_path: Path, frames: list[np.ndarray]) -> None:
    odd = [np.ascontiguousarray(f[:361, :641]) for f in frames[:3]]  # yuv420p needs even sides
    with VideoWriter(tmp_path / "odd.mp4", 641, 361, 25.0) as writer:
        for image in odd:
            writer.write(image)
    images, codec, _ = decoded(tmp_path / "odd.mp4")
    assert codec == "h264" and len(images) == 3
    assert images[0].shape == (362, 642, 3)  # padded by one replicated pixel
    assert psnr(images[0][:361, :641], odd[0]) > 30


def test_jsonl_lines_are_flushed_as_written(tmp_path: Path, frames: list[np.ndarray]) -> None:
    dets = Detections(np.array([[10, 20, 110, 220]], np.float32), np.array([0.9], np.float32), np.array([1]), NAMES)
    writer = JsonlWriter(tmp_path / "video.jsonl")
    for i in range(3):
        frame = SimpleNamespace(index=i * 5, time=i * 0.2, path=None, image=frames[0], source="video")
        writer.write(frame, dets if i != 1 else dets[[]])
        lines = (tmp_path / "video.jsonl").read_text().splitlines()  # readable before close
        assert len(lines) == i + 1
    writer.close()
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == [0, 5, 10]
    assert records[1]["detections"] == []
    assert records[2] == {"frame": 10, "time": 0.4, "detections": [
        {"xyxy": [10.0, 20.0, 110.0, 220.0], "confidence": pytest.approx(0.9), "class_id": 1, "class_name": "square"}]}


def test_yolo_txt_labels(tmp_path: Path) -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    dets = Detections(np.array([[64, 48, 192, 144], [0, 0, 640, 480]], np.float32),
                      np.array([0.5, 0.25], np.float32), np.array([2, 0]), NAMES)
    writer = TxtLabelWriter(tmp_path / "labels")
    by_path = writer.write(SimpleNamespace(image=image, path=Path("a/photo.jpg"), source="imgs", index=0), dets)
    by_frame = writer.write(SimpleNamespace(image=image, path=None, source="clip", index=42), dets[[]])
    assert by_path.name == "photo.txt" and by_frame.name == "clip_43.txt"   # frame numbers 1-based
    assert by_path.read_text().splitlines() == [     # training labels: no confidence by default
        "2 0.200000 0.200000 0.200000 0.200000",
        "0 0.500000 0.500000 1.000000 1.000000",
    ]
    assert by_frame.read_text() == ""
    with_conf = TxtLabelWriter(tmp_path / "conf", save_conf=True)
    path = with_conf.write(SimpleNamespace(image=image, path=Path("photo.jpg"), source="imgs", index=0), dets)
    assert path.read_text().splitlines() == [
        "2 0.200000 0.200000 0.200000 0.200000 0.500000",
        "0 0.500000 0.500000 1.000000 1.000000 0.250000",
    ]


def test_next_run_dir(tmp_path: Path) -> None:
    assert next_run_dir(tmp_path / "runs") == tmp_path / "runs" / "1"
    (tmp_path / "runs" / "1").mkdir(parents=True)
    (tmp_path / "runs" / "3").mkdir()
    assert next_run_dir(tmp_path / "runs") == tmp_path / "runs" / "2"


def test_draw_detections_boxes_and_labels(frames: list[np.ndarray]) -> None:
    image = frames[0].copy()
    dets = Detections(np.array([[100, 100, 300, 250], [600, 5, 700, 80]], np.float32),
                      np.array([0.87, 0.4], np.float32), np.array([0, 2]), NAMES)
    out = draw_detections(image, dets, line_width=3)
    assert out is image
    assert tuple(image[175, 100]) == class_color(0)            # left edge of box 0
    assert tuple(image[80, 650]) == class_color(2)             # bottom edge of box 1
    assert np.array_equal(image[170:180, 150:250], frames[0][170:180, 150:250])  # inside untouched
    label_area = image[70:96, 101:200]                          # filled label above box 0
    assert (label_area == class_color(0)).all(axis=-1).mean() > 0.5
    plain = draw_detections(frames[0].copy(), dets, line_width=3, labels=False)
    assert np.array_equal(plain[70:96, 101:200], frames[0][70:96, 101:200])

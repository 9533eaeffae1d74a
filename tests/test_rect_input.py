"""Aspect-aware input: a dynamic model gets the minimal stride-multiple rectangle (as Ultralytics
predict gives a .pt), and a .pt run through its ONNX export is exported at the video's aspect."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_yolo import Detector
from edge_yolo.modelinfo import read_model_info
from edge_yolo.preprocess import letterbox, letterbox_shape

from test_detector_parity import assert_parity, run


@pytest.mark.parametrize(("shape", "size", "expected"), [
    ((720, 1280), (640, 640), (384, 640)), ((480, 640), (640, 640), (480, 640)),
    ((1280, 720), (640, 640), (640, 384)), ((720, 1280), (320, 320), (192, 320)), ((500, 500), (640, 640), (640, 640)),
])
def test_letterbox_shape(shape: tuple[int, int], size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert letterbox_shape(shape, size, 32) == expected
    assert letterbox_shape(shape, size) == size
    boxed, meta = letterbox(np.zeros((*shape, 3), np.uint8), size, stride=32)
    assert boxed.shape[:2] == expected and meta.ratio == min(size[0] / shape[0], size[1] / shape[1])


@pytest.fixture(scope="module")
def dynamic_onnx(export_dir: Path, shapes_pt: Path) -> Path:
    from converters import export_onnx

    return export_onnx(shapes_pt, output=export_dir / "yolo12n_shapes_dynamic.onnx", imgsz=640, dynamic=True)


@pytest.mark.parametrize("device", ["cpu", "openvino"])
def test_dynamic_model_gets_minimal_rectangle(device: str, dynamic_onnx: Path, val_images: list[Path],
                                              reference_rect: dict, reference_square: dict) -> None:
    detector = Detector(dynamic_onnx, device=device, precision="f32")
    assert detector.rect and detector.imgsz == (640, 640)
    frame = cv2.imread(str(val_images[0]))
    inputs, _ = detector.preprocess([frame])
    assert inputs.shape[1:3] == (480, 640) or inputs.shape[2:] == (480, 640)   # NHWC (openvino) or NCHW
    assert_parity(run(detector, val_images[:24]), reference_rect, min_ref=60)
    square = Detector(dynamic_onnx, device=device, precision="f32", rect=False)
    assert not square.rect
    assert_parity(run(square, val_images[:24]), reference_square, min_ref=60)


def test_detect_exports_pt_at_the_video_aspect(shapes_pt: Path, video_path: Path, tmp_path: Path,
                                               capfd: pytest.CaptureFixture) -> None:
    from test_cli_detect import run_cli

    pt = Path(shutil.copy(shapes_pt, tmp_path / shapes_pt.name))
    clip = tmp_path / "clip.mp4"
    cap, writer = cv2.VideoCapture(str(video_path)), None
    for _ in range(3):
        ok, frame = cap.read()
        writer = writer or cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25, frame.shape[1::-1])
        writer.write(frame)
    cap.release()
    writer.release()
    code, _, err = run_cli(["detect", clip, "--model", pt, "--imgsz", "640", "--no-save", "--quiet",
                            "--device", "cpu", "-o", tmp_path / "out"], capfd)
    assert code == 0, err
    onnx_path = tmp_path / "yolo12n_shapes_640x640_for720x1280.edge-yolo.onnx"
    assert read_model_info(onnx_path).input_shape == (1, 3, 384, 640)

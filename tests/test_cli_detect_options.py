"""`edge-yolo detect` options a new user expects: --precision (with the note on the bf16
default), --agnostic-nms, --save-txt without / with --save-conf, 1-based frame numbers in
video label names, --save-crop, and the per-image class count line."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_yolo.detector import Detector

from test_cli_detect import as_ref, jsonl, run_cli

NAMES = {0: "circle", 1: "square", 2: "triangle"}


@pytest.fixture()
def photos(tmp_path: Path, val_images: list[Path]) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for image in val_images[:6]:
        shutil.copy(image, folder)
    return folder


def test_precision_f32_reproduces_the_reference(photos: Path, ul_onnx: Path, reference_square: dict,
                                                match_fraction: Any, tmp_path: Path,
                                                capfd: pytest.CaptureFixture) -> None:
    """auto on this model picks OpenVINO, whose default on AMX CPUs is bf16; --precision f32
    gives Ultralytics' boxes (IoU >= 0.99, |Δconf| <= 1e-3) and no precision note."""
    code, _, err = run_cli(["detect", photos, "-m", ul_onnx, "--precision", "f32", "--save-json", "--no-save",
                            "-o", tmp_path / "f32"], capfd)
    assert code == 0, err
    assert "backend: openvino CPU (f32)" in err and "precision: " not in err
    records = jsonl(tmp_path / "f32" / "photos.jsonl")
    ref = [reference_square["images"][r["image"]] for r in records]
    assert min(match_fraction([as_ref(r) for r in records], ref)) >= 0.99


def test_auto_precision_says_when_bf16_is_used(photos: Path, ul_onnx: Path, tmp_path: Path,
                                               capfd: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["detect", photos, "-m", ul_onnx, "--no-save", "-o", tmp_path / "auto"], capfd)
    assert code == 0, err
    reduced = "backend: openvino CPU (bf16)" in err       # a CPU without bf16 runs f32 and needs no note
    assert ("precision: bf16 is this device's fastest default for the f32 model" in err) == reduced
    if reduced:
        assert "pass --precision f32 to detect or val (precision=\"f32\" in Python)" in err
    code, out, err = run_cli(["info", ul_onnx], capfd)
    assert code == 0, err
    assert ("\nprecision: bf16 is this device's fastest default" in out) == reduced


def test_agnostic_nms_is_the_api_s_agnostic(photos: Path, ul_onnx: Path, tmp_path: Path,
                                            capfd: pytest.CaptureFixture) -> None:
    runs = {}
    for name, flags in (("aware", []), ("agnostic", ["--agnostic-nms"])):
        code, _, err = run_cli(["detect", photos, "-m", ul_onnx, "--device", "cpu", "--conf", "0.05", "--save-json",
                                "--no-save", "-o", tmp_path / name, *flags], capfd)
        assert code == 0, err
        runs[name] = jsonl(tmp_path / name / "photos.jsonl")
    api = Detector(ul_onnx, device="cpu", conf=0.05, agnostic=True)
    for record in runs["agnostic"]:
        expected = api(photos / record["image"])
        assert [d["class_id"] for d in record["detections"]] == expected.class_id.tolist()
        np.testing.assert_allclose([d["xyxy"] for d in record["detections"]], expected.xyxy, atol=1e-3)
    # at conf 0.05 the same shape is often found as two classes: agnostic NMS keeps one of them
    count = lambda run: sum(len(r["detections"]) for r in run)  # noqa: E731
    assert count(runs["agnostic"]) < count(runs["aware"])


def test_labels_crops_and_count_lines(photos: Path, ul_onnx: Path, tmp_path: Path,
                                      capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(["detect", photos, "-m", ul_onnx, "--device", "cpu", "--save-json", "--save-txt",
                            "--save-crop", "--no-save", "-o", out], capfd)
    assert code == 0, err
    records = jsonl(out / "photos.jsonl")
    for record in records:
        dets = record["detections"]
        stem = Path(record["image"]).stem
        # labels: class cx cy w h, normalised, no confidence (reusable for training)
        rows = [line.split() for line in (out / "labels" / f"{stem}.txt").read_text().splitlines()]
        assert [int(r[0]) for r in rows] == [d["class_id"] for d in dets]
        assert all(len(r) == 5 and all(0 <= float(v) <= 1 for v in r[1:]) for r in rows)
        # one crop per detection, the box's pixels of the original image
        image = cv2.imread(str(photos / record["image"]))
        for k, d in enumerate(dets, 1):
            crop = cv2.imread(str(out / "crops" / d["class_name"] / f"{stem}_{k}.jpg"))
            x1, y1, x2, y2 = d["xyxy"]
            assert abs(crop.shape[1] - (x2 - x1)) <= 2 and abs(crop.shape[0] - (y2 - y1)) <= 2
            assert crop.mean() == pytest.approx(image[int(y1):int(np.ceil(y2)), int(x1):int(np.ceil(x2))].mean(), abs=3)
        # the count line: `<path>: 2 circles, 1 square`
        counts = Counter(d["class_id"] for d in dets)
        text = ", ".join(f"{n} {NAMES[k]}{'s' if n > 1 else ''}" for k, n in sorted(counts.items()))
        assert f"{photos / record['image']}: {text or 'no detections'}\n" in err
    assert len(list((out / "crops").rglob("*.jpg"))) == sum(len(r["detections"]) for r in records)


def test_save_conf_adds_the_confidence(photos: Path, ul_onnx: Path, tmp_path: Path,
                                       capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(["detect", photos / "00000.jpg", "-m", ul_onnx, "--device", "cpu", "--save-json",
                            "--save-conf", "--no-save", "-q", "-o", out], capfd)   # --save-conf implies --save-txt
    assert code == 0, err
    (record,) = jsonl(out / "00000.jsonl")
    rows = [line.split() for line in (out / "labels" / "00000.txt").read_text().splitlines()]
    assert [float(r[5]) for r in rows] == pytest.approx([d["confidence"] for d in record["detections"]], abs=1e-6)


def test_video_label_files_are_numbered_from_1(video_path: Path, ul_onnx: Path, tmp_path: Path,
                                               capfd: pytest.CaptureFixture) -> None:
    """Frame n of the video (1-based, as Ultralytics names its label files) → labels/video_<n>.txt."""
    out = tmp_path / "run"
    code, _, err = run_cli(["detect", video_path, "-m", ul_onnx, "--device", "cpu", "--vid-stride", "50",
                            "--save-txt", "--save-json", "--no-save", "-q", "-o", out], capfd)
    assert code == 0, err
    assert [r["frame"] for r in jsonl(out / "video.jsonl")] == [0, 50, 100]      # JSON keeps 0-based indices
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["video_1.txt", "video_101.txt", "video_51.txt"]

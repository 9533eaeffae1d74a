"""`edge-yolo detect` end to end on the fixture video and images: outputs, parity with the
reference and the Python API, every bad-input case, truncated video, SIGINT/SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from edge_yolo.cli import main
from edge_yolo.sources import VideoFile

from test_sources import faststart_copy


def run_cli(args: list[str], capfd: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run the CLI in this process (no model-load cost of a subprocess); fd-level capture also
    catches anything FFmpeg or a backend would print directly."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capfd.readouterr()
    return code, out, err


def video_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def as_ref(record: dict) -> dict:
    d = record["detections"]
    return {"xyxy": [x["xyxy"] for x in d], "conf": [x["confidence"] for x in d], "cls": [x["class_id"] for x in d]}


def test_video_end_to_end(tmp_path: Path, ul_onnx: Path, video_path: Path, reference_video: list[dict],
                          match_fraction: Any, capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(["detect", video_path, "--model", ul_onnx, "--device", "cpu", "--save-json",
                            "--save-txt", "--output", out], capfd)
    assert code == 0, err
    with av.open(str(out / "video.mp4")) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.width, s.height, float(s.average_rate)) == ("h264", 1280, 720, 25.0)
    assert video_frames(out / "video.mp4") == 150
    records = jsonl(out / "video.jsonl")
    assert [r["frame"] for r in records] == list(range(150))
    assert records[75]["time"] == pytest.approx(3.0)
    assert min(match_fraction([as_ref(r) for r in records], reference_video)) >= 0.99
    assert len(list((out / "labels").glob("video_*.txt"))) == 150

    from edge_yolo.detector import Detector  # the JSON lines are what the Python API returns

    with Detector(ul_onnx, device="cpu") as det:
        for frame in VideoFile(video_path, vid_stride=60):
            api = det(frame.image).to_dict()["detections"]
            cli = records[frame.index]["detections"]
            assert [d["class_id"] for d in cli] == [d["class_id"] for d in api]
            np.testing.assert_allclose([d["xyxy"] for d in cli], [d["xyxy"] for d in api], atol=1e-3)

    assert "150 frames in" in err and "backend: onnxruntime CPUExecutionProvider (f32)" in err
    for stage in ("decode", "pre", "infer", "post", "draw", "write"):
        assert f"{stage} " in err
    assert "Traceback" not in err


def test_image_directory_with_a_corrupt_image(tmp_path: Path, ul_onnx: Path, val_images: list[Path],
                                              reference_square: dict, match_fraction: Any,
                                              monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture,
                                              caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    chosen = val_images[:4]
    for img in chosen:
        shutil.copy(img, folder)
    (folder / "00001x.jpg").write_bytes(os.urandom(2000))
    monkeypatch.setenv("EDGE_YOLO_MODEL", str(ul_onnx))  # --model from the environment
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        code, _, err = run_cli(["detect", folder, "--device", "cpu", "--save-json", "-o", out, "--quiet"], capfd)
    assert code == 0, err
    assert any("00001x.jpg" in r.getMessage() for r in caplog.records)
    assert sorted(p.name for p in out.glob("*.jpg")) == [p.name for p in chosen]
    annotated = cv2.imread(str(out / chosen[0].name))
    assert annotated.shape == cv2.imread(str(chosen[0])).shape
    records = jsonl(out / "photos.jsonl")
    assert [r["image"] for r in records] == [p.name for p in chosen]
    ref = [reference_square["images"][p.name] for p in chosen]
    assert min(match_fraction([as_ref(r) for r in records], ref)) >= 0.99
    assert err == ""  # --quiet: no bar, no summary

    code, _, err = run_cli(["detect", chosen[0], "--device", "cpu", "--classes", "1", "--save-json",
                            "--no-save", "-o", tmp_path / "only1", "--quiet"], capfd)
    assert code == 0, err
    (record,) = jsonl(tmp_path / "only1" / f"{chosen[0].stem}.jsonl")
    assert record["detections"] and {d["class_id"] for d in record["detections"]} == {1}
    assert not list((tmp_path / "only1").glob("*.jpg"))


def test_several_sources_get_their_own_outputs(tmp_path: Path, ul_onnx: Path, val_images: list[Path],
                                               video_path: Path, capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(["detect", val_images[0], video_path, val_images[1], "--model", ul_onnx,
                            "--device", "cpu", "--vid-stride", "30", "--save-json", "-o", out], capfd)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "00000.jpg", "00000.jsonl", "00001.jpg", "00001.jsonl", "video.mp4", "video.jsonl"])
    assert [r["frame"] for r in jsonl(out / "video.jsonl")] == [0, 30, 60, 90, 120]
    with av.open(str(out / "video.mp4")) as c:
        assert float(c.streams.video[0].average_rate) == pytest.approx(25 / 30)  # the kept frames' rate
    assert video_frames(out / "video.mp4") == 5
    assert "7 frames in" in err


def test_truncated_video_keeps_what_was_readable(tmp_path: Path, ul_onnx: Path, video_path: Path,
                                                 capfd: pytest.CaptureFixture,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    data = faststart_copy(video_path, tmp_path / "full.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 4])
    readable = sum(1 for _ in VideoFile(cut))
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        code, _, err = run_cli(["detect", cut, "--model", ul_onnx, "--save-json", "-o", out, "--quiet"], capfd)
    assert code == 0, err
    assert 10 < readable < 150
    assert video_frames(out / "cut.mp4") == len(jsonl(out / "cut.jsonl")) == readable
    assert any("truncated" in r.getMessage() for r in caplog.records)
    assert err == ""  # nothing from FFmpeg


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing source", "error: no such file or directory"),
        ("random-bytes video", "error: cannot read video"),
        ("unknown model format", "error: unsupported model file"),
        ("text file named .onnx", "error: "),
        ("missing model", "error: model not found"),
        ("no model", "error: no model given"),
        ("unknown device", "error: unknown device 'quantum'"),
        ("bad classes", "error: --classes must be class ids"),
        ("show without a GUI", "error: --show needs an OpenCV build with GUI support"),
    ],
)
def test_bad_input_is_one_error_line(case: str, message: str, tmp_path: Path, ul_onnx: Path, video_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("EDGE_YOLO_MODEL", raising=False)
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    (tmp_path / "model.xyz").write_text("weights")
    (tmp_path / "fake.onnx").write_text("this is not an onnx model\n")
    source, model, extra = video_path, ul_onnx, []
    if case == "missing source":
        source = tmp_path / "nope.mp4"
    elif case == "random-bytes video":
        source = noise
    elif case == "unknown model format":
        model = tmp_path / "model.xyz"
    elif case == "text file named .onnx":
        model = tmp_path / "fake.onnx"
    elif case == "missing model":
        model = tmp_path / "gone.onnx"
    elif case == "unknown device":
        extra = ["--device", "quantum"]
    elif case == "bad classes":
        extra = ["--classes", "circle"]
    elif case == "show without a GUI":  # no display here (and possibly a headless OpenCV)
        extra = ["--show"]
    args = ["detect", source, "-o", tmp_path / "run"] + ([] if case == "no model" else ["--model", model]) + extra
    code, out, err = run_cli(args, capfd)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), err
    assert "Traceback" not in err + out
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_video_finalises_outputs(signum: int, tmp_path: Path, ul_onnx: Path, video_path: Path) -> None:
    out = tmp_path / "run"
    exe = Path(sys.executable).with_name("edge-yolo")
    proc = subprocess.Popen([str(exe), "detect", str(video_path), "--model", str(ul_onnx), "--save-json",
                             "-o", str(out), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = out / "video.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if lines.exists() and len(lines.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert "interrupted after" in err and "Traceback" not in err
    written = len(jsonl(lines))
    assert 5 <= written < 150
    assert video_frames(out / "video.mp4") == written

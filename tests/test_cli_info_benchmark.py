"""`edge-yolo info` and `edge-yolo benchmark` on the fixture models and the bundled video."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CHECKPOINTS
from test_cli_detect import run_cli


def test_info_onnx_reports_model_and_auto_choice(ul_onnx: Path, capfd: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(["info", ul_onnx], capfd)
    assert code == 0, err
    assert "format:   onnx" in out
    assert "input:    images 1x3x640x640 float32" in out
    assert "output:   1x7x8400" in out
    assert "classes:  3: 0 circle, 1 square, 2 triangle" in out
    assert "  onnxruntime: CPUExecutionProvider" in out  # the remote Azure EP is not listed
    # No GPU here: auto skips TensorRT/CUDA with reasons and lands on OpenVINO.
    assert "selected: openvino CPU" in out
    assert "skipped tensorrt: onnxruntime has no TensorrtExecutionProvider" in out


def test_info_json_for_openvino_and_a_forced_device(ul_openvino: Path, ul_onnx: Path,
                                                    capfd: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["info", ul_openvino, "--json"], capfd)
    report = json.loads(out)
    assert code == 0
    assert report["format"] == "openvino" and report["output"]["shape"] == [1, 7, 8400]
    assert report["classes"] == {"0": "circle", "1": "square", "2": "triangle"}
    assert report["selected_detail"]["backend"] == "openvino"
    assert report["selected_detail"]["input_layout"] == "NHWC"  # u8 BGR pre-processing in the graph

    code, out, _ = run_cli(["info", ul_onnx, "--device", "cpu", "--json"], capfd)
    assert json.loads(out)["selected_detail"]["device"] == "CPUExecutionProvider"


def test_info_pt_reports_layout_size_and_training(shapes_pt: Path, capfd: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(["info", CHECKPOINTS / "yolo12n_ul.pt"], capfd)
    assert code == 0, err
    assert "input:    images ?x3x?x? float32" in out
    assert "layout:   A (Ultralytics YOLO12), scale n" in out
    assert "size:     2,602,288 parameters, 6.5 GFLOPs at 640x640" in out    # Ultralytics' yolo12n summary
    assert "training: imgsz 640x640, 3 epochs" in out
    code, out, _ = run_cli(["info", CHECKPOINTS / "yolov12n_turbo.pt", "--json"], capfd)
    assert json.loads(out)["checkpoint"]["layout"] == "C"
    code, out, _ = run_cli(["info", shapes_pt, "--json"], capfd)
    ckpt = json.loads(out)["checkpoint"]
    assert (ckpt["train_imgsz"], ckpt["train_epochs"], ckpt["fused"]) == ([320, 320], 25, False)


def test_info_errors_are_one_line(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["info", tmp_path / "missing.onnx"], capfd)
    assert code == 1 and err.strip() == f"error: model not found: {tmp_path / 'missing.onnx'}"


def test_benchmark_every_backend_on_real_frames(tmp_path: Path, ul_onnx: Path, capfd: pytest.CaptureFixture) -> None:
    out_json = tmp_path / "bench.json"
    code, out, err = run_cli(["benchmark", ul_onnx, "--frames", "5", "--json", out_json], capfd)
    assert code == 0, err
    result = json.loads(out_json.read_text())
    assert result["source"].endswith("examples/assets/video.mp4")
    rows = {(r["device"], r["precision"]): r for r in result["results"]}
    assert ("cpu", "f32") in rows and ("openvino:CPU", "f32") in rows
    assert len(rows) == 3  # OpenVINO default precision, OpenVINO f32, ORT CPU
    for r in rows.values():
        assert 0 < r["latency_p50_ms"] <= r["latency_p95_ms"]
        assert 0 < r["infer_p50_ms"] <= r["latency_p50_ms"]
        assert r["throughput_fps"] > 0
    assert "throughput" in out and "openvino:CPU" in out


def test_benchmark_bad_source(tmp_path: Path, ul_onnx: Path, capfd: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["benchmark", ul_onnx, "--source", tmp_path / "none.mp4"], capfd)
    assert code == 1 and err.startswith("error: no such file or directory")

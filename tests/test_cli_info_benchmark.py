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
    assert result["source"].endswith("edge_yolo/assets/sample.mp4")     # shipped in the package
    rows = {(r["device"], r["precision"]): r for r in result["results"]}
    assert ("cpu", "f32") in rows and ("openvino:CPU", "f32") in rows
    assert len(rows) == 3  # OpenVINO default precision, OpenVINO f32, ORT CPU
    for r in rows.values():
        assert 0 < r["latency_p50_ms"] <= r["latency_p95_ms"]
        assert 0 < r["infer_p50_ms"] <= r["latency_p50_ms"]
        assert r["throughput_fps"] > 0
        assert r["format"] == "onnx" and r["size_mb"] == round(ul_onnx.stat().st_size / 2**20, 2)
    assert "throughput" in out and "openvino:CPU" in out


def test_benchmark_pt_exports_each_format_with_map(tmp_path: Path, shapes_pt: Path, val_dir: Path,
                                                   capfd: pytest.CaptureFixture) -> None:
    """A .pt with --data: a row for the .pt on torch and for each export, each with mAP through val."""
    from test_cli_val import small_dataset

    data = small_dataset(val_dir, tmp_path / "data", 6)
    out_json = tmp_path / "bench.json"
    code, out, err = run_cli(["benchmark", shapes_pt, "--data", data, "--device", "cpu", "--formats", "pytorch,onnx",
                              "--frames", "5", "-o", tmp_path / "exports", "--json", out_json], capfd)
    assert code == 0, err
    result = json.loads(out_json.read_text())
    assert result["source"] == f"images of {data}" and result["frames"] == 5
    rows = result["results"]
    assert [(r["format"], r["backend"]) for r in rows] == [("pytorch", "torch"), ("onnx", "onnxruntime")]
    assert (tmp_path / "exports" / "yolo12n_shapes.onnx").is_file()
    assert rows[1]["size_mb"] == round((tmp_path / "exports" / "yolo12n_shapes.onnx").stat().st_size / 2**20, 2)
    # the same network at the same size (the training imgsz, 320): the same mAP on torch and ONNX Runtime
    assert rows[0]["map50_95"] > 0.2 and abs(rows[0]["map50_95"] - rows[1]["map50_95"]) < 0.005
    table = out[out.index("format "):].splitlines()            # after the exporter's own progress lines
    assert table[0].split()[:6] == ["format", "device", "precision", "size", "MB", "mAP50-95"]
    assert table[2].split()[:2] == ["pytorch", "torch"] and table[2].split()[4] == f"{rows[0]['map50_95']:.4f}"
    code, _, err = run_cli(["benchmark", shapes_pt, "--formats", "tflite"], capfd)
    assert code == 1 and "unknown format 'tflite'" in err


def test_benchmark_bad_source(tmp_path: Path, ul_onnx: Path, capfd: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["benchmark", ul_onnx, "--source", tmp_path / "none.mp4"], capfd)
    assert code == 1 and err.startswith("error: no such file or directory")

"""`edge-yolo val` evaluates at the model's own size by default: a .pt at its training size
(the shapes model was trained at 320), printed on stderr; `--imgsz` takes 640 or H,W."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_cli_val import run_cli, small_dataset

SHAPES = Path(__file__).parent / "fixtures" / "shapes"
REFERENCE_320 = json.loads((SHAPES / "reference_val_320.json").read_text())
REFERENCE_640 = json.loads((SHAPES / "reference_val.json").read_text())


def test_pt_is_validated_at_its_training_size(shapes_pt: Path, val_dir: Path, tmp_path: Path) -> None:
    """Ultralytics' own val at 320 gives mAP50-95 0.57; at 640 the same model scores 0.324."""
    metrics_path = tmp_path / "m.json"
    proc = run_cli("val", str(shapes_pt), "--data", str(val_dir / "data.yaml"), "--save-metrics", str(metrics_path))
    assert proc.returncode == 0, proc.stderr
    assert f"{shapes_pt}: imgsz 320x320 (the training size)" in proc.stderr
    run = json.loads(metrics_path.read_text())["runs"][0]
    assert run["model"]["imgsz"] == [320, 320]
    assert run["map50_95"] == pytest.approx(REFERENCE_320["ultralytics_own_map50_95"], abs=0.005)
    assert run["map50_95"] > REFERENCE_640["pt"]["map50_95"] + 0.2


@pytest.mark.parametrize("value, expected", [("256,320", "256x320 (--imgsz)"), ("416", "416x416 (--imgsz)")])
def test_imgsz_takes_one_size_or_h_w(shapes_pt: Path, val_dir: Path, tmp_path: Path, value: str,
                                     expected: str) -> None:
    data = small_dataset(val_dir, tmp_path / "data", 4)
    metrics_path = tmp_path / "m.json"
    proc = run_cli("val", str(shapes_pt), "--data", str(data), "--imgsz", value, "--save-metrics", str(metrics_path))
    assert proc.returncode == 0, proc.stderr
    assert f"imgsz {expected}" in proc.stderr
    h, w = (int(v) for v in expected.split(" ")[0].split("x"))
    assert json.loads(metrics_path.read_text())["runs"][0]["model"]["imgsz"] == [h, w]


def test_static_export_keeps_its_fixed_size_and_says_so(ul_onnx: Path, val_dir: Path, tmp_path: Path) -> None:
    data = small_dataset(val_dir, tmp_path / "data", 2)
    proc = run_cli("val", str(ul_onnx), "--data", str(data), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "imgsz 640x640 (the model's fixed input)" in proc.stderr


def test_bad_imgsz_is_one_line_error(shapes_pt: Path, val_dir: Path) -> None:
    proc = run_cli("val", str(shapes_pt), "--data", str(val_dir / "data.yaml"), "--imgsz", "big")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: --imgsz must be a size like 640 or H,W like 480,640, got 'big'"

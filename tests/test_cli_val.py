"""`edge-yolo val` end to end in a subprocess: the side-by-side table, --save-metrics and
--save-json, and one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from edge_yolo.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=600)


def small_dataset(val_dir: Path, root: Path, n: int) -> Path:
    """The first n fixture images with their labels and a data.yaml (the full-set mAP is
    checked in test_evaluate.py; here the point is the command's plumbing)."""
    for kind, suffix in (("images", ".jpg"), ("labels", ".txt")):
        (root / kind / "val").mkdir(parents=True)
        for src in sorted((val_dir / kind / "val").glob(f"*{suffix}"))[:n]:
            shutil.copy(src, root / kind / "val" / src.name)
    yaml_file = root / "data.yaml"
    yaml_file.write_text("path: .\nval: images/val\nnames: {0: circle, 1: square, 2: triangle}\n")
    return yaml_file


def test_two_models_side_by_side_with_metrics_and_predictions(ul_onnx: Path, ul_openvino: Path, val_dir: Path,
                                                              tmp_path: Path) -> None:
    data = small_dataset(val_dir, tmp_path / "data", 20)
    metrics_path, preds_path = tmp_path / "out" / "metrics.json", tmp_path / "preds.json"
    proc = run_cli("val", str(ul_onnx), str(ul_openvino), "--data", str(data),
                   "--device", "openvino", "--precision", "f32",
                   "--save-metrics", str(metrics_path), "--save-json", str(preds_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:6] == ["#", "model", "backend", "precision", "mAP50-95", "mAP50"]
    row1, row2 = lines[1].split(), lines[2].split()
    assert row1[1] == ul_onnx.name and row2[1] == ul_openvino.name
    assert lines[3].split() == ["class", "objects"] + [w for i in (1, 2) for c in ("P", "R", "AP50", "AP50-95")
                                                       for w in (c, f"#{i}")]
    n_gt = {name: sum(ln.split()[0] == str(k) for f in (data.parent / "labels" / "val").glob("*.txt")
                      for ln in f.read_text().splitlines())
            for k, name in enumerate(("circle", "square", "triangle"))}
    assert [ln.split()[:2] for ln in lines[4:7]] == [[k, str(v)] for k, v in n_gt.items()]

    payload = json.loads(metrics_path.read_text())
    runs = payload["runs"]
    assert [Path(r["model"]["path"]).name for r in runs] == [ul_onnx.name, ul_openvino.name]
    for i, (run, row) in enumerate(zip(runs, (row1, row2))):
        assert {"map50_95", "map50", "precision", "recall", "per_class", "speed_ms"} <= run.keys()
        assert run["model"]["backend"] == "openvino" and run["model"]["precision"] == "f32"
        assert run["n_images"] == 20 and run["n_objects"] == sum(n_gt.values())
        assert row[5] == f"{run['map50_95']:.4f}"                   # the table shows the JSON's numbers
        for ln, v in zip(lines[4:7], run["per_class"].values()):   # P, R, AP50, AP50-95 of this run
            assert ln.split()[2 + 4 * i: 6 + 4 * i] == [f"{v[k]:.4f}" for k in ("precision", "recall", "ap50", "ap50_95")]
        assert {k: v["n_gt"] for k, v in run["per_class"].items()} == n_gt
        assert 0 < run["precision"] <= 1 and 0 < run["recall"] <= 1
        assert run["speed_ms"]["total"] == pytest.approx(sum(run["speed_ms"][k] for k in
                                                             ("preprocess", "inference", "postprocess")))
    # the same network (Ultralytics' ONNX and OpenVINO exports), both at f32
    assert runs[0]["map50_95"] == pytest.approx(runs[1]["map50_95"], abs=0.005) and runs[0]["map50_95"] > 0.2
    assert runs[0]["delta_map50_95"] == 0.0
    assert runs[1]["delta_map50_95"] == pytest.approx(runs[1]["map50_95"] - runs[0]["map50_95"])
    assert [r["model"]["imgsz"] for r in runs] == [[640, 640], [640, 640]]
    assert payload["protocol"] == {"conf": 0.001, "iou": 0.7, "max_det": 300,
                                   "letterbox": "square", "multi_label": True}

    files = sorted(tmp_path.glob("preds_*.json"))
    assert [f.name for f in files] == [f"preds_1_{ul_onnx.name}_openvino.json", f"preds_2_{ul_openvino.name}_openvino.json"]
    preds = json.loads(files[0].read_text())
    assert len(preds) == runs[0]["n_predictions"] > 2000
    assert preds[0].keys() == {"image_id", "category_id", "bbox", "score"}
    assert all(p["score"] > 0.001 and p["category_id"] in (0, 1, 2) for p in preds)


@pytest.mark.parametrize("args", [
    ["--data", "missing/data.yaml"],
    ["--data", "{val_dir}", "--device", "nonsense"],
])
def test_bad_input_is_one_line_error(ul_onnx: Path, val_dir: Path, args: list[str]) -> None:
    proc = run_cli("val", str(ul_onnx), *[a.format(val_dir=val_dir) for a in args])
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_missing_data_yaml_and_model_name_the_file(tmp_path: Path, ul_onnx: Path, val_dir: Path) -> None:
    proc = run_cli("val", str(ul_onnx), "--data", str(tmp_path / "data.yaml"))
    assert (proc.returncode, proc.stderr) == (1, f"error: dataset not found: {tmp_path / 'data.yaml'}\n")
    proc = run_cli("val", str(tmp_path / "best.onnx"), "--data", str(val_dir))
    assert (proc.returncode, proc.stderr) == (1, f"error: model not found: {tmp_path / 'best.onnx'}\n")


def test_dataset_with_other_classes_than_the_model_is_refused(ul_openvino: Path, val_dir: Path,
                                                              tmp_path: Path) -> None:
    data = small_dataset(val_dir, tmp_path / "data", 2)
    data.write_text("path: .\nval: images/val\nnames: [circle, square]\n")
    proc = run_cli("val", str(ul_openvino), "--data", str(data))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == f"error: {ul_openvino} has 3 classes but the dataset has 2"


def test_device_list_runs_the_model_on_each_backend(ul_onnx: Path, val_dir: Path, tmp_path: Path) -> None:
    data = small_dataset(val_dir, tmp_path / "data", 5)
    proc = run_cli("val", str(ul_onnx), "--data", str(data), "--device", "cpu,openvino", "--precision", "f32",
                   "--save-metrics", str(tmp_path / "m.json"))
    assert proc.returncode == 0, proc.stderr
    runs = json.loads((tmp_path / "m.json").read_text())["runs"]
    assert [(r["model"]["backend"], r["model"]["precision"]) for r in runs] == [("onnxruntime", "f32"),
                                                                                ("openvino", "f32")]
    assert runs[1]["map50_95"] == pytest.approx(runs[0]["map50_95"], abs=0.005)
    assert [ln.split()[2] for ln in proc.stdout.splitlines()[1:3]] == ["onnxruntime", "openvino"]


def test_split_plots_and_names_that_collide(ul_onnx: Path, val_dir: Path, tmp_path: Path) -> None:
    """--split picks another split; two best.onnx from different runs are told apart by their
    folder; --save-plots writes a PR curve and a confusion matrix per run."""
    data = small_dataset(val_dir, tmp_path / "data", 8)
    (data.parent / "images" / "val").rename(data.parent / "images" / "test")
    (data.parent / "labels" / "val").rename(data.parent / "labels" / "test")
    data.write_text("path: .\ntest: images/test\nnames: {0: circle, 1: square, 2: triangle}\n")
    models = [shutil.copy(ul_onnx, (tmp_path / run).mkdir() or tmp_path / run / "best.onnx") for run in ("a", "b")]
    proc = run_cli("val", *map(str, models), "--data", str(data), "--split", "test", "--device", "cpu",
                   "--save-plots", str(tmp_path / "plots"))
    assert proc.returncode == 0, proc.stderr
    assert "(test): 8 images" in proc.stderr
    assert [ln.split()[1] for ln in proc.stdout.splitlines()[1:3]] == ["a/best.onnx", "b/best.onnx"]
    for name in ("pr_curve_1.png", "confusion_matrix_1.png", "pr_curve_2.png", "confusion_matrix_2.png"):
        png = (tmp_path / "plots" / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    proc = run_cli("val", str(models[0]), "--data", str(data), "--device", "cpu")   # no 'val' split
    assert proc.returncode == 1 and "has no 'val' split" in proc.stderr


def test_a_pair_that_cannot_run_is_skipped(ul_openvino: Path, val_dir: Path, tmp_path: Path) -> None:
    """ONNX Runtime cannot run an OpenVINO IR: that run is skipped with a warning, openvino's is reported."""
    data = small_dataset(val_dir, tmp_path / "data", 5)
    proc = run_cli("val", str(ul_openvino), "--data", str(data), "--device", "cpu,openvino")
    assert proc.returncode == 0, proc.stderr
    assert f"warning: skipped {ul_openvino} on cpu: onnxruntime runs .onnx models" in proc.stderr
    rows = proc.stdout.splitlines()[1:]
    assert rows[0].split()[:3] == ["1", ul_openvino.name, "openvino"] and rows[1].split()[0] == "class"
    proc = run_cli("val", str(ul_openvino), "--data", str(data), "--device", "cpu,torch")
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1].startswith("error: no model/device pair could run")

"""`edge-yolo export` end to end in a subprocess: default output naming, progress lines, and
one-line errors for bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

EDGE_YOLO = str(Path(sys.executable).parent / "edge-yolo")


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGE_YOLO, "export", *map(str, args)], capture_output=True, text=True, timeout=600)


def test_export_onnx_next_to_checkpoint(shapes_pt: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "best.pt"
    shutil.copy(shapes_pt, ckpt)
    result = _run(ckpt, "--format", "onnx", "--imgsz", "256,320")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "best_256x320.onnx"     # not the training size (320x320): named by variant
    assert out.is_file()
    assert f"exported {out}" in result.stdout
    assert "verified against torch: max |Δ|" in result.stdout
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 256, 320]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.pt"], "error: checkpoint not found"),
        (["{pt}", "--format", "openvino", "--dynamic", "--batch", "4"], "error: --dynamic exports take any batch size"),
        (["{pt}", "--imgsz", "abc"], "error: --imgsz must be"),
        (["{pt}", "--imgsz", "100"], "error: imgsz must be positive multiples of 32"),
        (["{pt}", "--format", "openvino", "--int8"], "error: INT8 export needs calibration images"),
        (["{pt}", "--format", "openvino", "--int8", "--data", "nowhere"], "error: calibration data not found"),
        (["{pt}", "--format", "onnx", "--int8", "--data", "nowhere"], "error: INT8 is supported for --format openvino only"),
    ],
)
def test_errors_are_one_line(args: list[str], message: str, shapes_pt: Path, tmp_path: Path) -> None:
    result = _run(*[a.format(pt=shapes_pt) for a in args], "--output", tmp_path / "x_openvino_model")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_format_is_a_fixed_choice_and_help_lists_it(shapes_pt: Path, tmp_path: Path) -> None:
    result = _run(shapes_pt, "--format", "tflite", "--output", tmp_path / "x.onnx")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: Invalid value for '--format': 'tflite' is not one of 'onnx', 'openvino', 'triton'. (see: edge-yolo export --help)"]
    assert "[onnx|openvino|triton]" in _run("--help").stdout


def test_plain_torch_model_is_named_not_yolo(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "not_yolo.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU()), path)
    result = _run(path)
    assert result.returncode == 1 and result.stderr == (
        f"error: {path} is not a YOLOv12 checkpoint (found: torch Linear layers); nothing in the file was run\n")

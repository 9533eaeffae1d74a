"""A runtime-only install (`pip install 'edge-yolo[onnx,openvino]'`: no torch, onnx, onnxslim)
gets the "needs the export extra" hint, not a ModuleNotFoundError, from `export` and from
`detect -m model.pt`. Simulated in a subprocess by marking `onnx` as not installed
(`sys.modules["onnx"] = None`, which both `import onnx` and `importlib.util.find_spec` honour);
the same messages were checked in a real runtime-only virtual environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HINT = "pip install 'edge-yolo[export]'"


def run_without_onnx(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; sys.modules['onnx'] = None; from edge_yolo.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.mark.parametrize("fmt, task", [("onnx", "ONNX export"), ("openvino", "OpenVINO export")])
def test_export_names_the_missing_extra(shapes_pt: Path, tmp_path: Path, fmt: str, task: str) -> None:
    proc = run_without_onnx("export", shapes_pt, "--format", fmt, "--output", tmp_path / "out_openvino_model"
                            if fmt == "openvino" else tmp_path / "out.onnx", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {task} needs the export extra (missing: onnx): {HINT}"
    assert list(tmp_path.iterdir()) == []


def test_detect_with_a_pt_names_the_missing_extra(shapes_pt: Path, val_images: list[Path], tmp_path: Path) -> None:
    pt = tmp_path / "model.pt"          # a copy: no ONNX export cached next to it
    shutil.copy(shapes_pt, pt)
    proc = run_without_onnx("detect", "-m", pt, val_images[0], "-o", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"error: running model.pt (exported to ONNX on first use) needs the export "
                                   f"extra (missing: onnx): {HINT}")

"""`edge-yolo export` never silently replaces a file it did not write, nor one of its own
exports with other flags; non-default variants get their own default names."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import onnx
import pytest

from test_cli_export import _run


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def best_pt(shapes_pt: Path, tmp_path: Path) -> Path:
    ckpt = tmp_path / "yolo12n_shapes.pt"
    shutil.copy(shapes_pt, ckpt)
    return ckpt


def test_an_ultralytics_export_is_kept_unless_force(best_pt: Path, ul_onnx: Path) -> None:
    target = best_pt.with_suffix(".onnx")
    shutil.copy(ul_onnx, target)
    before = _sha(target)
    refused = _run(best_pt, "--no-verify")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"error: {target} already exists (made by Ultralytics 8.4.190); pass --force "
                                      "(force=True in Python) to replace it, or choose another --output.")
    assert _sha(target) == before

    forced = _run(best_pt, "--no-verify", "--force")
    assert forced.returncode == 0, forced.stderr
    props = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    assert props["exporter"].startswith("edge-yolo") and props["imgsz"] == "[320, 320]"

    again = _run(best_pt, "--no-verify")          # our own export with the same flags: replaced
    assert again.returncode == 0, again.stderr


def test_our_export_with_other_flags_is_kept_unless_force(best_pt: Path) -> None:
    target = best_pt.with_suffix(".onnx")
    assert _run(best_pt, "--no-verify").returncode == 0
    before = _sha(target)
    refused = _run(best_pt, "--no-verify", "--dynamic", "--output", target)
    assert refused.returncode == 1
    assert (f"error: {target} already holds another edge-yolo export (320x320 fp32 static batch 1, this one is "
            "320x320 fp32 dynamic batch 1)") in refused.stderr
    assert _sha(target) == before


def test_non_default_variants_get_distinct_names(best_pt: Path, tmp_path: Path) -> None:
    dynamic = _run(best_pt, "--no-verify", "--dynamic")
    assert dynamic.returncode == 0, dynamic.stderr
    assert f"exported {tmp_path / 'yolo12n_shapes_dynamic.onnx'}" in dynamic.stdout
    sized = _run(best_pt, "--no-verify", "--imgsz", "640", "--batch", "2")
    assert sized.returncode == 0, sized.stderr
    assert f"exported {tmp_path / 'yolo12n_shapes_640x640_b2.onnx'}" in sized.stdout
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["yolo12n_shapes_640x640_b2.onnx",
                                                                "yolo12n_shapes_dynamic.onnx"]


def test_an_ultralytics_openvino_directory_is_kept(best_pt: Path, ul_openvino: Path) -> None:
    target = best_pt.with_name("yolo12n_shapes_openvino_model")
    shutil.copytree(ul_openvino, target)
    files = {p.name: _sha(p) for p in target.iterdir()}
    refused = _run(best_pt, "--format", "openvino", "--no-verify")
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: {target} already exists (made by Ultralytics 8.4.190)")
    assert {p.name: _sha(p) for p in target.iterdir()} == files

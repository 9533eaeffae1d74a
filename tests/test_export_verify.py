"""The FP32 export verifier judges an export against the model's own float32 conditioning:
ill-conditioned checkpoints (float32 rounding alone moves boxes by pixels) export, planted
export faults are still refused, and a refused export leaves no file that a later
`Detector("best.pt")` could pick up."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from checkpoint_factory import ill_conditioned
from converters import export_onnx, export_openvino, load_checkpoint
from converters.checkpoint import LoadedCheckpoint
from converters.export_common import export_model
from converters.nn.attention import AAttn
from converters.verify import torch_runner, verification_inputs
from edge_yolo.detector import Detector
from edge_yolo.errors import ExportError
from edge_yolo.modelinfo import read_model_info

CHECKPOINTS = Path(__file__).parent / "fixtures" / "checkpoints"
IMGSZ = 192
REFUSED = "differs from a float64 PyTorch forward"


def photo_error_vs_float64(loaded: LoadedCheckpoint) -> float:
    """Max |Δ| of torch float32 against float64 on the verification photos."""
    real, _ = verification_inputs((IMGSZ, IMGSZ), 1)
    f32, f64 = torch_runner(loaded.model), torch_runner(loaded.model, "float64")
    return max(float(np.abs(f32(x) - f64(x)).max()) for x in real)


def only_the_export(tmp_path: Path) -> list[str]:
    """Every file and folder left in tmp_path (staging folders included)."""
    return sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize(("layout", "scale", "width", "fused", "seed", "gain"), [
    ("A", "n", None, False, 0, 1.8), ("B", "n", None, False, 0, 1.8), ("C", "n", None, False, 0, 1.8),
    ("E", "n", None, False, 3, 2.0), ("A", "n", None, True, 0, 1.8), ("B", "l", 0.25, False, 0, 1.8),
])
def test_ill_conditioned_checkpoint_exports_to_onnx(tmp_path: Path, layout: str, scale: str, width: float | None,
                                                    fused: bool, seed: int, gain: float) -> None:
    pt = ill_conditioned(tmp_path / "best.pt", layout, scale, seed=seed, width=width, fused=fused, gain=gain)
    loaded = load_checkpoint(pt)
    assert loaded.layout == layout and loaded.fused == fused
    # float32 rounding alone exceeds the 1e-3 parity tolerance: a fixed bound would refuse it
    assert photo_error_vs_float64(loaded) > 1e-2
    path = export_onnx(loaded)
    assert path == tmp_path / "best.onnx"
    assert only_the_export(tmp_path) == ["best.onnx", "best.pt"]


@pytest.mark.parametrize("name", ["yolo12n_ul.pt", "yolov12n_v1.pt", "yolov12n_turbo.pt"])
def test_fixture_checkpoints_export(tmp_path: Path, name: str, capsys: pytest.CaptureFixture) -> None:
    """The three code bases' checkpoints (well conditioned): held to about 1e-3 against float64."""
    pt = Path(shutil.copy(CHECKPOINTS / name, tmp_path / name))
    path = export_onnx(pt, imgsz=IMGSZ)
    assert only_the_export(tmp_path) == sorted([path.name, name])
    allowed = [float(a) for a in re.findall(r"\(allowed 8\*\S+ \+ 0\.001 = (\S+)\)", capsys.readouterr().out)]
    assert len(allowed) == 2 and max(allowed) < 3e-3                 # photos, noise


def test_ill_conditioned_checkpoint_exports_to_openvino(tmp_path: Path) -> None:
    # measured: OpenVINO f32 is 4.1x torch float32's error on noise for this one, the most seen
    loaded = load_checkpoint(ill_conditioned(tmp_path / "best.pt", "B", seed=0))
    assert photo_error_vs_float64(loaded) > 1e-2
    directory = export_openvino(loaded)
    assert sorted(p.name for p in directory.iterdir()) == ["best.bin", "best.xml", "metadata.yaml"]
    assert only_the_export(tmp_path) == ["best.pt", "best_openvino_model"]


# Faults an exporter can make, planted in the traced copy only (the torch reference stays right).
def wrong_area(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, AAttn) and m.area > 1:
            m.area //= 2


def wrong_bn_eps(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = 1e-5


def dropped_pe_bias(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, AAttn):
            m.pe.conv.bias.zero_()


def plant(monkeypatch: pytest.MonkeyPatch, fault: Callable[[torch.nn.Module], None]) -> None:
    """Make the exporter trace a copy of the model with `fault` applied (before BN folding)."""

    def faulty(loaded: LoadedCheckpoint) -> torch.nn.Module:
        broken = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
        with torch.no_grad():
            fault(broken.model)
        return export_model(broken)

    # the module, not the function `converters.export_onnx` that the package exports under its name
    monkeypatch.setattr(importlib.import_module("converters.export_onnx"), "export_model", faulty)


@pytest.mark.parametrize(("checkpoint", "fault"), [
    ("shapes", wrong_area), ("shapes", wrong_bn_eps), ("yolov12n_v1.pt", dropped_pe_bias),
])
def test_planted_fault_is_refused_and_leaves_nothing(tmp_path: Path, shapes_pt: Path, checkpoint: str,
                                                     fault: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    source = shapes_pt if checkpoint == "shapes" else CHECKPOINTS / checkpoint
    pt = Path(shutil.copy(source, tmp_path / "best.pt"))
    plant(monkeypatch, fault)
    with pytest.raises(ExportError, match=REFUSED):
        export_onnx(pt, imgsz=IMGSZ)
    assert only_the_export(tmp_path) == ["best.pt"]


def test_planted_fault_is_refused_in_openvino(tmp_path: Path, shapes_pt: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pt = Path(shutil.copy(shapes_pt, tmp_path / "best.pt"))
    plant(monkeypatch, wrong_bn_eps)
    with pytest.raises(ExportError, match=REFUSED):
        export_openvino(pt, imgsz=IMGSZ)
    assert only_the_export(tmp_path) == ["best.pt"]


def test_refused_export_keeps_the_earlier_file(tmp_path: Path, shapes_pt: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pt = Path(shutil.copy(shapes_pt, tmp_path / "best.pt"))
    good = export_onnx(pt, imgsz=IMGSZ)
    before = good.read_bytes()
    plant(monkeypatch, wrong_area)
    with pytest.raises(ExportError, match=REFUSED):
        export_onnx(pt, imgsz=IMGSZ)
    assert good.read_bytes() == before
    assert only_the_export(tmp_path) == sorted([good.name, "best.pt"])


def test_detector_never_reuses_a_refused_export(tmp_path: Path, shapes_pt: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pt = Path(shutil.copy(shapes_pt, tmp_path / "best.pt"))
    cached = tmp_path / f"best_{IMGSZ}x{IMGSZ}.edge-yolo.onnx"
    with monkeypatch.context() as patch:
        plant(patch, wrong_bn_eps)
        with pytest.raises(ExportError, match=REFUSED):
            Detector(pt, device="cpu", imgsz=IMGSZ)
    assert not cached.exists()
    detector = Detector(pt, device="cpu", imgsz=IMGSZ)  # exported again, now verified
    assert detector.model_info.path == cached
    assert read_model_info(cached).metadata["source_sha256"] == load_checkpoint(pt).sha256


def test_detector_cache_follows_the_checkpoint_bytes_not_mtime(tmp_path: Path, shapes_pt: Path) -> None:
    pt = Path(shutil.copy(shapes_pt, tmp_path / "best.pt"))
    cached = Detector(pt, device="cpu", imgsz=IMGSZ).model_info.path
    stamp = cached.stat().st_mtime_ns
    assert Detector(pt, device="cpu", imgsz=IMGSZ).model_info.path == cached
    assert cached.stat().st_mtime_ns == stamp                       # same bytes: reused
    # other weights under the same name, the export still newer than the checkpoint
    shutil.copy(CHECKPOINTS / "yolov12n_v1.pt", pt)
    os.utime(pt, ns=(stamp - 10**9, stamp - 10**9))
    detector = Detector(pt, device="cpu", imgsz=IMGSZ)
    assert len(detector.names) == 80                                # re-exported from the new weights
    assert read_model_info(cached).metadata["source_sha256"] == load_checkpoint(pt).sha256

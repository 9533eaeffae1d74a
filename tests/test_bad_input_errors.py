"""Bad input gives one line `error: ...` in our own words: NaN thresholds, oversized --imgsz,
a broken metadata.yaml, ONNX Runtime and OpenVINO failures at inference, and `val` over
several devices skipping the pair that cannot run instead of failing the whole table."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_yolo.backends.onnxruntime import OnnxRuntimeBackend
from edge_yolo.backends.openvino import OpenVinoBackend
from edge_yolo.detector import Detector
from edge_yolo.errors import EdgeYoloError, ModelLoadError

from test_cli_detect import run_cli
from test_cli_val import small_dataset


@pytest.mark.parametrize("option", ["--conf", "--iou"])
def test_nan_thresholds_are_refused(option: str, ul_onnx: Path, val_images: list[Path], tmp_path: Path,
                                    capfd: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["detect", val_images[0], "-m", ul_onnx, "--device", "cpu", option, "nan",
                            "-o", tmp_path / "r", "-q"], capfd)
    assert (code, err) == (1, f"error: {option[2:]} must be a number between 0 and 1, got nan\n")
    assert not (tmp_path / "r").exists()
    with pytest.raises(EdgeYoloError, match="between 0 and 1"):
        Detector(ul_onnx, device="cpu", iou=float("nan"))


def test_huge_imgsz_is_refused_and_large_one_warned(our_dynamic_onnx: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(EdgeYoloError, match="imgsz 8000x8000 is too large: at most 7680 pixels a side"):
        Detector(our_dynamic_onnx, device="cpu", imgsz=8000)
    with caplog.at_level(logging.WARNING):
        det = Detector(our_dynamic_onnx, device="cpu", imgsz=2560)
    assert det.imgsz == (2560, 2560)
    assert "imgsz 2560x2560 has 16x the pixels of 640x640" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Detector(our_dynamic_onnx, device="cpu", imgsz=1280)
    assert "pixels of" not in caplog.text


def test_huge_export_imgsz_is_refused(shapes_pt: Path, capfd: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["export", shapes_pt, "--format", "onnx", "--imgsz", "8000"], capfd)
    assert (code, err) == (1, "error: imgsz 8000x8000 is too large: at most 7680 pixels a side.\n")


@pytest.fixture(scope="module")
def our_dynamic_onnx(tmp_path_factory: pytest.TempPathFactory, shapes_pt: Path) -> Path:
    from converters import export_onnx

    return export_onnx(shapes_pt, output=tmp_path_factory.mktemp("dyn") / "dyn.onnx", dynamic=True, verify=False)


def test_broken_metadata_yaml_is_one_line(ul_openvino: Path, val_images: list[Path], tmp_path: Path,
                                          capfd: pytest.CaptureFixture) -> None:
    ir = shutil.copytree(ul_openvino, tmp_path / "m_openvino_model")
    (ir / "metadata.yaml").write_text("names: {0: a\n  - : [\n")
    code, _, err = run_cli(["detect", val_images[0], "-m", ir, "-q", "-o", tmp_path / "r"], capfd)
    assert code == 1 and err.startswith(f"error: cannot read {ir / 'metadata.yaml'}: while parsing a flow mapping")
    assert err.count("\n") == 1 and "unexpected" not in err


def test_broken_data_yaml_is_one_line(ul_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("names: {0: a\n  - : [\n")
    code, _, err = run_cli(["val", ul_onnx, "--data", data, "--device", "cpu"], capfd)
    last = err.strip().splitlines()[-1]
    assert code == 1 and last.startswith(f"error: cannot read {data}: while parsing a flow mapping"), err
    assert "Traceback" not in err and "unexpected" not in err


def test_backend_failures_at_inference_are_ours(ul_onnx: Path, ul_openvino: Path) -> None:
    ort = OnnxRuntimeBackend(ul_onnx)
    for bad in (np.zeros((1, 3, 320, 320), np.float32), np.zeros((1, 3, 640, 640), np.float64)):
        with pytest.raises(EdgeYoloError, match="onnxruntime inference failed: .*INVALID_ARGUMENT") as exc:
            ort.infer(bad)
        assert "\n" not in str(exc.value)
    ov = OpenVinoBackend(ul_openvino)
    with pytest.raises(EdgeYoloError, match="openvino inference failed") as exc:
        ov.infer(np.zeros((1, 320, 320, 3), np.uint8))
    assert "\n" not in str(exc.value)


def test_val_skips_the_device_an_ir_cannot_run_on(ul_openvino: Path, val_dir: Path, tmp_path: Path,
                                                  capfd: pytest.CaptureFixture,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    data = small_dataset(val_dir, tmp_path / "data", 8)
    with caplog.at_level(logging.WARNING):
        code, out, err = run_cli(["val", ul_openvino, "--data", data, "--device", "cpu,openvino"], capfd)
    assert code == 0, err
    assert f"skipped {ul_openvino} on cpu: onnxruntime runs .onnx models" in caplog.text
    rows = [line for line in out.splitlines() if line.startswith("1 ")]
    assert len(rows) == 1 and "openvino" in rows[0]
    assert not [line for line in out.splitlines() if line.startswith("2 ")]
    code, _, err = run_cli(["val", ul_openvino, "--data", data, "--device", "cpu"], capfd)  # nothing else to run
    assert code == 1 and err.startswith("error: onnxruntime runs .onnx models")


def test_model_load_errors_keep_their_type(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelLoadError) as exc:
        Detector(bad, device="cpu")
    assert "\n" not in str(exc.value)

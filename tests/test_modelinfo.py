"""Reading model interfaces and metadata: Ultralytics exports, bare ONNX, wrong-shaped models."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge_yolo import read_model_info
from edge_yolo.errors import ModelLoadError, UnsupportedModelError

NAMES = {0: "circle", 1: "square", 2: "triangle"}


def tiny_onnx(path: Path, in_shape: list, out_shape: list, elem: int = TensorProto.FLOAT,
              meta: dict[str, str] | None = None) -> Path:
    """A one-node ONNX with the given interface (only its shapes matter to read_model_info)."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["output0"])], "g",
        [helper.make_tensor_value_info("images", elem, in_shape)],
        [helper.make_tensor_value_info("output0", elem, out_shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, path)
    return path


def test_ultralytics_onnx(ul_onnx: Path) -> None:
    info = read_model_info(ul_onnx)
    assert info.format == "onnx" and info.names == NAMES and info.nc == 3
    assert info.imgsz == (640, 640) and info.batch == 1 and not info.dynamic
    assert info.input_dtype == np.float32 and info.stride == 32
    assert info.input_shape == (1, 3, 640, 640) and info.output_shape == (1, 7, 8400)


@pytest.mark.parametrize("which", ["dir", "xml"])
def test_ultralytics_openvino(ul_openvino: Path, which: str) -> None:
    path = ul_openvino if which == "dir" else next(ul_openvino.glob("*.xml"))
    info = read_model_info(path)
    assert info.format == "openvino" and info.path.suffix == ".xml"
    assert info.names == NAMES and info.imgsz == (640, 640) and info.output_shape == (1, 7, 8400)


def test_openvino_names_from_rt_info_without_metadata_yaml(ul_openvino: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m_openvino_model"
    shutil.copytree(ul_openvino, copy)
    (copy / "metadata.yaml").unlink()
    assert read_model_info(copy).names == NAMES     # from rt_info model_info/labels


def test_onnx_without_metadata(ul_onnx: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = onnx.load(ul_onnx)
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, bare)
    with caplog.at_level(logging.WARNING):
        info = read_model_info(bare)
    assert info.names == {0: "0", 1: "1", 2: "2"} and info.imgsz == (640, 640)
    assert "no class names" in caplog.text


def test_dynamic_onnx_uses_metadata_imgsz(tmp_path: Path) -> None:
    path = tiny_onnx(tmp_path / "d.onnx", ["batch", 3, "h", "w"], ["batch", 7, "anchors"],
                     meta={"imgsz": "[320, 320]", "names": str(NAMES)})
    info = read_model_info(path)
    assert info.dynamic and info.batch is None and info.imgsz == (320, 320)


def test_fp16_input_dtype(tmp_path: Path) -> None:
    path = tiny_onnx(tmp_path / "h.onnx", [1, 3, 64, 64], [1, 7, 84], elem=TensorProto.FLOAT16)
    assert read_model_info(path).input_dtype == np.float16


@pytest.mark.parametrize(
    ("in_shape", "out_shape", "meta", "match"),
    [
        ([1, 1, 640, 640], [1, 7, 8400], None, r"expected \(B, 3, H, W\)"),
        ([1, 3, 640], [1, 7, 8400], None, r"expected \(B, 3, H, W\)"),
        ([1, 3, 640, 640], [1, 300, 6, 1], None, "embedded NMS"),
        ([1, 3, 640, 640], [1, 85, 8400], {"names": str(NAMES)}, "3 classes"),
        ([1, 3, 640, 640], [1, 4, 8400], None, "4\\+nc"),
    ],
)
def test_wrong_shaped_models(tmp_path: Path, in_shape: list, out_shape: list, meta: dict | None, match: str) -> None:
    path = tiny_onnx(tmp_path / "bad.onnx", in_shape, out_shape, meta=meta)
    with pytest.raises(UnsupportedModelError, match=match):
        read_model_info(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        read_model_info(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match="cannot read"):
        read_model_info(junk)
    other = tmp_path / "model.tflite"
    other.write_bytes(b"x")
    with pytest.raises(UnsupportedModelError, match="unsupported model file"):
        read_model_info(other)


def test_onnx_read_through_onnxruntime_when_onnx_is_missing(ul_onnx: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Runtime installs have onnxruntime but not the onnx package (an export extra)."""
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    info = read_model_info(ul_onnx)
    assert info.names == NAMES and info.input_shape == (1, 3, 640, 640) and info.output_shape == (1, 7, 8400)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="cannot read"):
        read_model_info(junk)

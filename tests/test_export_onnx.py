"""ONNX export of the trained shapes model: parity with our torch rebuild (DESIGN.md: max |Δ| ≤ 1e-3),
dynamic shapes, FP16 detections, Ultralytics-style metadata, and the errors."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import onnx
import pytest

from converters import export_onnx, load_checkpoint
from converters.verify import agreement, fill_batch, letterboxed_batch, onnx_runner, torch_runner
from edge_yolo.errors import ExportError, ModelLoadError


@pytest.fixture(scope="module")
def loaded(shapes_pt: Path):
    return load_checkpoint(shapes_pt)


@pytest.fixture(scope="module")
def photos(val_images: list[Path]) -> list[Path]:
    return val_images[:6]


def test_static_fp32_matches_torch(our_onnx: Path, loaded, photos: list[Path]) -> None:
    x = letterboxed_batch(photos, (640, 640))
    run = onnx_runner(our_onnx)
    reference = torch_runner(loaded.model)
    for batch in fill_batch(x, 1):
        out = run(batch)
        assert out.shape == (1, 4 + 3, 8400)
        assert np.abs(out - reference(batch)).max() <= 1e-3


def test_graph_io_and_metadata(our_onnx: Path, loaded) -> None:
    model = onnx.load(str(our_onnx))
    assert model.opset_import[0].version == 17
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "images" and out.name == "output0"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, 640, 640]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 7, 8400]
    assert not any(n.op_type == "BatchNormalization" for n in model.graph.node)  # BN folded
    props = {p.key: p.value for p in model.metadata_props}
    ultralytics_keys = {"description", "author", "date", "version", "license", "docs", "stride", "task",
                        "head", "batch", "imgsz", "names", "args", "channels", "end2end"}
    assert ultralytics_keys <= props.keys()
    assert ast.literal_eval(props["names"]) == {0: "circle", 1: "square", 2: "triangle"}
    assert ast.literal_eval(props["imgsz"]) == [640, 640]
    assert props["stride"] == "32" and props["batch"] == "1" and props["task"] == "detect"
    assert props["end2end"] == "False" and props["channels"] == "3"
    assert ast.literal_eval(props["args"])["opset"] == 17
    assert props["source_sha256"] == loaded.sha256 and props["layout"] == "A"
    assert props["precision"] == "fp32" and props["edge_yolo_version"]


@pytest.fixture(scope="module")
def dynamic_onnx(loaded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(loaded, output=tmp_path_factory.mktemp("dyn") / "dyn.onnx", dynamic=True)


@pytest.mark.parametrize("hw", [(320, 320), (256, 416)])
def test_dynamic_batch_and_size_match_torch(dynamic_onnx: Path, loaded, photos: list[Path],
                                            hw: tuple[int, int]) -> None:
    dims = onnx.load(str(dynamic_onnx)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    x = letterboxed_batch(photos[:2], hw)
    out = onnx_runner(dynamic_onnx)(x)
    assert out.shape == (2, 7, sum((hw[0] // s) * (hw[1] // s) for s in (8, 16, 32)))
    assert np.abs(out - torch_runner(loaded.model)(x)).max() <= 1e-3


def test_fp16_dynamic_runs_and_detections_agree(loaded, val_images: list[Path], tmp_path: Path) -> None:
    path = export_onnx(loaded, output=tmp_path / "half.onnx", half=True, dynamic=True)
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert {p.key: p.value for p in model.metadata_props}["precision"] == "fp16"
    inputs = fill_batch(letterboxed_batch(val_images[:8], (320, 320)), 2)
    agree = agreement(torch_runner(loaded.model), onnx_runner(path), inputs)
    print(f"ONNX FP16 vs torch FP32 on 8 photos: {agree}")
    assert agree.total > 20
    assert agree.fraction >= 0.95


@pytest.mark.parametrize("imgsz", [100, (640, 500), 0])
def test_imgsz_not_multiple_of_32_is_refused(loaded, imgsz, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="multiples of 32"):
        export_onnx(loaded, output=tmp_path / "x.onnx", imgsz=imgsz)
    assert not (tmp_path / "x.onnx").exists()


def test_bad_arguments_are_refused(loaded, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="opset"):
        export_onnx(loaded, output=tmp_path / "x.onnx", opset=5)
    with pytest.raises(ExportError, match=".onnx file"):
        export_onnx(loaded, output=tmp_path / "x_openvino_model")
    with pytest.raises(ExportError, match="batch"):
        export_onnx(loaded, output=tmp_path / "x.onnx", batch=0)


def test_missing_checkpoint_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError):
        export_onnx(tmp_path / "missing.pt")

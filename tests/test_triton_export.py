"""`edge-yolo export --format triton`: the model repository and what Triton reads from it.

Every config.pbtxt is parsed with Triton's own schema (tritonclient's model_config_pb2 and
protobuf's text format), and its names, dims and data types are compared with the exported
model file itself. The onnxruntime config is also served by a real tritonserver in
test_triton_server.py; configs for the onnxruntime GPU/TensorRT-accelerator, tensorrt and
openvino backends cannot be served here (those backends ship only in NVIDIA's Triton
containers), so for them this parsing is the check.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from converters.export_triton import build_engine_script, config_text, describe, export_triton
from edge_yolo.errors import ExportError
from test_cli_detect import run_cli

NAMES = {0: "circle", 1: "square", 2: "triangle"}
PB = model_config_pb2


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def params(config: model_config_pb2.ModelConfig) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


def assert_metadata(config: model_config_pb2.ModelConfig) -> None:
    p = params(config)
    assert ast.literal_eval(p["names"]) == NAMES  # the same Python-literal form as the ONNX metadata props
    assert p["stride"] == "32" and p["imgsz"] == "[320, 320]" and p["task"] == "detect"
    assert len(p["source_sha256"]) == 64


def test_onnxruntime_repository(triton_repository: Path) -> None:
    model_dir = triton_repository / "shapes"
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "config.pbtxt"]
    config = parse(model_dir / "config.pbtxt")
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    inp, out = session.get_inputs()[0], session.get_outputs()[0]
    assert config.name == "shapes" and config.backend == "onnxruntime" and config.max_batch_size == 8
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        (inp.name, PB.TYPE_FP32, inp.shape[1:])]
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [
        (out.name, PB.TYPE_FP32, out.shape[1:])]
    assert list(config.input[0].dims) == [3, 320, 320] and list(config.output[0].dims) == [7, 2100]
    assert isinstance(inp.shape[0], str)  # the batch axis really is dynamic in the file
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert config.dynamic_batching.max_queue_delay_microseconds == 1000
    assert [(g.kind, g.count) for g in config.instance_group] == [(PB.ModelInstanceGroup.KIND_CPU, 1)]
    assert not config.HasField("optimization")  # the TensorRT accelerator is for GPU instances only
    assert_metadata(config)
    batch = np.random.default_rng(0).random((3, 3, 320, 320), dtype=np.float32)
    batched = session.run(None, {inp.name: batch})[0]
    assert batched.shape == (3, 7, 2100)
    singles = np.concatenate([session.run(None, {inp.name: batch[i : i + 1]})[0] for i in range(3)])
    assert np.abs(batched - singles).max() <= 1e-3  # each image's output is its own, at any batch size


def test_gpu_configs_parse(triton_repository: Path) -> None:
    onnx = triton_repository / "shapes" / "1" / "model.onnx"
    gpu = text_format.Parse(config_text(describe(onnx, "yolo", "onnxruntime", "gpu", 2, 16)), PB.ModelConfig())
    assert [(g.kind, g.count) for g in gpu.instance_group] == [(PB.ModelInstanceGroup.KIND_GPU, 2)]
    (accel,) = gpu.optimization.execution_accelerators.gpu_execution_accelerator
    assert accel.name == "tensorrt" and accel.parameters["precision_mode"] == "FP16"
    assert list(gpu.dynamic_batching.preferred_batch_size) == [8, 16] and gpu.max_batch_size == 16
    assert_metadata(gpu)

    trt = text_format.Parse(config_text(describe(onnx, "yolo", "tensorrt", "gpu", 1, 4)), PB.ModelConfig())
    assert trt.platform == "tensorrt_plan" and not trt.backend
    assert [(g.kind, g.count) for g in trt.instance_group] == [(PB.ModelInstanceGroup.KIND_GPU, 1)]
    assert list(trt.input[0].dims) == [3, 320, 320] and trt.input[0].data_type == PB.TYPE_FP32
    assert not trt.HasField("optimization")


def test_tensorrt_repository(tmp_path: Path, shapes_pt: Path) -> None:
    model_dir = export_triton(shapes_pt, output=tmp_path, name="yolo-trt", backend="tensorrt", max_batch=4,
                              verify=False)  # the same ONNX export the verified tests check
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "build_engine.sh", "config.pbtxt", "model.onnx"]
    assert parse(model_dir / "config.pbtxt").platform == "tensorrt_plan"
    script = (model_dir / "build_engine.sh").read_text()
    assert os.access(model_dir / "build_engine.sh", os.X_OK)
    assert "--saveEngine=1/model.plan" in script and "--fp16" in script
    assert "--minShapes=images:1x3x320x320 --optShapes=images:4x3x320x320 --maxShapes=images:4x3x320x320" in script
    model = describe(model_dir / "model.onnx", "yolo-trt", "tensorrt", "gpu", 1, 4)
    assert build_engine_script(model) == script
    # a repository model is never replaced by accident
    with pytest.raises(ExportError, match="already holds a Triton model; pass --force"):
        export_triton(shapes_pt, output=tmp_path, name="yolo-trt", backend="tensorrt", max_batch=8, verify=False)
    assert parse(model_dir / "config.pbtxt").max_batch_size == 4
    export_triton(shapes_pt, output=tmp_path, name="yolo-trt", backend="tensorrt", max_batch=8, verify=False,
                  force=True)
    assert parse(model_dir / "config.pbtxt").max_batch_size == 8


def test_openvino_repository_from_cli(tmp_path: Path, shapes_pt: Path, capfd: pytest.CaptureFixture) -> None:
    import openvino as ov

    code, out, err = run_cli(["export", shapes_pt, "--format", "triton", "--backend", "openvino", "--name", "shapes_ov",
                              "--max-batch", "4", "-o", tmp_path / "repo"], capfd)
    assert code == 0, err
    model_dir = tmp_path / "repo" / "shapes_ov"
    assert sorted(p.name for p in (model_dir / "1").iterdir()) == ["metadata.yaml", "model.bin", "model.xml"]
    config = parse(model_dir / "config.pbtxt")
    assert config.backend == "openvino" and config.max_batch_size == 4
    assert [(g.kind, g.count) for g in config.instance_group] == [(PB.ModelInstanceGroup.KIND_CPU, 1)]
    model = ov.Core().read_model(str(model_dir / "1" / "model.xml"))
    assert config.input[0].name == model.inputs[0].get_any_name() == "images"
    assert config.output[0].name == model.outputs[0].get_any_name() == "output0"
    assert model.inputs[0].get_partial_shape()[0].is_dynamic
    assert list(config.input[0].dims) == [3, 320, 320] and list(config.output[0].dims) == [7, 2100]
    assert_metadata(config)
    compiled = ov.Core().compile_model(model, "CPU")
    assert compiled(np.zeros((3, 3, 320, 320), np.float32))[0].shape == (3, 7, 2100)


@pytest.mark.parametrize("args, message", [
    (["--backend", "openvino", "--instance-kind", "gpu"], "OpenVINO backend runs on CPU only"),
    (["--backend", "tensorrt", "--instance-kind", "cpu"], "TensorRT backend runs on GPU only"),
    (["--max-batch", "0"], "max batch must be at least 1"),
    (["--name", "my model"], "Triton model names use letters"),
    (["--half"], "--half, --int8, --dynamic"),
])
def test_bad_triton_options(args: list[str], message: str, tmp_path: Path, shapes_pt: Path,
                            capfd: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["export", shapes_pt, "--format", "triton", *args, "-o", tmp_path], capfd)
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("error: ") and message in err
    assert "Traceback" not in err and not any(tmp_path.iterdir())

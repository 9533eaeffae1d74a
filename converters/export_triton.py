"""Export a checkpoint as a Triton Inference Server model repository.

Layout (`<repository>/<name>/`):
- onnxruntime: `config.pbtxt`, `1/model.onnx`. GPU instances run ONNX Runtime with the TensorRT
  accelerator (FP16); `instance_kind="cpu"` makes CPU instances without it.
- openvino: `config.pbtxt`, `1/model.xml`, `1/model.bin` (+ `1/metadata.yaml`); CPU instances
  (Triton's OpenVINO backend runs on CPU only).
- tensorrt: `config.pbtxt`, `model.onnx` and `build_engine.sh`, which builds `1/model.plan` with
  trtexec on the serving GPU (an engine is specific to the GPU and TensorRT version, so it
  cannot be built here).

The model is exported with a dynamic batch axis and a fixed height and width; `config.pbtxt`
declares `max_batch_size`, dynamic batching (preferred batch sizes, a queue delay), the
instance group and our metadata (names, stride, imgsz, ...) as `parameters`, so a client
learns the classes from the server. Input/output names, dims and data types are read back
from the exported model file, so the config says what Triton will find.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge_yolo.errors import ExportError

from converters.export_common import note, resolve_checkpoint

if TYPE_CHECKING:
    from converters.checkpoint import LoadedCheckpoint
    from edge_yolo.modelinfo import ModelInfo

BACKENDS = ("onnxruntime", "tensorrt", "openvino")
KINDS = ("gpu", "cpu")
DEFAULT_MAX_BATCH = 8
QUEUE_DELAY_US = 1000
# The metadata a client needs (edge_yolo.backends.triton reads these), plus provenance.
PARAMETER_KEYS = ("names", "stride", "imgsz", "task", "source", "source_sha256", "layout",
                  "edge_yolo_version", "precision")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16"}


@dataclass(frozen=True)
class TritonModel:
    """What `config.pbtxt` declares, read back from the exported model file."""

    name: str
    backend: str
    kind: str
    instances: int
    max_batch: int
    input_name: str
    input_dims: tuple[int, ...]
    input_type: str
    output_name: str
    output_dims: tuple[int, ...]
    output_type: str
    parameters: dict[str, str]


def export_triton(
    checkpoint: str | Path | LoadedCheckpoint,
    output: str | Path | None = None,
    name: str | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    backend: str = "onnxruntime",
    imgsz: int | tuple[int, int] | None = None,
    instance_kind: str | None = None,
    instances: int = 1,
    verify: bool = True,
    force: bool = False,
) -> Path:
    """Write `<output>/<name>/` (see the module doc) and return that model directory.

    `output` defaults to `model_repository/` next to the checkpoint, `name` to the
    checkpoint's stem. `instance_kind` "gpu" or "cpu" (default: gpu, cpu for openvino);
    `instances` instances of that kind. With `verify` the exported model is checked against
    the PyTorch model like any ONNX/OpenVINO export. A model directory that already has a
    config.pbtxt is replaced only with `force`.
    """
    if backend not in BACKENDS:
        raise ExportError(f"unknown Triton backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    kind = instance_kind or ("cpu" if backend == "openvino" else "gpu")
    if kind not in KINDS:
        raise ExportError(f"instance kind must be gpu or cpu, got {kind!r}.")
    if backend == "openvino" and kind != "cpu":
        raise ExportError("Triton's OpenVINO backend runs on CPU only: use instance kind cpu.")
    if backend == "tensorrt" and kind != "gpu":
        raise ExportError("Triton's TensorRT backend runs on GPU only: use instance kind gpu.")
    if max_batch < 1:
        raise ExportError(f"max batch must be at least 1, got {max_batch}.")
    if instances < 1:
        raise ExportError(f"instances must be at least 1, got {instances}.")
    loaded = resolve_checkpoint(checkpoint)
    name = name or loaded.source.stem
    if not _NAME.match(name):
        raise ExportError(f"Triton model names use letters, digits, '_', '-' and '.' only, got {name!r}.")
    repository = Path(output) if output is not None else loaded.source.parent / "model_repository"
    model_dir = repository / name
    if (model_dir / "config.pbtxt").exists() and not force:
        raise ExportError(f"{model_dir} already holds a Triton model; pass --force (force=True) to replace it.")
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)

    if backend == "openvino":
        model_file = _export_openvino_ir(loaded, version_dir, imgsz, verify)
    else:
        from converters.export_onnx import export_onnx

        onnx_dir = model_dir if backend == "tensorrt" else version_dir
        model_file = export_onnx(loaded, output=onnx_dir / "model.onnx", imgsz=imgsz, dynamic_batch=True,
                                 verify=verify, force=force)
    model = describe(model_file, name, backend, kind, instances, max_batch)
    config = model_dir / "config.pbtxt"
    config.write_text(config_text(model))
    check_config(config)
    if backend == "tensorrt":
        script = model_dir / "build_engine.sh"
        script.write_text(build_engine_script(model))
        script.chmod(0o755)
        note(f"build the engine on the serving GPU before starting Triton: {script}")
    note(f"wrote {config} ({backend}, {max_batch} max batch, {instances}x KIND_{kind.upper()})")
    return model_dir


def _export_openvino_ir(loaded: LoadedCheckpoint, version_dir: Path, imgsz: int | tuple[int, int] | None,
                        verify: bool) -> Path:
    """The IR as `model.xml`/`model.bin` (the names Triton's OpenVINO backend loads)."""
    from converters.export_openvino import export_openvino

    with tempfile.TemporaryDirectory(dir=version_dir.parent) as tmp:
        ir_dir = export_openvino(loaded, output=Path(tmp) / "ir", imgsz=imgsz, dynamic_batch=True, verify=verify)
        for path in ir_dir.iterdir():
            target = version_dir / (path.name if path.suffix not in (".xml", ".bin") else "model" + path.suffix)
            shutil.move(str(path), target)
    return version_dir / "model.xml"


def describe(model_file: Path, name: str, backend: str, kind: str, instances: int, max_batch: int) -> TritonModel:
    """The config's contents from the exported file's real interface; ExportError when it is not
    (B, 3, H, W) in with a dynamic batch, (B, 4+nc, A) out, float32/float16."""
    from edge_yolo.modelinfo import read_model_info

    info = read_model_info(model_file)
    in_shape, out_shape = info.input_shape, info.output_shape
    if in_shape[0] is not None or out_shape[0] is not None:
        raise ExportError(f"{model_file.name} has a fixed batch {in_shape[0]}; Triton's batching needs a dynamic one.")
    return TritonModel(
        name=name, backend=backend, kind=kind, instances=instances, max_batch=max_batch,
        input_name=info.input_name, input_dims=_dims(in_shape[1:]), input_type=_DTYPES[info.input_dtype.name],
        output_name=_output_name(info), output_dims=_dims(out_shape[1:]),
        output_type=_DTYPES[info.input_dtype.name],  # output0 has the input's precision (FP32 I/O here)
        parameters=_parameters(info),
    )


def _output_name(info: ModelInfo) -> str:
    if info.format == "openvino":
        import openvino as ov

        return ov.Core().read_model(str(info.path)).outputs[0].get_any_name()
    import onnx

    return onnx.load(str(info.path), load_external_data=False).graph.output[0].name


def _dims(shape: tuple[int | None, ...]) -> tuple[int, ...]:
    return tuple(-1 if d is None else int(d) for d in shape)


def _parameters(info: ModelInfo) -> dict[str, str]:
    meta = dict(info.metadata)
    meta["names"] = {int(k): v for k, v in info.names.items()}
    meta["stride"] = info.stride
    if info.imgsz is not None:
        meta["imgsz"] = [int(info.imgsz[0]), int(info.imgsz[1])]
    return {k: str(meta[k]) for k in PARAMETER_KEYS if k in meta}


def preferred_batch_sizes(max_batch: int) -> list[int]:
    """Half the maximum and the maximum (just the maximum when that is 1 or 2)."""
    return sorted({max(1, max_batch // 2), max_batch}) if max_batch > 2 else [max_batch]


def _quote(text: str) -> str:
    """A protobuf text-format string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _list(values: tuple[int, ...] | list[int]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def config_text(model: TritonModel) -> str:
    """`config.pbtxt` in Triton's protobuf text format (schema: model_config.proto)."""
    lines = [f"name: {_quote(model.name)}"]
    if model.backend == "tensorrt":
        lines.append('platform: "tensorrt_plan"')
    else:
        lines.append(f"backend: {_quote(model.backend)}")
    lines += [
        f"max_batch_size: {model.max_batch}",
        "input [",
        "  {",
        f"    name: {_quote(model.input_name)}",
        f"    data_type: {model.input_type}",
        f"    dims: {_list(model.input_dims)}",
        "  }",
        "]",
        "output [",
        "  {",
        f"    name: {_quote(model.output_name)}",
        f"    data_type: {model.output_type}",
        f"    dims: {_list(model.output_dims)}",
        "  }",
        "]",
        "dynamic_batching {",
        f"  preferred_batch_size: {_list(preferred_batch_sizes(model.max_batch))}",
        f"  max_queue_delay_microseconds: {QUEUE_DELAY_US}",
        "}",
        "instance_group [",
        "  {",
        f"    count: {model.instances}",
        f"    kind: KIND_{model.kind.upper()}",
        "  }",
        "]",
    ]
    if model.backend == "onnxruntime" and model.kind == "gpu":
        lines += [
            "optimization {",
            "  execution_accelerators {",
            "    gpu_execution_accelerator [",
            "      {",
            '        name: "tensorrt"',
            '        parameters { key: "precision_mode" value: "FP16" }',
            '        parameters { key: "max_workspace_size_bytes" value: "1073741824" }',
            "      }",
            "    ]",
            "  }",
            "}",
        ]
    for key, value in model.parameters.items():
        lines.append(f"parameters {{ key: {_quote(key)} value: {{ string_value: {_quote(value)} }} }}")
    return "\n".join(lines) + "\n"


def check_config(path: Path) -> None:
    """Parse `path` with Triton's own ModelConfig schema when tritonclient is installed."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        return
    try:
        text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ExportError(f"{path} is not a valid Triton model config: {exc}") from exc


def build_engine_script(model: TritonModel) -> str:
    """A shell script that builds `1/model.plan` from `model.onnx` with trtexec (FP16), with an
    optimisation profile from batch 1 to max_batch, tuned for the largest preferred batch."""
    shape = "x".join(str(d) for d in model.input_dims)
    opt = preferred_batch_sizes(model.max_batch)[-1]
    return (
        "#!/usr/bin/env sh\n"
        "# Build the TensorRT engine on the GPU model that serves it, with the TensorRT version of the\n"
        "# Triton release (e.g. in NVIDIA's TensorRT container of the same release): an engine is tied to both.\n"
        "set -e\n"
        'cd "$(dirname "$0")"\n'
        f"trtexec --onnx=model.onnx --saveEngine=1/model.plan --fp16 "
        f"--minShapes={model.input_name}:1x{shape} --optShapes={model.input_name}:{opt}x{shape} "
        f"--maxShapes={model.input_name}:{model.max_batch}x{shape}\n"
    )

"""Read what the runtime needs to know about a model file without running it.

ONNX: metadata_props (Ultralytics writes Python reprs, parsed with ast.literal_eval) and the
graph's input/output shapes. OpenVINO IR: metadata.yaml next to the .xml, else rt_info.
.pt checkpoints: the converters' safe loader (needs the `export` extra). A Triton model URL
(grpc://host:8001/NAME, http://...): the served model config (edge_yolo.backends.triton).
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BackendUnavailableError, ModelLoadError, UnsupportedModelError, one_line
from .weights_hash import WEIGHTS_KEY, check_weights

log = logging.getLogger(__name__)

Dim = int | None  # None: dynamic axis
OTHER_TASKS = {"segment": "segmentation", "pose": "pose", "obb": "oriented-box (OBB)", "classify": "classification"}


@dataclass
class ModelInfo:
    """A model's interface and metadata.

    `path` is the file a backend loads (the .onnx, the .xml, or the .pt; the model name for a
    Triton model, whose address is `url`); `imgsz` is (h, w):
    the fixed input size of a static model, else the metadata's imgsz, else None.
    """

    path: Path
    format: str                                   # "onnx" | "openvino" | "pt" | "triton"
    names: dict[int, str]
    nc: int
    imgsz: tuple[int, int] | None
    batch: int | None                             # fixed batch size, None when dynamic
    dynamic: bool                                 # height/width not fixed
    input_dtype: np.dtype
    stride: int = 32
    input_name: str = "images"
    input_shape: tuple[Dim, ...] = ()
    output_shape: tuple[Dim, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    url: str | None = None                        # a Triton model's grpc:// or http(s):// address


def _literal(value: Any) -> Any:
    """Parse a metadata string the way Ultralytics wrote it (str(v)); leave anything else as is."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value


def _names(value: Any) -> dict[int, str] | None:
    value = _literal(value)
    if isinstance(value, dict):
        try:
            return {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            return None
    if isinstance(value, (list, tuple)):
        return {i: str(v) for i, v in enumerate(value)}
    if isinstance(value, str) and value.strip():
        return dict(enumerate(value.split()))
    return None


def _imgsz(value: Any) -> tuple[int, int] | None:
    value = _literal(value)
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    return None


def _onnx_interface(path: Path) -> tuple[dict[str, str], str, tuple[Dim, ...], str, tuple[Dim, ...]]:
    """(metadata_props, input name, input shape, input element type, output0 shape) of an ONNX file."""
    try:
        import onnx  # lighter than building a session when the export extra is installed

        proto = onnx.load(str(path), load_external_data=False)
        meta = {p.key: p.value for p in proto.metadata_props}
        inits = {t.name for t in proto.graph.initializer}
        inputs = [i for i in proto.graph.input if i.name not in inits]
        if not inputs or not proto.graph.output:
            raise UnsupportedModelError(f"{path} has no graph input or output")

        def dims(vi: Any) -> tuple[Dim, ...]:
            return tuple(d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim)

        elem = onnx.helper.tensor_dtype_to_np_dtype(inputs[0].type.tensor_type.elem_type).name
        return meta, inputs[0].name, dims(inputs[0]), elem, dims(proto.graph.output[0])
    except ImportError:
        pass
    except UnsupportedModelError:
        raise
    except Exception as exc:  # onnx raises DecodeError and friends on a corrupt file
        raise ModelLoadError(f"cannot read ONNX model {path}: {one_line(exc)}") from exc
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailableError(
            "reading an ONNX model needs onnxruntime (or onnx): pip install 'edge-yolo[onnx]'"
        ) from exc
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    # ORT applies FTZ/DAZ to the creating thread only for the first session of a process.
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelLoadError(f"cannot read ONNX model {path}: {one_line(exc)}") from exc
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]

    def ort_dims(shape: list) -> tuple[Dim, ...]:
        return tuple(d if isinstance(d, int) else None for d in shape)

    elem = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}.get(inp.type, inp.type)
    return dict(sess.get_modelmeta().custom_metadata_map), inp.name, ort_dims(inp.shape), elem, ort_dims(out.shape)


def openvino_xml(path: Path) -> Path:
    """The .xml of an OpenVINO IR given the .xml itself or its `*_openvino_model/` directory."""
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            raise ModelLoadError(f"expected exactly one .xml in {path}, found {len(xmls)}")
        return xmls[0]
    return path


def _openvino_interface(xml: Path) -> tuple[dict[str, Any], str, tuple[Dim, ...], str, tuple[Dim, ...]]:
    try:
        import openvino as ov
    except ImportError as exc:
        raise BackendUnavailableError(
            "reading an OpenVINO model needs openvino: pip install 'edge-yolo[openvino]'"
        ) from exc
    try:
        model = ov.Core().read_model(str(xml))
    except Exception as exc:
        raise ModelLoadError(f"cannot read OpenVINO model {xml}: {one_line(exc)}") from exc
    meta: dict[str, Any] = {}
    yaml_path = xml.parent / "metadata.yaml"
    if yaml_path.exists():
        import yaml

        try:
            loaded = yaml.safe_load(yaml_path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ModelLoadError(f"cannot read {yaml_path}: {one_line(exc)}") from exc
        if isinstance(loaded, dict):
            meta.update(loaded)
    try:
        if model.has_rt_info(["model_info", WEIGHTS_KEY]):  # the .xml's own record wins over the yaml's
            meta[WEIGHTS_KEY] = model.get_rt_info(["model_info", WEIGHTS_KEY]).astype(str)
        for key in ("names", "imgsz", "stride", "batch", "task"):
            for section in ("model_info", "metadata"):  # ours writes every prop under model_info
                if key not in meta and model.has_rt_info([section, key]):
                    meta[key] = model.get_rt_info([section, key]).astype(str)
        if "names" not in meta and model.has_rt_info(["model_info", "labels"]):
            meta["names"] = model.get_rt_info(["model_info", "labels"]).astype(str)
    except RuntimeError as exc:
        raise ModelLoadError(f"cannot read the metadata (rt_info) of {xml}: {one_line(exc)}") from exc
    if not model.inputs or not model.outputs:
        raise UnsupportedModelError(f"{xml} has no input or output")
    inp, out = model.inputs[0], model.outputs[0]

    def dims(pshape: Any) -> tuple[Dim, ...]:
        return tuple(d.get_length() if d.is_static else None for d in pshape)

    name = inp.get_any_name() if inp.get_names() else "images"
    elem = inp.get_element_type().to_dtype().name
    return meta, name, dims(inp.get_partial_shape()), elem, dims(out.get_partial_shape())


def _pt_info(path: Path) -> ModelInfo:
    try:
        from converters import load_checkpoint
    except ImportError as exc:
        raise BackendUnavailableError(
            "running a .pt checkpoint needs the export extra: pip install 'edge-yolo[export]'"
        ) from exc
    ckpt = load_checkpoint(path)
    return ModelInfo(
        path=path, format="pt", names=dict(ckpt.names), nc=int(ckpt.nc), imgsz=tuple(ckpt.imgsz),
        batch=None, dynamic=True, input_dtype=np.dtype(np.float32), stride=int(max(ckpt.stride)),
        input_shape=(None, 3, None, None), output_shape=(None, 4 + int(ckpt.nc), None),
        metadata={"source": str(path), "sha256": ckpt.sha256},
    )


def read_model_info(path: str | Path) -> ModelInfo:
    """Read and validate a model's interface: .onnx, OpenVINO .xml or directory, or .pt.

    Raises ModelLoadError for a missing/unreadable file or weights that do not match the
    hash recorded at export, and UnsupportedModelError when the model is not a detector with
    input (B,3,H,W) and output (B,4+nc,A). A grpc:// or http(s):// URL is a model served by
    Triton (see edge_yolo.backends.triton).
    """
    from .backends.triton import is_triton_url, read_triton_info

    if is_triton_url(path):
        return read_triton_info(str(path))
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".pt":
        return _pt_info(path)
    if suffix == ".onnx":
        fmt, meta, in_name, in_shape, elem, out_shape = "onnx", *_onnx_interface(path)
    elif path.is_dir() or suffix == ".xml":
        path = openvino_xml(path)
        fmt, meta, in_name, in_shape, elem, out_shape = "openvino", *_openvino_interface(path)
    else:
        raise UnsupportedModelError(
            f"unsupported model file {path}: expected .onnx, an OpenVINO .xml or *_openvino_model/ directory, or .pt"
        )
    info = build_model_info(path, fmt, meta, in_name, in_shape, elem, out_shape)
    check_weights(path, fmt, meta.get(WEIGHTS_KEY))
    return info


def build_model_info(
    path: Path, fmt: str, meta: dict[str, Any], in_name: str,
    in_shape: tuple[Dim, ...], elem: str, out_shape: tuple[Dim, ...], label: str | None = None,
) -> ModelInfo:
    """Validate a model's interface (input (B,3,H,W) float, output (B,4+nc,A)) and metadata;
    `label` names the model in errors (default: the file name)."""
    label = label or path.name
    task = str(meta.get("task", "detect")).strip().lower()
    if task in OTHER_TASKS or "kpt_shape" in meta:
        raise UnsupportedModelError(
            f"{label} is a {OTHER_TASKS.get(task, 'pose')} model (metadata task {task!r}); "
            "edge-yolo runs detection models only"
        )
    if len(out_shape) == 2:
        raise UnsupportedModelError(
            f"{label}: output has shape {_fmt(out_shape)}, which looks like a classification model; "
            "edge-yolo runs detection models only, with output (B, 4+nc, anchors)"
        )
    if len(in_shape) != 4 or in_shape[1] not in (3, None):
        raise UnsupportedModelError(
            f"{label}: input {in_name} has shape {_fmt(in_shape)}; expected (B, 3, H, W)"
        )
    if len(out_shape) != 3:
        raise UnsupportedModelError(
            f"{label}: output has shape {_fmt(out_shape)}; expected (B, 4+nc, anchors) "
            "(models with embedded NMS are not supported)"
        )
    names = _names(meta.get("names"))
    channels = out_shape[1]
    if names is not None and channels is not None and channels != 4 + len(names):
        raise UnsupportedModelError(
            f"{label}: output has {channels} channels but the metadata lists {len(names)} classes; "
            "expected (B, 4+nc, anchors)"
        )
    if channels is not None and channels < 5:
        raise UnsupportedModelError(f"{label}: output has shape {_fmt(out_shape)}; expected (B, 4+nc, anchors)")
    if names is None:
        if channels is None:
            raise UnsupportedModelError(f"{label}: neither the metadata nor the output shape give the class count")
        names = {i: str(i) for i in range(channels - 4)}
        log.warning("%s has no class names in its metadata; using class ids as names", path.name)
    if elem not in ("float32", "float16"):
        raise UnsupportedModelError(f"{label}: input element type {elem} is not supported; expected float32 or float16")
    h, w = in_shape[2], in_shape[3]
    dynamic = h is None or w is None
    stride = _literal(meta.get("stride", 32))
    return ModelInfo(
        path=path, format=fmt, names=names, nc=len(names),
        imgsz=(h, w) if not dynamic else _imgsz(meta.get("imgsz")),
        batch=in_shape[0], dynamic=dynamic, input_dtype=np.dtype(elem),
        stride=int(stride) if isinstance(stride, (int, float)) else 32,
        input_name=in_name, input_shape=in_shape, output_shape=out_shape, metadata=meta,
    )


def _fmt(shape: tuple[Dim, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"

"""Parse device strings and pick the best backend that really runs.

`auto` tries ONNX Runtime TensorRT EP → CUDA EP → OpenVINO → ONNX Runtime CPU, records why
each better option was skipped, and never counts AzureExecutionProvider (a remote service) as
an accelerator. An explicitly requested backend that cannot run raises
BackendUnavailableError; it never silently falls back. A model served by Triton (a
grpc:// or http(s):// URL) runs on device `triton`, which `auto` picks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import BackendUnavailableError, EdgeYoloError
from ..modelinfo import ModelInfo
from .base import Backend

_ALIASES = {"cpu": "onnxruntime-cpu", "ort": "onnxruntime-cpu", "onnxruntime": "onnxruntime-cpu", "trt": "tensorrt"}
_OV_DEVICES = ("CPU", "GPU", "AUTO", "NPU")


@dataclass(frozen=True)
class DeviceRequest:
    """A parsed device string: kind is auto|tensorrt|cuda|openvino|onnxruntime-cpu|torch|triton."""

    kind: str
    index: int = 0
    ov_device: str | None = None


def parse_device(device: str) -> DeviceRequest:
    """Parse `auto`, `tensorrt[:N]`, `cuda[:N]`, `openvino[:CPU|GPU|NPU|AUTO]`, `onnxruntime-cpu`/`cpu`, `torch`,
    `triton`."""
    text = str(device).strip()
    kind, _, arg = text.partition(":")
    kind = _ALIASES.get(kind.lower(), kind.lower())
    if kind in ("tensorrt", "cuda"):
        if arg and not arg.isdigit():
            raise BackendUnavailableError(f"device {text!r}: the GPU index must be a number, e.g. {kind}:0")
        return DeviceRequest(kind, int(arg or 0))
    if kind == "openvino":
        ov_device = (arg or "CPU").upper()
        if ov_device.split(".")[0] not in _OV_DEVICES:
            raise BackendUnavailableError(f"device {text!r}: openvino device must be CPU, GPU, NPU or AUTO")
        return DeviceRequest(kind, ov_device=ov_device)
    if kind in ("auto", "onnxruntime-cpu", "torch", "triton") and not arg:
        return DeviceRequest(kind)
    raise BackendUnavailableError(
        f"unknown device {text!r}; use auto, cpu, openvino[:CPU|GPU|NPU|AUTO], cuda[:N], tensorrt[:N], torch or triton"
    )


def _make(req: DeviceRequest, info: ModelInfo, precision: str, imgsz: tuple[int, int] | None,
          options: dict[str, Any]) -> Backend:
    """Create the backend `req` names, or raise BackendUnavailableError saying why not."""
    if (req.kind == "triton") != (info.format == "triton"):
        raise BackendUnavailableError(
            "device 'triton' runs models served by Triton: pass a model URL like grpc://host:8001/NAME"
            if req.kind == "triton" else
            f"{info.url} is served by Triton: use device triton (or auto), not {req.kind}")
    if req.kind == "triton":
        from .triton import TritonBackend

        return TritonBackend(info, precision, jobs=options.get("jobs"), timeout=options.get("timeout"))
    if req.kind == "torch":
        if info.format != "pt":
            raise BackendUnavailableError("device 'torch' runs .pt checkpoints only")
        try:
            from converters.torch_backend import TorchBackend
        except ImportError as exc:
            raise BackendUnavailableError(
                "device 'torch' needs the export extra (torch): pip install 'edge-yolo[export]'"
            ) from exc
        return TorchBackend(info.path, imgsz=imgsz)
    if req.kind == "openvino":
        from .openvino import OpenVinoBackend

        return OpenVinoBackend(info.path, req.ov_device or "CPU", precision, imgsz=imgsz, batch=info.batch)
    if info.format != "onnx":
        raise BackendUnavailableError(f"onnxruntime runs .onnx models; {info.path.name} is an OpenVINO IR (use openvino)")
    from .onnxruntime import OnnxRuntimeBackend

    provider = {"tensorrt": "tensorrt", "cuda": "cuda", "onnxruntime-cpu": "cpu"}[req.kind]
    ort_opts = {k: options[k] for k in ("threads", "spinning", "workspace_bytes") if k in options}
    return OnnxRuntimeBackend(info.path, provider, req.index, precision, **ort_opts)


def _auto_candidates(info: ModelInfo) -> list[tuple[str, DeviceRequest | None, str]]:
    """(label, request or None when skipped up front, reason) in preference order."""
    from .onnxruntime import available_providers
    from .openvino import available_devices

    providers = available_providers()  # AzureExecutionProvider is never considered
    out: list[tuple[str, DeviceRequest | None, str]] = []
    for label, kind, name in (("tensorrt", "tensorrt", "TensorrtExecutionProvider"),
                              ("cuda", "cuda", "CUDAExecutionProvider")):
        if info.format != "onnx":
            out.append((label, None, "model is not ONNX"))
        elif name not in providers:
            out.append((label, None, "onnxruntime has no " + name if providers else "onnxruntime not installed"))
        else:
            out.append((label, DeviceRequest(kind), ""))
    devices = available_devices()
    if not devices:
        out.append(("openvino", None, "openvino not installed"))
    else:
        gpu = any(d.startswith("GPU") for d in devices)
        out.append(("openvino", DeviceRequest("openvino", ov_device="GPU" if gpu else "CPU"), ""))
    if info.format != "onnx":
        out.append(("onnxruntime-cpu", None, "model is not ONNX"))
    elif "CPUExecutionProvider" not in providers:
        out.append(("onnxruntime-cpu", None, "onnxruntime not installed"))
    else:
        out.append(("onnxruntime-cpu", DeviceRequest("onnxruntime-cpu"), ""))
    return out


def create_backend(info: ModelInfo, device: str = "auto", precision: str = "auto",
                   imgsz: tuple[int, int] | None = None, options: dict[str, Any] | None = None) -> Backend:
    """The backend for `device` (see parse_device); `auto` picks the best one that works.

    `options`: backend tuning, e.g. threads/spinning (ORT CPU), workspace_bytes (TensorRT), jobs/timeout (Triton).
    """
    req = parse_device(device)
    options = options or {}
    if req.kind == "auto" and info.format == "triton":
        req = DeviceRequest("triton")
    if req.kind != "auto":
        return _make(req, info, precision, imgsz, options)
    skipped: list[tuple[str, str]] = []
    for label, candidate, reason in _auto_candidates(info):
        if candidate is None:
            skipped.append((label, reason))
            continue
        try:
            backend = _make(candidate, info, precision, imgsz, options)
        except EdgeYoloError as exc:
            skipped.append((label, str(exc)))
            continue
        backend.info.skipped = skipped + backend.info.skipped
        return backend
    raise BackendUnavailableError(
        "no backend can run this model: " + "; ".join(f"{label}: {reason}" for label, reason in skipped)
    )

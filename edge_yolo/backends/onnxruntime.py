"""ONNX Runtime backend: TensorRT EP, CUDA EP or CPU EP, verified after the session is made."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, EdgeYoloError, ModelLoadError, one_line
from .base import BackendInfo, InputSpec, ResultCallback
from .cache import file_hash, keyed_dir
from .threaded import ThreadedAsyncInfer

PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError("onnxruntime is not installed: pip install 'edge-yolo[onnx]'") from exc
    return onnxruntime


def available_providers() -> list[str]:
    """Providers this onnxruntime build offers (empty when it is not installed)."""
    try:
        return list(_ort().get_available_providers())
    except BackendUnavailableError:
        return []


def _gpu_name(device_id: int) -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", f"--id={device_id}"],
            capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip() or f"gpu{device_id}"
    except (OSError, subprocess.SubprocessError):
        return f"gpu{device_id}"


def _tensorrt_version() -> str:
    try:
        import tensorrt

        return str(tensorrt.__version__)
    except ImportError:
        return "trt"


def tensorrt_cache_dir(model_path: Path, device_id: int) -> Path:
    """Engine/timing cache directory keyed by model hash, ORT and TensorRT versions and GPU."""
    return keyed_dir(
        "tensorrt", file_hash(model_path), f"ort{_ort().__version__}", f"trt{_tensorrt_version()}",
        _gpu_name(device_id),
    )


def tensorrt_options(cache_dir: Path, device_id: int = 0, fp16: bool = True,
                     workspace_bytes: int | None = None) -> dict[str, Any]:
    """TensorRT EP provider options: FP16, engine and timing caches in `cache_dir`."""
    opts: dict[str, Any] = {
        "device_id": device_id,
        "trt_fp16_enable": fp16,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache_dir),
    }
    if workspace_bytes is not None:
        opts["trt_max_workspace_size"] = int(workspace_bytes)
    return opts


def cuda_options(device_id: int = 0) -> dict[str, Any]:
    """CUDA EP provider options: heuristic cuDNN algorithm search, arena grows only as requested."""
    return {
        "device_id": device_id,
        "cudnn_conv_algo_search": "HEURISTIC",
        "arena_extend_strategy": "kSameAsRequested",
    }


def session_options(threads: int | None = None, spinning: bool | None = None) -> Any:
    """CPU-side session options: denormals flushed to zero (real images produce them and
    they slow the CPU EP about 1.3x), optional intra-op thread count and spinning.

    ORT sets FTZ/DAZ on its pool threads, and on the creating thread only for the first
    session of the process; a run called from another thread computes its share without it.
    Spinning off measured 1.34x faster (452 -> 338 ms, loaded machine) while another thread
    kept a core busy: pipelines that decode/encode beside inference should pass spinning=False.
    """
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.add_session_config_entry("session.set_denormal_as_zero", "1")
    if threads is not None:
        so.intra_op_num_threads = int(threads)
    if spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return so


class OnnxRuntimeBackend:
    """One ONNX model in an ONNX Runtime session on one execution provider.

    Args:
        path: the .onnx file.
        provider: "tensorrt", "cuda" or "cpu".
        device_id: GPU index for TensorRT/CUDA.
        precision: "auto" or "f16" (TensorRT FP16), "f32" (TensorRT FP32); the CUDA and CPU
            EPs run the model's own precision, so only "auto" or the model's dtype is accepted.
        threads: intra-op threads (CPU EP), None for ORT's default (one per physical core).
        spinning: let idle intra-op workers spin (ORT default True); False when other busy
            threads share the cores, e.g. a decode/encode pipeline.
        workspace_bytes: TensorRT builder workspace limit.
    """

    def __init__(self, path: str | Path, provider: str = "cpu", device_id: int = 0, precision: str = "auto",
                 threads: int | None = None, spinning: bool | None = None,
                 workspace_bytes: int | None = None) -> None:
        ort = _ort()
        path = Path(path)
        name = PROVIDERS[provider]
        if name not in ort.get_available_providers():
            raise BackendUnavailableError(
                f"this onnxruntime build has no {name} (it offers {', '.join(ort.get_available_providers())})"
            )
        providers: list[Any]
        if provider == "tensorrt":
            if precision not in ("auto", "f16", "f32"):
                raise BackendUnavailableError(f"TensorRT EP supports precision f16 or f32, not {precision}")
            fp16 = precision != "f32"
            trt = tensorrt_options(tensorrt_cache_dir(path, device_id), device_id, fp16, workspace_bytes)
            providers = [(name, trt), (PROVIDERS["cuda"], cuda_options(device_id)), PROVIDERS["cpu"]]
            run_precision = "f16" if fp16 else "f32"
        elif provider == "cuda":
            providers = [(name, cuda_options(device_id)), PROVIDERS["cpu"]]
            run_precision = ""
        else:
            providers = [name]
            run_precision = ""
        try:
            self._session = ort.InferenceSession(str(path), session_options(threads, spinning), providers=providers)
        except Exception as exc:
            raise ModelLoadError(f"onnxruntime cannot load {path.name}: {one_line(exc)}") from exc
        active = self._session.get_providers()
        if name not in active:  # ORT silently drops a provider whose libraries fail to load
            raise BackendUnavailableError(
                f"{name} was requested but onnxruntime fell back to {', '.join(active)} "
                "(its GPU libraries are missing or failed to load)"
            )
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        self._output_name = self._session.get_outputs()[0].name
        dtype = np.dtype(_DTYPES.get(inp.type, np.float32))
        model_precision = "f16" if dtype == np.float16 else "f32"
        if provider != "tensorrt":
            if precision not in ("auto", model_precision):
                raise BackendUnavailableError(
                    f"onnxruntime's {name} runs the model's own precision ({model_precision}); "
                    f"export a {precision} model instead of asking for precision={precision}"
                )
            run_precision = model_precision
        shape = [d if isinstance(d, int) else None for d in inp.shape]
        self.input_spec = InputSpec("NCHW", dtype, shape[0], shape[2], shape[3])
        self.info = BackendInfo(
            backend="onnxruntime",
            device=name if provider == "cpu" else f"{name}:{device_id}",
            precision=run_precision,
            details={"providers": active, "onnxruntime": ort.__version__,
                     "threads": threads, "spinning": spinning},
        )
        self._provider = provider

    def _open_session(self) -> Any:
        session = self._session
        if session is None:
            raise EdgeYoloError("this onnxruntime backend is closed; create a new one")
        return session

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        """Run one NCHW batch, return output0 as float32 (safe to call from several threads:
        ONNX Runtime sessions run concurrent calls)."""
        session = self._open_session()
        try:
            out = session.run([self._output_name], {self._input_name: inputs})[0]
        except Exception as exc:  # ORT raises ValueError, RuntimeError and its own Fail/InvalidArgument
            raise EdgeYoloError(f"onnxruntime inference failed: {one_line(exc)}") from exc
        return out if out.dtype == np.float32 else out.astype(np.float32)

    def async_queue(self, callback: ResultCallback, jobs: int | None = None) -> ThreadedAsyncInfer:
        """In-flight requests on worker threads: 1 on CPU (the session already uses every
        core), 2 on a GPU (overlaps host work with the device)."""
        self._open_session()
        return ThreadedAsyncInfer(self.infer, callback, jobs or (1 if self._provider == "cpu" else 2))

    def close(self) -> None:
        """Drop the session (calls already running finish first); later calls raise."""
        self._session = None

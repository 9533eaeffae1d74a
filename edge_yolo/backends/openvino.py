"""OpenVINO backend: IR or ONNX on CPU/GPU/AUTO, with colour swap, scaling and layout
done in the graph (PrePostProcessor), so it takes letterboxed BGR uint8 NHWC frames."""

from __future__ import annotations

import atexit
import gc
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, EdgeYoloError, ModelLoadError, one_line
from ..modelinfo import openvino_xml
from .base import BackendInfo, InputSpec, ResultCallback
from .cache import keyed_dir

PRECISIONS = {"f32": "f32", "f16": "f16", "bf16": "bf16"}


def _ov() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailableError("openvino is not installed: pip install 'edge-yolo[openvino]'") from exc
    return openvino


def available_devices() -> list[str]:
    """OpenVINO devices present here (empty when openvino is not installed)."""
    try:
        return list(_ov().Core().available_devices)
    except BackendUnavailableError:
        return []


def _with_preprocessing(ov: Any, model: Any) -> Any:
    """Make the model take uint8 NHWC BGR and do f32 conversion, BGR→RGB and /255 itself."""
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    inp = ppp.input()
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    inp.model().set_layout(ov.Layout("NCHW"))
    inp.preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    ppp.output().tensor().set_element_type(ov.Type.f32)
    return ppp.build()


# OpenVINO aborts the process when a compiled model is destroyed on one of its own executor
# threads (its destructor joins that thread). Python's cyclic garbage collector may run on the
# thread that runs our completion callback and free a backend or queue there, so objects
# collected during a callback are parked here and released later on an ordinary thread.
_in_callback = threading.local()
_parked: list[dict[str, Any]] = []
_parked_lock = threading.Lock()


def _park_if_in_callback(owner: Any) -> None:
    """From `__del__`: keep `owner`'s attributes alive when it dies on a callback thread."""
    if getattr(_in_callback, "active", False):
        with _parked_lock:
            _parked.append(dict(owner.__dict__))


def _release_parked() -> None:
    """Free what was parked (call from a thread that is not running a callback)."""
    if getattr(_in_callback, "active", False):
        return
    with _parked_lock:
        parked = _parked[:]
        _parked.clear()
    del parked


# What is still alive when the interpreter exits is released first, while Python still runs:
# left to the interpreter's final garbage collection, an OpenVINO thread that still needs the
# GIL (a callback, or the release of one) is ended by Python in the middle of C++ code and the
# process aborts ("terminate called without an active exception").
_live: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _release_all_at_exit() -> None:
    for owner in list(_live):
        owner.close()
    _release_parked()
    gc.collect()


atexit.register(_release_all_at_exit)


class _Relay:
    """The queue's completion callback: hands results on and keeps the first failure.

    Kept apart from the queue on purpose: a callback that refers back to its AsyncInferQueue
    makes a cycle through a C++ object that the garbage collector cannot see, so every stream
    would leak its queue and infer requests."""

    def __init__(self, callback: ResultCallback) -> None:
        self._callback = callback
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def __call__(self, request: Any, userdata: Any) -> None:
        _in_callback.active = True
        try:
            self._callback(request.get_output_tensor(0).data.copy(), userdata)
        except BaseException as exc:  # re-raised in the submitting thread
            with self._lock:
                self._error = self._error or exc
        finally:
            _in_callback.active = False

    def raise_error(self) -> None:
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error


class _OvAsync:
    """AsyncInfer over an openvino AsyncInferQueue (completion-order callbacks)."""

    def __init__(self, queue: Any, callback: ResultCallback) -> None:
        self._queue = queue
        self._relay = _Relay(callback)
        self.jobs = len(queue)
        queue.set_callback(self._relay)
        _live.add(self)

    def __del__(self) -> None:
        _park_if_in_callback(self)

    def submit(self, inputs: np.ndarray, userdata: Any) -> None:
        """Start an inference (inputs are copied); blocks while every request is busy."""
        self._relay.raise_error()
        queue = self._queue
        if queue is None:
            raise EdgeYoloError("this openvino inference queue is closed")
        try:
            queue.start_async({0: inputs}, userdata)
        except RuntimeError as exc:
            raise EdgeYoloError(f"openvino inference failed: {one_line(exc)}") from exc

    def wait_all(self) -> None:
        """Block until every submitted request has finished; raise the first failure."""
        queue = self._queue
        if queue is not None:
            try:
                queue.wait_all()
            except RuntimeError as exc:  # an inference that failed inside OpenVINO
                raise EdgeYoloError(f"openvino inference failed: {one_line(exc)}") from exc
        self._relay.raise_error()

    def close(self) -> None:
        """Wait for the requests in flight, then release them; later submits raise. A failed
        request is reported by `submit` or `wait_all`, not here."""
        queue, self._queue = self._queue, None
        if queue is not None:
            try:
                queue.wait_all()
            except RuntimeError:
                pass


class OpenVinoBackend:
    """One model compiled by OpenVINO.

    Args:
        path: an IR .xml or its directory, or an .onnx file (OpenVINO reads ONNX directly).
        device: "CPU", "GPU", "GPU.1", "AUTO", ...
        precision: "auto" (the device's default: bf16 on AMX CPUs, f16 on GPUs), or
            "f32"/"f16"/"bf16" via INFERENCE_PRECISION_HINT.
        imgsz: (h, w) to fix a dynamic height/width to.
        batch: batch size to fix a dynamic batch axis to (None keeps it dynamic).
    """

    def __init__(self, path: str | Path, device: str = "CPU", precision: str = "auto",
                 imgsz: tuple[int, int] | None = None, batch: int | None = None) -> None:
        _release_parked()
        ov = _ov()
        path = openvino_xml(Path(path))
        if precision != "auto" and precision not in PRECISIONS:
            raise BackendUnavailableError(f"openvino precision must be auto, f32, f16 or bf16, not {precision}")
        self._core = ov.Core()
        if device.split(".")[0] not in ("AUTO", "MULTI", "HETERO") and device not in self._core.available_devices:
            raise BackendUnavailableError(
                f"openvino device {device} is not available here (found {', '.join(self._core.available_devices)})"
            )
        try:
            model = self._core.read_model(str(path))
        except Exception as exc:
            raise ModelLoadError(f"openvino cannot read {path.name}: {one_line(exc)}") from exc
        try:
            pshape = model.inputs[0].get_partial_shape()
            if pshape.is_dynamic:
                dims = [d.get_length() if d.is_static else -1 for d in pshape]
                if imgsz is not None:
                    dims[2], dims[3] = imgsz
                if batch is not None:
                    dims[0] = batch
                model.reshape({model.inputs[0]: ov.PartialShape(dims)})
            self._model = _with_preprocessing(ov, model)
        except RuntimeError as exc:
            raise ModelLoadError(f"openvino cannot prepare {path.name} for inference: {one_line(exc)}") from exc
        self._device = device
        self._config: dict[str, Any] = {}
        if precision != "auto":
            self._config["INFERENCE_PRECISION_HINT"] = PRECISIONS[precision]
        if device.startswith("GPU"):  # kernel compilation on GPUs takes seconds: cache it
            self._core.set_property({"CACHE_DIR": str(keyed_dir("openvino", ov.__version__))})
        self._lock = threading.Lock()  # guards the compilations and the idle requests
        self._closed = False
        _live.add(self)
        self._compiled: Any = self._compile("LATENCY")
        self._idle: list[Any] = [self._compiled.create_infer_request()]
        self._throughput: Any = None
        shape = [d.get_length() if d.is_static else None for d in self._model.inputs[0].get_partial_shape()]
        self.input_spec = InputSpec("NHWC", np.dtype(np.uint8), shape[0], shape[1], shape[2])
        # an INT8 IR (NNCF, Ultralytics int8) runs its quantized ops in int8, the rest at the hint
        quantized = any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
        self.info = BackendInfo(
            backend="openvino", device=device,
            precision=("int8+" if quantized else "") + self._precision(self._compiled),
            details={"openvino": ov.__version__, "hint": "LATENCY", "preprocessing": "in graph (u8 NHWC BGR)"},
        )

    def _compile(self, hint: str) -> Any:
        try:
            return self._core.compile_model(self._model, self._device, {**self._config, "PERFORMANCE_HINT": hint})
        except Exception as exc:
            raise BackendUnavailableError(
                f"openvino cannot compile the model for {self._device}: {one_line(exc)}") from exc

    @staticmethod
    def _precision(compiled: Any) -> str:
        try:
            return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        except Exception:  # AUTO/MULTI do not report one precision
            return "auto"

    def _check_open(self) -> None:
        if self._closed:
            raise EdgeYoloError("this openvino backend is closed; create a new one")

    def _take_request(self) -> tuple[Any, Any]:
        """An idle LATENCY request (a new one when every request is busy in another thread)."""
        with self._lock:
            self._check_open()
            if self._compiled is None:
                self._compiled = self._compile("LATENCY")
            if self._idle:
                return self._idle.pop(), self._compiled
            return self._compiled.create_infer_request(), self._compiled

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        """Run one NHWC uint8 BGR batch (LATENCY hint), return output0 float32.

        Safe to call from several threads: each call runs on its own infer request."""
        request, compiled = self._take_request()
        try:
            request.infer({0: inputs}, share_inputs=True)
            return request.get_output_tensor(0).data.copy()
        except RuntimeError as exc:
            raise EdgeYoloError(f"openvino inference failed: {one_line(exc)}") from exc
        finally:
            with self._lock:
                if compiled is self._compiled:  # not released by async_queue or close meanwhile
                    self._idle.append(request)

    def async_queue(self, callback: ResultCallback, jobs: int | None = None) -> _OvAsync:
        """An AsyncInferQueue on a THROUGHPUT-hint compilation (made on first use);
        `jobs` None gives twice the device's optimal number of requests. The LATENCY compilation
        is released meanwhile (about 40 MB) and made again only if `infer` is called later."""
        ov = _ov()
        with self._lock:
            self._check_open()
            if self._throughput is None:
                self._throughput = self._compile("THROUGHPUT")
                self._compiled, self._idle = None, []
            throughput = self._throughput
        if not jobs:
            # One request waiting behind each running one: a stream starts its next inference at
            # once instead of idling while the caller gets the GIL, pre-processes and submits
            # (4 video streams: about +5% frames/s on 2 cores).
            jobs = 2 * int(throughput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        return _OvAsync(ov.AsyncInferQueue(throughput, jobs), callback)

    def close(self) -> None:
        """Release the compiled models (requests still running finish first); later calls raise."""
        with self._lock:
            self._closed = True
            self._compiled = self._throughput = None
            self._idle = []
        _release_parked()

    def __del__(self) -> None:
        _park_if_in_callback(self)

"""OpenVINO backend: IR or ONNX on CPU/GPU/AUTO, with colour swap, scaling and layout
done in the graph (PrePostProcessor), so it takes letterboxed BGR uint8 NHWC frames."""

from __future__ import annotations

import atexit
import queue
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


# No Python code ever runs on OpenVINO's own threads: with a Python completion callback
# (AsyncInferQueue.set_callback), those threads take the GIL, and that aborted the process when
# it happened during the interpreter's shutdown, or deadlocked against a thread destroying a
# compiled model (whose destructor joins them while holding the GIL). Requests are started
# without callbacks and one Python thread per queue waits for them in order instead.
_live: "weakref.WeakSet[_OvAsync]" = weakref.WeakSet()


def _close_queues_at_exit() -> None:
    # A results thread still waiting inside OpenVINO when the interpreter shuts down would be
    # ended in the middle of C++ code: stop them all first, while Python still runs.
    for async_queue in list(_live):
        async_queue.close()


atexit.register(_close_queues_at_exit)


class _Results:
    """What a queue's results thread needs (kept apart from _OvAsync, so that dropping the
    queue ends the thread instead of the thread keeping the queue alive)."""

    def __init__(self, requests: list[Any], callback: ResultCallback) -> None:
        self.callback = callback
        self.idle: queue.SimpleQueue = queue.SimpleQueue()
        for request in requests:
            self.idle.put(request)
        self.started: queue.SimpleQueue = queue.SimpleQueue()  # (request, inputs, userdata), None to stop
        self.in_flight = 0
        self.done = threading.Condition()
        self.error: BaseException | None = None

    def run(self) -> None:
        while (item := self.started.get()) is not None:
            request, userdata = item[0], item[2]  # item keeps the inputs alive until the request is done
            try:
                request.wait()
                output = request.get_output_tensor(0).data.copy()
            except RuntimeError as exc:  # the inference failed inside OpenVINO
                self._fail(EdgeYoloError(f"openvino inference failed: {one_line(exc)}"))
            else:
                try:
                    self.callback(output, userdata)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the submitting thread
                    self._fail(exc)
            finally:
                item = userdata = output = None  # the caller's frames are not kept until the next result
                self.idle.put(request)
                with self.done:
                    self.in_flight -= 1
                    self.done.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self.done:
            self.error = self.error or exc

    def raise_error(self) -> None:
        with self.done:
            error, self.error = self.error, None
        if error is not None:
            raise error


class _OvAsync:
    """AsyncInfer over `jobs` OpenVINO infer requests; results are handed on in submission order
    by a Python thread of this queue."""

    def __init__(self, compiled: Any, jobs: int, callback: ResultCallback) -> None:
        self.jobs = jobs
        self._results = _Results([compiled.create_infer_request() for _ in range(jobs)], callback)
        self._thread = threading.Thread(target=self._results.run, name="openvino-results", daemon=True)
        self._thread.start()
        self._closed = False
        _live.add(self)

    def __del__(self) -> None:
        self.close()

    def submit(self, inputs: np.ndarray, userdata: Any) -> None:
        """Start an inference on `inputs` itself, not a copy (do not modify it until the
        callback); blocks while every request is busy."""
        results = self._results
        results.raise_error()
        if self._closed:
            raise EdgeYoloError("this openvino inference queue is closed")
        request = results.idle.get()
        try:
            request.start_async({0: inputs}, share_inputs=True)
        except RuntimeError as exc:
            results.idle.put(request)
            raise EdgeYoloError(f"openvino inference failed: {one_line(exc)}") from exc
        with results.done:
            results.in_flight += 1
        results.started.put((request, inputs, userdata))  # the request reads `inputs` until done

    def wait_all(self) -> None:
        """Block until every submitted request has been handed on; raise the first failure."""
        results = self._results
        with results.done:
            results.done.wait_for(lambda: results.in_flight == 0)
        results.raise_error()

    def close(self) -> None:
        """Wait for the requests in flight, then stop the results thread; later submits raise.
        A failed request is reported by `submit` or `wait_all`, not here."""
        if self._closed:
            return
        self._closed = True
        self._results.started.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join()


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
        """A queue of infer requests on a THROUGHPUT-hint compilation (made on first use);
        `jobs` None gives twice the device's optimal number of requests. The LATENCY compilation
        is released meanwhile (about 40 MB) and made again only if `infer` is called later."""
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
        return _OvAsync(throughput, jobs, callback)

    def close(self) -> None:
        """Release the compiled models (requests still running finish first); later calls raise."""
        with self._lock:
            self._closed = True
            self._compiled = self._throughput = None
            self._idle = []


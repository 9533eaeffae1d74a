"""Triton Inference Server backend: a model served by Triton, addressed by URL.

    Detector("grpc://host:8001/NAME")        # gRPC (default port 8001); also /NAME/VERSION
    Detector("http://host:8000/NAME")        # HTTP/REST (default port 8000); https:// for TLS

The model's interface and metadata (names, stride, imgsz) come from the server's model
config (`parameters`, as `edge-yolo export --format triton` writes them), so nothing local is
needed but the URL. Needs `tritonclient` (`pip install "edge-yolo[triton]"`). Streams keep
several requests in flight (gRPC: the client's native async requests; HTTP: one connection
per worker thread) so Triton's dynamic batcher can group frames.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, EdgeYoloError, UnsupportedModelError
from ..modelinfo import ModelInfo, build_model_info
from .base import BackendInfo, InputSpec, ResultCallback
from .threaded import ThreadedAsyncInfer

DEFAULT_PORTS = {"grpc": 8001, "http": 8000, "https": 443}
DEFAULT_JOBS = 4
TIMEOUT_S = 10.0          # connecting and asking the server about the model
INFER_TIMEOUT_S = 60.0    # one inference request: a hung server becomes an error, not a hang
_URL = re.compile(r"^(grpc|https?)://([^/]+)/([^/]+)(?:/(\d+))?/?$", re.IGNORECASE)
_TRITON_TYPES = {"TYPE_FP32": "float32", "TYPE_FP16": "float16"}
_WIRE_TYPES = {"float32": "FP32", "float16": "FP16"}


def is_triton_url(model: Any) -> bool:
    """True for a `grpc://`, `http://` or `https://` model address."""
    return isinstance(model, str) and re.match(r"^(grpc|https?)://", model, re.IGNORECASE) is not None


@dataclass(frozen=True)
class TritonTarget:
    """A parsed model URL: protocol, host:port, model name and version ('' = the server's choice)."""

    protocol: str
    address: str
    model: str
    version: str = ""

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.address}/{self.model}" + (f"/{self.version}" if self.version else "")


def parse_triton_url(url: str) -> TritonTarget:
    """`grpc://host[:port]/NAME[/VERSION]` (also http, https) → TritonTarget."""
    match = _URL.match(url.strip())
    if match is None:
        raise BackendUnavailableError(
            f"not a Triton model URL: {url!r}; expected grpc://host:8001/NAME or http://host:8000/NAME")
    protocol, address, model, version = match.groups()
    protocol = protocol.lower()
    if ":" not in address.rsplit("]", 1)[-1]:
        address = f"{address}:{DEFAULT_PORTS[protocol]}"
    return TritonTarget(protocol, address, model, version or "")


def _tritonclient(protocol: str) -> Any:
    try:
        if protocol == "grpc":
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
    except ImportError as exc:
        raise BackendUnavailableError(
            "Triton models need tritonclient: pip install 'edge-yolo[triton]'") from exc
    return module


def _message(exc: BaseException) -> str:
    text = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    return " ".join(str(text).split())


class TritonClient:
    """One connection to one model: gRPC or HTTP behind the same few calls."""

    def __init__(self, target: TritonTarget, infer_timeout: float = INFER_TIMEOUT_S) -> None:
        self.target = target
        self.infer_timeout = infer_timeout
        self.module = _tritonclient(target.protocol)
        self.grpc = target.protocol == "grpc"
        try:
            if self.grpc:
                self.client = self.module.InferenceServerClient(target.address)
            else:
                self.client = self.module.InferenceServerClient(
                    target.address, ssl=target.protocol == "https",
                    connection_timeout=TIMEOUT_S, network_timeout=max(TIMEOUT_S, infer_timeout))
        except Exception as exc:  # noqa: BLE001 - bad addresses fail here with assorted errors
            raise BackendUnavailableError(f"cannot reach Triton at {target.address}: {_message(exc)}") from exc

    def _timeout(self) -> dict[str, float]:
        return {"client_timeout": TIMEOUT_S} if self.grpc else {}

    def infer_options(self) -> dict[str, float]:
        """Keyword arguments bounding one inference request (HTTP: the client's network timeout)."""
        return {"client_timeout": self.infer_timeout} if self.grpc else {}

    def check_ready(self) -> None:
        """BackendUnavailableError unless the server is live and the model ready."""
        t = self.target
        try:
            self.client.is_server_live(**self._timeout())
        except Exception as exc:  # noqa: BLE001 - connection refused, DNS, TLS, timeouts...
            raise BackendUnavailableError(f"cannot reach Triton at {t.address}: {_message(exc)}") from exc
        try:
            ready = self.client.is_model_ready(t.model, t.version, **self._timeout())
        except Exception as exc:  # noqa: BLE001
            raise BackendUnavailableError(f"cannot reach Triton at {t.address}: {_message(exc)}") from exc
        if not ready:
            raise BackendUnavailableError(f"model {t.model!r} is not ready on Triton at {t.address}: {self._why_not_ready()}")

    def _why_not_ready(self) -> str:
        try:
            index = self.client.get_model_repository_index(**({"as_json": True} if self.grpc else {}))
        except Exception as exc:  # noqa: BLE001
            return _message(exc)
        models = index.get("models", []) if isinstance(index, dict) else index
        mine = [m for m in models if m.get("name") == self.target.model]
        if not mine:
            names = sorted({m.get("name", "?") for m in models})
            return "the server has no such model (it has: " + (", ".join(names) or "none") + ")"
        states = [f"{m.get('state') or 'not loaded'}" + (f" ({m['reason']})" if m.get("reason") else "") for m in mine]
        return "state " + "; ".join(states)

    def model_config(self) -> dict[str, Any]:
        """The served model config as a dict (dims as ints, whichever protocol)."""
        t = self.target
        try:
            if self.grpc:
                config = self.client.get_model_config(t.model, t.version, as_json=True, **self._timeout())["config"]
            else:
                config = self.client.get_model_config(t.model, t.version)
        except Exception as exc:  # noqa: BLE001
            raise BackendUnavailableError(f"cannot read the config of {t.model!r} on Triton at {t.address}: "
                                          f"{_message(exc)}") from exc
        return config

    def server_version(self) -> str:
        try:
            meta = self.client.get_server_metadata(**({"as_json": True} if self.grpc else {}))
            return str(meta.get("version", "?"))
        except Exception:  # noqa: BLE001 - informational only
            return "?"

    def request(self, batch: np.ndarray, input_name: str, output_name: str) -> tuple[list, list]:
        """(inputs, outputs) objects for one inference request."""
        item = self.module.InferInput(input_name, list(batch.shape), _WIRE_TYPES[batch.dtype.name])
        item.set_data_from_numpy(np.ascontiguousarray(batch))
        return [item], [self.module.InferRequestedOutput(output_name)]

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection
            pass


def read_triton_info(url: str) -> ModelInfo:
    """Connect to the model at `url` and describe it from its served config (see module doc).

    BackendUnavailableError when the server is down or the model not ready;
    UnsupportedModelError when its input/output are not a detector's (B,3,H,W) → (B,4+nc,A).
    """
    target = parse_triton_url(url)
    client = TritonClient(target)
    try:
        client.check_ready()
        config = client.model_config()
        version = client.server_version()
    finally:
        client.close()
    return _model_info(target, config, version)


def _model_info(target: TritonTarget, config: dict[str, Any], server_version: str) -> ModelInfo:
    inputs, outputs = config.get("input", []), config.get("output", [])
    name = f"{target.model} on Triton at {target.address}"
    if len(inputs) != 1 or not outputs:
        raise UnsupportedModelError(
            f"{name} has {len(inputs)} inputs and {len(outputs)} outputs; expected one image input and output0")
    output = next((o for o in outputs if o.get("name") == "output0"), outputs[0])
    batching = int(config.get("max_batch_size", 0)) > 0

    def shape(tensor: dict[str, Any]) -> tuple[int | None, ...]:
        dims = tuple(None if int(d) < 0 else int(d) for d in tensor.get("dims", []))
        return (None, *dims) if batching else dims

    params = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
    elem = _TRITON_TYPES.get(inputs[0].get("data_type", ""), inputs[0].get("data_type", "?"))
    info = build_model_info(Path(target.model), "triton", dict(params), inputs[0]["name"], shape(inputs[0]),
                            elem, shape(output), label=name)
    info.url = target.url
    info.metadata.update({"triton_server": server_version, "max_batch_size": int(config.get("max_batch_size", 0)),
                          "output_name": output["name"], "platform": config.get("backend") or config.get("platform")})
    return info


class TritonBackend:
    """The Backend protocol over a Triton-served model (see module doc).

    Args:
        info: from `read_triton_info` (what Detector reads for a model URL).
        precision: "auto" or the served model's own precision (the server decides the rest).
        jobs: requests in flight for streams (default 4).
        timeout: seconds one inference request may take before it fails (default 60).
    """

    def __init__(self, info: ModelInfo, precision: str = "auto", jobs: int | None = None,
                 timeout: float | None = None) -> None:
        if info.url is None:
            raise BackendUnavailableError("device 'triton' needs a model URL like grpc://host:8001/NAME")
        self.target = parse_triton_url(info.url)
        model_precision = "f16" if info.input_dtype == np.float16 else "f32"
        if precision not in ("auto", model_precision):
            raise BackendUnavailableError(
                f"the Triton model runs its own precision ({model_precision}), not {precision}")
        self._input_name = info.input_name
        self._output_name = str(info.metadata.get("output_name", "output0"))
        self._max_batch = int(info.metadata.get("max_batch_size", 0))
        self._jobs = jobs or DEFAULT_JOBS
        self._timeout = float(timeout or INFER_TIMEOUT_S)
        self._client = TritonClient(self.target, self._timeout)
        self._local = threading.local()
        shape = info.input_shape
        self.input_spec = InputSpec("NCHW", info.input_dtype, shape[0], shape[2], shape[3])
        self.info = BackendInfo(
            backend="triton", device=f"{self.target.protocol}://{self.target.address}/{self.target.model}",
            precision=model_precision,
            details={"server": info.metadata.get("triton_server"), "max_batch_size": self._max_batch,
                     "platform": info.metadata.get("platform")},
        )

    def _error(self, exc: BaseException) -> EdgeYoloError:
        t = self.target
        text = _message(exc)
        if "failed to connect" in text.lower() or "connection refused" in text.lower():
            return BackendUnavailableError(f"cannot reach Triton at {t.address}: {text}")
        return EdgeYoloError(f"Triton at {t.address} failed to run {t.model!r}: {text}")

    def _chunks(self, inputs: np.ndarray) -> list[np.ndarray]:
        step = self._max_batch or len(inputs)
        return [inputs[i : i + step] for i in range(0, len(inputs), step)]

    def _infer_with(self, client: TritonClient, inputs: np.ndarray) -> np.ndarray:
        outputs = []
        for chunk in self._chunks(inputs):
            items, wanted = client.request(chunk, self._input_name, self._output_name)
            try:
                result = client.client.infer(self.target.model, items, model_version=self.target.version,
                                             outputs=wanted, **client.infer_options())
            except Exception as exc:  # noqa: BLE001 - tritonclient's InferenceServerException and transport errors
                raise self._error(exc) from exc
            outputs.append(result.as_numpy(self._output_name))
        out = outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
        return out if out.dtype == np.float32 else out.astype(np.float32)

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        """One batch through Triton (split into max_batch_size requests), output0 as float32."""
        return self._infer_with(self._thread_client(), inputs)

    def _thread_client(self) -> TritonClient:
        # gRPC channels are thread-safe; the HTTP client (gevent) must stay on its own thread.
        if self._client.grpc:
            return self._client
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = TritonClient(self.target, self._timeout)
        return client

    def async_queue(self, callback: ResultCallback, jobs: int | None = None) -> Any:
        """`jobs` requests in flight: native async gRPC requests, or HTTP on worker threads."""
        if self._client.grpc:
            return GrpcAsyncInfer(self, callback, jobs or self._jobs)
        return ThreadedAsyncInfer(self.infer, callback, jobs or self._jobs)

    def close(self) -> None:
        """Close the connection."""
        self._client.close()


class GrpcAsyncInfer:
    """Bounded in-flight gRPC requests; callbacks run on the client's completion thread."""

    def __init__(self, backend: TritonBackend, callback: ResultCallback, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self._backend = backend
        self._callback = callback
        self._slots = threading.BoundedSemaphore(self.jobs)
        self._idle = threading.Condition()
        self._pending = 0
        self._failure: BaseException | None = None

    def submit(self, inputs: np.ndarray, userdata: Any) -> None:
        """Send one batch (at most max_batch_size frames); blocks while `jobs` are in flight."""
        self._raise_failed()
        backend = self._backend
        if backend._max_batch and len(inputs) > backend._max_batch:
            raise EdgeYoloError(f"{len(inputs)} frames exceed the model's max_batch_size {backend._max_batch}")
        self._slots.acquire()
        with self._idle:
            self._pending += 1
        client = backend._client
        items, wanted = client.request(inputs, backend._input_name, backend._output_name)
        try:
            client.client.async_infer(backend.target.model, items, functools.partial(self._done, userdata),
                                      model_version=backend.target.version, outputs=wanted,
                                      **client.infer_options())
        except Exception as exc:  # noqa: BLE001
            self._finish(backend._error(exc))
            self._raise_failed()

    def _done(self, userdata: Any, result: Any, error: Any) -> None:
        failure: BaseException | None = None
        try:
            if error is not None:
                failure = self._backend._error(error)
            else:
                out = result.as_numpy(self._backend._output_name)
                self._callback(out if out.dtype == np.float32 else out.astype(np.float32), userdata)
        except BaseException as exc:  # noqa: BLE001 - handed to the submitting thread
            failure = exc
        self._finish(failure)

    def _finish(self, failure: BaseException | None) -> None:
        with self._idle:
            if failure is not None and self._failure is None:
                self._failure = failure
            self._pending -= 1
            self._idle.notify_all()
        self._slots.release()

    def _raise_failed(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def wait_all(self) -> None:
        """Block until every request has called back; re-raise the first failure."""
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)
        self._raise_failed()

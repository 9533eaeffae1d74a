"""The protocol every inference backend implements.

A backend owns one loaded model on one device. It takes the network input exactly as
`input_spec` describes it and returns the raw `output0` tensor (B, 4+nc, A) as float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """What `Backend.infer` expects.

    layout "NCHW" with dtype float32/float16 means RGB scaled to 0..1 (the ONNX contract);
    layout "NHWC" with dtype uint8 means the letterboxed BGR frames as OpenCV gives them,
    the backend doing the colour swap, scaling and transpose in its own graph.
    `height`/`width`/`batch` are None where the model is dynamic on that axis.
    """

    layout: str
    dtype: np.dtype
    batch: int | None
    height: int | None
    width: int | None


@dataclass
class BackendInfo:
    """Which backend really runs, and why each better option was not taken."""

    backend: str                      # "onnxruntime" | "openvino" | "torch"
    device: str                       # e.g. "TensorrtExecutionProvider", "CUDAExecutionProvider:0", "CPU"
    precision: str                    # "f32" | "f16" | "bf16" | "int8" ...
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (option, reason)
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for humans, e.g. 'openvino CPU (bf16); skipped tensorrt: not installed'."""
        line = f"{self.backend} {self.device} ({self.precision})"
        if self.skipped:
            line += "; skipped " + ", ".join(f"{o}: {r}" for o, r in self.skipped)
        return line


# (output0, userdata): output0 is the callback's own array, never reused by the backend.
ResultCallback = Callable[[np.ndarray, Any], None]


@runtime_checkable
class AsyncInfer(Protocol):
    """A bounded queue of in-flight inference requests (for streams)."""

    jobs: int  # how many requests can be in flight at once

    def submit(self, inputs: np.ndarray, userdata: Any) -> None:
        """Start inference; blocks while all request slots are busy. The callback gets
        (output0, userdata) on a backend thread, in completion order."""

    def wait_all(self) -> None:
        """Block until every submitted request has called back."""


@runtime_checkable
class Backend(Protocol):
    """One loaded model on one device."""

    info: BackendInfo
    input_spec: InputSpec

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        """Run one batch synchronously, return output0 (B, 4+nc, A) float32."""

    def async_queue(self, callback: ResultCallback, jobs: int | None = None) -> AsyncInfer:
        """A queue of `jobs` in-flight requests (backend's optimal number when None)."""

    def close(self) -> None:
        """Release the session/compiled model."""

"""edge-yolo: a torch-free YOLOv12 runtime.

    from edge_yolo import Detector
    detections = Detector("model.onnx")("image.jpg")

Importing the package loads neither torch nor any inference backend; they are imported when a
Detector is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .detections import Detections
    from .detector import Detector
    from .modelinfo import ModelInfo, read_model_info

_LAZY = {
    "Detector": "detector",
    "Detections": "detections",
    "ModelInfo": "modelinfo",
    "read_model_info": "modelinfo",
}


def load_model(model: str, device: str = "auto", **kwargs: Any) -> Detector:
    """Same as `Detector(model, device=device, **kwargs)`."""
    from .detector import Detector

    return Detector(model, device=device, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Detector", "Detections", "ModelInfo", "load_model", "read_model_info", "__version__"]

"""Converters: safe YOLOv12 checkpoint loading, our PyTorch rebuild, ONNX/OpenVINO export.

Names are imported lazily so `import converters` stays cheap (torch loads on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from converters.checkpoint import LoadedCheckpoint, load_checkpoint

__all__ = ["LoadedCheckpoint", "load_checkpoint", "export_onnx", "export_openvino"]

_LAZY = {
    "LoadedCheckpoint": "converters.checkpoint",
    "load_checkpoint": "converters.checkpoint",
}

# Imported eagerly (cheap: torch loads inside the functions). A lazy attribute would be shadowed
# by the submodule of the same name as soon as anything imports `converters.export_onnx`.
from converters.export_onnx import export_onnx  # noqa: E402
from converters.export_openvino import export_openvino  # noqa: E402


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'converters' has no attribute {name!r}")

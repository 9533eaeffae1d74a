"""Our own PyTorch implementation of the YOLOv12 detection network (written from the spec)."""

from converters.nn.build import LAYOUTS, Variant, YOLOv12, build_model, stock_yaml

__all__ = ["LAYOUTS", "Variant", "YOLOv12", "build_model", "stock_yaml"]

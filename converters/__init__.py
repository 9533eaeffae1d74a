"""Converters: safe YOLOv12 checkpoint loading, our PyTorch rebuild, ONNX/OpenVINO export."""

"""edge-yolo: a torch-free YOLOv12 runtime."""

__version__ = "0.1.0"

"""The metadata every export carries, laid out as Ultralytics lays it out, plus our own keys.

One dict (`build_metadata`) feeds three places: ONNX `metadata_props` (every value `str()`,
names as a Python dict repr, parse with `ast.literal_eval`), OpenVINO `metadata.yaml` (plain
YAML values) and OpenVINO rt_info `model_info` (Ultralytics' preprocessing hints plus the
same string values as the ONNX props).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from edge_yolo import __version__

if TYPE_CHECKING:
    from converters.checkpoint import LoadedCheckpoint

IOU_THRESHOLD = 0.7


def build_metadata(
    loaded: LoadedCheckpoint,
    imgsz: tuple[int, int],
    batch: int,
    precision: str,
    args: dict[str, Any],
) -> dict[str, Any]:
    """Ultralytics' keys (description ... end2end) then ours (edge_yolo_version ... precision)."""
    import torch

    return {
        "description": f"YOLOv12 detector from {loaded.source.name}, exported by edge-yolo",
        "author": "edge-yolo",
        "date": datetime.now(timezone.utc).isoformat(),
        "version": __version__,
        "license": "Apache-2.0 (edge-yolo exporter); the weights keep their own license",
        "docs": "README.md of the edge-yolo package",
        "stride": int(max(loaded.stride)),
        "task": "detect",
        "head": "Detect",
        "batch": batch,
        "imgsz": [int(imgsz[0]), int(imgsz[1])],
        "names": {int(k): str(v) for k, v in loaded.names.items()},
        "args": args,
        "channels": 3,
        "end2end": False,
        "edge_yolo_version": __version__,
        "exporter": f"edge-yolo {__version__} (torch {torch.__version__.split('+')[0]})",
        "source": loaded.source.name,
        "source_sha256": loaded.sha256,
        "layout": loaded.layout,
        "precision": precision,
    }


def onnx_props(metadata: dict[str, Any]) -> dict[str, str]:
    """ONNX metadata_props: every value as `str()`, exactly as Ultralytics writes them."""
    return {k: str(v) for k, v in metadata.items()}


def openvino_rt_info(metadata: dict[str, Any]) -> dict[str, str]:
    """rt_info `model_info`: Ultralytics' preprocessing hints, then every metadata prop as a string."""
    hints = {
        "model_type": "YOLO",
        "reverse_input_channels": "YES",
        "pad_value": "114",
        "scale_values": "255",
        "iou_threshold": str(IOU_THRESHOLD),
        "labels": " ".join(str(v) for _, v in sorted(metadata["names"].items())),
        "resize_type": "fit_to_window_letterbox",
    }
    return {**hints, **onnx_props(metadata)}


def write_metadata_yaml(metadata: dict[str, Any], path: Path) -> None:
    """`metadata.yaml` next to the OpenVINO XML, with plain YAML types as Ultralytics writes it."""
    path.write_text(yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True))

"""The metadata every export carries, laid out as Ultralytics lays it out, plus our own keys.

One dict (`build_metadata`) feeds three places: ONNX `metadata_props` (every value `str()`,
names as a Python dict repr, parse with `ast.literal_eval`), OpenVINO `metadata.yaml` (plain
YAML values) and OpenVINO rt_info `model_info` (Ultralytics' preprocessing hints plus the
same string values as the ONNX props). Each export also records `weights_sha256`, the hash
of its own weights (see `edge_yolo.weights_hash`), which the runtime checks on load.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from edge_yolo import __version__
from edge_yolo.errors import ExportError
from edge_yolo.weights_hash import WEIGHTS_KEY, file_sha256, onnx_graph_sha256

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


def record_onnx_weights_hash(proto: Any) -> bytes:
    """Add `weights_sha256` (the serialized graph's hash) to an ONNX ModelProto's
    metadata_props; returns the serialized model to write."""
    proto.metadata_props.add(key=WEIGHTS_KEY, value=onnx_graph_sha256(proto.SerializeToString()))
    return proto.SerializeToString()


def save_openvino_with_weights_hash(model: Any, xml: Path, compress_to_fp16: bool) -> str:
    """`ov.save_model` with `weights_sha256` (the .bin's hash) in rt_info `model_info`.

    The .bin exists only once the model is saved, so it is saved twice: the second save
    writes the same .bin (checked) and an .xml that records its hash. Returns the hash.
    """
    import openvino as ov

    ov.save_model(model, str(xml), compress_to_fp16=compress_to_fp16)
    digest = file_sha256(xml.with_suffix(".bin"))
    model.set_rt_info(digest, ["model_info", WEIGHTS_KEY])
    ov.save_model(model, str(xml), compress_to_fp16=compress_to_fp16)
    if file_sha256(xml.with_suffix(".bin")) != digest:
        raise ExportError(f"OpenVINO wrote a different {xml.with_suffix('.bin').name} on the second save; "
                          "cannot record its hash")
    return digest


def write_metadata_yaml(metadata: dict[str, Any], path: Path) -> None:
    """`metadata.yaml` next to the OpenVINO XML, with plain YAML types as Ultralytics writes it."""
    path.write_text(yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True))

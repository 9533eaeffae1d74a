"""The weights hash our exports record, and its check when a model is loaded.

An export records `weights_sha256` in its metadata: for ONNX the sha256 of the serialized
graph (every weight and node, not the metadata_props that hold the hash itself), for an
OpenVINO IR the sha256 of its .bin. Loading a model that records one recomputes it, so a
weights file from another export or a corrupted one is refused instead of giving wrong
detections. The ONNX graph is found with a minimal protobuf reader, so neither `onnx` nor
onnxruntime is needed for the check.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import ModelLoadError

WEIGHTS_KEY = "weights_sha256"
_GRAPH_FIELD = 7  # ModelProto.graph


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def onnx_graph_sha256(data: bytes) -> str:
    """sha256 of the graph field's bytes in a serialized ONNX ModelProto (ValueError when
    `data` is not a well-formed protobuf message)."""
    view, pos, digest = memoryview(data), 0, hashlib.sha256()
    while pos < len(view):
        key, pos = _varint(view, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(view, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(view, pos)
            if field == _GRAPH_FIELD:
                digest.update(view[pos : pos + size])
            pos += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(view):
            raise ValueError("truncated field")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(path: Path, fmt: str) -> str:
    """The weights hash of an .onnx file (fmt "onnx") or of an IR's .bin (fmt "openvino", path the .xml)."""
    try:
        if fmt == "onnx":
            return onnx_graph_sha256(path.read_bytes())
        return file_sha256(path.with_suffix(".bin"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the weights of {path}: {exc}") from exc


def check_weights(path: Path, fmt: str, recorded: object) -> None:
    """Refuse a model whose weights differ from the hash its export recorded (None: nothing recorded)."""
    if recorded is None:
        return
    actual = weights_sha256(path, fmt)
    if str(recorded).strip().lower() != actual:
        what = "the graph and weights of" if fmt == "onnx" else path.with_suffix(".bin").name + " of"
        raise ModelLoadError(
            f"weights do not match the model's recorded hash: {what} {path.name} hash to {actual[:16]}..., "
            f"its export recorded {str(recorded)[:16]}... (a corrupted file, or weights from another export)"
        )

"""Models that must be refused instead of giving wrong detections: weights that do not match
the hash our export recorded (a byte-flipped ONNX, an IR whose .bin comes from elsewhere), and
outputs that are not a detector's (pose, OBB, segmentation, transposed), named when refused.

No pose/OBB/segmentation checkpoint exists in the fixtures, so those outputs are built from the
real detector: Ultralytics' ONNX export with extra nodes laying its output out as such a model
does (keypoints/angle/mask coefficients computed from its real boxes and scores), metadata
removed, run by the real ONNX Runtime on a real photo.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from edge_yolo.detector import Detector
from edge_yolo.errors import ModelLoadError, UnsupportedModelError
from edge_yolo.modelinfo import read_model_info
from edge_yolo.weights_hash import WEIGHTS_KEY, file_sha256, onnx_graph_sha256

from test_cli_detect import run_cli

HASH_MISMATCH = "weights do not match the model's recorded hash"


def test_our_exports_record_their_weights_hash(our_onnx: Path, our_openvino: Path) -> None:
    onnx_info = read_model_info(our_onnx)
    assert onnx_info.metadata[WEIGHTS_KEY] == onnx_graph_sha256(our_onnx.read_bytes())
    reserialized = onnx.load(str(our_onnx)).SerializeToString()  # the hash survives a load/save round trip
    assert onnx_graph_sha256(reserialized) == onnx_info.metadata[WEIGHTS_KEY]
    ov_info = read_model_info(our_openvino)
    assert ov_info.metadata[WEIGHTS_KEY] == file_sha256(our_openvino / "yolo12n_shapes.bin")
    assert yaml.safe_load((our_openvino / "metadata.yaml").read_text())[WEIGHTS_KEY] == ov_info.metadata[WEIGHTS_KEY]


def test_byte_flipped_onnx_is_refused(our_onnx: Path, tmp_path: Path, val_images: list[Path],
                                      capfd: pytest.CaptureFixture) -> None:
    data = bytearray(our_onnx.read_bytes())
    largest = max(onnx.load(str(our_onnx)).graph.initializer, key=lambda t: len(t.raw_data))
    start = bytes(data).find(largest.raw_data)
    assert start > 0
    data[start + len(largest.raw_data) // 2] ^= 0xFF  # one byte of one weight
    flipped = tmp_path / "flipped.onnx"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=HASH_MISMATCH):
        Detector(flipped, device="cpu")
    code, _, err = run_cli(["detect", val_images[0], "-m", flipped, "--device", "cpu", "-o", tmp_path / "r", "-q"],
                           capfd)
    assert code == 1 and err.startswith(f"error: {HASH_MISMATCH}") and err.count("\n") == 1


def test_ir_with_a_bin_from_elsewhere_is_refused(our_openvino: Path, tmp_path: Path, val_dir: Path,
                                                 capfd: pytest.CaptureFixture) -> None:
    ir = shutil.copytree(our_openvino, tmp_path / "swapped_openvino_model")
    bin_path = ir / "yolo12n_shapes.bin"
    weights = np.frombuffer(bin_path.read_bytes(), np.uint8).copy()
    middle = slice(len(weights) // 8 * 4, len(weights) // 8 * 4 + 400_000)
    weights[middle] = weights[middle].view(np.float32)[::-1].copy().view(np.uint8)  # same size, other values
    bin_path.write_bytes(weights.tobytes())
    with pytest.raises(ModelLoadError, match=HASH_MISMATCH):
        Detector(ir, device="openvino")
    code, _, err = run_cli(["val", ir, "--data", val_dir, "--device", "openvino"], capfd)
    assert code == 1 and f"error: {HASH_MISMATCH}" in err and "Traceback" not in err


def _graft(source: Path, out: Path, nodes: list, inits: list, name: str, shape: list[int]) -> Path:
    model = onnx.load(str(source))
    del model.metadata_props[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(inits)
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    onnx.save(model, str(out))
    return out


def _slice(name: str, start: int, end: int) -> tuple[list, list]:
    inits = [numpy_helper.from_array(np.array([v], np.int64), f"{name}_{k}")
             for k, v in (("s", start), ("e", end), ("a", 1))]
    return [helper.make_node("Slice", ["output0", f"{name}_s", f"{name}_e", f"{name}_a"], [name])], inits


def pose_like(source: Path, out: Path) -> Path:
    """(1, 56, 8400): box, one class score, 17 keypoints (x, y, visibility) from the real boxes/scores."""
    head, i1 = _slice("head", 0, 5)
    xy, i2 = _slice("xy", 0, 2)
    vis, i3 = _slice("vis", 4, 5)
    nodes = head + xy + vis + [helper.make_node("Concat", ["xy", "vis"], ["kpt"], axis=1),
                               helper.make_node("Concat", ["head"] + ["kpt"] * 17, ["pose0"], axis=1)]
    return _graft(source, out, nodes, i1 + i2 + i3, "pose0", [1, 56, 8400])


def obb_like(source: Path, out: Path) -> Path:
    """(1, 8, 8400): box, 3 class scores, an angle in [0, pi] (the box centre x scaled)."""
    x, i1 = _slice("x", 0, 1)
    scale = numpy_helper.from_array(np.array(np.pi / 640, np.float32), "to_angle")
    nodes = x + [helper.make_node("Mul", ["x", "to_angle"], ["angle"]),
                 helper.make_node("Concat", ["output0", "angle"], ["obb0"], axis=1)]
    return _graft(source, out, nodes, i1 + [scale], "obb0", [1, 8, 8400])


def segment_like(source: Path, out: Path) -> Path:
    """(1, 39, 8400): box, 3 class scores, 32 mask coefficients (negated scores)."""
    score, i1 = _slice("score", 4, 5)
    nodes = score + [helper.make_node("Neg", ["score"], ["coef"]),
                     helper.make_node("Concat", ["output0"] + ["coef"] * 32, ["seg0"], axis=1)]
    return _graft(source, out, nodes, i1, "seg0", [1, 39, 8400])


def transposed(source: Path, out: Path) -> Path:
    nodes = [helper.make_node("Transpose", ["output0"], ["t0"], perm=[0, 2, 1])]
    return _graft(source, out, nodes, [], "t0", [1, 8400, 7])


@pytest.mark.parametrize(("build", "named"), [
    (pose_like, "pose model: 17 keypoints"), (obb_like, "oriented-box (OBB) model"),
    (segment_like, "segmentation model"), (transposed, "looks transposed"),
])
def test_other_task_outputs_are_refused_by_name(build, named: str, ul_onnx: Path, tmp_path: Path,  # noqa: ANN001
                                                val_images: list[Path], capfd: pytest.CaptureFixture) -> None:
    model = build(ul_onnx, tmp_path / "other.onnx")
    with Detector(model, device="cpu") as det, pytest.raises(UnsupportedModelError, match=re.escape(named)) as exc:
        det(val_images[0])
    assert "not [0, 1]" in str(exc.value) and "detection models only" in str(exc.value)
    code, _, err = run_cli(["detect", val_images[0], "-m", model, "--device", "cpu", "-o", tmp_path / "r", "-q"],
                           capfd)
    assert code == 1 and err.startswith("error: other.onnx: its 'class scores' range") and named in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("task", "named"), [("pose", "pose"), ("obb", "oriented-box (OBB)"),
                                             ("segment", "segmentation"), ("classify", "classification")])
def test_metadata_task_is_named_when_refused(task: str, named: str, ul_onnx: Path, tmp_path: Path) -> None:
    model = onnx.load(str(ul_onnx))
    for prop in model.metadata_props:
        if prop.key == "task":
            prop.value = task
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedModelError, match=re.escape(f"is a {named} model (metadata task '{task}')")):
        read_model_info(tmp_path / "m.onnx")

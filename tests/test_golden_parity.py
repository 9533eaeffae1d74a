"""Our rebuild of the three shared checkpoints (layouts A, B, C) against the outputs their own
code bases computed (tests/fixtures/checkpoints/README.md), and the trained shapes model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from converters import LoadedCheckpoint, load_checkpoint

CHECKPOINTS = Path(__file__).parent / "fixtures" / "checkpoints"
TOLERANCE = 1e-3  # DESIGN.md: our torch rebuild vs golden, max |Δ| on output0

CASES = {"yolo12n_ul": "A", "yolov12n_v1": "B", "yolov12n_turbo": "C"}


def golden_input(golden: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    if key == "random":
        return np.random.default_rng(0).random((1, 3, 640, 640)).astype(np.float32)
    return golden[f"x_{key}_u8"].astype(np.float32) / np.float32(255)


@pytest.fixture(scope="module", params=list(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, LoadedCheckpoint]:
    return request.param, load_checkpoint(CHECKPOINTS / f"{request.param}.pt")


def test_metadata_detected(case: tuple[str, LoadedCheckpoint]) -> None:
    name, ckpt = case
    assert ckpt.layout == CASES[name]
    assert ckpt.fused is False
    assert ckpt.nc == 80 and len(ckpt.names) == 80
    assert ckpt.names[0] == "person" and ckpt.names[79] == "toothbrush"
    assert ckpt.imgsz == (640, 640)
    assert ckpt.stride == (8, 16, 32)
    assert ckpt.yaml["scale"] == "n"
    assert ckpt.source == CHECKPOINTS / f"{name}.pt" and len(ckpt.sha256) == 64
    assert not ckpt.model.training
    assert all(p.dtype == torch.float32 for p in ckpt.model.state_dict().values() if p.is_floating_point())
    assert "ultralytics" not in sys.modules


def test_golden_outputs(case: tuple[str, LoadedCheckpoint]) -> None:
    name, ckpt = case
    golden = np.load(CHECKPOINTS / f"{name}.golden.npz")
    stride = int(golden["anchor_stride"])
    for key, anchors in (("random", 8400), ("image", 8400), ("rect", 5040), ("320", 2100)):
        x = golden_input(golden, key)
        with torch.inference_mode():
            y = ckpt.model(torch.from_numpy(x)).numpy()
        assert y.shape == (1, 84, anchors), key
        err = float(np.abs(y[..., ::stride] - golden[f"y_{key}"]).max())
        assert err <= TOLERANCE, f"{name} {key}: max |Δ| {err:.2e}"


def test_shapes_checkpoint_loads(shapes_pt: Path) -> None:
    ckpt = load_checkpoint(shapes_pt)
    assert ckpt.layout == "A" and not ckpt.fused
    assert ckpt.names == {0: "circle", 1: "square", 2: "triangle"}
    assert ckpt.nc == 3
    assert ckpt.imgsz == (320, 320)
    with torch.inference_mode():
        y = ckpt.model(torch.zeros(1, 3, 320, 320))
    assert y.shape == (1, 7, 2100)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript-based exporter, as Ultralytics uses
def test_traces_to_dynamic_onnx(case: tuple[str, LoadedCheckpoint]) -> None:
    """Anchors come from the real feature shapes: one dynamic-batch/H/W ONNX graph matches the
    torch model at other sizes, including a P4 map whose height is not a multiple of the area."""
    import io
    import warnings

    import onnxruntime as ort

    _, ckpt = case
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        torch.onnx.export(ckpt.model, torch.zeros(1, 3, 320, 320), buf, dynamo=False, opset_version=17,
                          input_names=["images"], output_names=["output0"],
                          dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"},
                                        "output0": {0: "batch", 2: "anchors"}})
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for shape in ((2, 3, 256, 416), (1, 3, 224, 352)):
        x = rng.random(shape, dtype=np.float32)
        with torch.inference_mode():
            ref = ckpt.model(torch.from_numpy(x)).numpy()
        out = session.run(None, {"images": x})[0]
        assert out.shape == ref.shape
        assert float(np.abs(out - ref).max()) <= TOLERANCE

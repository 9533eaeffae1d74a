"""Detections container, and that importing edge_yolo stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edge_yolo import Detections


@pytest.fixture
def dets() -> Detections:
    return Detections(
        np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], np.float64),
        np.array([0.9, 0.5, 0.3]),
        np.array([0, 2, 7]),
        {0: "circle", 1: "square", 2: "triangle"},
    )


def test_types_len_and_iteration(dets: Detections) -> None:
    assert dets.xyxy.dtype == np.float32 and dets.xyxy.shape == (3, 4)
    assert dets.confidence.dtype == np.float32 and dets.class_id.dtype == np.int64
    assert len(dets) == 3
    rows = list(dets)
    assert [len(r) for r in rows] == [1, 1, 1]
    assert rows[1].xyxy.tolist() == [[5, 6, 7, 8]] and rows[1].names == dets.names


def test_indexing(dets: Detections) -> None:
    assert dets[0].confidence.tolist() == pytest.approx([0.9])
    assert dets[1:].class_id.tolist() == [2, 7]
    assert dets[dets.confidence > 0.4].class_id.tolist() == [0, 2]
    assert dets[np.array([2, 0])].class_id.tolist() == [7, 0]
    assert len(dets[dets.class_id == 5]) == 0


def test_to_dict_is_json(dets: Detections) -> None:
    d = json.loads(json.dumps(dets.to_dict()))
    assert d["detections"][0] == {"xyxy": [1.0, 2.0, 3.0, 4.0], "confidence": pytest.approx(0.9),
                                  "class_id": 0, "class_name": "circle"}
    assert d["detections"][2]["class_name"] == "7"      # unknown id falls back to the id as text
    assert Detections.empty().to_dict() == {"detections": []}


def test_mismatched_lengths_rejected() -> None:
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros(2))


def test_to_supervision_without_the_package(dets: Detections, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "supervision", None)   # makes `import supervision` fail
    with pytest.raises(ImportError, match="pip install supervision"):
        dets.to_supervision()


def test_import_edge_yolo_loads_no_torch_and_no_backend() -> None:
    code = (
        "import sys, edge_yolo\n"
        "from edge_yolo import Detector, Detections, read_model_info\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'openvino', 'onnx') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_tracker_ids_are_sliced_and_serialised(dets: Detections) -> None:
    assert dets.tracker_id is None and "track_id" not in dets.to_dict()["detections"][0]
    tracked = Detections(dets.xyxy, dets.confidence, dets.class_id, dets.names, tracker_id=np.array([7, 8, 9]))
    assert tracked.tracker_id.dtype == np.int64
    assert tracked[1:].tracker_id.tolist() == [8, 9]
    assert tracked[tracked.confidence > 0.4].tracker_id.tolist() == [7, 8]
    assert [r.tracker_id.tolist() for r in tracked] == [[7], [8], [9]]
    assert [d["track_id"] for d in json.loads(json.dumps(tracked.to_dict()))["detections"]] == [7, 8, 9]
    with pytest.raises(ValueError, match="one id per detection"):
        Detections(dets.xyxy, dets.confidence, dets.class_id, tracker_id=np.array([1]))

"""Detections container, and that importing edge_yolo stays light."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
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


@pytest.fixture
def shaped(dets: Detections) -> Detections:
    return Detections(dets.xyxy, dets.confidence, dets.class_id, dets.names, orig_shape=(20, 40))


def test_box_forms(shaped: Detections) -> None:
    assert shaped.xywh[0].tolist() == [2, 3, 2, 2]
    np.testing.assert_allclose(shaped.xyxyn[1], [5 / 40, 6 / 20, 7 / 40, 8 / 20])
    np.testing.assert_allclose(shaped.xywhn[2], [10 / 40, 11 / 20, 2 / 40, 2 / 20])
    assert shaped[1:].orig_shape == (20, 40)                       # slices keep the image attributes
    with pytest.raises(ValueError, match="orig_shape"):
        Detections(shaped.xyxy, shaped.confidence, shaped.class_id).xyxyn


def test_save_txt_and_json(shaped: Detections, tmp_path: Path) -> None:
    path = shaped.save_txt(tmp_path / "labels" / "a.txt")
    assert path.read_text().splitlines()[0] == "0 0.050000 0.150000 0.050000 0.100000 0.900000"
    assert shaped.save_txt(tmp_path / "b.txt", save_conf=False).read_text().splitlines()[2] == \
        "7 0.250000 0.550000 0.050000 0.100000"
    assert json.loads(shaped.to_json()) == json.loads(json.dumps(shaped.to_dict()))


def test_equality_and_merge(dets: Detections) -> None:
    assert dets == dets[:] and dets != dets[:2] and dets != dets[[0, 2, 1]]
    merged = Detections.merge([dets[:1], dets[1:2], Detections.empty(dets.names), dets[2:]])
    assert merged == dets
    assert Detections.merge([]) == Detections.empty()
    with pytest.raises(TypeError):
        hash(dets)


def test_tracker_id_slot(dets: Detections) -> None:
    assert dets.tracker_id is None and "track_id" not in dets.to_dict()["detections"][0]
    tracked = Detections(dets.xyxy, dets.confidence, dets.class_id, dets.names, tracker_id=[4, 5, 6])
    assert tracked.tracker_id.dtype == np.int64
    assert tracked[[2, 0]].tracker_id.tolist() == [6, 4] and tracked[1].tracker_id.tolist() == [5]
    assert [d["track_id"] for d in tracked.to_dict()["detections"]] == [4, 5, 6]
    assert tracked != dets
    assert Detections.merge([tracked[:1], tracked[1:]]) == tracked
    with pytest.raises(ValueError, match="cannot merge tracked"):
        Detections.merge([tracked[:1], dets[1:]])
    with pytest.raises(ValueError, match="same length"):
        Detections(dets.xyxy, dets.confidence, dets.class_id, tracker_id=[1])


def test_to_pandas(dets: Detections, monkeypatch: pytest.MonkeyPatch) -> None:
    pd = pytest.importorskip("pandas")
    frame = dets.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["x1", "y1", "x2", "y2", "confidence", "class_id", "class_name"]
    assert frame["class_name"].tolist() == ["circle", "triangle", "7"] and frame["x2"].tolist() == [3, 7, 11]
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        dets.to_pandas()


def test_detector_fills_image_attributes_and_plot(val_images: list[Path], ul_onnx: Path) -> None:
    """On the trained shapes model: orig_shape, path, speed are set; plot() draws on a copy."""
    import cv2

    from edge_yolo import Detector

    dets = Detector(ul_onnx, device="cpu")(val_images[0])
    assert len(dets) > 0 and dets.orig_shape == (480, 640) and dets.path == str(val_images[0])
    assert set(dets.speed) == {"preprocess", "inference", "postprocess"} and dets.speed["inference"] > 0
    assert ((dets.xyxyn >= 0) & (dets.xyxyn <= 1)).all()
    image = cv2.imread(str(val_images[0]))
    drawn = dets.plot()                                           # reads the image from dets.path
    assert drawn.shape == image.shape and not np.array_equal(drawn, image)
    np.testing.assert_array_equal(dets.plot(image), drawn)
    assert np.array_equal(image, cv2.imread(str(val_images[0])))  # the caller's image is untouched
    with pytest.raises(ValueError, match="needs the image"):
        Detections.empty().plot()


def test_stream_sets_frame_index(ul_onnx: Path, video_path: Path) -> None:
    from edge_yolo import Detector

    seen = []
    for frame, dets in Detector(ul_onnx, device="cpu").stream(video_path, vid_stride=5):
        seen.append((frame.index, dets.frame_index, dets.orig_shape))
        if len(seen) == 3:
            break
    assert seen == [(0, 0, (720, 1280)), (5, 5, (720, 1280)), (10, 10, (720, 1280))]

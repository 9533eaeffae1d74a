"""COCO evaluation: metrics of constructed predictions on the real fixture ground truth, and
the full val protocol of real models (Ultralytics' ONNX export, our ONNX / OpenVINO exports,
our torch rebuild) against Ultralytics' own reference numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_yolo.dataset import Dataset, load_dataset
from edge_yolo.detections import Detections
from edge_yolo.evaluate import coco_evaluate, to_coco_results

SHAPES = Path(__file__).parent / "fixtures" / "shapes"
NAMES = {0: "circle", 1: "square", 2: "triangle"}
REFERENCE = json.loads((SHAPES / "reference_val.json").read_text())


@pytest.fixture(scope="module")
def dataset(val_dir: Path) -> Dataset:
    return load_dataset(val_dir / "data.yaml")


def gt_detections(ds: Dataset, drop_class: int | None = None, every: int = 2) -> list[Detections]:
    """The ground truth as detections (score 0.9); every `every`-th box of drop_class removed."""
    out, seen = [], 0
    for im in ds.images:
        xyxy = im.boxes.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        keep = np.ones(len(xyxy), bool)
        for i, cls in enumerate(im.classes):
            if cls == drop_class:
                keep[i] = seen % every != 0
                seen += 1
        out.append(Detections(xyxy[keep], np.full(keep.sum(), 0.9), im.classes[keep], NAMES))
    return out


def test_coco_results_are_xywh_pixels_with_class_ids() -> None:
    det = Detections(np.array([[10.0, 20.0, 50.0, 80.0]]), np.array([0.5]), np.array([2]), NAMES)
    assert to_coco_results([Detections.empty(NAMES), det], image_ids=[7, 9]) == [
        {"image_id": 9, "category_id": 2, "bbox": [10.0, 20.0, 40.0, 60.0], "score": 0.5}]


def test_perfect_predictions_score_one(dataset: Dataset) -> None:
    m = coco_evaluate(dataset.to_coco(), to_coco_results(gt_detections(dataset)), NAMES)
    assert (m.map50_95, m.map50, m.precision, m.recall) == pytest.approx((1.0, 1.0, 1.0, 1.0))
    assert m.n_images == 80 and m.n_objects == 226 and m.n_predictions == 226
    assert {k: v["n_gt"] for k, v in m.per_class.items()} == {"circle": 81, "square": 72, "triangle": 73}


def test_missed_objects_lower_recall_and_ap_of_that_class_only(dataset: Dataset) -> None:
    m = coco_evaluate(dataset.to_coco(), to_coco_results(gt_detections(dataset, drop_class=1)), NAMES)
    square = m.per_class["square"]
    assert square["recall"] == pytest.approx(36 / 72) and square["precision"] == 1.0
    assert square["ap50"] == pytest.approx(0.5, abs=0.01)     # 101-point interpolation
    assert m.per_class["circle"]["ap50_95"] == pytest.approx(1.0)
    assert m.recall == pytest.approx((1 + 0.5 + 1) / 3)
    assert m.map50_95 == pytest.approx(np.mean([v["ap50_95"] for v in m.per_class.values()]))


def test_false_positives_lower_precision_at_the_best_f1_threshold(dataset: Dataset) -> None:
    dets = gt_detections(dataset)
    # a low-score false positive in every image: best F1 cuts it off, AP unchanged
    noisy = [Detections(np.vstack([d.xyxy, [[0, 0, 5, 5]]]), np.append(d.confidence, 0.1),
                        np.append(d.class_id, 0), NAMES) for d in dets]
    m = coco_evaluate(dataset.to_coco(), to_coco_results(noisy), NAMES)
    assert m.precision == pytest.approx(1.0) and m.conf_threshold == pytest.approx(0.9)
    # the same false positives with a higher score than every true box: precision of circle falls
    loud = [Detections(np.vstack([d.xyxy, [[0, 0, 5, 5]]]), np.append(d.confidence, 0.95),
                       np.append(d.class_id, 0), NAMES) for d in dets]
    m = coco_evaluate(dataset.to_coco(), to_coco_results(loud), NAMES)
    assert m.per_class["circle"]["precision"] == pytest.approx(81 / (81 + 80))
    assert m.per_class["circle"]["ap50"] < 0.6


def test_no_predictions_gives_zero_metrics(dataset: Dataset) -> None:
    m = coco_evaluate(dataset.to_coco(), [], NAMES)
    assert (m.map50_95, m.map50, m.precision, m.recall, m.n_predictions) == (0.0, 0.0, 0.0, 0.0, 0)
    assert m.per_class["circle"] == {"ap50_95": 0.0, "ap50": 0.0, "precision": 0.0, "recall": 0.0, "n_gt": 81}


# --- the val protocol on real models -------------------------------------------------------

@pytest.fixture(scope="module")
def ul_onnx_run(ul_onnx: Path, dataset: Dataset):
    from edge_yolo.evaluate import validate

    return validate(ul_onnx, dataset, device="cpu")


def test_ultralytics_onnx_matches_ultralytics_val_reference(ul_onnx_run) -> None:
    """ORT CPU FP32, square 640 letterbox, multi-label NMS at conf 0.001: pycocotools on
    Ultralytics' own val predictions gave 0.32405 (18735 predictions)."""
    metrics, results = ul_onnx_run
    ref = REFERENCE["pycocotools_ul_val"]
    assert metrics.model["backend"] == "onnxruntime" and metrics.model["precision"] == "f32"
    assert metrics.map50_95 == pytest.approx(ref["map50_95"], abs=0.002)
    assert metrics.map50 == pytest.approx(ref["map50"], abs=0.002)
    assert abs(len(results) - ref["n_predictions"]) <= 0.01 * ref["n_predictions"]
    s = metrics.speed_ms
    assert s.preprocess > 0 and s.inference > 0 and s.postprocess > 0


def test_fp32_backends_and_torch_rebuild_agree(ul_onnx_run, our_onnx: Path, our_openvino: Path,
                                              shapes_pt: Path, dataset: Dataset) -> None:
    """Our FP32 ONNX on ORT, our OpenVINO IR at f32 and the .pt on our torch rebuild give the
    same mAP50-95 within 0.005 (and the same as Ultralytics' ONNX)."""
    from edge_yolo.evaluate import validate

    runs = {
        "ul_onnx": ul_onnx_run[0],
        "onnx": validate(our_onnx, dataset, device="cpu")[0],
        "openvino_f32": validate(our_openvino, dataset, device="openvino", precision="f32")[0],
        "torch": validate(shapes_pt, dataset, imgsz=640)[0],
    }
    assert runs["openvino_f32"].model["precision"] == "f32"
    assert runs["torch"].model["backend"] == "torch"
    assert runs["torch"].model["imgsz"] == [640, 640]     # as asked, not the training size (320)
    maps = {k: m.map50_95 for k, m in runs.items()}
    assert max(maps.values()) - min(maps.values()) <= 0.005, maps


def test_pt_without_torch_is_a_clear_error(shapes_pt: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A runtime-only install (no export extra) cannot validate a .pt on the torch rebuild;
    simulated by making the torch backend module unimportable."""
    import sys

    from edge_yolo.errors import BackendUnavailableError
    from edge_yolo.evaluate import make_val_detector

    monkeypatch.setitem(sys.modules, "converters.torch_backend", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'edge-yolo\[export\]'"):
        make_val_detector(shapes_pt)


def test_confusion_matrix_counts() -> None:
    """Rows predicted, columns true, last row/column background; greedy by IoU, conf >= 0.25."""
    from edge_yolo.plots import confusion_matrix

    gt = {"images": [{"id": 0}, {"id": 1}], "annotations": [
        {"image_id": 0, "category_id": 0, "bbox": [0, 0, 10, 10]},
        {"image_id": 0, "category_id": 1, "bbox": [20, 20, 10, 10]},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]}]}
    results = [
        {"image_id": 0, "category_id": 0, "bbox": [0, 0, 10, 10], "score": 0.9},     # right
        {"image_id": 0, "category_id": 0, "bbox": [21, 21, 10, 10], "score": 0.8},   # wrong class
        {"image_id": 0, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.1},     # below conf: ignored
        {"image_id": 1, "category_id": 2, "bbox": [50, 50, 5, 5], "score": 0.5},     # background
    ]                                                                                 # image 1 label missed
    assert confusion_matrix(gt, results, 3).tolist() == [
        [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]

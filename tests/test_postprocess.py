"""Decode + NMS against a plain-Python reference of the Ultralytics/torchvision semantics."""

from __future__ import annotations

import numpy as np
import pytest

from edge_yolo.postprocess import MAX_WH, nms, postprocess, xywh_to_xyxy


def reference_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """torchvision.ops.nms written out box by box (float32)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    suppressed = [False] * len(scores)
    keep = []
    for a, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        bi = boxes[i]
        area_i = (bi[2] - bi[0]) * (bi[3] - bi[1])
        for j in order[a + 1 :]:
            bj = boxes[j]
            w = max(np.float32(0), min(bi[2], bj[2]) - max(bi[0], bj[0]))
            h = max(np.float32(0), min(bi[3], bj[3]) - max(bi[1], bj[1]))
            inter = w * h
            if inter / (area_i + (bj[2] - bj[0]) * (bj[3] - bj[1]) - inter) > thr:
                suppressed[j] = True
    return keep


def random_output(rng: np.random.Generator, nc: int = 3, anchors: int = 400, batch: int = 1) -> np.ndarray:
    """A (B, 4+nc, A) output with clustered, overlapping boxes and sigmoid-like scores."""
    centres = rng.uniform(50, 590, (batch, 2, 8))
    pick = rng.integers(0, 8, (batch, anchors))
    xy = np.take_along_axis(centres, pick[:, None, :].repeat(2, 1), 2) + rng.normal(0, 6, (batch, 2, anchors))
    wh = rng.uniform(20, 120, (batch, 2, anchors))
    scores = rng.uniform(0, 1, (batch, nc, anchors)) ** 3
    return np.concatenate([xy, wh, scores], 1).astype(np.float32)


def reference_postprocess(pred: np.ndarray, conf: float, iou: float, max_det: int,
                          agnostic: bool = False, multi_label: bool = False) -> tuple[np.ndarray, ...]:
    boxes = xywh_to_xyxy(pred[:4].T)
    cls_scores = pred[4:].T
    cand = []
    for a in range(len(boxes)):
        if multi_label:
            cand += [(boxes[a], cls_scores[a, k], k) for k in range(cls_scores.shape[1]) if cls_scores[a, k] > conf]
        elif cls_scores[a].max() > conf:
            cand.append((boxes[a], cls_scores[a].max(), int(cls_scores[a].argmax())))
    if not cand:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0)
    b = np.array([c[0] for c in cand], np.float32)
    s = np.array([c[1] for c in cand], np.float32)
    k = np.array([c[2] for c in cand])
    shifted = b + (0 if agnostic else np.float32(MAX_WH)) * k[:, None].astype(np.float32)
    keep = reference_nms(shifted, s, iou)[:max_det]
    return b[keep], s[keep], k[keep]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("agnostic", "multi_label"), [(False, False), (True, False), (False, True)])
def test_postprocess_matches_reference(seed: int, agnostic: bool, multi_label: bool) -> None:
    rng = np.random.default_rng(seed)
    out = random_output(rng, batch=2)
    got = postprocess(out, conf=0.25, iou=0.5, max_det=300, agnostic=agnostic, multi_label=multi_label)
    assert len(got) == 2
    for pred, (boxes, scores, cls) in zip(out, got):
        rb, rs, rk = reference_postprocess(pred, 0.25, 0.5, 300, agnostic, multi_label)
        assert len(boxes) == len(rb) > 5
        np.testing.assert_array_equal(boxes, rb)
        np.testing.assert_array_equal(scores, rs)
        np.testing.assert_array_equal(cls, rk)


def test_nms_equal_to_reference_at_many_thresholds() -> None:
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 100, (300, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (300, 2)).astype(np.float32)], 1)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    for thr in (0.1, 0.45, 0.7, 0.9):
        assert nms(boxes, scores, thr).tolist() == reference_nms(boxes, scores, thr)
    assert nms(boxes, scores, 0.5, max_keep=4).tolist() == reference_nms(boxes, scores, 0.5)[:4]


@pytest.mark.parametrize("n", [0, 1, 2, 40, 160, 161])
def test_nms_equal_to_reference_for_few_and_many_boxes(n: int) -> None:
    """Up to 160 boxes NMS works from one IoU matrix, above it box by box: both give the
    reference's result, with empty boxes (NaN IoU), tied scores and a max_keep."""
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 60, (n, 2)).astype(np.float32)
    wh = rng.uniform(5, 40, (n, 2)).astype(np.float32)
    wh[rng.uniform(size=n) < 0.1] = 0
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = np.round(rng.uniform(0, 1, n), 1).astype(np.float32)
    for thr in (0.3, 0.7):
        assert nms(boxes, scores, thr).tolist() == reference_nms(boxes, scores, thr)
        assert nms(boxes, scores, thr, max_keep=3).tolist() == reference_nms(boxes, scores, thr)[:3]


def test_conf_is_strict_and_classes_filter() -> None:
    out = np.zeros((1, 7, 3), np.float32)
    out[0, :4] = [[10, 100, 300], [10, 100, 300], [8, 8, 8], [8, 8, 8]]
    out[0, 4:, 0] = [0.25, 0.0, 0.0]          # exactly conf: dropped
    out[0, 4:, 1] = [0.0, 0.9, 0.3]
    out[0, 4:, 2] = [0.0, 0.0, 0.6]
    boxes, scores, cls = postprocess(out, conf=0.25)[0]
    assert cls.tolist() == [1, 2] and scores.tolist() == pytest.approx([0.9, 0.6])
    np.testing.assert_array_equal(boxes[0], [96, 96, 104, 104])
    assert postprocess(out, conf=0.25, classes=[2])[0][2].tolist() == [2]
    assert postprocess(out, conf=0.25, multi_label=True)[0][2].tolist() == [1, 2, 2]


def test_class_aware_keeps_overlapping_boxes_of_other_classes() -> None:
    out = np.zeros((1, 6, 2), np.float32)
    out[0, :4] = [[50, 51], [50, 50], [20, 20], [20, 20]]
    out[0, 4:] = [[0.9, 0.0], [0.0, 0.8]]
    assert len(postprocess(out)[0][0]) == 2
    assert len(postprocess(out, agnostic=True)[0][0]) == 1


def test_max_det_and_max_nms() -> None:
    rng = np.random.default_rng(3)
    out = random_output(rng, anchors=2000)
    out[0, 2:4] = 2.0                        # tiny boxes: no overlaps, everything survives NMS
    out[0, :2] = rng.uniform(0, 600, (2, 2000)).astype(np.float32)
    boxes, scores, _ = postprocess(out, conf=0.05, max_det=10)[0]
    assert len(boxes) == 10 and (np.diff(scores) <= 0).all()
    all_scores = np.sort(out[0, 4:].max(0))[::-1]
    np.testing.assert_array_equal(scores, all_scores[:10])
    capped = postprocess(out, conf=0.05, max_det=1000, max_nms=50)[0]
    np.testing.assert_array_equal(capped[1], all_scores[:50])


def test_empty_and_bad_output() -> None:
    boxes, scores, cls = postprocess(np.zeros((1, 7, 10), np.float32))[0]
    assert boxes.shape == (0, 4) and scores.shape == (0,) and cls.shape == (0,)
    with pytest.raises(ValueError):
        postprocess(np.zeros((7, 10), np.float32))

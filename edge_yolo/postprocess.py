"""Decode the raw (B, 4+nc, A) output and run non-maximum suppression, in numpy.

Follows the Ultralytics NMS contract: score = max class score, keep score > conf, optional
class filter, at most `max_nms` highest-scoring candidates, class-aware NMS via a per-class
coordinate offset (or agnostic), suppress IoU > iou, keep at most `max_det`.
Class scores must lie in [0, 1]: anything else is not a detection model's output (keypoints,
an OBB angle, mask coefficients, a transposed output) and is refused, naming what it looks like.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import UnsupportedModelError

MAX_WH = 7680  # class offset for class-aware NMS, larger than any input side

SCORE_TOLERANCE = 1e-3  # sigmoid scores in fp16/bf16 still land within this of [0, 1]
ImageResult = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes xyxy (N,4), scores (N,), class ids (N,)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """(N, 4) centre/size boxes to corner boxes (float32)."""
    half = xywh[:, 2:4] / 2
    return np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], axis=1)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first.

    Matches torchvision.ops.nms in float32 (IoU = inter / (area_a + area_b - inter), a box is
    suppressed when its IoU with a kept box is > `iou`). Stops after `max_keep` kept boxes,
    which gives the same first `max_keep` as running to the end.
    """
    boxes = boxes.astype(np.float32, copy=False)
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    limit = len(order) if max_keep is None else max_keep
    with np.errstate(invalid="ignore", divide="ignore"):
        if len(order) <= _PAIRWISE_MAX:
            return _nms_pairwise(boxes[order], areas[order], iou, limit, order)
        keep: list[int] = []
        remaining = order
        while remaining.size and len(keep) < limit:
            i = remaining[0]
            keep.append(int(i))
            rest = remaining[1:]
            w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), np.float32(0))
            h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), np.float32(0))
            inter = w * h
            overlap = inter / (areas[i] + areas[rest] - inter)
            remaining = rest[~(overlap > iou)]  # NaN (two empty boxes) never suppresses
    return np.asarray(keep, dtype=np.int64)


_PAIRWISE_MAX = 160  # up to this many boxes one IoU matrix is cheaper than a numpy pass per kept box


def _nms_pairwise(boxes: np.ndarray, areas: np.ndarray, iou: float, limit: int, order: np.ndarray) -> np.ndarray:
    """nms on boxes already in score order (`order` maps them back), from all pairwise IoUs:
    the same float32 arithmetic, so the same result."""
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    w = np.maximum(np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1), np.float32(0))
    h = np.maximum(np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1), np.float32(0))
    inter = w * h
    suppresses = inter / (areas[:, None] + areas - inter) > iou  # NaN never suppresses
    removed = np.zeros(len(order), dtype=bool)
    keep: list[int] = []
    for i in range(len(order)):
        if removed[i]:
            continue
        keep.append(i)
        if len(keep) == limit:
            break
        removed |= suppresses[i]
    return order[np.asarray(keep, dtype=np.int64)]


def describe_non_detection_output(pred: np.ndarray) -> str:
    """Why one image's output (C, A) is not (4+nc, A) with scores in [0, 1], and what it looks like."""
    channels, anchors = pred.shape
    scores = pred[4:]
    bad = 4 + np.flatnonzero((scores.max(axis=1) > 1 + SCORE_TOLERANCE) | (scores.min(axis=1) < -SCORE_TOLERANCE))
    found = f"its 'class scores' range from {scores.min():.4g} to {scores.max():.4g}, not [0, 1]"
    first, tail = int(bad.min()), channels - int(bad.min())
    if channels > anchors:
        guess = f"it looks transposed: {channels} channels for {anchors} anchors; expected (B, 4+nc, anchors)"
    elif bad.tolist() == [channels - 1]:
        guess = "it looks like an oriented-box (OBB) model: its last channel is an angle"
    elif tail % 3 == 0 and first > 4 and not np.isin(np.arange(first + 2, channels, 3), bad).any():
        guess = f"it looks like a pose model: {tail // 3} keypoints (x, y, visibility) after the class scores"
    elif tail <= 32 and channels - 32 > 4:
        guess = "it looks like a segmentation model: mask coefficients after the class scores"
    else:
        guess = "it is not a detection model's output (segmentation, pose, OBB or a transposed output?)"
    return f"{found}; {guess}. edge-yolo runs detection models only"


def _candidates(
    pred: np.ndarray, conf: float, classes: Sequence[int] | None, multi_label: bool
) -> ImageResult:
    """Boxes (xyxy), scores and class ids of one image's anchors that pass `conf`."""
    scores_all = pred[4:]                                    # (nc, A)
    best = scores_all.max(axis=0)
    if best.size and (best.max() > 1 + SCORE_TOLERANCE or scores_all.min() < -SCORE_TOLERANCE):
        raise UnsupportedModelError(describe_non_detection_output(pred))
    anchors = np.flatnonzero(best > conf)
    cls_scores = scores_all[:, anchors].T                    # (n, nc)
    boxes = xywh_to_xyxy(pred[:4, anchors].T)
    if multi_label:
        rows, cls = np.nonzero(cls_scores > conf)
        boxes, scores = boxes[rows], cls_scores[rows, cls]
    else:
        cls = cls_scores.argmax(axis=1)
        scores = best[anchors]
    if classes is not None:
        keep = np.isin(cls, np.asarray(list(classes)))
        boxes, scores, cls = boxes[keep], scores[keep], cls[keep]
    return boxes, scores, cls.astype(np.int64)


def postprocess(
    output0: np.ndarray,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    classes: Sequence[int] | None = None,
    agnostic: bool = False,
    multi_label: bool = False,
    max_nms: int = 30000,
) -> list[ImageResult]:
    """Per image of a (B, 4+nc, A) output: (boxes xyxy in network-input pixels, scores, class ids)."""
    if output0.ndim != 3 or output0.shape[1] < 5:
        raise ValueError(f"expected output0 of shape (B, 4+nc, A), got {output0.shape}")
    output0 = output0.astype(np.float32, copy=False)
    results: list[ImageResult] = []
    for pred in output0:
        boxes, scores, cls = _candidates(pred, conf, classes, multi_label)
        if len(scores) > max_nms:
            top = np.argsort(-scores, kind="stable")[:max_nms]
            boxes, scores, cls = boxes[top], scores[top], cls[top]
        offset = np.float32(0 if agnostic else MAX_WH) * cls.astype(np.float32)[:, None]
        keep = nms(boxes + offset, scores, iou, max_det)
        results.append((boxes[keep], scores[keep], cls[keep]))
    return results

"""Accuracy of a model on a dataset: predictions → COCO results → pycocotools COCOeval.

mAP comes from pycocotools with its default parameters (IoU 0.50:0.95, area "all",
maxDets 100), so numbers compare with any COCO tool. Precision and recall are not part of
COCOeval's summary; we derive them from COCOeval's own matching (IoU 0.5, area all,
maxDets 100, crowd/ignored boxes left out): per class the raw precision/recall at every
confidence threshold, then the single threshold that maximises the mean F1 over classes with
ground truth (as Ultralytics reports P and R), and P, R averaged over those classes there.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .dataset import Dataset, load_dataset
from .detections import Detections
from .errors import EdgeYoloError

VAL_CONF = 0.001
VAL_IOU = 0.7
VAL_MAX_DET = 300
PR_RECALL = np.linspace(0, 1, 101)   # COCOeval's recall thresholds


@dataclass
class Speed:
    """Mean milliseconds per image of the three Detector stages."""

    preprocess: float
    inference: float
    postprocess: float

    @property
    def total(self) -> float:
        return self.preprocess + self.inference + self.postprocess


@dataclass
class Metrics:
    """COCO metrics of one model on one dataset. Per-class values are None for a class
    without ground truth."""

    map50_95: float
    map50: float
    precision: float
    recall: float
    conf_threshold: float              # where precision/recall were taken (best mean F1)
    per_class: dict[str, dict[str, Any]]
    n_images: int
    n_objects: int
    n_predictions: int
    speed_ms: Speed | None = None
    model: dict[str, Any] = field(default_factory=dict)
    # per class: COCOeval's interpolated precision at IoU 0.5 over PR_RECALL (None without labels)
    pr_curves: dict[str, list[float] | None] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (what `val --save-metrics` writes; the PR curves are left out)."""
        out = asdict(self)
        out.pop("pr_curves")
        if self.speed_ms is not None:
            out["speed_ms"]["total"] = self.speed_ms.total
        return out


def to_coco_results(detections: Sequence[Detections], image_ids: Sequence[int] | None = None) -> list[dict]:
    """COCO result records (`image_id`, `category_id` = class id, `bbox` [x, y, w, h] in
    pixels, `score`) for per-image detections; image ids default to the list index."""
    results = []
    ids = range(len(detections)) if image_ids is None else image_ids
    for image_id, det in zip(ids, detections):
        xywh = det.xyxy.astype(np.float64)
        xywh[:, 2:] -= xywh[:, :2]
        for box, score, cls in zip(xywh.tolist(), det.confidence.tolist(), det.class_id.tolist()):
            results.append({"image_id": int(image_id), "category_id": int(cls),
                            "bbox": [round(v, 4) for v in box], "score": round(score, 6)})
    return results


def require_pycocotools() -> None:
    """Fail early, with the install hint, when the `val` extra is missing."""
    try:
        import pycocotools.cocoeval  # noqa: F401
    except ImportError:
        raise EdgeYoloError("val computes mAP with pycocotools, which is not installed: "
                            "pip install 'edge-yolo[val]'") from None


def coco_evaluate(ground_truth: dict, results: list[dict], names: dict[int, str]) -> Metrics:
    """Run COCOeval (bbox, default parameters) and collect mAP, P/R and per-class AP."""
    require_pycocotools()
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    n_images, n_objects = len(ground_truth["images"]), len(ground_truth["annotations"])
    if not results:
        per_class = {}
        for k in sorted(names):
            n_gt = _n_gt(ground_truth, k)
            ap = 0.0 if n_gt else None
            per_class[names[k]] = _class_entry(ap, ap, 0.0, 0.0, n_gt)
        return Metrics(0.0, 0.0, 0.0, 0.0, 0.0, per_class, n_images, n_objects, 0)
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints progress
        gt = COCO()
        gt.dataset = {"info": {}, **ground_truth}
        gt.createIndex()
        dt = gt.loadRes([dict(r) for r in results])   # loadRes adds keys to the records it gets
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    cat_ids = list(ev.params.catIds)
    p, r, t, cls_p, cls_r = _best_f1_precision_recall(ev, len(cat_ids))
    precision = ev.eval["precision"]   # [T, R, K, A, M]
    area_all, max_det = list(ev.params.areaRngLbl).index("all"), len(ev.params.maxDets) - 1
    per_class, curves = {}, {}
    for k, cat in enumerate(cat_ids):
        s = precision[:, :, k, area_all, max_det]
        ap = float(s[s > -1].mean()) if (s > -1).any() else None
        s50 = s[0]
        ap50 = float(s50[s50 > -1].mean()) if (s50 > -1).any() else None
        name = names.get(cat, str(cat))
        per_class[name] = _class_entry(ap, ap50, cls_p[k], cls_r[k], _n_gt(ground_truth, cat))
        curves[name] = np.clip(s50, 0, None).tolist() if (s50 > -1).any() else None
    return Metrics(
        map50_95=max(float(ev.stats[0]), 0.0), map50=max(float(ev.stats[1]), 0.0),
        precision=p, recall=r, conf_threshold=t, per_class=per_class,
        n_images=n_images, n_objects=n_objects, n_predictions=len(results), pr_curves=curves,
    )


def _n_gt(ground_truth: dict, cat: int) -> int:
    return sum(1 for a in ground_truth["annotations"] if a["category_id"] == cat and not a.get("iscrowd", 0))


def _class_entry(ap: float | None, ap50: float | None, p: float, r: float, n_gt: int) -> dict[str, Any]:
    has_gt = n_gt > 0
    return {"ap50_95": ap, "ap50": ap50, "precision": float(p) if has_gt else None,
            "recall": float(r) if has_gt else None, "n_gt": n_gt}


def _best_f1_precision_recall(ev: Any, n_cats: int) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """Mean P and R over classes at the confidence threshold of best mean F1 (IoU 0.5)."""
    area_all = list(ev.params.areaRngLbl).index("all")
    n_area, n_img = len(ev.params.areaRng), len(ev.params.imgIds)
    per_class = []   # (sorted scores desc, cumulative tp, cumulative fp, n_gt) per class
    for k in range(n_cats):
        start = k * n_area * n_img + area_all * n_img
        entries = [e for e in ev.evalImgs[start:start + n_img] if e is not None]
        n_gt = sum(int(np.count_nonzero(~np.asarray(e["gtIgnore"], bool))) for e in entries)
        if not entries or not any(len(e["dtScores"]) for e in entries):
            per_class.append((np.zeros(0), np.zeros(0), np.zeros(0), n_gt))
            continue
        scores = np.concatenate([e["dtScores"] for e in entries])
        matched = np.concatenate([e["dtMatches"][0] for e in entries]) > 0
        ignored = np.concatenate([e["dtIgnore"][0] for e in entries]).astype(bool)
        order = np.argsort(-scores, kind="mergesort")
        scores, matched, ignored = scores[order], matched[order], ignored[order]
        keep = ~ignored
        per_class.append((scores[keep], np.cumsum(matched[keep]), np.cumsum(~matched[keep]), n_gt))
    thresholds = np.unique(np.concatenate([c[0] for c in per_class] + [np.zeros(1)]))
    precision = np.zeros((n_cats, len(thresholds)))
    recall = np.zeros((n_cats, len(thresholds)))
    for k, (scores, tp, fp, n_gt) in enumerate(per_class):
        if n_gt == 0 or len(scores) == 0:
            continue
        n_kept = np.searchsorted(-scores, -thresholds, side="right")   # detections with score >= t
        idx = np.maximum(n_kept - 1, 0)
        tp_t, fp_t = np.where(n_kept > 0, tp[idx], 0), np.where(n_kept > 0, fp[idx], 0)
        precision[k] = np.where(n_kept > 0, tp_t / np.maximum(tp_t + fp_t, 1), 0.0)
        recall[k] = tp_t / n_gt
    with_gt = np.array([c[3] > 0 for c in per_class])
    if not with_gt.any():
        return 0.0, 0.0, 0.0, precision[:, 0], recall[:, 0]
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-16)
    best = int(np.argmax(f1[with_gt].mean(0)))
    return (float(precision[with_gt, best].mean()), float(recall[with_gt, best].mean()),
            float(thresholds[best]), precision[:, best], recall[:, best])


def predict_dataset(detector: Any, dataset: Dataset, progress: bool = False) -> tuple[list[Detections], Speed]:
    """Run a Detector over every image, one at a time, timing its three stages."""
    from tqdm import tqdm

    from .preprocess import read_image

    detections, t_pre, t_inf, t_post = [], 0.0, 0.0, 0.0
    # disable=None: a bar only on an interactive terminal
    for image in tqdm(dataset.images, desc="val", unit="img", leave=False, disable=None if progress else True):
        frame = read_image(image.path)
        t0 = time.perf_counter()
        inputs, metas = detector.preprocess([frame])
        t1 = time.perf_counter()
        output0 = detector.backend.infer(inputs)
        t2 = time.perf_counter()
        detections += detector.postprocess(output0, metas)
        t3 = time.perf_counter()
        t_pre, t_inf, t_post = t_pre + t1 - t0, t_inf + t2 - t1, t_post + t3 - t2
    n = max(len(dataset.images), 1)
    return detections, Speed(1e3 * t_pre / n, 1e3 * t_inf / n, 1e3 * t_post / n)


def make_val_detector(model: str | Path, device: str = "auto", imgsz: int | tuple[int, int] | None = None,
                      conf: float = VAL_CONF, iou: float = VAL_IOU, max_det: int = VAL_MAX_DET,
                      precision: str = "auto") -> Any:
    """A Detector configured for the val protocol (multi-label NMS). imgsz None means the
    model's own size: a static export's fixed input, a .pt's training size, a dynamic
    model's metadata imgsz, else 640. A `.pt` with device "auto" runs on our torch rebuild
    (device "torch"), which needs the export extra; a Triton model URL runs on the server."""
    from .backends.triton import is_triton_url
    from .detector import Detector

    if not is_triton_url(model) and Path(model).suffix.lower() == ".pt" and device == "auto":
        device = "torch"
    return Detector(model, device=device, conf=conf, iou=iou, max_det=max_det, imgsz=imgsz,
                    precision=precision, multi_label=True, rect=False)


def imgsz_origin(detector: Any, requested: int | tuple[int, int] | None) -> str:
    """Where a val Detector's input size came from, for the line `val` prints."""
    info = detector.model_info
    if not info.dynamic:
        return "the model's fixed input"
    if requested is not None:
        return "--imgsz"
    if info.imgsz is None:
        return "the default: the model has no imgsz metadata"
    return {"pt": "the training size", "triton": "the served config's imgsz"}.get(info.format, "the model's metadata")


def evaluate_detector(detector: Any, dataset: Dataset, progress: bool = False) -> tuple[Metrics, list[dict]]:
    """Metrics (with speed and model description) and COCO result records of a Detector."""
    detections, speed = predict_dataset(detector, dataset, progress)
    results = to_coco_results(detections)
    metrics = coco_evaluate(dataset.to_coco(), results, dataset.names)
    metrics.speed_ms = speed
    info = detector.backend_info
    metrics.model = {"backend": info.backend, "device": info.device, "precision": info.precision,
                     "imgsz": list(detector.imgsz)}
    return metrics, results


def validate(model: str | Path, data: str | Path | Dataset, device: str = "auto",
             imgsz: int | tuple[int, int] | None = None, conf: float = VAL_CONF, iou: float = VAL_IOU,
             max_det: int = VAL_MAX_DET, precision: str = "auto", split: str = "val") -> tuple[Metrics, list[dict]]:
    """mAP of `model` on the `split` split of `data` (a data.yaml, a dataset directory or a
    loaded Dataset) following Ultralytics' val protocol; returns the metrics and the COCO
    result records. Square letterbox at `imgsz`, by default the model's own size (see
    make_val_detector)."""
    detector = make_val_detector(model, device, imgsz, conf, iou, max_det, precision)
    try:
        dataset = data if isinstance(data, Dataset) else load_dataset(data, split=split, names=detector.names)
        metrics, results = evaluate_detector(detector, dataset)
    finally:
        detector.backend.close()
    metrics.model["path"] = str(model)
    return metrics, results

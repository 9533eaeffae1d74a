"""Validation plots: the precision-recall curve and the confusion matrix.

The numbers are plain numpy (`confusion_matrix`); drawing needs matplotlib, the `plots`
extra, imported only when a PNG is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

CONFUSION_CONF = 0.25   # detections below this confidence are left out of the matrix
CONFUSION_IOU = 0.45    # a detection and a label match at IoU above this


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xywh boxes a (N,4) and b (M,4)."""
    a_xyxy = np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], 1)
    b_xyxy = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    lt = np.maximum(a_xyxy[:, None, :2], b_xyxy[None, :, :2])
    rb = np.minimum(a_xyxy[:, None, 2:], b_xyxy[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    union = a[:, 2:].prod(1)[:, None] + b[:, 2:].prod(1)[None] - inter
    return inter / np.maximum(union, 1e-12)


def confusion_matrix(ground_truth: dict, results: Sequence[dict], nc: int, conf: float = CONFUSION_CONF,
                     iou: float = CONFUSION_IOU) -> np.ndarray:
    """(nc+1, nc+1) counts, rows = predicted class, columns = true class, the last row/column
    being background (a missed label / a detection without a label). Per image, detections
    with score >= conf and labels are paired greedily by IoU > iou, highest IoU first,
    whatever their classes, each used once."""
    matrix = np.zeros((nc + 1, nc + 1), np.int64)
    gts: dict[int, list[dict]] = {im["id"]: [] for im in ground_truth["images"]}
    for a in ground_truth["annotations"]:
        gts[a["image_id"]].append(a)
    dts: dict[int, list[dict]] = {k: [] for k in gts}
    for r in results:
        if r["score"] >= conf:
            dts.setdefault(r["image_id"], []).append(r)
    for image_id in gts:
        g, d = gts[image_id], dts.get(image_id, [])
        g_cls = np.array([a["category_id"] for a in g], np.int64)
        d_cls = np.array([r["category_id"] for r in d], np.int64)
        g_used, d_used = np.zeros(len(g), bool), np.zeros(len(d), bool)
        if g and d:
            ious = _iou(np.array([r["bbox"] for r in d], float), np.array([a["bbox"] for a in g], float))
            pairs = np.argwhere(ious > iou)
            for i, j in pairs[np.argsort(-ious[pairs[:, 0], pairs[:, 1]], kind="stable")]:
                if not d_used[i] and not g_used[j]:
                    d_used[i] = g_used[j] = True
                    matrix[d_cls[i], g_cls[j]] += 1
        np.add.at(matrix, (nc, g_cls[~g_used]), 1)
        np.add.at(matrix, (d_cls[~d_used], nc), 1)
    return matrix


def matplotlib_missing() -> str | None:
    """None when matplotlib can be imported, else the one-line install hint."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed, so no plots were saved: pip install 'edge-yolo[plots]'"
    return None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")   # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def save_pr_curve(curves: dict[str, list[float]], recall: Sequence[float], path: str | Path,
                  title: str = "") -> Path:
    """Precision over recall at IoU 0.5, one line per class (with its AP50) and their mean."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    valid = {k: np.asarray(v) for k, v in curves.items() if v is not None}
    for name, p in valid.items():
        ax.plot(recall, p, linewidth=1, label=f"{name} {p.mean():.3f}")
    if valid:
        mean = np.mean(list(valid.values()), axis=0)
        ax.plot(recall, mean, linewidth=3, color="blue", label=f"all classes {mean.mean():.3f} AP50")
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1.02), title=title or "Precision-Recall (IoU 0.5)")
    ax.legend(loc="lower left", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def save_confusion_matrix(matrix: np.ndarray, names: dict[int, str], path: str | Path, title: str = "") -> Path:
    """The confusion matrix as a heat map with counts (rows predicted, columns true)."""
    plt = _pyplot()
    labels = [names.get(k, str(k)) for k in range(len(matrix) - 1)] + ["background"]
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 3, 1.0 * len(labels) + 2.5), dpi=120)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > matrix.max() / 2 else "black", fontsize=9)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="True", ylabel="Predicted",
           title=title or f"Confusion matrix (conf {CONFUSION_CONF}, IoU {CONFUSION_IOU})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path

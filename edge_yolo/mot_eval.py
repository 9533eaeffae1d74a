"""Tracking accuracy against MOTChallenge ground truth: HOTA, MOTA, IDF1, ID switches.

Ground truth is a MOTChallenge `gt.txt` (`frame,id,x,y,w,h,flag,class,visibility`). Every
class is scored (class-agnostic), and a row whose flag (7th column) is 0 marks a region to
ignore: it is not a miss, and a tracker box matched to it (IoU >= 0.5, Hungarian matching,
as TrackEval does for MOT17's distractor classes) is neither a hit nor a false positive.
Tracker files are MOTChallenge text as `edge-yolo track --save-mot` writes it.

The metrics are computed by the `trackers` library's evaluation, which follows TrackEval;
on the test fixture it reproduces TrackEval's numbers for Ultralytics' output exactly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, EdgeYoloError

# Classes the `trackers` evaluation scores (MOT17's pedestrian) and ignores (a distractor).
_SCORED_CLASS = 1
_IGNORED_CLASS = 8

# The numbers reported, by name, from each metric family of the `trackers` evaluation.
_REPORTED = {
    "HOTA": ("HOTA", "DetA", "AssA"),
    "CLEAR": ("MOTA", "MOTP", "IDSW", "CLR_TP", "CLR_FN", "CLR_FP", "Frag"),
    "Identity": ("IDF1", "IDR", "IDP"),
}


def read_mot(path: str | Path) -> np.ndarray:
    """A MOTChallenge text file as an (N, ≥9) float array (empty files give (0, 10))."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MOT file not found: {path}")
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path} is not MOTChallenge text (frame,id,x,y,w,h,...): {exc}") from exc
    if rows.size == 0:
        return np.zeros((0, 10))
    if rows.shape[1] < 7:
        raise DataError(f"{path}: a MOTChallenge row has at least 7 columns, found {rows.shape[1]}")
    return rows


def _scoring_gt(rows: np.ndarray) -> np.ndarray:
    """GT rows with the class column rewritten: flag 0 → ignored region, else scored."""
    out = np.zeros((len(rows), 9))
    out[:, :7] = rows[:, :7]
    out[:, 6] = (rows[:, 6] != 0).astype(float)
    out[:, 7] = np.where(rows[:, 6] == 0, _IGNORED_CLASS, _SCORED_CLASS)
    out[:, 8] = rows[:, 8] if rows.shape[1] > 8 else 1.0
    return out


def evaluate_mot(ground_truth: str | Path, tracks: str | Path) -> dict[str, Any]:
    """HOTA, DetA, AssA, MOTA, MOTP, IDF1, IDSW (and counts) of `tracks` against `ground_truth`.

    Both are MOTChallenge text files; frames are 1-based. Fractions are 0..1.
    """
    try:
        from trackers.eval import evaluate_mot_sequence
    except ImportError as exc:
        raise EdgeYoloError("tracking metrics need the trackers package: pip install 'edge-yolo[track]'") from exc
    gt = _scoring_gt(read_mot(ground_truth))
    read_mot(tracks)  # a clear error for a missing or malformed file
    with tempfile.TemporaryDirectory() as tmp:
        gt_path = Path(tmp) / "gt.txt"
        np.savetxt(gt_path, gt, delimiter=",", fmt="%.6g")
        result = evaluate_mot_sequence(gt_path, tracks, metrics=list(_REPORTED))
    metrics: dict[str, Any] = {}
    for family, names in _REPORTED.items():
        values = getattr(result, family)
        for name in names:
            value = getattr(values, name)
            metrics[name] = int(value) if isinstance(value, (int, np.integer)) else float(value)
    return metrics

"""Tracking accuracy (HOTA, MOTA, IDF1, ID switches) and tracking cost per frame.

Accuracy: the detector runs once over a video at the tracking confidence (0.1); each tracker
kind (the `trackers` library's default settings) then tracks those detections, and its
MOTChallenge output is scored against the ground truth by `edge_yolo.mot_eval`, beside a
reference tracker file (by default Ultralytics 8.4 `yolo track` ByteTrack on the same ONNX
model). Cost: `ObjectTracker.update()` on 20 real detections per frame (the 20 best-scored
boxes of each frame at conf 0.01, with the frame for BoT-SORT's motion compensation), median
over frames and repeats.

    python benchmarks/bench_tracking.py [--video V --gt gt.txt --reference ref.txt --model M]
        [--repeats 5] [--out benchmarks/results/bench_tracking.json]

Defaults: the fixture in tests/fixtures/track and the shapes ONNX model.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_yolo import Detections, Detector
from edge_yolo.mot_eval import evaluate_mot
from edge_yolo.sinks import MotWriter
from edge_yolo.tracking import TRACK_CONF, TRACKER_KINDS, create_tracker

ROOT = Path(__file__).resolve().parents[1]
TRACK = ROOT / "tests" / "fixtures" / "track"
MODEL = ROOT / "tests" / "fixtures" / "shapes" / "yolo12n_shapes.onnx"
# (label, kind, options): every kind at the library's defaults, and BoT-SORT without camera-motion
# compensation (what a fixed camera needs; CMC is most of its cost).
RUNS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    *((kind, kind, {}) for kind in TRACKER_KINDS),
    ("botsort enable_cmc=False", "botsort", {"enable_cmc": False}),
)
COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "CLR_FP", "CLR_FN")


def detect_all(model: Path, video: Path, device: str) -> tuple[list[Any], float]:
    """(frame, detections at conf 0.01) for every frame, and the video's frame rate."""
    detector = Detector(model, device=device, conf=0.01)
    frames = list(detector.stream(str(video)))
    from edge_yolo.sources import VideoFile

    return frames, VideoFile(video).fps or 30.0


def track_file(kind: str, options: dict[str, Any], frames: list[Any], fps: float, out: Path) -> Path:
    """Track the detections above TRACK_CONF with `kind` into a MOT file."""
    tracker = create_tracker(kind, frame_rate=fps, **options)
    writer = MotWriter(out)
    try:
        for frame, dets in frames:
            writer.write(frame, tracker.update(dets[dets.confidence >= TRACK_CONF], frame.image))
    finally:
        writer.close()
    return out


def update_cost_ms(kind: str, options: dict[str, Any], frames: list[Any], fps: float, repeats: int,
                   n: int = 20) -> dict[str, float]:
    """Median and p95 milliseconds of one update() with `n` detections per frame."""
    top = []
    for frame, dets in frames:
        order = np.argsort(-dets.confidence)[:n]
        if len(order) == n:
            top.append((frame.image, dets[order]))
    times = []
    for _ in range(repeats):
        tracker = create_tracker(kind, frame_rate=fps, **options)
        for image, dets in top:
            t0 = time.perf_counter()
            tracker.update(dets, image)
            times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
            "frames": len(top), "detections": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=TRACK / "video.mp4")
    parser.add_argument("--gt", type=Path, default=TRACK / "gt" / "gt.txt")
    parser.add_argument("--reference", type=Path, default=TRACK / "ul_bytetrack_onnx.txt",
                        help="Another tracker's MOT file to score beside ours (default: Ultralytics' ByteTrack).")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_tracking.json")
    args = parser.parse_args()

    frames, fps = detect_all(args.model, args.video, args.device)
    tracks_dir = args.out.parent / "tracks"
    rows: list[dict[str, Any]] = []
    if args.reference and args.reference.exists():
        rows.append({"tracker": f"reference ({args.reference.name})", **evaluate_mot(args.gt, args.reference)})
    for label, kind, options in RUNS:
        path = track_file(kind, options, frames, fps, tracks_dir / f"{label.replace(' ', '_')}.txt")
        rows.append({"tracker": f"edge-yolo {label}", **evaluate_mot(args.gt, path),
                     "update": update_cost_ms(kind, options, frames, fps, args.repeats)})

    print(f"{args.video.name}: {len(frames)} frames, detector conf {TRACK_CONF}, trackers at the library's defaults")
    print(f"{'tracker':34s} " + " ".join(f"{c:>7s}" for c in COLUMNS) + "  update ms (20 dets) p50/p95")
    for row in rows:
        cells = " ".join(f"{row[c]:7d}" if isinstance(row[c], int) else f"{row[c]:7.3f}" for c in COLUMNS)
        cost = f"  {row['update']['median_ms']:.3f}/{row['update']['p95_ms']:.3f}" if "update" in row else ""
        print(f"{row['tracker']:34s} {cells}{cost}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "video": str(args.video), "gt": str(args.gt), "model": str(args.model), "device": args.device,
        "frames": len(frames), "fps": fps, "detector_conf": TRACK_CONF, "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

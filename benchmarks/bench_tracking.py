"""Tracking accuracy (HOTA, MOTA, IDF1, ID switches) and tracking cost per frame.

Accuracy: the detector runs once over a video at a low confidence; each tracker kind (at
edge-yolo's defaults) then tracks the detections at or above its tracking confidence
(`edge_yolo.tracking.track_conf`: 0.05 for ByteTrack, 0.1 for the others), and its
MOTChallenge output is scored against the ground truth by `edge_yolo.mot_eval`, beside a
reference tracker file (by default Ultralytics 8.4 `yolo track` ByteTrack on the same ONNX
model). Cost: `ObjectTracker.update()` on 20 real detections per frame (the 20 best-scored
boxes of each frame at conf 0.01, with the frame for BoT-SORT's motion compensation), median
over frames and repeats.

    python benchmarks/bench_tracking.py [--video V --gt gt.txt --reference ref.txt --model M]
        [--repeats 5] [--out benchmarks/results/bench_tracking.json]
    python benchmarks/bench_tracking.py --sequences DIR [DIR ...] [--tracker bytetrack:lost_track_buffer=60]
        [--conf C] [--out benchmarks/results/bench_tracking_sequences.json]

Defaults: the fixture in tests/fixtures/track and the shapes ONNX model. With --sequences, each
directory is one MOTChallenge sequence (`video.mp4`, `gt/gt.txt`, and any other tracker's MOT
files as `*.txt` beside them, each scored as a reference named by its stem); it prints a row per
sequence and tracker and the aggregate per tracker (means of the fractions, sums of the counts),
without the update cost. `--tracker KIND:key=value,...` adds a tracker with those options to the
runs (e.g. from benchmarks/make_track_sequence.py's sequences, to check settings on many scenes).
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

from edge_yolo import Detector
from edge_yolo.errors import EdgeYoloError
from edge_yolo.mot_eval import evaluate_mot
from edge_yolo.sinks import MotWriter
from edge_yolo.tracking import TRACKER_KINDS, create_tracker, track_conf

ROOT = Path(__file__).resolve().parents[1]
TRACK = ROOT / "tests" / "fixtures" / "track"
MODEL = ROOT / "tests" / "fixtures" / "shapes" / "yolo12n_shapes.onnx"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "bench_tracking.json"
# (label, kind, options): every kind at edge-yolo's defaults, and BoT-SORT with the library's
# camera-motion compensation (for moving cameras; it is most of BoT-SORT's cost).
Run = tuple[str, str, dict[str, Any]]
RUNS: tuple[Run, ...] = (
    *((kind, kind, {}) for kind in TRACKER_KINDS),
    ("botsort enable_cmc=True", "botsort", {"enable_cmc": True}),
)
COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "CLR_FP", "CLR_FN")


def parse_tracker(spec: str) -> Run:
    """`kind` or `kind:key=value,key=value` -> (label, kind, options); values parsed as numbers or booleans."""
    kind, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"tracker option {item!r} is not key=value")
        options[key.strip()] = json.loads(value.lower()) if value.lower() in ("true", "false") else (
            int(value) if value.lstrip("-").isdigit() else float(value))
    return spec.replace(":", " ").replace(",", " "), kind, options


def detect_all(model: Path, video: Path, device: str) -> tuple[list[Any], float]:
    """(frame, detections at conf 0.01) for every frame, and the video's frame rate."""
    detector = Detector(model, device=device, conf=0.01)
    frames = list(detector.stream(str(video)))
    from edge_yolo.sources import VideoFile

    return frames, VideoFile(video).fps or 30.0


def track_file(kind: str, options: dict[str, Any], frames: list[Any], fps: float, out: Path,
               conf: float | None = None) -> Path:
    """Track the detections at or above `conf` (default: the kind's track_conf) with `kind` into a MOT file."""
    conf = track_conf(kind) if conf is None else conf
    tracker = create_tracker(kind, frame_rate=fps, **options)
    writer = MotWriter(out)
    try:
        for frame, dets in frames:
            writer.write(frame, tracker.update(dets[dets.confidence >= conf], frame.image))
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


def format_row(label: str, row: dict[str, Any], width: int = 34) -> str:
    """One table line: the label, then COLUMNS (fractions with 3 decimals, counts as integers)."""
    cells = " ".join(f"{row[c]:7d}" if isinstance(row[c], int) else f"{row[c]:7.3f}" for c in COLUMNS)
    return f"{label:{width}s} {cells}"


def score_sequence(directory: Path, model: Path, device: str, runs: tuple[Run, ...], conf: float | None,
                   tracks_dir: Path) -> list[dict[str, Any]]:
    """Accuracy rows of one sequence directory: its reference files, then each run."""
    gt = directory / "gt" / "gt.txt"
    frames, fps = detect_all(model, directory / "video.mp4", device)
    rows = [{"tracker": f"reference {ref.stem}", **evaluate_mot(gt, ref)} for ref in sorted(directory.glob("*.txt"))]
    for label, kind, options in runs:
        path = track_file(kind, options, frames, fps, tracks_dir / f"{label.replace(' ', '_')}.txt", conf)
        rows.append({"tracker": f"edge-yolo {label}", **evaluate_mot(gt, path)})
    return rows


def aggregate(per_sequence: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per tracker over the sequences it was scored on: mean of each fraction, sum of each count."""
    by_tracker: dict[str, list[dict[str, Any]]] = {}
    for rows in per_sequence.values():
        for row in rows:
            by_tracker.setdefault(row["tracker"], []).append(row)
    return [{"tracker": name, "sequences": len(rows), **{
        c: sum(r[c] for r in rows) if isinstance(rows[0][c], int) else float(np.mean([r[c] for r in rows]))
        for c in COLUMNS}} for name, rows in by_tracker.items()]


def main_sequences(args: argparse.Namespace, runs: tuple[Run, ...]) -> None:
    """--sequences: score every directory, print per-sequence rows and the aggregate, save JSON."""
    out = args.out if args.out != DEFAULT_OUT else DEFAULT_OUT.with_name("bench_tracking_sequences.json")
    per_sequence = {}
    for directory in args.sequences:
        per_sequence[directory.name] = score_sequence(directory, args.model, args.device, runs, args.conf,
                                                      out.parent / "tracks" / directory.name)
    totals = aggregate(per_sequence)
    width = max(len(row["tracker"]) for row in totals)
    header = f"{'tracker':{width}s} " + " ".join(f"{c:>7s}" for c in COLUMNS)
    print(f"{len(per_sequence)} sequences, detector conf {args.conf or 'per kind'}\n{'sequence':12s} {header}")
    for name, rows in per_sequence.items():
        for row in rows:
            print(f"{name:12s} " + format_row(row["tracker"], row, width))
    print(f"aggregate (mean of fractions, sum of counts)\n{'sequences':>12s} {header}")
    for row in totals:
        print(f"{row['sequences']:12d} " + format_row(row["tracker"], row, width))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "sequences": {str(d): per_sequence[d.name] for d in args.sequences}, "aggregate": totals,
        "model": str(args.model), "device": args.device, "detector_conf": args.conf,
    }, indent=2))
    print(f"saved {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=TRACK / "video.mp4")
    parser.add_argument("--gt", type=Path, default=TRACK / "gt" / "gt.txt")
    parser.add_argument("--reference", type=Path, default=TRACK / "ul_bytetrack_onnx.txt",
                        help="Another tracker's MOT file to score beside ours (default: Ultralytics' ByteTrack).")
    parser.add_argument("--sequences", type=Path, nargs="+",
                        help="Score these MOTChallenge sequence directories instead (accuracy only).")
    parser.add_argument("--tracker", type=parse_tracker, action="append", default=[],
                        help="Also run KIND:key=value,... (repeatable).")
    parser.add_argument("--conf", type=float, default=None,
                        help="Detector confidence fed to every tracker (default: each kind's track_conf).")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    runs = (*RUNS, *args.tracker)
    for _, kind, options in args.tracker:
        try:
            create_tracker(kind, **options)
        except EdgeYoloError as exc:
            parser.error(str(exc))
    missing = [str(d) for d in args.sequences or () if not (d / "video.mp4").is_file() or not (d / "gt" / "gt.txt").is_file()]
    if missing:
        parser.error(f"not a sequence directory (video.mp4 and gt/gt.txt): {', '.join(missing)}")
    if args.sequences:
        main_sequences(args, runs)
        return

    frames, fps = detect_all(args.model, args.video, args.device)
    tracks_dir = args.out.parent / "tracks"
    rows: list[dict[str, Any]] = []
    if args.reference and args.reference.exists():
        rows.append({"tracker": f"reference ({args.reference.name})", **evaluate_mot(args.gt, args.reference)})
    for label, kind, options in runs:
        path = track_file(kind, options, frames, fps, tracks_dir / f"{label.replace(' ', '_')}.txt", args.conf)
        rows.append({"tracker": f"edge-yolo {label}", **evaluate_mot(args.gt, path),
                     "update": update_cost_ms(kind, options, frames, fps, args.repeats)})

    print(f"{args.video.name}: {len(frames)} frames, detector conf {args.conf or 'per kind'}, trackers at edge-yolo's defaults")
    print(f"{'tracker':34s} " + " ".join(f"{c:>7s}" for c in COLUMNS) + "  update ms (20 dets) p50/p95")
    for row in rows:
        cost = f"  {row['update']['median_ms']:.3f}/{row['update']['p95_ms']:.3f}" if "update" in row else ""
        print(format_row(row["tracker"], row) + cost)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "video": str(args.video), "gt": str(args.gt), "model": str(args.model), "device": args.device,
        "frames": len(frames), "fps": fps, "detector_conf": args.conf, "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

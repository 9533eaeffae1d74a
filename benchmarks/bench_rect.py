"""Aspect-aware input: a square 640x640 export against one at the video's aspect (384x640).

`edge-yolo detect` exports a .pt at the first video's aspect (the minimal stride-32
rectangle, as Ultralytics predict runs a .pt); this measures what that gains end to end:
`Detector.stream` (decode, letterbox, async inference, NMS; no drawing or encoding) over the
1280x720 shapes video, per backend, both models in one run, interleaved, medians over
repeats. It also counts the detections of each, which should be close (not identical: the
square input adds padding the network sees).

    python benchmarks/bench_rect.py [--repeats 3] [--out benchmarks/results/bench_rect.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from converters import export_onnx, export_openvino, load_checkpoint
from edge_yolo import Detector

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "tests" / "fixtures" / "shapes"
VIDEO = SHAPES / "data" / "video.mp4"


def run_stream(model: Path, device: str) -> tuple[float, int, int]:
    """(frames/s, frames, detections) of one pass over the video."""
    detector = Detector(model, device=device)
    frames = boxes = 0
    start = time.perf_counter()
    for _, dets in detector.stream(VIDEO):
        frames += 1
        boxes += len(dets)
    elapsed = time.perf_counter() - start
    detector.close()
    return frames / elapsed, frames, boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_rect.json")
    args = parser.parse_args()
    loaded = load_checkpoint(SHAPES / "yolo12n_shapes.pt")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for size in ((640, 640), (384, 640)):
            tag = f"{size[0]}x{size[1]}"
            models[("openvino", tag)] = export_openvino(loaded, output=Path(tmp) / f"m{tag}_openvino_model", imgsz=size)
            models[("cpu", tag)] = export_onnx(loaded, output=Path(tmp) / f"m{tag}.onnx", imgsz=size)
        for device in ("openvino", "cpu"):
            fps: dict[str, list[float]] = {"640x640": [], "384x640": []}
            counts = {}
            for _ in range(args.repeats):
                for tag in fps:
                    rate, frames, boxes = run_stream(models[(device, tag)], device)
                    fps[tag].append(rate)
                    counts[tag] = (frames, boxes)
            square, rect = statistics.median(fps["640x640"]), statistics.median(fps["384x640"])
            ratios = [r / s for r, s in zip(fps["384x640"], fps["640x640"])]
            results.append({"device": device, "fps_640x640": square, "fps_384x640": rect,
                            "speedup_median_of_ratios": statistics.median(ratios), "runs": fps,
                            "frames": counts["640x640"][0],
                            "detections": {tag: c[1] for tag, c in counts.items()}})
    print(f"{'device':<10}{'640x640 fps':>13}{'384x640 fps':>13}{'speed-up':>10}{'detections sq/rect':>20}")
    for r in results:
        print(f"{r['device']:<10}{r['fps_640x640']:>13.1f}{r['fps_384x640']:>13.1f}{r['speedup_median_of_ratios']:>9.2f}x"
              f"{r['detections']['640x640']:>12}/{r['detections']['384x640']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "video": str(VIDEO),
                                    "repeats": args.repeats, "results": results}, indent=2))
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()

"""Detect objects in a video with the streaming API and write one JSON line per frame.

    python examples/detect_video.py                       # bundled model and video
    python examples/detect_video.py my.mp4 --model best.onnx --output dets.jsonl --max-frames 100

A .pt model is exported to ONNX next to it on first use (needs the `export` extra).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_yolo import Detector

ASSETS = Path(__file__).resolve().parent / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", default=str(ASSETS / "video.mp4"))
    parser.add_argument("--model", default=str(ASSETS / "yolo12n_shapes.pt"))
    parser.add_argument("--output", default="detections.jsonl")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    args = parser.parse_args()

    detector = Detector(args.model, conf=0.25)
    print(f"running on {detector.backend_info.describe()}")
    frames = 0
    with open(args.output, "w") as out:
        # stream() decodes, infers and post-processes in background threads; results arrive
        # in frame order. `frame` has .image (BGR), .index, .time (s) and .source.
        for frame, detections in detector.stream(args.video):
            record = {"frame": frame.index, "time": round(frame.time, 3), **detections.to_dict()}
            out.write(json.dumps(record) + "\n")
            frames += 1
            if args.max_frames and frames >= args.max_frames:
                break  # leaving the loop stops the pipeline's threads cleanly
    print(f"{frames} frames -> {args.output}")


if __name__ == "__main__":
    main()

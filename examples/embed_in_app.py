"""Embed edge-yolo in an application loop: a camera (or stream) in, detections out.

    python examples/embed_in_app.py                     # webcam 0, or the bundled video if there is none
    python examples/embed_in_app.py --source rtsp://camera/stream --device openvino --max-frames 500

The backend is chosen at run time (--device auto: TensorRT → CUDA → OpenVINO → ONNX Runtime
CPU, whichever really works here). Each frame's detections go to `handle()`, the place where
an application would raise an alert, count objects or publish a message.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2

from edge_yolo import Detections, Detector
from edge_yolo.sources import Frame

ASSETS = Path(__file__).resolve().parent / "assets"


def camera_or_fallback(source: str) -> str:
    """The requested camera index if it delivers frames, else the bundled video."""
    if not source.isdigit():
        return source
    cap = cv2.VideoCapture(int(source))
    ok = cap.isOpened() and cap.read()[0]
    cap.release()
    if ok:
        return source
    print(f"no camera {source} here; using the bundled video instead")
    return str(ASSETS / "video.mp4")


def handle(frame: Frame, detections: Detections, counts: dict[str, int]) -> None:
    """Application logic: here, count objects per class and report frames with a triangle."""
    for name in detections.class_names:
        counts[name] = counts.get(name, 0) + 1
    if "triangle" in detections.class_names:
        print(f"[{frame.source} t={frame.time:6.2f}s] triangle x{detections.class_names.count('triangle')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="0", help="camera index, stream URL or video file")
    parser.add_argument("--model", default=str(ASSETS / "yolo12n_shapes.pt"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args()

    detector = Detector(args.model, device=args.device, conf=0.4)
    print(f"backend: {detector.backend_info.describe()}")
    counts: dict[str, int] = {}
    frames, start = 0, time.perf_counter()
    try:
        for frame, detections in detector.stream(camera_or_fallback(args.source)):
            handle(frame, detections, counts)
            frames += 1
            if args.max_frames and frames >= args.max_frames:
                break
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the loop; the pipeline's threads stop on the way out
    finally:
        detector.close()
    rate = frames / (time.perf_counter() - start)
    print(f"{frames} frames at {rate:.1f} frames/s; objects seen: {counts}")


if __name__ == "__main__":
    main()

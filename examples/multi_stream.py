"""Run several videos, cameras or streams through one detector at once; one JSON-lines file each.

    python examples/multi_stream.py                        # the bundled video as two streams
    python examples/multi_stream.py a.mp4 rtsp://host/live 0 --model best.onnx --output-dir dets

All sources share the detector's inference calls; each source's frames come back in their
own order, and a camera that stalls or drops does not hold up the others.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import IO

from edge_yolo import Detector
from edge_yolo.sources import Source

ASSETS = Path(__file__).resolve().parent / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", default=[str(ASSETS / "video.mp4")] * 2)
    parser.add_argument("--model", default=str(ASSETS / "yolo12n_shapes.pt"))
    parser.add_argument("--output-dir", default="detections")
    parser.add_argument("--vid-stride", type=int, default=1, help="process every N-th frame")
    args = parser.parse_args()

    detector = Detector(args.model)
    print(f"running on {detector.backend_info.describe()}")
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, IO[str]] = {}
    counts: dict[str, int] = {}

    def finished(source: Source) -> None:  # called once a source's last frame has come out
        if source.name in files:
            files.pop(source.name).close()
        print(f"{source.name}: {counts.get(source.name, 0)} frames -> {out_dir / source.name}.jsonl")

    # Names are made unique (video, video_2, ...); frame.source says which source a frame is from.
    try:
        for frame, detections in detector.stream(args.sources, vid_stride=args.vid_stride, on_source_end=finished):
            if frame.source not in files:
                files[frame.source] = open(out_dir / f"{frame.source}.jsonl", "w")
            record = {"frame": frame.index, "time": round(frame.time, 3), **detections.to_dict()}
            files[frame.source].write(json.dumps(record) + "\n")
            counts[frame.source] = counts.get(frame.source, 0) + 1
    finally:  # an interrupted run keeps every line written so far
        for f in files.values():
            f.close()


if __name__ == "__main__":
    main()

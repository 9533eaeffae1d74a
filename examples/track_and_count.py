"""Track objects in a video or stream and count them crossing a line and inside a zone.

    python examples/track_and_count.py                      # the bundled video
    python examples/track_and_count.py cam.mp4 --model best.onnx --tracker botsort \
        --line 0,360,1280,360 --zone 100,100,700,100,700,600,100,600

Prints the tracks and the zone's occupancy once a second of video, then the crossings and
entries per class. The detector runs at the tracker's own confidence threshold (0.05 for
ByteTrack, 0.1 for the others), as `edge-yolo track` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_yolo import Detector
from edge_yolo.counting import LineCounter, ZoneCounter
from edge_yolo.errors import EdgeYoloError
from edge_yolo.tracking import TRACKER_KINDS

ASSETS = Path(__file__).resolve().parent / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=str(ASSETS / "video.mp4"))
    parser.add_argument("--model", default=str(ASSETS / "yolo12n_shapes.pt"))
    parser.add_argument("--tracker", choices=TRACKER_KINDS, default="bytetrack")
    parser.add_argument("--line", default="0,360,1280,360", help="x1,y1,x2,y2 of the counting line")
    parser.add_argument("--zone", default="0,0,640,0,640,720,0,720", help="x1,y1,x2,y2,x3,y3,... of the zone")
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args()

    try:
        line, zone = LineCounter.from_text(args.line), ZoneCounter.from_text(args.zone)
        detector = Detector(args.model)
        print(f"running on {detector.backend_info.describe()}, tracker {args.tracker}")
        track_ids: set[int] = set()
        frames = 0
        for frame, detections in detector.track(args.source, tracker=args.tracker):
            line.update(detections)
            zone.update(detections)
            track_ids.update(detections.tracker_id.tolist())
            frames += 1
            if frame.index % 25 == 0:
                tracks = ", ".join(f"#{i} {detections.names[c]}"
                                   for i, c in zip(detections.tracker_id, detections.class_id))
                print(f"frame {frame.index:4d}: {tracks or 'no tracks'}; in the zone {zone.counts()['inside']}")
            if args.max_frames is not None and frames >= args.max_frames:
                break
    except EdgeYoloError as exc:  # a missing file, bad model or bad geometry: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
    crossings = line.counts()
    print(f"{frames} frames, {len(track_ids)} tracks")
    print(f"line {args.line}: in {crossings['in']}, out {crossings['out']}")
    print(f"zone entries: {zone.counts()['entries']}")


if __name__ == "__main__":
    main()

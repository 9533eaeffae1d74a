"""Many streams through one pipeline: aggregate frames/s and peak memory for 1 and N copies of
a 1280x720 video, against the raw backend's throughput.

The raw figure is the backend's async queue in throughput mode on frames decoded and letterboxed
beforehand (no decode, no pre/post-processing), as `edge-yolo benchmark` measures it. Each stream
configuration runs `Detector.stream` over N copies of the video in a fresh process (results
consumed, nothing written), so its peak RSS (sampled every 20 ms, children included) is its own.
The same pipeline also runs on the video's frames decoded beforehand ("pre-decoded"): that row is
the pipeline's own cost (letterbox, scheduling, post-processing) without the video decoding, which
the raw figure does not do either. The "video, bare loop" row is the least any pipeline fed by
these videos does: one thread per copy decodes, letterboxes and submits straight into the
backend's queue, whose own thread post-processes the results, with no scheduling, per-source order
or hand-off to the caller; the gap between it and raw is the decoding and letterboxing alone.
Reports aggregate frames/s (all streams' frames over the wall time), its ratio to raw (the
median's, and the range of each repeat against that repeat's raw run), process CPU time per frame
(raw's over ours: how much of the CPU the pipeline's decode, pre/post-processing and scheduling
add, a figure other processes on a shared machine disturb less than wall time), and how much peak
RSS grows per extra stream. Runs are interleaved and repeated (medians), because this machine is
shared.

    python benchmarks/bench_multistream.py [--model M] [--device openvino] [--streams 1,4] [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_video import run_process  # noqa: E402 - sibling script

ROOT = Path(__file__).resolve().parents[1]

# Both children compile the throughput-mode model before the clock starts and report wall
# frames/s and process CPU time per frame (all threads), the latter less sensitive to other
# processes sharing the CPU.
SETUP = """
import json, sys, time
from edge_yolo.detector import Detector
model, device, video, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
detector = Detector(model, device=device, backend_options={"spinning": False})
detector.backend.async_queue(lambda out, userdata: None)
"""
PIPE_RUN = """
cpu = time.process_time()
for _frame, _detections in pipe:
    pass
cpu = time.process_time() - cpu
stats = pipe.stats.to_dict()
print(json.dumps({**stats, "cpu_ms_per_frame": 1e3 * cpu / stats["frames"]}))
"""
RAW_RUN = SETUP + """
from edge_yolo.commands.benchmark import read_frames, inputs_throughput
from pathlib import Path
inputs = [detector.preprocess([frame])[0] for frame in read_frames(Path(video), 150)]
cpu = time.process_time()  # the backend's own CPU only: the letterboxing above is not counted
fps = inputs_throughput(detector, inputs, repeats=1)[0]
cpu = time.process_time() - cpu
print(json.dumps({"fps": fps, "cpu_ms_per_frame": 1e3 * cpu / (len(inputs) + 4),
                  "backend": detector.backend_info.describe()}))
"""
STREAM_RUN = SETUP + """
from edge_yolo.pipeline import Pipeline
from edge_yolo.sources import VideoFile
pipe = Pipeline(detector, [VideoFile(video) for _ in range(n)])
""" + PIPE_RUN
PREDECODED_RUN = SETUP + """
from pathlib import Path
from edge_yolo.commands.benchmark import read_frames
from edge_yolo.pipeline import Pipeline
from edge_yolo.sources import Frame, Source
images = read_frames(Path(video), 150)

class Replay(Source):
    kind = "video"

    def __init__(self, k):
        self.name = f"copy{k}"

    def __len__(self):
        return len(images)

    def __iter__(self):
        for i, image in enumerate(images):
            yield Frame(image, i, i / 25, self.name, None, self.source_index)

pipe = Pipeline(detector, [Replay(k) for k in range(n)])
""" + PIPE_RUN
BARE_RUN = SETUP + """
import threading
from edge_yolo.sources import VideoFile
done = []
queue = detector.backend.async_queue(lambda out, metas: done.append(detector.postprocess(out, metas)))

def read(source):
    for frame in source:
        inputs, metas = detector.preprocess([frame.image])
        queue.submit(inputs, metas)

sources = [VideoFile(video) for _ in range(n)]
for source in sources:
    source.share_cpu(n)
threads = [threading.Thread(target=read, args=(source,)) for source in sources]
cpu, t0 = time.process_time(), time.perf_counter()
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
queue.wait_all()
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
print(json.dumps({"frames": len(done), "fps": len(done) / wall, "cpu_ms_per_frame": 1e3 * cpu / len(done),
                  "stages": {}}))
"""
KINDS = {"video": STREAM_RUN, "video, bare loop": BARE_RUN, "pre-decoded": PREDECODED_RUN}


def child(code: str, model: str, video: str, device: str, streams: int) -> dict[str, Any]:
    res = run_process([sys.executable, "-c", code, model, device, video, str(streams)])
    return {**json.loads(res["stdout"].strip().splitlines()[-1]), "peak_rss_mib": res["peak_rss_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "tests/fixtures/shapes/yolo12n_shapes.onnx"))
    parser.add_argument("--video", default=str(ROOT / "examples/assets/video.mp4"))
    parser.add_argument("--device", default="openvino")
    parser.add_argument("--streams", default="1,4", help="comma-separated stream counts; the first is the baseline")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/bench_multistream.json"))
    args = parser.parse_args()

    counts = [int(n) for n in args.streams.split(",")]
    configs = [(kind, n) for kind in KINDS for n in counts]
    raw: list[dict[str, Any]] = []
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {c: [] for c in configs}
    backend = ""
    for _ in range(args.repeats):
        r = child(RAW_RUN, args.model, args.video, args.device, 1)
        raw.append(r)
        backend = r["backend"]
        for kind, n in configs:
            runs[kind, n].append(child(KINDS[kind], args.model, args.video, args.device, n))
    raw_fps = statistics.median(r["fps"] for r in raw)
    raw_cpu = statistics.median(r["cpu_ms_per_frame"] for r in raw)
    base = counts[0]
    rows = []
    for kind, n in configs:
        fps = statistics.median(r["fps"] for r in runs[kind, n])
        rss = statistics.median(r["peak_rss_mib"] for r in runs[kind, n])
        base_rss = statistics.median(r["peak_rss_mib"] for r in runs[kind, base])
        cpu = statistics.median(r["cpu_ms_per_frame"] for r in runs[kind, n])
        # each repeat against the raw run just before it (same machine state)
        ratios = [r["fps"] / q["fps"] for r, q in zip(runs[kind, n], raw)]
        rows.append({
            "frames_from": kind, "streams": n, "aggregate_fps": fps, "ratio_to_raw": fps / raw_fps,
            "fps_runs": [r["fps"] for r in runs[kind, n]], "ratio_runs": ratios,
            "per_stream_fps": fps / n, "cpu_ms_per_frame": cpu, "cpu_ratio_raw_to_pipeline": raw_cpu / cpu,
            "peak_rss_mib": rss, "rss_per_extra_stream_mib": (rss - base_rss) / (n - base) if n != base else None,
            "frames": runs[kind, n][-1]["frames"], "stages_last_run": runs[kind, n][-1]["stages"],
        })
    results = {"model": args.model, "video": args.video, "device": args.device, "backend": backend,
               "repeats": args.repeats, "raw_fps": raw_fps, "raw_cpu_ms_per_frame": raw_cpu, "raw_runs": raw,
               "rows": rows}

    print(f"raw backend throughput: {raw_fps:.1f} frames/s, {raw_cpu:.1f} CPU ms/frame ({backend})")
    print(f"{'frames':<18}{'streams':>7}{'agg fps':>9}{'ratio':>7}{'range':>11}{'per stream':>12}{'CPU ms/f':>10}"
          f"{'raw/ours':>9}{'peak RSS':>10}{'+RSS/stream':>13}")
    for r in rows:
        extra = "" if r["rss_per_extra_stream_mib"] is None else f"{r['rss_per_extra_stream_mib']:.1f} MiB"
        spread = f"{min(r['ratio_runs']):.2f}-{max(r['ratio_runs']):.2f}"
        print(f"{r['frames_from']:<18}{r['streams']:>7}{r['aggregate_fps']:>9.1f}{r['ratio_to_raw']:>7.2f}{spread:>11}"
              f"{r['per_stream_fps']:>12.1f}{r['cpu_ms_per_frame']:>10.1f}{r['cpu_ratio_raw_to_pipeline']:>9.2f}"
              f"{r['peak_rss_mib']:>6.0f} MiB{extra:>13}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()

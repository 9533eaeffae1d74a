"""Detection through Triton Inference Server against local ONNX Runtime, 1/4/8 concurrent streams.

The checkpoint is exported as a Triton repository (onnxruntime config, CPU instance, dynamic
batching up to 8) and served by the tritonserver that nvidia-pytriton bundles (its Python
backend running the same model.onnx on ONNX Runtime CPU; see tests/triton_harness.py). Each
stream is a thread calling `Detector(frame)` frame after frame on real frames of the bundled
video, as a camera loop would; all streams share one Detector. Local: the same model.onnx on
ONNX Runtime CPU in this process. Reported: end-to-end latency per frame p50/p95 (letterbox,
request, NMS), total frames/s, and for Triton the mean batch its dynamic batcher formed
(inference count / execution count from the server's statistics). Both run on the same CPU here, so this measures what the
client/server hop and Triton's batching cost or gain, not what a GPU server adds.

    python benchmarks/bench_triton.py [--frames 48] [--imgsz 640] [--out benchmarks/results/bench_triton.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from edge_yolo import Detector  # noqa: E402
from triton_harness import TritonServer  # noqa: E402

STREAMS = (1, 4, 8)


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def run_streams(detector: Detector, frames: list[np.ndarray], streams: int, per_stream: int) -> dict[str, Any]:
    """`streams` threads, each detecting `per_stream` frames one after another."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(streams + 1)

    def worker(offset: int) -> None:
        mine = []
        start.wait()
        for i in range(per_stream):
            t0 = time.perf_counter()
            detector(frames[(offset + i) % len(frames)])
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(s * 7,)) for s in range(streams)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ms = sorted(x * 1000 for x in latencies)
    return {"streams": streams, "frames": len(ms), "p50_ms": statistics.median(ms),
            "p95_ms": ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))], "fps": len(ms) / wall}


def batches_executed(server: TritonServer, model: str) -> tuple[int, int]:
    """(inferences, executions) the server counted for `model`: their ratio is the mean batch size
    its dynamic batcher formed."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    client.close()
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "examples" / "assets" / "yolo12n_shapes.pt")
    parser.add_argument("--video", type=Path, default=ROOT / "examples" / "assets" / "video.mp4")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--frames", type=int, default=48, help="frames per configuration (split over the streams)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_triton.json")
    args = parser.parse_args()
    from converters.export_triton import export_triton

    frames = read_frames(args.video, 32)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "model_repository"
        model_dir = export_triton(args.checkpoint, output=repo, name="yolo", imgsz=args.imgsz, instance_kind="cpu")
        rows: list[dict[str, Any]] = []
        with TritonServer(repo, Path(tmp) / "server") as server:
            detectors = {"local onnxruntime": Detector(model_dir / "1" / "model.onnx", device="cpu"),
                         "triton grpc": Detector(server.grpc_url("yolo")),
                         "triton http": Detector(server.http_url("yolo"))}
            for name, detector in detectors.items():
                for _ in range(3):
                    detector(frames[0])  # warm-up (sessions, connections)
                for streams in STREAMS:
                    before = batches_executed(server, "yolo")
                    row = {"mode": name, **run_streams(detector, frames, streams, max(2, args.frames // streams))}
                    if name.startswith("triton"):
                        after = batches_executed(server, "yolo")
                        row["server_mean_batch"] = (after[0] - before[0]) / max(1, after[1] - before[1])
                    rows.append(row)
                    batch = f"  server batch {row['server_mean_batch']:.2f}" if "server_mean_batch" in row else ""
                    print(f"{name:18s} {streams} streams: p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms"
                          f"  {row['fps']:5.1f} frames/s{batch}", flush=True)
            timings = {"server_start_s": server.start_s}
        timings["server_stop_s"] = server.stop_s
    header = f"{'mode':18s} | streams | p50 ms | p95 ms | frames/s | server mean batch"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        batch = f"{r['server_mean_batch']:.2f}" if "server_mean_batch" in r else "-"
        print(f"{r['mode']:18s} | {r['streams']:7d} | {r['p50_ms']:6.1f} | {r['p95_ms']:6.1f} | {r['fps']:8.1f} | {batch}")
    print(f"server start {timings['server_start_s']:.1f} s, stop {timings['server_stop_s']:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"imgsz": args.imgsz, "frame": list(frames[0].shape), "rows": rows, **timings,
                                    "machine": platform.processor() or platform.machine()}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

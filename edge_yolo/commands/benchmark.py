"""`edge-yolo benchmark`: latency and throughput of a model on every backend available here.

Measured on real decoded video frames (never random tensors: real activations contain
denormals that change CPU speed). Per backend and precision: end-to-end single-frame latency
(letterbox + inference + NMS, LATENCY mode) p50/p95, the raw inference part of it, and
throughput in frames/s with the backend's async queue (THROUGHPUT mode, inputs prepared
beforehand, so it is the backend's own ceiling).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from edge_yolo.errors import SourceError

BUNDLED_VIDEO = Path(__file__).resolve().parents[2] / "examples" / "assets" / "video.mp4"


def read_frames(source: Path, count: int) -> list[np.ndarray]:
    """The first `count` frames of a video (or the images of a directory/glob)."""
    from edge_yolo.sources import resolve_sources

    frames: list[np.ndarray] = []
    for src in resolve_sources(str(source)):
        try:
            for frame in src:
                frames.append(frame.image)
                if len(frames) >= count:
                    return frames
        finally:
            src.close()
    if not frames:
        raise SourceError(f"no frames could be read from {source}")
    return frames


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q))


def measure_latency(detector: Any, frames: list[np.ndarray], warmup: int = 3) -> dict[str, float]:
    """Single-frame end-to-end and inference-only latency (ms, p50/p95) over `frames`."""
    for frame in frames[:warmup]:
        detector(frame)
    total, infer = [], []
    for frame in frames:
        t0 = time.perf_counter()
        inputs, metas = detector.preprocess([frame])
        t1 = time.perf_counter()
        out = detector.backend.infer(inputs)
        t2 = time.perf_counter()
        detector.postprocess(out, metas)
        t3 = time.perf_counter()
        total.append(t3 - t0)
        infer.append(t2 - t1)
    return {
        "latency_p50_ms": percentile_ms(total, 50), "latency_p95_ms": percentile_ms(total, 95),
        "infer_p50_ms": percentile_ms(infer, 50), "infer_p95_ms": percentile_ms(infer, 95),
    }


def measure_throughput(detector: Any, frames: list[np.ndarray], jobs: int | None = None,
                       repeats: int = 3) -> float:
    """Raw backend frames/s through its async queue on pre-letterboxed `frames` (median of repeats)."""
    inputs = [detector.preprocess([f])[0] for f in frames]
    done = []

    def callback(_out: np.ndarray, _userdata: Any) -> None:
        done.append(1)

    queue = detector.backend.async_queue(callback, jobs)
    for x in inputs[: min(len(inputs), 4)]:  # warm the THROUGHPUT compilation and its requests
        queue.submit(x, None)
    queue.wait_all()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for x in inputs:
            queue.submit(x, None)
        queue.wait_all()
        rates.append(len(inputs) / (time.perf_counter() - t0))
    return float(statistics.median(rates))


def configurations(model: Path, device: str | None) -> list[tuple[str, str]]:
    """(device, precision) pairs to run: the given device, or every backend available here."""
    if device:
        return [(device, "auto")]
    from edge_yolo.backends.onnxruntime import available_providers
    from edge_yolo.backends.openvino import available_devices

    providers = available_providers()
    is_onnx = model.suffix.lower() in (".onnx", ".pt")
    out: list[tuple[str, str]] = []
    if is_onnx and "TensorrtExecutionProvider" in providers:
        out += [("tensorrt", "f16"), ("tensorrt", "f32")]
    if is_onnx and "CUDAExecutionProvider" in providers:
        out.append(("cuda", "auto"))
    for ov_device in available_devices():
        out += [(f"openvino:{ov_device}", "auto"), (f"openvino:{ov_device}", "f32")]
    if is_onnx and "CPUExecutionProvider" in providers:
        out.append(("cpu", "auto"))
    return out


def run_benchmark(model: Path, device: str | None, source: Path, frames: int) -> list[dict[str, Any]]:
    """One result row per (device, precision)."""
    from edge_yolo.detector import Detector
    from edge_yolo.errors import EdgeYoloError

    images = read_frames(source, frames)
    rows = []
    for dev, precision in configurations(model, device):
        row: dict[str, Any] = {"device": dev, "precision": precision}
        try:
            detector = Detector(model, device=dev, precision=precision)
        except EdgeYoloError as exc:
            if device:
                raise
            row["error"] = str(exc)
            rows.append(row)
            continue
        try:
            info = detector.backend_info
            row.update({"backend": info.backend, "runs_on": info.device, "precision": info.precision})
            row.update(measure_latency(detector, images))
            row["throughput_fps"] = measure_throughput(detector, images)
        finally:
            detector.close()
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'device':<16}{'precision':<10}{'latency p50':>12}{'p95':>8}{'infer p50':>11}{'throughput':>12}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['device']:<16}{r['precision']:<10}  unavailable: {r['error']}")
            continue
        lines.append(f"{r['device']:<16}{r['precision']:<10}{r['latency_p50_ms']:>9.1f} ms{r['latency_p95_ms']:>8.1f}"
                     f"{r['infer_p50_ms']:>8.1f} ms{r['throughput_fps']:>7.1f} fps")
    return "\n".join(lines)


@click.command(short_help="Latency and throughput of a model on every available backend.")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--device", default=None, help="Only this device (default: every backend available here).")
@click.option("--source", type=click.Path(path_type=Path), default=None,
              help="Video (or images) to take real frames from. Default: the bundled example video.")
@click.option("--frames", type=click.IntRange(5), default=60, show_default=True, help="Frames to measure on.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Also write the results here.")
def command(model: Path, device: str | None, source: Path | None, frames: int, json_path: Path | None) -> None:
    """Measure MODEL's latency (p50/p95) and throughput per backend and precision on real frames."""
    if source is None:
        if not BUNDLED_VIDEO.is_file():
            raise SourceError("the bundled example video is not here (installed without the repository); pass --source VIDEO")
        source = BUNDLED_VIDEO
    rows = run_benchmark(model, device, source, frames)
    click.echo(format_table(rows))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"model": str(model), "source": str(source), "frames": frames,
                                         "results": rows}, indent=2))
        click.echo(f"results written to {json_path}")

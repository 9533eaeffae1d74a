"""`edge-yolo benchmark`: size, accuracy, latency and throughput of a model per format,
backend and precision.

Measured on real frames (never random tensors: real activations contain denormals that
change CPU speed): --source, else the --data images, else a short sample video shipped with
the package. Per row: file size, mAP50-95 through `val` (with --data), end-to-end
single-frame latency (letterbox + inference + NMS, LATENCY mode) p50/p95, the raw inference
part of it, and throughput in frames/s with the backend's async queue (THROUGHPUT mode,
inputs prepared beforehand, so it is the backend's own ceiling). A .pt is also exported to
each requested format first, so one command compares them all, like `yolo benchmark`. A
Triton model URL gets one row, measured as served (no file, so no size), with its requests
in flight to the server.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from edge_yolo.backends.triton import is_triton_url
from edge_yolo.errors import EdgeYoloError, SourceError

SAMPLE_VIDEO = Path(__file__).resolve().parents[1] / "assets" / "sample.mp4"   # 60 frames, 640x360
PT_FORMATS = ("pytorch", "onnx", "openvino", "openvino-int8")


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
    return throughput_in_flight(detector, frames, jobs, repeats)[0]


def throughput_in_flight(detector: Any, frames: list[np.ndarray], jobs: int | None = None,
                         repeats: int = 3) -> tuple[float, int]:
    """measure_throughput's frames/s and the requests in flight it ran with (`jobs`, or the
    backend's own number when None)."""
    return inputs_throughput(detector, [detector.preprocess([f])[0] for f in frames], jobs, repeats)


def inputs_throughput(detector: Any, inputs: list[np.ndarray], jobs: int | None = None,
                      repeats: int = 3) -> tuple[float, int]:
    """throughput_in_flight on backend inputs letterboxed beforehand (`detector.preprocess`)."""
    queue = detector.backend.async_queue(lambda _out, _userdata: None, jobs)
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
    return float(statistics.median(rates)), int(queue.jobs)


def configurations(model: str | Path, device: str | None) -> list[tuple[str, str]]:
    """(device, precision) pairs to run: the given device, or every backend available here
    (a Triton model: the server)."""
    if is_triton_url(model):
        return [(device or "triton", "auto")]
    model = Path(model)
    if model.suffix.lower() == ".pt":
        return [("torch", "auto")]      # its exports get their own rows
    if device:
        return [(device, "auto")]
    from edge_yolo.backends.onnxruntime import available_providers
    from edge_yolo.backends.openvino import available_devices

    providers = available_providers()
    is_onnx = model.suffix.lower() == ".onnx"
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


def file_size_mb(path: str | Path) -> float | None:
    """Size of a model file, or of every file of an OpenVINO IR directory (or the .xml's .bin);
    None for a Triton model URL."""
    if is_triton_url(path):
        return None
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 2**20
    extra = path.with_suffix(".bin").stat().st_size if path.suffix.lower() == ".xml" else 0
    return (path.stat().st_size + extra) / 2**20


def model_format(path: str | Path) -> str:
    if is_triton_url(path):
        return "triton"
    suffix = Path(path).suffix.lower()
    return {".pt": "pytorch", ".onnx": "onnx"}.get(suffix, "openvino")


def export_variants(checkpoint: Path, formats: list[str], out_dir: Path, data: str | None) -> list[tuple[str, Path]]:
    """(format label, model path) for the .pt itself and its exports (made in out_dir)."""
    from converters import export_onnx, export_openvino, load_checkpoint

    loaded = load_checkpoint(checkpoint)
    out: list[tuple[str, Path]] = []
    for fmt in formats:
        click.echo(f"benchmark: preparing {fmt}", err=True)
        if fmt == "pytorch":
            out.append((fmt, checkpoint))
        elif fmt == "onnx":
            out.append((fmt, Path(export_onnx(loaded, output=out_dir / f"{checkpoint.stem}.onnx"))))
        elif fmt == "openvino":
            out.append((fmt, Path(export_openvino(loaded, output=out_dir / f"{checkpoint.stem}_openvino_model"))))
        elif fmt == "openvino-int8":
            if data is None:
                raise EdgeYoloError("openvino-int8 needs calibration images: pass --data")
            out.append((fmt, Path(export_openvino(loaded, output=out_dir / f"{checkpoint.stem}_int8_openvino_model",
                                                  int8=True, data=data))))
    return out


def run_benchmark(model: str | Path, device: str | None, images: list[np.ndarray], dataset: Any = None,
                  label: str | None = None, jobs: int | None = None) -> list[dict[str, Any]]:
    """One result row per (device, precision) of one model file or Triton URL; mAP50-95 when
    `dataset` is given; throughput with `jobs` requests in flight (None: the backend's own number)."""
    from edge_yolo.detector import Detector
    from edge_yolo.evaluate import validate

    rows = []
    for dev, precision in configurations(model, device):
        size = file_size_mb(model)
        row: dict[str, Any] = {"format": label or model_format(model), "model": str(model),
                               "size_mb": None if size is None else round(size, 2), "device": dev,
                               "precision": precision}
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
            row["throughput_fps"], row["in_flight"] = throughput_in_flight(detector, images, jobs)
        finally:
            detector.close()
        if dataset is not None:
            # at the size latency was measured at (a static export's own, or the .pt's training imgsz)
            metrics, _ = validate(model, dataset, device=dev, precision=precision, imgsz=tuple(detector.imgsz))
            row["map50_95"], row["map50"] = metrics.map50_95, metrics.map50
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'format':<15}{'device':<14}{'precision':<11}{'size MB':>8}{'mAP50-95':>10}{'latency p50':>13}"
            f"{'p95':>8}{'infer p50':>11}{'throughput':>12}{'in flight':>11}")
    lines = [head, "-" * len(head)]
    for r in rows:
        size = "-" if r["size_mb"] is None else f"{r['size_mb']:.1f}"
        start = f"{r['format']:<15}{r['device']:<14}{r['precision']:<11}{size:>8}"
        if "error" in r:
            lines.append(f"{start}  unavailable: {r['error']}")
            continue
        map_text = f"{r['map50_95']:.4f}" if "map50_95" in r else "-"
        lines.append(f"{start}{map_text:>10}{r['latency_p50_ms']:>10.1f} ms{r['latency_p95_ms']:>8.1f}"
                     f"{r['infer_p50_ms']:>8.1f} ms{r['throughput_fps']:>8.1f} fps{r['in_flight']:>11}")
    return "\n".join(lines)


def _frames(source: Path | None, dataset: Any, count: int) -> tuple[str, list[np.ndarray]]:
    """(what the frames are, the frames): --source, else the dataset's images, else the sample video."""
    if source is not None:
        return str(source), read_frames(source, count)
    if dataset is not None:
        from edge_yolo.preprocess import read_image

        return f"images of {dataset.source}", [read_image(im.path) for im in dataset.images[:count]]
    if not SAMPLE_VIDEO.is_file():
        raise SourceError(f"the sample video {SAMPLE_VIDEO} is missing from this install; pass --source VIDEO")
    return str(SAMPLE_VIDEO), read_frames(SAMPLE_VIDEO, count)


@click.command(short_help="Size, mAP, latency and throughput of a model per format, backend and precision.")
@click.argument("model")
@click.option("--data", default=None, help="A YOLO data.yaml or dataset directory: adds mAP50-95 (through val) "
              "and, without --source, its images are the frames.")
@click.option("--split", default="val", show_default=True, help="Dataset split for --data.")
@click.option("--device", default=None,
              help="Only this device: auto, cpu, openvino[:CPU|GPU|NPU|AUTO], cuda[:N], tensorrt[:N], triton "
                   "(default: every backend available here; a Triton URL: triton).")
@click.option("--formats", default="pytorch,onnx,openvino", show_default=True,
              help=f"For a .pt: the formats to export and compare, from {', '.join(PT_FORMATS)} "
                   "(an error with a Triton URL, which is measured as served).")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where a .pt's exports go (default runs/benchmark/<n>).")
@click.option("--source", type=click.Path(path_type=Path), default=None,
              help="Video (or images) to take real frames from. Default: the --data images, else a 60-frame "
                   "640x360 sample video shipped with edge-yolo.")
@click.option("--frames", type=click.IntRange(5), default=60, show_default=True, help="Frames to measure on.")
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Requests in flight for the throughput  [default: the backend's own: 1 on ONNX Runtime CPU, "
                   "twice OpenVINO's optimal number, 4 for Triton]")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Also write the results here.")
def command(model: str, data: str | None, split: str, device: str | None, formats: str, output: Path | None,
            source: Path | None, frames: int, jobs: int | None, json_path: Path | None) -> None:
    """Measure MODEL (.pt, .onnx, OpenVINO IR, or a Triton URL grpc://host:8001/NAME or
    http://host:8000/NAME) per format, backend and precision on real frames: file size,
    mAP50-95 with --data, latency p50/p95 and throughput."""
    from click.core import ParameterSource

    from edge_yolo.modelinfo import read_model_info

    from .options import require_model

    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    if unknown := [f for f in wanted if f not in PT_FORMATS]:
        raise EdgeYoloError(f"unknown format {unknown[0]!r} in --formats; choose from {', '.join(PT_FORMATS)}")
    url = is_triton_url(model)
    if url and click.get_current_context().get_parameter_source("formats") is ParameterSource.COMMANDLINE:
        raise EdgeYoloError("--formats exports a .pt to each format; a Triton model is measured as served: "
                            "drop --formats")
    require_model(model)
    dataset = None
    if data is not None:
        from edge_yolo.dataset import load_dataset
        from edge_yolo.evaluate import require_pycocotools

        require_pycocotools()
        dataset = load_dataset(data, split=split, names=read_model_info(model).names)
    what, images = _frames(source, dataset, frames)
    if not url and Path(model).suffix.lower() == ".pt":
        from edge_yolo.sinks import next_run_dir

        out_dir = output or next_run_dir("runs/benchmark")
        variants: list[tuple[str, str | Path]] = export_variants(Path(model), wanted, out_dir, data)
    else:
        variants = [(model_format(model), model)]
    rows = []
    for label, path in variants:
        click.echo(f"benchmark: measuring {label}", err=True)
        rows += run_benchmark(path, device if label != "pytorch" else None, images, dataset, label, jobs)
    click.echo(format_table(rows))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"model": str(model), "source": what, "frames": len(images),
                                         "data": data, "results": rows}, indent=2))
        click.echo(f"results written to {json_path}", err=True)

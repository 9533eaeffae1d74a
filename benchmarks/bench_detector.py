"""Detector end-to-end latency against the raw backend call, per available CPU backend.

Real 1280x720 frames from the shapes video (never random tensors: a trained model's
activations on real photos contain denormals). For each backend: `backend.infer` on a
pre-made input vs `Detector(frame)` (letterbox + infer + NMS + rescale), interleaved runs,
medians. Also ONNX Runtime CPU with and without flushing denormals, and with the spinning
and thread settings while another thread keeps one core busy.

    python benchmarks/bench_detector.py [--runs 30] [--out benchmarks/results/bench_detector.json]

Other processes on the machine add noise to absolute times; the ratios within one run matter.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from edge_yolo import Detector
from edge_yolo.backends.onnxruntime import OnnxRuntimeBackend

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "tests" / "fixtures" / "shapes"
ONNX = SHAPES / "yolo12n_shapes.onnx"
IR = SHAPES / "yolo12n_shapes_openvino_model"


def video_frames(n: int) -> list[np.ndarray]:
    """n evenly spaced 1280x720 frames of the fixture video."""
    cap = cv2.VideoCapture(str(SHAPES / "data" / "video.mp4"))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    step = max(1, len(frames) // n)
    return frames[::step][:n]


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def bench_detectors(frames: list[np.ndarray], runs: int) -> list[dict[str, Any]]:
    """Raw infer vs end to end, all configurations interleaved run by run, raw/e2e order alternating."""
    configs = [
        ("onnxruntime-cpu", dict(model=ONNX, device="cpu")),
        ("openvino CPU default", dict(model=IR, device="openvino")),
        ("openvino CPU f32", dict(model=IR, device="openvino", precision="f32")),
    ]
    dets = {name: Detector(**kw) for name, kw in configs}
    inputs = {name: [d.preprocess([f])[0] for f in frames] for name, d in dets.items()}
    times: dict[str, dict[str, list[float]]] = {n: {"raw": [], "e2e": [], "pre": [], "post": []} for n in dets}
    for name, d in dets.items():  # warm-up
        d(frames[0])
        d.backend.infer(inputs[name][0])
    for r in range(runs):
        i = r % len(frames)
        for name, d in dets.items():
            t = times[name]
            raw = lambda: t["raw"].append(timed(lambda: d.backend.infer(inputs[name][i])))  # noqa: E731
            e2e = lambda: t["e2e"].append(timed(lambda: d(frames[i])))  # noqa: E731
            for step in ((raw, e2e) if r % 2 == 0 else (e2e, raw)):  # alternate: the first call after idle pays wake-up
                step()
            x, metas = d.preprocess([frames[i]])
            out = d.backend.infer(x)
            t["pre"].append(timed(lambda: d.preprocess([frames[i]])))
            t["post"].append(timed(lambda: d.postprocess(out, metas)))
    rows = []
    for name, d in dets.items():
        med = {k: statistics.median(v) for k, v in times[name].items()}
        rows.append({"backend": name, "info": d.backend_info.describe(), **{f"{k}_ms": round(v, 2) for k, v in med.items()},
                     "e2e_over_raw": round(med["e2e"] / med["raw"], 3)})
    return rows


class BusyCore:
    """Keeps one core busy (numpy work releases the GIL), like a decoder thread would."""

    def __enter__(self) -> BusyCore:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        return self

    def _spin(self) -> None:
        a = np.random.default_rng(0).random((256, 256))
        while not self._stop.is_set():
            a @ a

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_ort_settings(frames: list[np.ndarray], runs: int) -> list[dict[str, Any]]:
    """ORT CPU raw latency: denormals flushed or not; spinning/threads with a busy core beside it."""
    import onnxruntime as ort

    det = Detector(ONNX, device="cpu")
    xs = [det.preprocess([f])[0] for f in frames]
    plain = ort.SessionOptions()  # no denormal flushing
    no_daz = ort.InferenceSession(str(ONNX), plain, providers=["CPUExecutionProvider"])
    variants: dict[str, Callable[[np.ndarray], Any]] = {
        "default (DAZ on)": OnnxRuntimeBackend(ONNX).infer,
        "DAZ off": lambda x: no_daz.run(None, {"images": x}),
    }
    loaded = {
        "busy core: default": OnnxRuntimeBackend(ONNX).infer,
        "busy core: spinning off": OnnxRuntimeBackend(ONNX, spinning=False).infer,
        "busy core: 1 thread": OnnxRuntimeBackend(ONNX, threads=1).infer,
        "busy core: 1 thread, spinning off": OnnxRuntimeBackend(ONNX, threads=1, spinning=False).infer,
    }
    res: dict[str, list[float]] = {k: [] for k in [*variants, *loaded]}
    for fn in [*variants.values(), *loaded.values()]:
        fn(xs[0])
    for r in range(runs):
        for name, fn in variants.items():
            res[name].append(timed(lambda: fn(xs[r % len(xs)])))
    with BusyCore():
        for r in range(runs):
            for name, fn in loaded.items():
                res[name].append(timed(lambda: fn(xs[r % len(xs)])))
    return [{"setting": k, "raw_ms": round(statistics.median(v), 2)} for k, v in res.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_detector.json")
    parser.add_argument("--skip-ort-settings", action="store_true")
    args = parser.parse_args()
    frames = video_frames(5)
    rows = bench_detectors(frames, args.runs)
    print(f"{'backend':24} {'raw ms':>8} {'e2e ms':>8} {'pre ms':>7} {'post ms':>8} {'e2e/raw':>8}")
    for r in rows:
        print(f"{r['backend']:24} {r['raw_ms']:8.2f} {r['e2e_ms']:8.2f} {r['pre_ms']:7.2f} {r['post_ms']:8.2f} {r['e2e_over_raw']:8.3f}")
    settings = [] if args.skip_ort_settings else bench_ort_settings(frames, args.runs)
    for s in settings:
        print(f"onnxruntime-cpu {s['setting']:36} {s['raw_ms']:8.2f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "frame": "1280x720 from tests/fixtures/shapes/data/video.mp4", "runs": args.runs,
        "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()},
        "load_average": list(__import__("os").getloadavg()),
        "detector": rows, "ort_cpu_settings": settings,
    }, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()

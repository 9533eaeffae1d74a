"""INT8 vs FP32 OpenVINO on the CPU: throughput speed-up and mAP50-95 drop.

Both IRs are exported from the same checkpoint by our converters (the INT8 one calibrated
on the val images) unless given. Speed: raw OpenVINO, THROUGHPUT hint, AsyncInferQueue with
the device's optimal number of requests, on the letterboxed val photos (real frames, never
random tensors); the FP32 IR runs at the device's default inference precision (bf16 on AMX
CPUs), as users get it. Rounds alternate FP32/INT8 (ABBA) so load changes hit both; the
speed-up is the median over rounds of the INT8/FP32 frames/s ratio (the ratio of the median
frames/s is reported too). Accuracy: `edge_yolo.evaluate.validate` (val protocol) of
the FP32 IR at f32 and at default precision, and of the INT8 IR.

    python benchmarks/bench_int8.py [--pt best.pt --data data.yaml] [--fp32 DIR --int8 DIR]

Prints a table and writes JSON (default benchmarks/results/bench_int8.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "tests" / "fixtures" / "shapes"


def export_pair(pt: Path, data: Path, workdir: Path, imgsz: int) -> tuple[Path, Path]:
    """FP32 and INT8 OpenVINO IRs of `pt`, exported once into `workdir` and reused."""
    from converters.export_openvino import export_openvino

    fp32, int8 = workdir / f"{pt.stem}_openvino_model", workdir / f"{pt.stem}_int8_openvino_model"
    if not (fp32 / f"{pt.stem}.xml").exists():
        export_openvino(pt, output=fp32, imgsz=imgsz)
    if not (int8 / f"{pt.stem}.xml").exists():
        export_openvino(pt, output=int8, imgsz=imgsz, int8=True, data=data)
    return fp32, int8


def real_frames(data: Path, imgsz: int) -> list[np.ndarray]:
    """The val photos letterboxed to imgsz as the runtime does it, NCHW float32 RGB 0..1."""
    from edge_yolo.dataset import load_dataset
    from edge_yolo.preprocess import letterbox, read_image, to_nchw

    images = load_dataset(data).images
    return [to_nchw([letterbox(read_image(im.path), (imgsz, imgsz))[0]]) for im in images]


def throughput(compiled, frames: list[np.ndarray], seconds: float) -> tuple[float, float]:  # noqa: ANN001
    """Frames/s of an AsyncInferQueue kept full for about `seconds`, and the process CPU ms
    per frame (all threads; far less sensitive than wall time to other jobs on the machine)."""
    import openvino as ov

    queue = ov.AsyncInferQueue(compiled, 0)  # 0: the device's optimal number of requests
    for f in frames[: len(queue)]:            # warm-up: every request once
        queue.start_async({0: f})
    queue.wait_all()
    done, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        queue.start_async({0: frames[done % len(frames)]})
        done += 1
    queue.wait_all()
    return done / (time.perf_counter() - start), 1e3 * (time.process_time() - cpu_start) / done


def speed(fp32: Path, int8: Path, frames: list[np.ndarray], rounds: int, seconds: float) -> dict:
    import openvino as ov

    core = ov.Core()
    compiled = {}
    for name, directory in (("fp32", fp32), ("int8", int8)):
        xml = next(directory.glob("*.xml"))
        compiled[name] = core.compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
    fps: dict[str, list[float]] = {"fp32": [], "int8": []}
    cpu: dict[str, list[float]] = {"fp32": [], "int8": []}
    for r in range(rounds):
        # ABBA order: a load change during the run affects both models alike
        for name in ("fp32", "int8") if r % 2 == 0 else ("int8", "fp32"):
            f, c = throughput(compiled[name], frames, seconds)
            fps[name].append(f)
            cpu[name].append(c)
    out: dict = {name: {"fps_median": statistics.median(v), "fps_rounds": v,
                        "cpu_ms_per_frame_median": statistics.median(cpu[name]),
                        "inference_precision": compiled[name].get_property("INFERENCE_PRECISION_HINT").to_string(),
                        "requests": int(compiled[name].get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))}
                 for name, v in fps.items()}
    out["speedup"] = out["int8"]["fps_median"] / out["fp32"]["fps_median"]
    # the ratio within each round (adjacent measurements), median over rounds: the headline
    out["speedup_paired"] = statistics.median(i / f for i, f in zip(fps["int8"], fps["fp32"]))
    out["speedup_cpu_time"] = out["fp32"]["cpu_ms_per_frame_median"] / out["int8"]["cpu_ms_per_frame_median"]
    return out


def accuracy(fp32: Path, int8: Path, data: Path, imgsz: int) -> dict:
    from edge_yolo.dataset import load_dataset
    from edge_yolo.evaluate import validate

    dataset = load_dataset(data)
    runs = {"fp32_f32": (fp32, "f32"), "fp32_default": (fp32, "auto"), "int8_default": (int8, "auto")}
    out = {}
    for name, (model, precision) in runs.items():
        metrics, _ = validate(model, dataset, device="openvino", imgsz=imgsz, precision=precision)
        out[name] = {"map50_95": metrics.map50_95, "map50": metrics.map50,
                     "runtime_precision": metrics.model["precision"]}
    out["drop_points_vs_fp32_f32"] = 100 * (out["fp32_f32"]["map50_95"] - out["int8_default"]["map50_95"])
    out["drop_points_vs_fp32_default"] = 100 * (out["fp32_default"]["map50_95"] - out["int8_default"]["map50_95"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pt", type=Path, default=SHAPES / "yolo12n_shapes.pt")
    parser.add_argument("--data", type=Path, default=SHAPES / "data" / "data.yaml")
    parser.add_argument("--fp32", type=Path, help="an FP32 OpenVINO IR directory (else exported)")
    parser.add_argument("--int8", type=Path, help="an INT8 OpenVINO IR directory (else exported)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench_int8")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0, help="per round and model")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_int8.json")
    args = parser.parse_args()

    if args.fp32 and args.int8:
        fp32, int8 = args.fp32, args.int8
    else:
        fp32, int8 = export_pair(args.pt, args.data, args.workdir, args.imgsz)
    frames = real_frames(args.data, args.imgsz)
    result = {"fp32": str(fp32), "int8": str(int8), "data": str(args.data), "imgsz": args.imgsz,
              "frames": len(frames), "rounds": args.rounds, "seconds": args.seconds,
              "cpu": platform.processor() or platform.machine(),
              "speed": speed(fp32, int8, frames, args.rounds, args.seconds),
              "accuracy": accuracy(fp32, int8, args.data, args.imgsz)}
    s, a = result["speed"], result["accuracy"]
    print(f"{'model':<6} {'precision':<10} {'frames/s (median)':>18} {'CPU ms/frame':>13} {'mAP50-95':>9}")
    for name, acc in (("fp32", "fp32_default"), ("int8", "int8_default")):
        print(f"{name.upper():<6} {s[name]['inference_precision']:<10} {s[name]['fps_median']:>18.1f} "
              f"{s[name]['cpu_ms_per_frame_median']:>13.1f} {a[acc]['map50_95']:>9.4f}")
    print(f"speed-up {s['speedup_paired']:.2f}x (median of per-round ratios; ratio of medians "
          f"{s['speedup']:.2f}x; by CPU time per frame {s['speedup_cpu_time']:.2f}x; target >= 1.4x); mAP50-95 drop {a['drop_points_vs_fp32_default']:.2f} pt "
          f"vs FP32 default, {a['drop_points_vs_fp32_f32']:.2f} pt vs FP32 f32 ({a['fp32_f32']['map50_95']:.4f}) "
          "(target <= 1 pt)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

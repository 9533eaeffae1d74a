"""Video throughput of `edge-yolo detect` against the raw backend (and Ultralytics if installed).

For each backend: the raw backend's throughput (async queue, THROUGHPUT mode, frames decoded
and letterboxed beforehand), then `edge-yolo detect` as a whole process with JSON output only
and with the annotated video saved. Reports the pipeline's frames/s (its own summary: from the
first frame read to the last written), the whole-process wall time, the ratio to raw
throughput and the process's peak RSS. Runs are interleaved and repeated (medians), because
this machine is shared. `yolo predict` (Ultralytics) is measured on the same model only when
the `yolo` command happens to be installed.

    python benchmarks/bench_video.py [--model M] [--video V] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
EDGE_YOLO = str(Path(sys.executable).with_name("edge-yolo"))


def run_process(cmd: list[str]) -> dict[str, Any]:
    """Run a command, sampling its peak RSS (with children) every 20 ms."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        ps = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            except psutil.Error:
                break
            peak = max(peak, rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    return {"wall_s": time.perf_counter() - start, "peak_rss_mib": peak / 2**20, "stdout": out, "stderr": err}


def detect_run(model: str, video: str, device: str, save_video: bool, out_dir: Path) -> dict[str, Any]:
    cmd = [EDGE_YOLO, "detect", video, "--model", model, "--device", device, "--save-json", "-o", str(out_dir)]
    if not save_video:
        cmd.append("--no-save")
    res = run_process(cmd)
    m = re.search(r"(\d+) frames in ([\d.]+) s \(([\d.]+) frames/s\)", res["stderr"])
    assert m, res["stderr"]
    res.update(frames=int(m.group(1)), fps=float(m.group(3)),
               stages=re.search(r"per frame p50/p95 ms: (.*)", res["stderr"]).group(1),
               backend=re.search(r"backend: (.*)", res["stderr"]).group(1))
    return res


def raw_throughput(model: str, video: str, device: str) -> tuple[float, str]:
    """Raw async throughput on the video's frames, in a fresh process like the detect runs,
    with the backend options `detect` uses (ORT CPU: no spinning)."""
    code = (
        "import json,sys; from edge_yolo.detector import Detector; "
        "from edge_yolo.commands.benchmark import read_frames, measure_throughput; "
        f"d=Detector({model!r}, device={device!r}, backend_options={{'spinning': False}}); f=read_frames(__import__('pathlib').Path({video!r}), 150); "
        "print(json.dumps([measure_throughput(d, f, repeats=1), d.backend_info.describe()]))"
    )
    res = run_process([sys.executable, "-c", code])
    fps, backend = json.loads(res["stdout"].strip().splitlines()[-1])
    return fps, backend


def ultralytics_run(model: str, video: str, out_dir: Path) -> dict[str, Any] | None:
    yolo = shutil.which("yolo")
    if yolo is None:
        return None
    res = run_process([yolo, "predict", f"model={model}", f"source={video}", "save=True",
                       f"project={out_dir}", "name=ul", "verbose=False"])
    res["fps"] = 150 / res["wall_s"]  # whole process, as for the comparison with edge-yolo's wall time
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "tests/fixtures/shapes/yolo12n_shapes.onnx"))
    parser.add_argument("--video", default=str(ROOT / "examples/assets/video.mp4"))
    parser.add_argument("--devices", default="openvino,cpu", help="comma-separated devices to measure")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/bench_video.json"))
    args = parser.parse_args()

    results: dict[str, Any] = {"model": args.model, "video": args.video, "repeats": args.repeats, "devices": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for device in args.devices.split(","):
            raw, json_only, video_saved = [], [], []
            backend = ""
            for i in range(args.repeats):
                fps, backend = raw_throughput(args.model, args.video, device)
                raw.append(fps)
                json_only.append(detect_run(args.model, args.video, device, False, Path(tmp) / f"{device}j{i}"))
                video_saved.append(detect_run(args.model, args.video, device, True, Path(tmp) / f"{device}v{i}"))
            raw_fps = statistics.median(raw)
            row = {"backend": backend, "raw_fps": raw_fps}
            for name, runs in (("json_only", json_only), ("video_saved", video_saved)):
                fps = statistics.median(r["fps"] for r in runs)
                row[name] = {
                    "fps": fps, "ratio_to_raw": fps / raw_fps,
                    "process_fps": statistics.median(r["frames"] / r["wall_s"] for r in runs),
                    "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
                    "stages_last_run": runs[-1]["stages"],
                }
            results["devices"][device] = row
        ul = ultralytics_run(args.model, args.video, Path(tmp))
        results["ultralytics"] = None if ul is None else {"process_fps": ul["fps"], "peak_rss_mib": ul["peak_rss_mib"]}

    print(f"{'device':<10}{'raw fps':>9}{'json fps':>10}{'ratio':>7}{'video fps':>11}{'ratio':>7}"
          f"{'proc fps':>10}{'peak RSS':>10}")
    for device, r in results["devices"].items():
        j, v = r["json_only"], r["video_saved"]
        print(f"{device:<10}{r['raw_fps']:>9.1f}{j['fps']:>10.1f}{j['ratio_to_raw']:>7.2f}{v['fps']:>11.1f}"
              f"{v['ratio_to_raw']:>7.2f}{v['process_fps']:>10.1f}{max(j['peak_rss_mib'], v['peak_rss_mib']):>7.0f} MiB")
        print(f"  {r['backend']}\n  stages (video run): {v['stages_last_run']}")
    ul = results["ultralytics"]
    print("ultralytics: not installed (skipped)" if ul is None else
          f"ultralytics yolo predict: {ul['process_fps']:.1f} frames/s (whole process), peak {ul['peak_rss_mib']:.0f} MiB")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()

"""Per-stage timing statistics of a run, in bounded memory, and the summary texts of a run:
per-image class counts and the note on a reduced runtime precision."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STAGES = ("decode", "pre", "infer", "post", "draw", "write")


class Reservoir:
    """A uniform random sample of at most `size` values (so a day-long stream stays small)."""

    def __init__(self, size: int = 4096, seed: int = 0) -> None:
        self.size = size
        self.count = 0
        self.values: list[float] = []
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.count += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            j = self._rng.randrange(self.count)
            if j < self.size:
                self.values[j] = value

    def percentiles(self, *qs: float) -> list[float]:
        if not self.values:
            return [float("nan")] * len(qs)
        return [float(v) for v in np.percentile(np.asarray(self.values), qs)]


@dataclass
class RunStats:
    """Frames, wall time and per-stage durations (seconds) of one pipeline run; thread-safe.

    "infer" is the time from submitting a frame to its result (includes waiting for a free
    request slot inside the backend), so with several requests in flight it exceeds 1/throughput.
    """

    frames: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None
    stages: dict[str, Reservoir] = field(default_factory=lambda: {s: Reservoir() for s in STAGES})
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.stages.setdefault(stage, Reservoir()).add(seconds)

    def frame_done(self, source: str | None = None) -> None:
        with self._lock:
            self.frames += 1
            if source is not None:
                self.per_source[source] = self.per_source.get(source, 0) + 1

    def stop(self) -> None:
        self.ended = time.perf_counter()

    @property
    def wall(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    @property
    def fps(self) -> float:
        return self.frames / self.wall if self.wall > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers: frames, wall_s, fps, per-stage p50/p95 in milliseconds, frames per
        source and frames dropped per webcam."""
        stages = {}
        for name, res in self.stages.items():
            if res.count:
                p50, p95 = res.percentiles(50, 95)
                stages[name] = {"p50_ms": round(p50 * 1e3, 3), "p95_ms": round(p95 * 1e3, 3), "count": res.count}
        return {"frames": self.frames, "wall_s": round(self.wall, 3), "fps": round(self.fps, 2), "stages": stages,
                "sources": dict(self.per_source), "dropped": dict(self.dropped)}

    def format(self, backend: str | None = None) -> str:
        """The human summary: a totals line, a per-stage p50/p95 line and the backend line."""
        d = self.to_dict()
        lines = [f"{d['frames']} frames in {d['wall_s']:.2f} s ({d['fps']:.1f} frames/s)"]
        if len(self.per_source) > 1:
            wall = self.wall or float("inf")
            lines.append("per source: " + ", ".join(f"{name} {n} ({n / wall:.1f} frames/s)"
                                                    for name, n in self.per_source.items()))
        if self.dropped:
            lines.append("dropped (webcam faster than the pipeline): "
                         + ", ".join(f"{name} {n}" for name, n in self.dropped.items()))
        parts = [f"{n} {s['p50_ms']:.1f}/{s['p95_ms']:.1f}" for n, s in d["stages"].items()]
        if parts:
            lines.append("per frame p50/p95 ms: " + ", ".join(parts))
        if backend:
            lines.append(f"backend: {backend}")
        return "\n".join(lines)


def count_line(class_ids: Any, names: dict[int, str]) -> str:
    """`4 circles, 1 square` (class-id order, plural with an s), or `no detections`."""
    ids, counts = np.unique(np.asarray(class_ids, dtype=np.int64), return_counts=True)
    parts = [f"{n} {names.get(int(k), str(int(k)))}{'s' if n > 1 else ''}" for k, n in zip(ids, counts)]
    return ", ".join(parts) or "no detections"


def precision_note(run_precision: str, requested: str, model_dtype: Any) -> str | None:
    """The hint shown when a float32 model runs at a reduced precision nobody asked for (e.g.
    OpenVINO's bf16 default on AMX CPUs): boxes and scores can differ slightly from an f32 run."""
    if requested != "auto" or run_precision not in ("bf16", "f16") or np.dtype(model_dtype) != np.float32:
        return None
    return (f"{run_precision} is this device's fastest default for the f32 model; results can differ slightly "
            "from other f32 runtimes; for f32 pass --precision f32 to detect or val "
            "(precision=\"f32\" in Python)")

"""`edge-yolo track`: detection + multi-object tracking (+ line and zone counts) on videos and streams.

Everything `detect` does (sources, outputs, Ctrl-C handling), with one tracker per source:
track ids drawn in a colour per id, "track_id" in the JSON lines, `--save-mot` MOTChallenge
text, and `--line` / `--zone` counts drawn, written per frame and summarised at the end.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from edge_yolo.commands.detect import DetectRun, media_options
from edge_yolo.counting import ANCHORS, LineCounter, ZoneCounter
from edge_yolo.errors import EdgeYoloError
from edge_yolo.tracking import TRACKER_KINDS, SourceTrackers, source_frame_rates, track_conf


def parse_tracker_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`("lost_track_buffer=60", "enable_cmc=false")` → {"lost_track_buffer": 60, "enable_cmc": False}."""
    options: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise EdgeYoloError(f"--tracker-opt takes NAME=VALUE, got {pair!r}")
        text = text.strip()
        value: Any
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            try:
                value = int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    value = text
        options[name.strip().replace("-", "_")] = value
    return options


@click.command(short_help="Track objects (and count line crossings / zone presence) in videos and streams.")
@media_options(conf=None, conf_help="Detector confidence threshold (default: 0.05 for bytetrack, whose second "
                                     "stage follows tracks through low-score boxes; 0.1 for the others).")
@click.option("--tracker", type=click.Choice(TRACKER_KINDS), default="bytetrack", show_default=True,
              help="Tracking algorithm (the trackers library).")
@click.option("--tracker-opt", "tracker_opts", multiple=True, metavar="NAME=VALUE",
              help="A tracker setting, repeatable, e.g. lost_track_buffer=60 (see README for each tracker's).")
@click.option("--save-mot", is_flag=True, help="Write mot/<name>.txt: MOTChallenge tracks (frame,id,x,y,w,h,conf,-1,-1,-1).")
@click.option("--line", "lines", multiple=True, metavar="X1,Y1,X2,Y2",
              help="Count crossings of this line per class (in: left→right of its direction). Repeatable.")
@click.option("--zone", "zones", multiple=True, metavar="X1,Y1,X2,Y2,X3,Y3,...",
              help="Count objects inside this polygon per frame, and entries. Repeatable.")
@click.option("--anchor", type=click.Choice(ANCHORS), default="center", show_default=True,
              help="Point of a box that counts: its centre or the middle of its bottom edge.")
def command(tracker: str, tracker_opts: tuple[str, ...], save_mot: bool, lines: tuple[str, ...],
            zones: tuple[str, ...], anchor: str, **options: Any) -> None:
    """Track objects in SOURCE...: videos, webcam indices (0), stream URLs (rtsp://, http(s)://),
    directories, globs or .txt files listing sources. One tracker per source."""
    # Bad tracker options and counter geometry fail before the model is loaded.
    settings = parse_tracker_options(tracker_opts)
    SourceTrackers(tracker, **settings)
    if options["conf"] is None:
        options["conf"] = track_conf(tracker)
    for text in lines:
        LineCounter.from_text(text, anchor)
    for text in zones:
        ZoneCounter.from_text(text, anchor)
    run = TrackRun.from_options("track", tracker=tracker, tracker_options=settings, line_specs=lines,
                                zone_specs=zones, anchor=anchor, save_mot=save_mot, **options)
    code = run.execute()
    if code:
        sys.exit(code)


class TrackRun(DetectRun):
    """A `detect` run whose detections go through one tracker (and counters) per source."""

    def __init__(self, *args: Any, tracker: str, tracker_options: dict[str, Any], line_specs: tuple[str, ...],
                 zone_specs: tuple[str, ...], anchor: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trackers = SourceTrackers(tracker, source_frame_rates(self.sources), **tracker_options)
        self.line_specs, self.zone_specs, self.anchor = line_specs, zone_specs, anchor
        self.lines: dict[int, list[LineCounter]] = {}
        self.zones: dict[int, list[ZoneCounter]] = {}
        self.track_ids: dict[int, set[int]] = {}

    def _counters(self, index: int) -> tuple[list[LineCounter], list[ZoneCounter]]:
        if index not in self.lines:
            self.lines[index] = [LineCounter.from_text(t, self.anchor) for t in self.line_specs]
            self.zones[index] = [ZoneCounter.from_text(t, self.anchor) for t in self.zone_specs]
            self.track_ids[index] = set()
        return self.lines[index], self.zones[index]

    def analyse(self, frame: Any, detections: Any) -> tuple[Any, dict[str, Any] | None]:
        t0 = time.perf_counter()
        tracked = self.trackers.update(frame, detections)
        self.stats.add("track", time.perf_counter() - t0)
        lines, zones = self._counters(frame.source_index)
        self.track_ids[frame.source_index].update(tracked.tracker_id.tolist())
        for counter in (*lines, *zones):
            counter.update(tracked)
        extra: dict[str, Any] = {}
        if lines:
            extra["lines"] = [c.counts() for c in lines]
        if zones:
            extra["zones"] = [c.counts() for c in zones]
        return tracked, extra or None

    def annotate(self, frame: Any, detections: Any) -> Any:
        from edge_yolo.annotate import draw_counters

        image = super().annotate(frame, detections)
        lines, zones = self._counters(frame.source_index)
        return draw_counters(image, lines, zones, self.draw_kw["line_width"])

    def summary_lines(self) -> list[str]:
        out = []
        for index in sorted(self.track_ids):
            name = self.sources[index].name
            out.append(f"{name}: {len(self.track_ids[index])} tracks")
            for i, line in enumerate(self.lines[index], 1):
                c = line.counts()
                out.append(f"  line {i} {_numbers(c['line'])}: in {_counts(c['in'])}; out {_counts(c['out'])}")
            for i, zone in enumerate(self.zones[index], 1):
                c = zone.counts()
                out.append(f"  zone {i}: entries {_counts(c['entries'])}; inside at the end {_counts(c['inside'])}")
        return out


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "0"


def _numbers(values: list[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


__all__ = ["command", "TrackRun", "parse_tracker_options"]

"""`edge-yolo detect`: detection on images, videos, directories, globs, webcams and streams.

Outputs go to --output (default runs/detect/<n>): annotated media, and with --save-json /
--save-txt JSON lines and YOLO labels. The first Ctrl-C, SIGTERM or SIGHUP stops reading and
finalises every output (a playable video, one JSON line per written frame) before exiting
with 128 + the signal number; more SIGTERM/SIGHUP meanwhile are ignored, a second Ctrl-C
aborts at once. When some sources could not be read (or a stream was lost) while others were,
the outputs of the others are written, the summary names the failed ones and the exit code is 3.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Callable

import click

from edge_yolo.commands.options import parse_imgsz
from edge_yolo.errors import EdgeYoloError, ModelLoadError, SourceError

log = logging.getLogger("edge_yolo")

EXIT_SOURCES_FAILED = 3


def parse_classes(value: str | None) -> list[int] | None:
    """`0,2` → [0, 2]."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise EdgeYoloError(f"--classes must be class ids like 0,2, got {value!r}")
    return [int(p) for p in parts]


class StopSignal:
    """Turns the first SIGINT/SIGTERM/SIGHUP into a flag checked between frames, so the run
    stops reading and finalises its outputs. From then on a repeated SIGTERM/SIGHUP is ignored
    (GNU `timeout` sends two) and a SIGINT aborts the process at once: the video keeps its
    finished fragments, the JSON lines every line written. After a stop signal the handlers
    stay installed (the process is about to exit), so a late Ctrl-C cannot interrupt the
    interpreter's shutdown with a traceback; without one, leaving restores the previous ones."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __init__(self) -> None:
        self.signum: int | None = None
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            self.event.set()
            # Ignored by the OS from now on: Python puts the default handlers back late in its
            # shutdown, where a repeat would still kill the process.
            for other in self.SIGNALS:
                if other != signal.SIGINT:
                    signal.signal(other, signal.SIG_IGN)
        elif signum == signal.SIGINT:
            os.write(2, b"\nerror: aborted\n")
            os._exit(128 + signal.SIGINT)  # threads may be stuck in native inference: no joins

    def __enter__(self) -> "StopSignal":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.getsignal(s)
                signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.signum is None:
            for s, handler in self._previous.items():
                signal.signal(s, handler)

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum or signal.SIGINT)


def _show(name: str, image: Any) -> bool:
    """Display a frame; False when the user pressed q or Esc."""
    import cv2

    cv2.imshow(name, image)
    return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)


def _check_show() -> None:
    import os

    import cv2

    # OpenCV's Qt window aborts the whole process (it cannot raise) when there is no display.
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EdgeYoloError("--show needs an OpenCV build with GUI support and a display, and no display is set (DISPLAY)")
    try:
        cv2.namedWindow("edge-yolo")
        cv2.destroyWindow("edge-yolo")
    except cv2.error as exc:
        raise EdgeYoloError("--show needs an OpenCV build with GUI support and a display (this OpenCV has no GUI)") from exc


def media_options(conf: float | None, conf_help: str = "Confidence threshold.") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The SOURCE argument and the options `detect` and `track` share (model, NMS, outputs, display)."""
    options = [
        click.argument("sources", nargs=-1, required=True),
        click.option("--model", "-m", envvar="EDGE_YOLO_MODEL", default=None,
                     help="Model: .onnx, OpenVINO directory/.xml or .pt (converted to ONNX next to it). Env: EDGE_YOLO_MODEL."),
        click.option("--device", default="auto", show_default=True,
                     help="auto, cpu, openvino[:CPU|GPU|NPU|AUTO], cuda[:N], tensorrt[:N], torch, triton (a model URL grpc://host:8001/NAME)."),
        click.option("--conf", type=click.FloatRange(0, 1), default=conf, show_default=conf is not None, help=conf_help),
        click.option("--iou", type=click.FloatRange(0, 1), default=0.7, show_default=True, help="NMS IoU threshold."),
        click.option("--imgsz", default=None, help="Input size 640 or H,W (dynamic models only; default: the model's)."),
        click.option("--classes", default=None, help="Keep only these class ids, e.g. 0,2."),
        click.option("--max-det", type=click.IntRange(1), default=300, show_default=True, help="Detections per frame at most."),
        click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
                     help="Output directory (default runs/<command>/<n>, the next free n)."),
        click.option("--no-save", is_flag=True, help="Do not save annotated images/videos."),
        click.option("--save-json", is_flag=True, help="Write <name>.jsonl: one line per frame with its detections."),
        click.option("--agnostic-nms", is_flag=True,
                     help="Class-agnostic NMS: overlapping boxes of different classes suppress each other."),
        click.option("--precision", type=click.Choice(["auto", "f32", "f16", "bf16"]), default="auto", show_default=True,
                     help="Inference precision: auto is the device's fastest (bf16 on AMX CPUs with OpenVINO); f32 for exact f32."),
        click.option("--save-txt", is_flag=True,
                     help="Write YOLO-format labels (class cx cy w h, normalised) to labels/<image stem>.txt or "
                          "labels/<video>_<frame>.txt (frame 1-based)."),
        click.option("--save-conf", is_flag=True, help="Add the confidence to every label line (implies --save-txt)."),
        click.option("--save-crop", is_flag=True, help="Save every detected box as crops/<class>/<stem>_<k>.jpg."),
        click.option("--show", is_flag=True, help="Display the annotated frames (needs a GUI OpenCV)."),
        click.option("--vid-stride", type=click.IntRange(1), default=1, show_default=True, help="Process every N-th video frame."),
        click.option("--line-width", type=click.IntRange(1), default=None, help="Box line width in pixels (default: from image size)."),
        click.option("--hide-labels", is_flag=True, help="Draw boxes without labels."),
        click.option("--hide-conf", is_flag=True, help="Draw labels without confidences."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary."),
    ]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


@click.command(short_help="Run detection on images, videos, directories, globs, webcams or streams.")
@media_options(conf=0.25)
def command(**options: Any) -> None:
    """Detect objects in SOURCE...: images, directories, globs, videos, webcam indices (0),
    stream URLs (rtsp://, http(s)://) or .txt files listing sources. The SOURCE arguments run
    at once through shared inference calls, each with its own outputs; the files a directory,
    glob or list expands into take their turn."""
    run = DetectRun.from_options("detect", **options)
    code = run.execute()
    if code:
        sys.exit(code)


def _image_stems(sources: list[Any]) -> dict[Path, str]:
    from edge_yolo.sinks import image_output_stems

    return image_output_stems(p for s in sources if s.kind == "images" for p in s.paths)


class DetectRun:
    """One `detect` invocation: pipeline → draw → per-source outputs, with progress and summary.

    Live sources and up to `max_open_files` files run at once (the CLI passes the number of
    SOURCE arguments: those run together, while a directory, glob or list expands into files
    that take their turn, keeping memory flat); each source's outputs are finalised as soon as
    it ends.

    Subclasses (`track`) change what happens to each frame's detections through `analyse`
    and `annotate`, and add to the summary through `summary_lines`.
    """

    def __init__(self, detector: Any, sources: list[Any], out_dir: Path, save_media: bool, save_json: bool,
                 save_txt: bool, show: bool, line_width: int | None, labels: bool, confidence: bool,
                 quiet: bool, save_conf: bool = False, save_crop: bool = False, precision: str = "auto",
                 save_mot: bool = False, max_open_files: int = 1) -> None:
        from edge_yolo.summary import RunStats

        self.detector = detector
        self.sources = sources
        self.out_dir = out_dir
        self.save_media, self.save_json, self.save_txt, self.show = save_media, save_json, save_txt, show
        self.save_conf, self.save_crop, self.save_mot = save_conf, save_crop, save_mot
        self.draw_kw = {"line_width": line_width, "labels": labels, "confidence": confidence}
        self.quiet = quiet
        self.precision = precision
        self.max_open_files = max_open_files
        self.name = "detect"
        self.stats = RunStats()
        self.outputs: dict[int, Any] = {}
        self.stems = _image_stems(sources)
        self.failed: list[str] = []   # why each failed source failed

    @classmethod
    def from_options(cls, name: str, sources: tuple[str, ...], model: str | None, device: str, conf: float,
                     iou: float, imgsz: str | None, classes: str | None, max_det: int, agnostic_nms: bool,
                     precision: str, output: Path | None, no_save: bool, save_json: bool, save_txt: bool,
                     save_conf: bool, save_crop: bool, show: bool, vid_stride: int,
                     line_width: int | None, hide_labels: bool, hide_conf: bool, quiet: bool,
                     **extra: Any) -> Any:
        """Check the shared options, load the model and resolve the sources (bad input fails
        here, before any output is made); `extra` goes to the constructor."""
        from edge_yolo.sources import resolve_sources

        if not model:
            raise ModelLoadError("no model given: pass --model PATH or set EDGE_YOLO_MODEL")
        size = parse_imgsz(imgsz)
        class_ids = parse_classes(classes)
        if show:
            _check_show()
        resolved = resolve_sources(list(sources), vid_stride=vid_stride)
        from edge_yolo.detector import Detector

        # ORT's CPU workers spin while idle and lose badly to our decode/encode threads; see DESIGN.md.
        # A .pt is exported at the first video's aspect (384x640 for 16:9 at 640), as Ultralytics runs it.
        detector = Detector(model, device=device, conf=conf, iou=iou, max_det=max_det, classes=class_ids,
                            agnostic=agnostic_nms, imgsz=size, precision=precision,
                            frame_shape=resolved[0].frame_shape if resolved else None,
                            backend_options={"spinning": False})
        out_dir = output
        if out_dir is None:
            from edge_yolo.sinks import next_run_dir

            out_dir = next_run_dir(f"runs/{name}")
        run = cls(detector, resolved, out_dir, save_media=not no_save, save_json=save_json,
                  save_txt=save_txt or save_conf, show=show, line_width=line_width, labels=not hide_labels,
                  confidence=not hide_conf, quiet=quiet, save_conf=save_conf, save_crop=save_crop,
                  precision=precision, max_open_files=len(sources), **extra)
        run.name = name
        return run

    def analyse(self, frame: Any, detections: Any) -> tuple[Any, dict[str, Any] | None]:
        """One frame's detections as they are written, and extra keys for its JSON line."""
        return detections, None

    def annotate(self, frame: Any, detections: Any) -> Any:
        """The frame with `detections` drawn on it (in place)."""
        from edge_yolo.annotate import draw_detections

        return draw_detections(frame.image, detections, **self.draw_kw)

    def summary_lines(self) -> list[str]:
        """Lines added to the end-of-run summary."""
        return []

    def _outputs_for(self, index: int) -> Any:
        from edge_yolo.sinks import SourceOutputs

        if index not in self.outputs:
            self.outputs[index] = SourceOutputs(
                self.out_dir, self.sources[index], self.save_media, self.save_json, self.save_txt,
                on_encoded=lambda s: self.stats.add("encode", s), stems=self.stems,
                save_conf=self.save_conf, save_crop=self.save_crop, save_mot=self.save_mot)
        return self.outputs[index]

    def _close_outputs(self, only: int | None = None) -> None:
        """Finalise one source's outputs (when it ended), or all of them."""
        errors = []
        for index in [i for i in self.outputs if only is None or i == only]:
            try:
                self.outputs.pop(index).close()
            except EdgeYoloError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def execute(self) -> int:
        """Run to the end (or the first stop signal); returns the exit code."""
        from edge_yolo.pipeline import Pipeline
        from edge_yolo.progress import Progress
        from edge_yolo.summary import count_line

        lengths = [s.length for s in self.sources]
        total = None if any(n is None for n in lengths) else sum(lengths)
        progress = Progress(total, enabled=not self.quiet, desc=self.name)
        draw = self.save_media or self.show
        stop = StopSignal()
        pipeline = Pipeline(self.detector, self.sources, stats=self.stats, stop=stop.event,
                            max_open_files=self.max_open_files,
                            on_source_end=lambda s: self._close_outputs(only=s.source_index))
        with stop:  # the handlers stay installed until every output is final
            try:
                for frame, detections in pipeline:
                    source = self.sources[frame.source_index]
                    detections, extra = self.analyse(frame, detections)
                    t0 = time.perf_counter()
                    annotated = self.annotate(frame, detections) if draw else None
                    t1 = time.perf_counter()
                    self._outputs_for(frame.source_index).write(frame, detections, annotated, extra)
                    t2 = time.perf_counter()
                    self.stats.add("draw", t1 - t0)
                    self.stats.add("write", t2 - t1)
                    if frame.path is not None:
                        progress.write(f"{frame.path}: {count_line(detections.class_id, detections.names)}")
                    progress.update()
                    if self.show and not _show(source.name, annotated):
                        break
                    if stop.event.is_set():
                        break
            finally:
                pipeline.close()
                progress.close()
                self._close_outputs()
        self.failed = [str(exc) for _, exc in pipeline.failed]
        self.failed += [f"{s.kind} {s.target} lost" for s in self.sources if getattr(s, "lost", False)]
        return self._report(stop if stop.event.is_set() else None)

    def _report(self, stop: StopSignal | None) -> int:
        written = self.stats.frames
        if stop is not None:
            log.warning("interrupted after %d frames; outputs in %s are complete up to there", written, self.out_dir)
        if written == 0 and stop is None:
            raise SourceError("no frame could be read from the given sources"
                              + (f" ({'; '.join(self.failed)})" if self.failed else ""))
        if not self.quiet:
            from edge_yolo.summary import precision_note

            info = self.detector.backend_info
            click.echo(self.stats.format(info.describe()), err=True)
            note = precision_note(info.precision, self.precision, self.detector.model_info.input_dtype)
            if note:
                click.echo(f"precision: {note}", err=True)
            for line in self.summary_lines():
                click.echo(line, err=True)
            if self.out_dir.exists():
                click.echo(f"results saved to {self.out_dir}", err=True)
        if self.failed:  # shown even with --quiet: the exit code alone would not say which
            click.echo(f"failed sources ({len(self.failed)} of {len(self.sources)}): "
                       + "; ".join(self.failed), err=True)
        if stop is not None:
            return stop.exit_code
        return EXIT_SOURCES_FAILED if self.failed else 0

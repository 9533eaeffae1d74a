"""Frame sources: images, directories, globs, video files, webcams, network streams, .txt lists.

`resolve_sources(spec)` turns what a user typed into a list of `Source` objects; iterating a
source yields `Frame`s (BGR uint8 images with their index, time and origin). Files are checked
when resolved, so a missing or unreadable file fails before any model is loaded, but a video
holds its file open only while it is being read (a list of thousands of videos needs no more
descriptors than one); live sources (webcams, streams) are opened when first read, say what
they are trying when a connection attempt fails, and reconnect with back-off when they drop.
"""

from __future__ import annotations

import glob as globlib
import importlib.util
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

import cv2
import numpy as np

from .errors import SourceError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pbm", ".pgm", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".gif"})
STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
STREAM_TIMEOUT_S = 10.0  # per connection attempt and per read; FFmpeg's own default is 30 s

# FFmpeg inside OpenCV prints its own messages about broken files; ours say what happened.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
try:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except AttributeError:  # pragma: no cover - very old OpenCV builds
    pass


@dataclass
class Frame:
    """One decoded frame.

    image: BGR uint8 (H, W, 3). index: position in its source (for videos the original frame
    number, so it stays true with a vid_stride). time: seconds from the start of the source
    (presentation time for videos, wall time since opening for live sources, 0 for images).
    source: the source's name (used to name outputs). path: the image file for image sources.
    source_index: position of the source in the resolved list.
    """

    image: np.ndarray
    index: int
    time: float
    source: str
    path: Path | None = None
    source_index: int = 0


class Source:
    """A finite or live sequence of frames. Iterate it once; `close()` releases it."""

    name: str = ""
    kind: str = ""           # "images" | "video" | "stream" | "webcam"
    live: bool = False       # True for webcams and streams (unknown length, reconnects)
    fps: float | None = None
    frame_shape: tuple[int, int] | None = None   # (h, w) when known before decoding
    source_index: int = 0

    def __len__(self) -> int:
        raise TypeError(f"{self.kind} source has no known length")

    @property
    def length(self) -> int | None:
        """Number of frames this source will yield, None when unknown."""
        try:
            return len(self)
        except TypeError:
            return None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release files or devices (safe to call twice)."""

    def share_cpu(self, sources_at_once: int) -> None:
        """Told, before iterating, how many sources are read at once, so that a decoder can
        size its own threads to its share of the CPU."""


def read_image(path: Path) -> np.ndarray | None:
    """cv2.imread that also handles non-ASCII paths; None when the file is not a decodable image."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return image


class ImageFiles(Source):
    """A list of image files; an unreadable one is skipped with a warning."""

    kind = "images"

    def __init__(self, paths: Sequence[Path], name: str) -> None:
        self.paths = list(paths)
        self.name = name
        self.skipped: list[Path] = []

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.paths):
            image = read_image(path)
            if image is None:
                log.warning("skipped %s: not a readable image", path)
                self.skipped.append(path)
                continue
            yield Frame(image, i, 0.0, self.name, path, self.source_index)


class VideoFile(Source):
    """A video file decoded with PyAV (threaded decode) or, without PyAV, OpenCV.

    A video that breaks part-way ends there with a warning; the frames before it are kept.
    The file is probed (length, fps) when the source is made, then closed until iterated.
    """

    kind = "video"

    def __init__(self, path: Path, vid_stride: int = 1, decoder: str = "auto") -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.vid_stride = max(1, int(vid_stride))
        self.decoder = _pick_decoder(decoder)
        self.frames_read = 0
        self.truncated = False
        self.decode_threads = 0  # PyAV decoder threads; 0: FFmpeg's choice (one per core, and one)
        self._container: Any = None
        self._capture: Any = None
        total, fps = self._open()
        self.close()
        self.fps = fps
        self.total_frames = total

    def _open(self) -> tuple[int | None, float | None]:
        if self.decoder == "pyav":
            import av

            try:
                self._container = av.open(str(self.path))
                stream = self._container.streams.video[0]
            except (av.FFmpegError, IndexError, OSError) as exc:
                if self._container is not None:
                    self._container.close()
                raise SourceError(f"cannot read video {self.path}: not a valid video file ({_short(exc)})") from exc
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = self.decode_threads
            if stream.codec_context.height and stream.codec_context.width:
                self.frame_shape = (int(stream.codec_context.height), int(stream.codec_context.width))
            fps = float(stream.average_rate) if stream.average_rate else None
            total = stream.frames or None
            if total is None and stream.duration and stream.time_base and fps:
                total = int(round(float(stream.duration * stream.time_base) * fps))
            return total, fps
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise SourceError(f"cannot read video {self.path}: not a valid video file")
        self._capture = capture
        h, w = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.frame_shape = (h, w) if h and w else None
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        fps = capture.get(cv2.CAP_PROP_FPS) or None
        return total, fps

    def __len__(self) -> int:
        if self.total_frames is None:
            raise TypeError("video length unknown")
        return math.ceil(self.total_frames / self.vid_stride)

    def __iter__(self) -> Iterator[Frame]:
        if self._container is None and self._capture is None:
            self._open()
        frames = self._iter_pyav() if self.decoder == "pyav" else self._iter_cv2()
        try:
            yield from frames
        finally:
            self.close()
        if self.total_frames and self.frames_read < self.total_frames:
            self.truncated = True
            log.warning(
                "%s ended after %d of %d frames (truncated or corrupt); outputs hold the frames before that",
                self.path, self.frames_read, self.total_frames,
            )

    def _iter_pyav(self) -> Iterator[Frame]:
        import av

        stream = self._container.streams.video[0]
        start = stream.start_time or 0
        tb = float(stream.time_base) if stream.time_base else 0.0
        i = 0
        try:
            for vf in self._container.decode(stream):
                if i % self.vid_stride == 0:
                    t = (vf.pts - start) * tb if vf.pts is not None else i / (self.fps or 1.0)
                    # One conversion thread: swscale's own threads cost 0.5 CPU ms more per 720p
                    # frame, and sources and the pipeline already run in parallel.
                    image = vf.to_ndarray(format="bgr24", threads=1)
                    yield Frame(image, i, float(t), self.name, None, self.source_index)
                i += 1
                self.frames_read = i
        except av.FFmpegError as exc:
            log.debug("decode error in %s after %d frames: %s", self.path, i, exc)

    def _iter_cv2(self) -> Iterator[Frame]:
        capture = self._capture
        i = 0
        while True:
            if i % self.vid_stride == 0:
                ok, image = capture.read()
                if not ok:
                    break
                t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                yield Frame(image, i, t, self.name, None, self.source_index)
            elif not capture.grab():
                break
            i += 1
            self.frames_read = i

    def share_cpu(self, sources_at_once: int) -> None:
        """Decode on this source's share of the cores: with as many sources as cores, one
        thread each (frame threading only adds work when the sources already run in parallel)."""
        self.decode_threads = max(1, available_cores() // max(1, sources_at_once))

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class Capture(Protocol):
    """What a live source reads from (cv2.VideoCapture's subset we use)."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def release(self) -> None: ...


def _open_capture(target: str | int) -> Capture:
    if isinstance(target, int):
        return cv2.VideoCapture(target)
    timeout_ms = int(STREAM_TIMEOUT_S * 1000)
    capture = cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                       cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
    if target.startswith(("rtsp://", "rtsps://")):
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return capture


class LiveSource(Source):
    """A webcam or a network stream. A stream is opened with up to `reconnects` retries; a
    webcam that does not open fails at once. When either drops, it reconnects with exponential
    back-off (`backoff` seconds doubling up to `max_backoff`), at most `reconnects` times in a
    row; then it ends with one warning line. Every failed connection attempt of a retried open
    is reported as a warning saying what was tried (a silent server otherwise looks like a
    hang: each attempt waits up to STREAM_TIMEOUT_S). A read or open that raises (a device
    error) counts as a drop or a failed attempt. `opener` makes the capture (tests inject
    their own).
    `stop` (a threading.Event) ends the source early, e.g. when the pipeline closes."""

    live = True

    def __init__(
        self,
        target: str | int,
        vid_stride: int = 1,
        opener: Callable[[str | int], Capture] = _open_capture,
        reconnects: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        self.target = target
        self.kind = "webcam" if isinstance(target, int) else "stream"
        self.name = f"webcam{target}" if isinstance(target, int) else _stream_name(target)
        self.vid_stride = max(1, int(vid_stride))
        self.opener = opener
        self.reconnects = reconnects
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stop = threading.Event()
        self.reconnect_count = 0
        self.lost = False        # True once it dropped and every reconnect failed
        self._capture: Capture | None = None

    def _connect(self, attempts: int) -> Capture | None:
        """Open the capture, up to `attempts` times with back-off (each retry announced with a
        warning); None when every attempt failed."""
        delay = self.backoff
        for attempt in range(attempts):
            if attempt and self.stop.wait(delay):
                return None
            if self.stop.is_set():
                return None
            started = time.monotonic()
            try:
                capture: Capture | None = self.opener(self.target)
            except Exception as exc:  # noqa: BLE001 - a device that errors on open is a failed attempt
                log.debug("opening %s %s failed: %s", self.kind, self.target, exc)
                capture = None
            if capture is not None and capture.isOpened():
                get = getattr(capture, "get", None)
                fps = get(cv2.CAP_PROP_FPS) if get else 0
                self.fps = fps if fps and 0 < fps < 1000 else self.fps
                return capture
            if capture is not None:
                capture.release()
            delay = min(delay * 2, self.max_backoff)
            if attempts > 1 and not self.stop.is_set():
                retry = f"retrying in {delay:g} s" if attempt + 1 < attempts else "no attempts left"
                log.warning("cannot open %s %s: failed after %.1f s (attempt %d of %d); %s", self.kind,
                            self.target, time.monotonic() - started, attempt + 1, attempts, retry)
        return None

    def __iter__(self) -> Iterator[Frame]:
        if self.kind == "webcam":   # a local device is there or not: retrying the first open only delays the error
            capture = self._connect(1)
            failure = f"cannot open webcam {self.target}: no camera with that index, or it is in use"
        else:
            capture = self._connect(1 + self.reconnects)
            failure = f"cannot open stream {self.target} (tried {1 + self.reconnects} times)"
        if capture is None:
            self._capture = None
            if not self.stop.is_set():
                raise SourceError(failure)
            return
        self._capture = capture
        start = time.monotonic()
        i = 0
        try:
            while not self.stop.is_set():
                try:
                    ok, image = capture.read()
                except Exception as exc:  # noqa: BLE001 - a device error (unplugged camera) is a drop
                    log.debug("%s %s read failed: %s", self.kind, self.target, exc)
                    ok, image = False, None
                if not ok or image is None:
                    capture.release()
                    self.reconnect_count += 1
                    if not self.stop.is_set():
                        log.warning("%s %s dropped; reconnecting", self.kind, self.target)
                    capture = self._connect(self.reconnects)
                    self._capture = capture
                    if capture is None:
                        if not self.stop.is_set():
                            self.lost = True
                            log.warning("%s %s lost; gave up after %d reconnect attempts", self.kind, self.target, self.reconnects)
                        return
                    continue
                if i % self.vid_stride == 0:
                    yield Frame(image, i, time.monotonic() - start, self.name, None, self.source_index)
                i += 1
        finally:
            self.close()

    def close(self) -> None:
        self.stop.set()
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pick_decoder(decoder: str) -> str:
    if decoder not in ("auto", "pyav", "opencv"):
        raise SourceError(f"unknown video decoder {decoder!r}; use auto, pyav or opencv")
    if decoder == "auto":
        return "pyav" if importlib.util.find_spec("av") is not None else "opencv"
    return decoder


def _short(exc: BaseException) -> str:
    if isinstance(exc, IndexError):
        return "it has no video stream"
    return getattr(exc, "strerror", None) or type(exc).__name__


def _stream_name(url: str) -> str:
    tail = url.split("://", 1)[-1].rstrip("/")
    return _safe_name(tail, "stream")[-60:]


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _glob_name(pattern: str) -> str:
    """A readable source name for a glob: the last directory before the first wildcard."""
    fixed = [part for part in _prefix_parts(pattern) if part not in ("", ".", "..", "/", "~")]
    return _safe_name(fixed[-1], "glob") if fixed else "glob"


def _prefix_parts(pattern: str) -> list[str]:
    parts = Path(pattern).parts
    for i, part in enumerate(parts):
        if _is_glob(part):
            return list(parts[:i])
    return list(parts[:-1])


def _safe_name(text: str, fallback: str) -> str:
    """`text` usable as a file name: anything but letters, digits, - _ . becomes _."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".") or fallback


def _unique_files(paths: list[Path]) -> list[Path]:
    """Each file once, under its shortest path, sorted (a glob through a symlink loop reaches
    the same file under many paths)."""
    shortest: dict[str, Path] = {}
    for p in sorted(paths, key=lambda p: (len(p.parts), p)):
        shortest.setdefault(os.path.realpath(p), p)
    return sorted(shortest.values())


def _readable_videos(videos: list[Path], vid_stride: int) -> list[Source]:
    """VideoFile sources for a directory's or glob's videos; a broken one is skipped with a warning."""
    sources: list[Source] = []
    for path in videos:
        try:
            sources.append(VideoFile(path, vid_stride))
        except SourceError as exc:
            log.warning("skipped %s", exc)
    return sources


def _from_paths(paths: list[Path], name: str, vid_stride: int) -> list[Source]:
    paths = _unique_files(paths)
    images = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
    videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
    sources: list[Source] = [ImageFiles(images, name)] if images else []
    return sources + _readable_videos(videos, vid_stride)


def _resolve_one(spec: str | int | Path, vid_stride: int, base: Path | None) -> list[Source]:
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return [LiveSource(int(spec), vid_stride)]
    text = str(spec).strip()
    if text.lower().startswith(STREAM_PREFIXES):
        return [LiveSource(text, vid_stride)]
    path = Path(text).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_dir():
        sources = _from_paths([p for p in path.iterdir() if p.is_file()], path.name or "images", vid_stride)
        if not sources:
            raise SourceError(f"directory {path} holds no images or videos that can be read")
        return sources
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".txt":
            return _resolve_list(path, vid_stride)
        if suffix in IMAGE_SUFFIXES:
            return [ImageFiles([path], path.stem)]
        if suffix in VIDEO_SUFFIXES:
            return [VideoFile(path, vid_stride)]
        raise SourceError(f"{path} is neither an image nor a video (unknown suffix {path.suffix or '(none)'})")
    if _is_glob(text):
        matches = [Path(p) for p in sorted(globlib.glob(str(path), recursive=True)) if Path(p).is_file()]
        sources = _from_paths(matches, _glob_name(text), vid_stride)
        if not sources:
            raise SourceError(f"no images or videos match {text}")
        return sources
    raise SourceError(f"no such file or directory: {path}")


def _resolve_list(path: Path, vid_stride: int) -> list[Source]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read source list {path}: {exc}") from exc
    entries = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not entries:
        raise SourceError(f"source list {path} is empty")
    sources: list[Source] = []
    for entry in entries:
        sources += _resolve_one(entry, vid_stride, path.parent)
    return sources


def resolve_sources(spec: str | int | Path | Sequence[str | int | Path], vid_stride: int = 1) -> list[Source]:
    """Turn source specs into Source objects.

    A spec is an image, a directory (its images become one source, each video its own),
    a glob, a video file, a webcam index, a stream URL (rtsp/rtmp/http(s)/...), or a .txt
    file with one spec per line. Raises SourceError for anything missing or unreadable.
    """
    if vid_stride < 1:
        raise SourceError(f"vid_stride must be at least 1, got {vid_stride}")
    specs = [spec] if isinstance(spec, (str, int, Path)) else list(spec)
    if not specs:
        raise SourceError("no source given")
    sources: list[Source] = []
    for s in specs:
        sources += _resolve_one(s, vid_stride, None)
    return number_sources(sources)


def number_sources(sources: list[Source]) -> list[Source]:
    """Set each source's `source_index` to its position and make names unique (`video`,
    `video_2`, ...), since names name the outputs; returns `sources`."""
    names: dict[str, int] = {}
    for i, source in enumerate(sources):
        source.source_index = i
        n = names.get(source.name, 0)
        names[source.name] = n + 1
        if n:
            source.name = f"{source.name}_{n + 1}"
    return sources

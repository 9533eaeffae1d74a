"""Where results go: annotated video, annotated images, JSON lines, YOLO-format label files.

The video writer encodes in its own thread behind a bounded queue (H.264 through PyAV's
libx264 when available, else OpenCV's avc1 or mp4v) and always finalises the container on
`close()`, so an interrupted run still leaves a playable file. With PyAV the MP4 is
fragmented with a keyframe every second: each second is on disk as a self-contained fragment
once the next one starts, so a process killed before `close()` (SIGKILL, power loss) still
leaves a playable file missing at most its last second or so. The JSON-lines writer flushes
every line, so a file is complete for every frame handed to it. When a write fails (a full
disk), no partial line and no partial image or label file is left behind, and the error says
why in one line.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Iterable

import cv2
import numpy as np

from .errors import EdgeYoloError

log = logging.getLogger(__name__)

_END = object()


def describe_write_error(exc: BaseException) -> str:
    """The reason a write failed, in words ("no space left on device" for ENOSPC)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno).lower() if exc.errno in (errno.ENOSPC, errno.EDQUOT) else str(exc)
    return str(exc) or type(exc).__name__


def write_error(path: Path, exc: BaseException) -> EdgeYoloError:
    """The EdgeYoloError for a failed write of `path`."""
    error = EdgeYoloError(f"writing {path} failed: {describe_write_error(exc)}")
    error.__cause__ = exc
    return error


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all: a temporary file in the same directory,
    renamed over `path` once complete, removed when the write fails (e.g. a full disk)."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(path, exc) from exc


class VideoWriter:
    """Encode BGR frames of one size into an .mp4 in a background thread.

    codec "auto": libx264 (PyAV, preset ultrafast, yuv420p) when possible, else OpenCV's avc1,
    else mp4v with a one-line warning. yuv420p needs even sides: an odd width or height is
    padded by one replicated pixel. `write()` blocks when `queue_size` frames are waiting.
    `encode_times` holds the seconds spent per frame in the encoder thread (for the summary).
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float | None,
        codec: str = "auto",
        queue_size: int = 4,
        preset: str = "ultrafast",
        on_encoded: Any = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size = (int(width), int(height))
        self.fps = float(fps) if fps and 0 < fps < 1000 else 25.0
        self.preset = preset
        self.frames = 0
        self.on_encoded = on_encoded
        self._error: BaseException | None = None
        self._closed = False
        self._impl = self._open(codec)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._thread = threading.Thread(target=self._run, name=f"encode-{self.path.name}", daemon=True)
        self._thread.start()

    def _open(self, codec: str) -> Any:
        w, h = self.size
        if codec in ("auto", "libx264"):
            impl = _PyAVEncoder.create(self.path, w + w % 2, h + h % 2, self.fps, self.preset)
            if impl is not None:
                self.codec = "h264"
                return impl
            if codec == "libx264":
                raise EdgeYoloError("libx264 encoding needs PyAV (pip install 'edge-yolo[video]')")
        for fourcc in (("avc1", "mp4v") if codec == "auto" else (codec,)):
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, self.size)
            if writer.isOpened():
                self.codec = fourcc
                if fourcc == "mp4v":
                    log.warning("no H.264 encoder available (install PyAV: pip install 'edge-yolo[video]'); %s is MPEG-4 Part 2 (mp4v), which browsers may not play", self.path)
                return _CV2Encoder(writer)
            writer.release()
        raise EdgeYoloError(f"cannot open a video encoder for {self.path}")

    def write(self, image: np.ndarray) -> None:
        """Queue one BGR frame (H, W, 3) of the writer's size for encoding."""
        if self._error is not None:
            raise write_error(self.path, self._error)
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self._queue.put(image)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                break
            if self._error is not None:
                continue
            t0 = time.perf_counter()
            try:
                self._impl.write(item)
            except Exception as exc:  # noqa: BLE001 - reported on the next write()/close()
                self._error = exc
                continue
            self.frames += 1
            if self.on_encoded is not None:
                self.on_encoded(time.perf_counter() - t0)

    def close(self) -> None:
        """Encode what is queued, flush the encoder and write the container's index."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_END)
        self._thread.join()
        try:
            self._impl.close()
        except Exception as exc:  # noqa: BLE001 - e.g. no room left for the container's index
            self._error = self._error or exc
        if self._error is not None:
            raise write_error(self.path, self._error)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PyAVEncoder:
    def __init__(self, container: Any, stream: Any) -> None:
        self.container = container
        self.stream = stream
        self.pts = 0
        self.size = (stream.width, stream.height)

    @classmethod
    def create(cls, path: Path, width: int, height: int, fps: float, preset: str) -> "_PyAVEncoder | None":
        try:
            import av
        except ImportError:
            return None
        if "libx264" not in av.codecs_available:
            return None
        # Fragmented MP4: no index to write at the end, so every finished fragment plays even
        # when the process dies (flush_packets puts each one on disk at once); a GOP of one
        # second bounds what a kill can lose.
        container = av.open(str(path), "w", options={
            "movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"})
        try:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": preset, "crf": "23", "g": str(max(1, round(fps)))}
        except Exception:  # noqa: BLE001 - a broken libx264 build: fall back to OpenCV
            container.close()
            return None
        return cls(container, stream)

    def write(self, image: np.ndarray) -> None:
        import av

        h, w = image.shape[:2]
        if (w, h) != self.size:
            image = cv2.copyMakeBorder(image, 0, self.size[1] - h, 0, self.size[0] - w, cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self.pts
        self.pts += 1
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        try:
            self.container.mux(self.stream.encode(None))
        finally:
            self.container.close()


class _CV2Encoder:
    def __init__(self, writer: cv2.VideoWriter) -> None:
        self.writer = writer

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)

    def close(self) -> None:
        self.writer.release()


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an image (format from the suffix; non-ASCII paths work), whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix or ".jpg", image)
    if not ok:
        raise EdgeYoloError(f"cannot encode an image as {path.suffix}")
    write_file_atomic(path, data.tobytes())
    return path


def frame_record(frame: Any, detections: Any, image_name: str | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-lines record of one frame: frame, time, (image,) detections, then `extra`'s
    keys. `image` is `image_name` when given (the output's name), else the image file's name."""
    record: dict[str, Any] = {"frame": int(frame.index), "time": round(float(frame.time), 6)}
    if getattr(frame, "path", None) is not None:
        record["image"] = image_name or frame.path.name
    record["detections"] = detections.to_dict()["detections"]
    if extra:
        record.update(extra)
    return record


class _AppendOnlyText:
    """A text file written in whole pieces: a piece that cannot be written completely (a
    full disk) is cut off again, so the file always ends where a whole piece ended."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file: BinaryIO | None = open(self.path, "wb", buffering=0)
        except OSError as exc:
            raise write_error(self.path, exc) from exc
        self._size = 0

    def _append(self, text: str) -> None:
        assert self._file is not None, f"{type(self).__name__} is closed"
        data = memoryview(text.encode())
        try:
            done = 0
            while done < len(data):  # a raw write may be partial
                done += self._file.write(data[done:]) or 0
        except OSError as exc:
            self._file.truncate(self._size)
            self._file.seek(self._size)
            raise write_error(self.path, exc) from exc
        self._size += len(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class JsonlWriter(_AppendOnlyText):
    """One JSON object per line, each line written whole (see `_AppendOnlyText`)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.lines = 0

    def write(self, frame: Any, detections: Any, image_name: str | None = None,
              extra: dict[str, Any] | None = None) -> None:
        """Append the record of one frame (see `frame_record`)."""
        self._append(json.dumps(frame_record(frame, detections, image_name, extra)) + "\n")
        self.lines += 1


class MotWriter(_AppendOnlyText):
    """Tracks as MOTChallenge text: `frame,id,x,y,w,h,conf,-1,-1,-1` per box, frame 1-based.

    The frame number is the frame's position in its video plus one (so it stays true with a
    vid_stride); only tracked boxes (tracker_id set) are written, each frame's rows whole.
    """

    def write(self, frame: Any, detections: Any) -> None:
        """Append one frame's tracked boxes."""
        if detections.tracker_id is None or not len(detections):
            return
        n = int(frame.index) + 1
        self._append("".join(
            f"{n},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{float(c):.4f},-1,-1,-1\n"
            for (x1, y1, x2, y2), c, tid in zip(detections.xyxy.tolist(), detections.confidence,
                                                 detections.tracker_id)))


def frame_stem(frame: Any) -> str:
    """The file stem of one frame's label file or crops: the image's stem for image files,
    `<source>_<n>` for video and stream frames, n the 1-based frame number (as Ultralytics
    names them)."""
    return frame.path.stem if getattr(frame, "path", None) is not None else f"{frame.source}_{frame.index + 1}"


class TxtLabelWriter:
    """YOLO-format labels, `class cx cy w h` normalised to the image size (reusable as training
    labels), with a sixth column `conf` when `save_conf`. One file per frame, named by `frame_stem`.
    """

    def __init__(self, directory: str | Path, save_conf: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.save_conf = save_conf
        self.files = 0

    def write(self, frame: Any, detections: Any, stem: str | None = None) -> Path:
        """Write one frame's label file, whole or not at all; `stem` overrides its name."""
        lines = detections.yolo_lines(save_conf=self.save_conf, shape=frame.image.shape[:2])
        path = self.directory / f"{stem or frame_stem(frame)}.txt"
        write_file_atomic(path, "".join(line + "\n" for line in lines).encode())
        self.files += 1
        return path

    def close(self) -> None:
        """Nothing to release (one file per frame, each closed when written)."""


def image_output_stems(paths: Iterable[Path]) -> dict[Path, str]:
    """A unique, readable output stem for each image file of a run (outputs share a directory).

    A file keeps its own stem unless another file has the same one (compared ignoring case);
    such a group gets what tells its files apart: the parent directory's name (cam1_img,
    cam2_img), else the suffix (a_jpg, a_png), else both, else a number.
    """
    groups: dict[str, list[Path]] = {}
    for path in dict.fromkeys(paths):
        groups.setdefault(path.stem.casefold(), []).append(path)
    stems = {group[0]: group[0].stem for group in groups.values() if len(group) == 1}
    taken = set(groups)
    for group in (g for g in groups.values() if len(g) > 1):
        for name in (lambda p: f"{p.parent.name}_{p.stem}", lambda p: f"{p.stem}_{p.suffix[1:]}",
                     lambda p: f"{p.parent.name}_{p.stem}_{p.suffix[1:]}"):
            names = [name(p) for p in group]
            keys = {n.casefold() for n in names}
            if len(keys) == len(group) and not keys & taken:
                break
        else:
            names = []
            for p in group:
                n = 1
                while f"{p.stem}_{n}".casefold() in taken | {m.casefold() for m in names}:
                    n += 1
                names.append(f"{p.stem}_{n}")
        taken |= {n.casefold() for n in names}
        stems.update(zip(group, names))
    return stems


class CropWriter:
    """Each detected box cut from the original frame: `<dir>/<class name>/<frame stem>_<k>.jpg`,
    k the 1-based position of the detection in its frame (the line of its label file)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.files = 0

    def write(self, frame: Any, detections: Any, stem: str | None = None) -> list[Path]:
        """Write the crops of one frame; `stem` overrides the frame's stem in their names."""
        h, w = frame.image.shape[:2]
        stem, paths = stem or frame_stem(frame), []
        for k, (box, cls) in enumerate(zip(np.asarray(detections.xyxy).reshape(-1, 4), detections.class_id), 1):
            x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
            x2, y2 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
            if x2 <= x1 or y2 <= y1:
                continue
            name = _safe_name(detections.names.get(int(cls), str(int(cls))))
            paths.append(write_image(self.directory / name / f"{stem}_{k}.jpg", frame.image[y1:y2, x1:x2]))
        self.files += len(paths)
        return paths


def _safe_name(name: str) -> str:
    """A class name usable as a directory name."""
    return "".join(c if c.isalnum() or c in "-_. " else "_" for c in name).strip(" .") or "class"


def next_run_dir(root: str | Path = "runs/detect") -> Path:
    """`root/<n>` for the smallest n ≥ 1 not taken yet (not created here)."""
    root = Path(root)
    n = 1
    while (root / str(n)).exists():
        n += 1
    return root / str(n)


class SourceOutputs:
    """Everything written for one source: annotated media, JSON lines, label files, crops.

    Video and live sources get `<dir>/<name>.mp4`; image sources get `<dir>/<file name>`, or
    `<dir>/<stem from stems><suffix>` when `stems` names the file (see image_output_stems:
    files of a run with the same name must not overwrite each other). `<dir>/<name>.jsonl`,
    `<dir>/labels/` and `<dir>/crops/` come with save_json / save_txt / save_crop (`save_conf`
    adds the confidence to the labels), `<dir>/mot/<name>.txt` (MOTChallenge tracks) with
    save_mot. Writers open on the first frame (a video needs its size) and `close()` finalises
    them.
    """

    def __init__(
        self,
        directory: Path,
        source: Any,
        save_media: bool,
        save_json: bool,
        save_txt: bool,
        on_encoded: Any = None,
        stems: dict[Path, str] | None = None,
        save_conf: bool = False,
        save_crop: bool = False,
        save_mot: bool = False,
    ) -> None:
        self.directory = directory
        self.stems = stems or {}
        self.source = source
        self.save_media = save_media
        self.save_json = save_json
        self.save_txt = save_txt
        self.save_conf = save_conf
        self.save_mot = save_mot
        self.on_encoded = on_encoded
        self.video: VideoWriter | None = None
        self.jsonl: JsonlWriter | None = None
        self.labels: TxtLabelWriter | None = None
        self.crops: CropWriter | None = CropWriter(directory / "crops") if save_crop else None
        self.mot: MotWriter | None = None
        self.paths: list[Path] = []

    def write(self, frame: Any, detections: Any, annotated: np.ndarray | None,
              extra: dict[str, Any] | None = None) -> None:
        """Write one frame's outputs (`annotated` is the drawn image, needed when saving media;
        `extra` adds keys to the frame's JSON line)."""
        stem = None if frame.path is None else self.stems.get(frame.path, frame.path.stem)
        image_name = None if frame.path is None else f"{stem}{frame.path.suffix}"
        if self.save_media and annotated is not None:
            if image_name is not None:
                self.paths.append(write_image(self.directory / image_name, annotated))
            else:
                if self.video is None:
                    h, w = annotated.shape[:2]
                    fps = (self.source.fps or 25.0) / getattr(self.source, "vid_stride", 1)
                    self.video = VideoWriter(self.directory / f"{self.source.name}.mp4", w, h, fps,
                                             on_encoded=self.on_encoded)
                    self.paths.append(self.video.path)
                self.video.write(annotated)
        if self.save_json:
            if self.jsonl is None:
                self.jsonl = JsonlWriter(self.directory / f"{self.source.name}.jsonl")
                self.paths.append(self.jsonl.path)
            self.jsonl.write(frame, detections, image_name, extra)
        if self.save_mot:
            if self.mot is None:
                self.mot = MotWriter(self.directory / "mot" / f"{self.source.name}.txt")
                self.paths.append(self.mot.path)
            self.mot.write(frame, detections)
        if self.save_txt:
            if self.labels is None:
                self.labels = TxtLabelWriter(self.directory / "labels", self.save_conf)
                self.paths.append(self.labels.directory)
            self.labels.write(frame, detections, stem)
        if self.crops is not None:
            self.crops.write(frame, detections, stem)

    def close(self) -> None:
        """Finalise every writer (the video's container index included); safe to call twice."""
        try:
            if self.video is not None:
                self.video.close()
        finally:
            for writer in (self.jsonl, self.mot):
                if writer is not None:
                    writer.close()

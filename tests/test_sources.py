"""Frame sources on the real fixture media: resolving specs, decoding, broken files, live reconnects."""

from __future__ import annotations

import logging
import re
import shutil
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_yolo.errors import SourceError
from edge_yolo.sources import LiveSource, VideoFile, available_cores, resolve_sources


def faststart_copy(video: Path, out: Path) -> Path:
    """Remux (no re-encode) with the index first, as cameras and web exports write mp4s;
    truncating such a file leaves a readable beginning."""
    import av

    with av.open(str(video)) as src, av.open(str(out), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            dst.mux(packet)
    return out


@pytest.fixture(scope="module")
def truncated_video(tmp_path_factory: pytest.TempPathFactory, video_path: Path) -> Path:
    tmp = tmp_path_factory.mktemp("trunc")
    full = faststart_copy(video_path, tmp / "full.mp4")
    data = full.read_bytes()
    out = tmp / "cut.mp4"
    out.write_bytes(data[: len(data) * 2 // 5])
    return out


def test_video_file_decodes_every_frame_with_times(video_path: Path) -> None:
    src = VideoFile(video_path)
    assert (len(src), src.fps) == (150, 25.0)
    frames = list(src)
    assert [f.index for f in frames] == list(range(150))
    assert frames[0].image.shape == (720, 1280, 3) and frames[0].image.dtype == np.uint8
    assert frames[50].time == pytest.approx(2.0)
    assert not src.truncated


def test_vid_stride_keeps_original_indices(video_path: Path) -> None:
    src = VideoFile(video_path, vid_stride=7)
    frames = list(src)
    assert len(src) == len(frames) == 22
    assert [f.index for f in frames[:3]] == [0, 7, 14]
    assert frames[1].time == pytest.approx(7 / 25)


def test_opencv_decoder_gives_the_same_frames(video_path: Path) -> None:
    pyav = VideoFile(video_path, vid_stride=50)
    ocv = VideoFile(video_path, vid_stride=50, decoder="opencv")
    a, b = list(pyav), list(ocv)
    assert [f.index for f in a] == [f.index for f in b] == [0, 50, 100]
    for fa, fb in zip(a, b):  # both decode with FFmpeg; colour conversion may round differently
        assert np.abs(fa.image.astype(int) - fb.image.astype(int)).mean() < 2.0


def test_decoder_sized_to_its_share_of_the_cores_gives_the_same_frames(video_path: Path) -> None:
    """With more sources than cores each video decodes on one thread, the same pixels as
    FFmpeg's own threading."""
    own = VideoFile(video_path, vid_stride=10)
    shared = VideoFile(video_path, vid_stride=10)
    shared.share_cpu(4 * available_cores())
    assert (own.decode_threads, shared.decode_threads) == (0, 1)
    pairs = list(zip(own, shared, strict=True))
    assert len(pairs) == 15
    for a, b in pairs:
        np.testing.assert_array_equal(a.image, b.image)


def test_truncated_video_yields_its_readable_part(truncated_video: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = VideoFile(truncated_video)
    with caplog.at_level(logging.WARNING):
        frames = list(src)
    assert 20 < len(frames) < 150
    assert src.truncated
    assert [f.index for f in frames] == list(range(len(frames)))
    assert any("truncated" in r.getMessage() for r in caplog.records)


def test_unreadable_videos_fail_at_resolve(tmp_path: Path, video_path: Path) -> None:
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    cut = tmp_path / "cut.mp4"  # index (moov) at the end: nothing is readable without it
    cut.write_bytes(video_path.read_bytes()[:500_000])
    for bad in (noise, text, cut):
        with pytest.raises(SourceError, match="cannot read video"):
            resolve_sources(str(bad))


def test_resolve_every_spec_kind(tmp_path: Path, val_images: list[Path], video_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for img in val_images[:3]:
        shutil.copy(img, folder)
    shutil.copy(video_path, folder / "clip.mp4")
    (folder / "readme.md").write_text("ignored")

    image = resolve_sources(str(val_images[0]))
    assert [(s.kind, len(s)) for s in image] == [("images", 1)]

    kinds = [(s.kind, s.name, s.length) for s in resolve_sources(folder)]
    assert kinds == [("images", "mixed", 3), ("video", "clip", 150)]

    globbed = resolve_sources(str(folder / "*.jpg"))
    assert [len(s) for s in globbed] == [3]

    listing = tmp_path / "list.txt"
    listing.write_text(f"# sources\nmixed/clip.mp4\n{val_images[0]}\n\n")
    assert [s.kind for s in resolve_sources(listing)] == ["video", "images"]

    live = resolve_sources(["0", "rtsp://camera.local/stream1"])
    assert [(s.kind, s.live) for s in live] == [("webcam", True), ("stream", True)]
    assert live[0].target == 0 and live[1].name.endswith("stream1")

    twice = resolve_sources([video_path, video_path])
    assert [s.name for s in twice] == ["video", "video_2"]
    assert [s.source_index for s in twice] == [0, 1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.jpg", "no such file"),
        ("nothing/*.jpg", "no images or videos match"),
        ("notes.xyz", "neither an image nor a video"),
        ("empty", "holds no images or videos"),
        ("empty.txt", "is empty"),
    ],
)
def test_bad_specs_raise_source_error(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "notes.xyz").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    with pytest.raises(SourceError, match=message):
        resolve_sources(str(tmp_path / spec))


def test_corrupt_image_is_skipped_with_a_warning(tmp_path: Path, val_images: list[Path],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    for img in val_images[:2]:
        shutil.copy(img, tmp_path)
    (tmp_path / "00000b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src,) = resolve_sources(tmp_path)
    with caplog.at_level(logging.WARNING):
        frames = list(src)
    assert [f.path.name for f in frames] == ["00000.jpg", "00001.jpg"]
    assert [p.name for p in src.skipped] == ["00000b.jpg"]
    assert any("00000b.jpg" in r.getMessage() for r in caplog.records)


class FlakyCamera:
    """A capture that delivers `frames` real images and then drops (a camera losing its link)."""

    def __init__(self, images: list[np.ndarray], frames: int) -> None:
        self.images, self.left, self.opened = images, frames, True

    def isOpened(self) -> bool:  # noqa: N802
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, self.images[self.left % len(self.images)]

    def release(self) -> None:
        self.opened = False


class Closed(FlakyCamera):
    def __init__(self) -> None:
        super().__init__([], 0)
        self.opened = False


def test_live_source_reconnects_then_gives_up(val_images: list[Path], caplog: pytest.LogCaptureFixture) -> None:
    images = [cv2.imread(str(p)) for p in val_images[:3]]
    # Connection attempts: up (4 frames), down, up (3 frames), then down for good.
    script = [FlakyCamera(images, 4), Closed(), FlakyCamera(images, 3)] + [Closed()] * 10
    attempts: list[str] = []

    def opener(target: str | int) -> FlakyCamera:
        attempts.append(str(target))
        return script[len(attempts) - 1]

    src = LiveSource("rtsp://cam/1", opener=opener, reconnects=2, backoff=0.01)
    with caplog.at_level(logging.WARNING):
        frames = list(islice(src, 100))
    assert [f.index for f in frames] == list(range(7))
    assert all(f.source == src.name for f in frames)
    assert len(attempts) == 1 + 2 + 2  # first open, 1 failed + 1 good retry, then 2 failed retries
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    warnings = [re.sub(r"failed after [0-9.]+ s", "failed after T s", w) for w in warnings]
    dropped = "stream rtsp://cam/1 dropped; reconnecting"
    retry = "cannot open stream rtsp://cam/1: failed after T s (attempt 1 of 2); retrying in 0.02 s"
    last = "cannot open stream rtsp://cam/1: failed after T s (attempt 2 of 2); no attempts left"
    assert warnings == [dropped, retry, dropped, retry, last,
                        "stream rtsp://cam/1 lost; gave up after 2 reconnect attempts"]
    assert src.lost


def test_live_source_that_never_opens_raises(tmp_path: Path) -> None:
    src = LiveSource("rtsp://nowhere/x", opener=lambda t: Closed(), reconnects=1, backoff=0.01)
    with pytest.raises(SourceError, match="cannot open stream rtsp://nowhere/x"):
        list(src)


def test_unreachable_stream_says_what_it_retries(caplog: pytest.LogCaptureFixture) -> None:
    """A real connection attempt (OpenCV's FFmpeg) to a closed local port, with short back-off."""
    url = "rtsp://127.0.0.1:9/none"
    src = LiveSource(url, reconnects=2, backoff=0.01)
    with caplog.at_level(logging.WARNING), pytest.raises(SourceError, match=f"cannot open stream {url} \\(tried 3 times\\)"):
        list(src)
    warnings = [re.sub(r"failed after [0-9.]+ s", "failed after T s", r.getMessage())
                for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"cannot open stream {url}: failed after T s (attempt 1 of 3); retrying in 0.02 s",
                        f"cannot open stream {url}: failed after T s (attempt 2 of 3); retrying in 0.04 s",
                        f"cannot open stream {url}: failed after T s (attempt 3 of 3); no attempts left"]


def test_missing_webcam_fails_at_once_without_retries(caplog: pytest.LogCaptureFixture) -> None:
    """A camera that does not open (a stand-in: no webcam can be attached here) is tried once."""
    attempts: list[str | int] = []

    def opener(target: str | int) -> Closed:
        attempts.append(target)
        return Closed()

    src = LiveSource(3, opener=opener, reconnects=5, backoff=10.0)
    with caplog.at_level(logging.WARNING), pytest.raises(
            SourceError, match="^cannot open webcam 3: no camera with that index, or it is in use$"):
        list(src)
    assert attempts == [3] and not caplog.records


def test_live_source_on_a_real_capture(video_path: Path) -> None:
    """No RTSP server can run here: a local file through cv2.VideoCapture stands in for the
    stream (same code path), ending when the 'stream' drops and no reconnect is allowed."""
    src = LiveSource(str(video_path), vid_stride=10, reconnects=0)
    frames = list(islice(src, 100))
    assert [f.index for f in frames] == list(range(0, 150, 10))
    assert src.fps == pytest.approx(25.0)
    assert frames[1].time >= frames[0].time


def test_stop_ends_a_live_source_promptly(val_images: list[Path]) -> None:
    images = [cv2.imread(str(val_images[0]))]
    src = LiveSource(1, opener=lambda t: FlakyCamera(images, 10**9))
    it = iter(src)
    next(it)
    src.stop.set()
    assert len(list(islice(it, 100))) <= 1

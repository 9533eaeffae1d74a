"""Sources at the edges: a list of a thousand videos, a broken video among good files in a
directory, and a stream server that accepts connections but never answers."""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from edge_yolo import sources
from edge_yolo.errors import SourceError
from edge_yolo.sources import LiveSource, resolve_sources


def test_a_list_of_a_thousand_videos_holds_no_file_open(tmp_path: Path, video_path: Path) -> None:
    listing = tmp_path / "videos.txt"
    listing.write_text(f"{video_path}\n" * 1000)
    proc = psutil.Process()
    before = proc.num_fds()
    resolved = resolve_sources(listing)
    assert len(resolved) == 1000 and resolved[-1].length == 150
    assert proc.num_fds() - before < 10  # each video was probed and closed again
    frames = [next(iter(s)).index for s in (resolved[0], resolved[999])]  # opened again when read
    assert frames == [0, 0]
    for s in resolved:
        s.close()
    assert proc.num_fds() - before < 10


def test_broken_video_in_a_directory_is_skipped(tmp_path: Path, video_path: Path, val_images: list[Path],
                                                caplog: pytest.LogCaptureFixture) -> None:
    shutil.copy(val_images[0], tmp_path)
    shutil.copy(video_path, tmp_path / "good.mp4")
    (tmp_path / "broken.mp4").write_bytes(video_path.read_bytes()[:300_000])  # no index (moov)
    with caplog.at_level(logging.WARNING):
        resolved = resolve_sources(tmp_path)
    assert [(s.kind, s.name) for s in resolved] == [("images", tmp_path.name), ("video", "good")]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("skipped cannot read video") and "broken.mp4" in warning
    with pytest.raises(SourceError, match="broken.mp4"):  # named on its own, it is still an error
        resolve_sources(tmp_path / "broken.mp4")
    (tmp_path / "good.mp4").unlink()
    (tmp_path / val_images[0].name).unlink()
    with pytest.raises(SourceError, match="holds no images or videos"):
        resolve_sources(tmp_path)


@pytest.fixture()
def silent_server() -> tuple[str, list[socket.socket]]:
    """A TCP server that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    yield f"rtsp://127.0.0.1:{server.getsockname()[1]}/cam", accepted
    server.close()
    for conn in accepted:
        conn.close()


def test_silent_stream_server_reports_every_attempt(silent_server: tuple[str, list[socket.socket]],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    url, accepted = silent_server
    monkeypatch.setattr(sources, "STREAM_TIMEOUT_S", 0.5)  # 10 s in real use
    src = LiveSource(url, reconnects=1, backoff=0.01)  # the real OpenCV/FFmpeg capture
    start = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(SourceError, match="tried 2 times"):
        list(src)
    assert time.monotonic() - start < 5
    assert len(accepted) >= 2  # it really connected twice
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2
    for n, message in enumerate(messages, 1):
        assert message.startswith(f"cannot open stream {url}: failed after 0.")
        assert f"(attempt {n} of 2)" in message

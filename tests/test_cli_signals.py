"""What survives which signal: `edge-yolo detect` on the fixture video in a real subprocess,
stopped by a repeated SIGTERM (as GNU `timeout` sends), SIGHUP, SIGKILL or a Ctrl-C while stopping;
the output MP4 is then decoded with PyAV and its frames counted against the JSON lines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

GOP = 25  # one keyframe a second at the fixture video's 25 fps
ENCODER_LAG = 8  # frames queued for the encoder thread plus libx264's frame-thread delay
HANDLED = 0.2  # seconds for a signal to reach the Python handler (a repeat sent sooner merges into it)


def start(video: Path, model: Path, out: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("edge-yolo")
    return subprocess.Popen([str(exe), "detect", str(video), "--model", str(model), "--device", "cpu",
                             "--save-json", "-o", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lines(proc: subprocess.Popen, path: Path, n: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.02)
    pytest.fail(f"the run ended or stalled before writing {n} JSON lines")


def playable_frames(path: Path) -> int:
    """Frames a player gets out of the file: decoded until the first error (0 without an index)."""
    frames = 0
    try:
        with av.open(str(path)) as container:
            for _ in container.decode(video=0):
                frames += 1
    except av.error.FFmpegError:
        pass
    return frames


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("signals", [[signal.SIGTERM, signal.SIGTERM], [signal.SIGHUP]], ids=["SIGTERM x2", "SIGHUP"])
def test_stop_signals_finalise_the_outputs(signals: list[int], tmp_path: Path, ul_onnx: Path, video_path: Path) -> None:
    out = tmp_path / "run"
    proc = start(video_path, ul_onnx, out)
    wait_for_lines(proc, out / "video.jsonl", 5)
    for signum in signals:  # the second one lands while the outputs are being finalised
        proc.send_signal(signum)
        time.sleep(HANDLED)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signals[0], err
    assert "interrupted after" in err and "Traceback" not in err
    written = len(json_lines(out / "video.jsonl"))
    assert 5 <= written < 150
    assert playable_frames(out / "video.mp4") == written


def test_sigkill_loses_at_most_the_last_second(tmp_path: Path, ul_onnx: Path, video_path: Path) -> None:
    out = tmp_path / "run"
    proc = start(video_path, ul_onnx, out)
    wait_for_lines(proc, out / "video.jsonl", 2 * GOP + ENCODER_LAG)
    proc.kill()
    proc.communicate(timeout=60)
    written = len(json_lines(out / "video.jsonl"))
    playable = playable_frames(out / "video.mp4")
    assert playable >= GOP and playable % GOP == 0  # whole one-second fragments
    assert written - GOP - ENCODER_LAG <= playable <= written


def test_ctrl_c_while_stopping_aborts_at_once(tmp_path: Path, ul_onnx: Path, video_path: Path) -> None:
    # SIGHUP then SIGINT back to back: two different signals never merge, and CPython runs the
    # lower-numbered SIGHUP's handler first, so the Ctrl-C always lands while the run is stopping.
    out = tmp_path / "run"
    proc = start(video_path, ul_onnx, out)
    wait_for_lines(proc, out / "video.jsonl", GOP + ENCODER_LAG)
    proc.send_signal(signal.SIGHUP)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert "error: aborted" in err and "Traceback" not in err and "interrupted after" not in err
    written = len(json_lines(out / "video.jsonl"))  # every line whole
    assert 0 <= written - playable_frames(out / "video.mp4") <= GOP + ENCODER_LAG

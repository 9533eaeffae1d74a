"""`detect` on a really full disk: the outputs go to a tiny tmpfs mounted in a private mount
namespace (`unshare -m`, no change outside this test), so writes fail with the kernel's own
ENOSPC. Whatever was written stays whole (JSON lines end with a complete line, no empty or
partial label file, no temporary files), the fragmented MP4 plays up to its last flushed
fragment, and the error is one line saying why."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from test_cli_signals import playable_frames

ROOT = Path(__file__).resolve().parent.parent


def _can_mount() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


pytestmark = pytest.mark.skipif(not _can_mount(), reason="needs unshare -m and tmpfs mounts (root or user namespaces)")


def detect_on_tiny_disk(size: str, args: list[str], tmp_path: Path) -> tuple[int, str, Path]:
    """Run `edge-yolo detect ARGS -o <tmpfs of SIZE>/run`; returns (exit code, stderr, a copy of run/)."""
    mnt, keep = tmp_path / "mnt", tmp_path / "keep"
    mnt.mkdir()
    keep.mkdir()
    cli = [sys.executable, "-c", "from edge_yolo.cli import main; main()", "detect", *map(str, args),
           "--quiet", "-o", str(mnt / "run")]
    script = (f"mount -t tmpfs -o size={size} tmpfs {mnt} && {shlex.join(cli)}; rc=$?; "
              f"cp -a {mnt / 'run'} {keep}/; exit $rc")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=600)
    return proc.returncode, proc.stderr, keep / "run"


def assert_one_line_no_space(err: str, written: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [f"error: writing {written} failed: no space left on device"], err
    assert "Traceback" not in err


def test_json_lines_end_with_a_whole_line(ul_onnx: Path, video_path: Path, tmp_path: Path) -> None:
    code, err, run = detect_on_tiny_disk("16k", [video_path, "-m", ul_onnx, "--device", "cpu", "--no-save",
                                                 "--save-json"], tmp_path)
    assert code == 1
    assert_one_line_no_space(err, f"{tmp_path / 'mnt' / 'run' / 'video.jsonl'}")
    text = (run / "video.jsonl").read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    assert 10 < len(records) < 150 and [r["frame"] for r in records] == list(range(len(records)))


def test_no_empty_or_partial_label_file(ul_onnx: Path, video_path: Path, reference_video: list[dict],
                                        tmp_path: Path) -> None:
    code, err, run = detect_on_tiny_disk("16k", [video_path, "-m", ul_onnx, "--device", "cpu", "--no-save",
                                                 "--save-txt"], tmp_path)
    assert code == 1 and "no space left on device" in err and err.count("error:") == 1
    assert_whole_label_files(run / "labels", reference_video)


def assert_whole_label_files(labels: Path, reference_video: list[dict]) -> None:
    files = sorted(labels.iterdir())
    assert files and all(f.name.startswith("video_") and f.suffix == ".txt" for f in files)  # no .partial files
    for f in files:
        lines = f.read_text().splitlines()
        expected = len(reference_video[int(f.stem.split("_")[1]) - 1]["cls"])  # names are 1-based
        assert abs(len(lines) - expected) <= 1, f  # never 0 lines for a frame with detections
        assert all(len(line.split()) == 5 for line in lines)  # class cx cy w h


def test_full_disk_while_writing_the_video(ul_onnx: Path, video_path: Path, reference_video: list[dict],
                                           tmp_path: Path) -> None:
    code, err, run = detect_on_tiny_disk("1m", [video_path, "-m", ul_onnx, "--device", "cpu", "--save-json",
                                                "--save-txt"], tmp_path)
    assert code == 1
    assert_one_line_no_space(err, f"{tmp_path / 'mnt' / 'run' / 'video.mp4'}")
    # fragmented MP4: every fragment flushed before the disk filled still plays
    assert playable_frames(run / "video.mp4") >= 25
    text = (run / "video.jsonl").read_text()
    assert text.endswith("\n") and all(json.loads(line) for line in text.splitlines())
    assert_whole_label_files(run / "labels", reference_video)

"""README's first two commands are exactly what CI runs (.ci/run), so they stay true; its
marked examples run as written; device spellings agree with the commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README has no bash block"
    return [ln.strip() for ln in block.group(1).splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_readme_first_two_commands_are_ci() -> None:
    commands = readme_commands()[:2]
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert len(commands) == 2
    for command in commands:
        assert command in ci, f"README command not in .ci/run: {command}"
    assert ci.index(commands[0]) < ci.index(commands[1])
    assert "edge-yolo detect examples/assets/video.mp4 --model examples/assets/yolo12n_shapes.pt --save-json" in commands[0]
    assert all((ROOT / p).exists() for p in ("examples/assets/video.mp4", "examples/assets/yolo12n_shapes.pt"))


def readme_block(marker: str) -> str:
    """The code block that follows `<!-- readme-test: marker -->` in the README."""
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- readme-test: {marker} -->\n```\w+\n(.*?)```", text, re.S)
    assert found, f"README has no block marked {marker}"
    return found.group(1)


def test_detections_example_runs(tmp_path) -> None:
    """The README's Detections example, run as written from a folder laid out like the repository."""
    import subprocess
    import sys

    (tmp_path / "examples").symlink_to(ROOT / "examples")
    code = readme_block("detections")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split(" (720, 1280) ")[1].startswith("{'preprocess'")
    assert (tmp_path / "annotated.jpg").stat().st_size > 10_000
    labels = (tmp_path / "labels" / "frame0.txt").read_text().splitlines()
    assert labels and all(len(line.split()) == 6 for line in labels)


def test_device_spellings_agree() -> None:
    """README, every command's --device help and the unknown-device error use one spelling."""
    from click.testing import CliRunner

    from edge_yolo.backends.select import parse_device
    from edge_yolo.cli import cli
    from edge_yolo.errors import BackendUnavailableError

    spelling = "openvino[:CPU|GPU|NPU|AUTO]"
    readme = (ROOT / "README.md").read_text()
    assert readme.count(spelling) >= 3 and not re.search(r"openvino\[:CPU\|GPU(\|AUTO)?\]", readme)
    for command in ("detect", "val", "benchmark", "info"):
        help_text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
        assert spelling in help_text, command
    with pytest.raises(BackendUnavailableError) as exc:
        parse_device("quantum")
    assert spelling in str(exc.value)

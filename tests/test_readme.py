"""README's first two commands are exactly what CI runs (.ci/run), so they stay true."""

from __future__ import annotations

import re
from pathlib import Path

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

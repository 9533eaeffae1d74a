"""Usage mistakes end like every other error: one `error:` line, non-zero exit, no usage dump."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EDGE_YOLO = str(Path(sys.executable).with_name("edge-yolo"))


@pytest.mark.parametrize("args, says", [
    (["detect"], "Missing argument 'SOURCES...'"),
    (["export", "x.pt", "--int8-scope", "bad"], "'bad' is not one of"),
    (["nosuch"], "No such command 'nosuch'"),
])
def test_usage_error_is_one_line(args: list[str], says: str) -> None:
    result = subprocess.run([EDGE_YOLO, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0]
    assert "--help" in lines[0] and "Traceback" not in result.stderr and result.stdout == ""

"""The progress display of `edge-yolo detect`: a tqdm bar on stderr (frames/s), or nothing."""

from __future__ import annotations

import logging
import sys
from typing import Any


class Progress:
    """A bar for inputs of known length, a live frames counter with frames/s for streams.

    Disabled entirely (no output at all) when `enabled` is False. While the bar is shown,
    log records are written through tqdm so warnings do not break the bar's line.
    """

    def __init__(self, total: int | None, enabled: bool = True, desc: str = "detect") -> None:
        self._bar: Any = None
        self._handler: logging.Handler | None = None
        if not enabled:
            return
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, dynamic_ncols=True,
                         smoothing=0.1, mininterval=0.5)
        self._handler = _TqdmHandler(self._bar)
        root = logging.getLogger()
        self._replaced = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
        for h in self._replaced:
            self._handler.setFormatter(h.formatter)
            self._handler.setLevel(h.level)
            root.removeHandler(h)
        root.addHandler(self._handler)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def write(self, line: str) -> None:
        """Print a line on stderr above the bar (nothing when disabled)."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)

    def close(self) -> None:
        if self._bar is None:
            return
        self._bar.close()
        root = logging.getLogger()
        root.removeHandler(self._handler)
        for h in self._replaced:
            root.addHandler(h)
        self._bar = None


class _TqdmHandler(logging.Handler):
    def __init__(self, bar: Any) -> None:
        super().__init__()
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        self.bar.write(self.format(record), file=sys.stderr)

"""Giving the C heap's free memory back to the operating system between sources."""

from __future__ import annotations

import ctypes
import sys
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; musl has none
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Return the free pages of every malloc arena to the OS (glibc's malloc_trim; a no-op
    elsewhere).

    A source's reader, decoder and encoder threads allocate their frame buffers in their own
    glibc arenas, where freed buffers stay as fragmented free space that later threads seldom
    reuse: over a long list of videos the process would grow by a few MiB per source."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

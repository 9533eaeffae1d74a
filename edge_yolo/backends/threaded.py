"""A bounded, thread-backed AsyncInfer for backends without a native async queue."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from .base import ResultCallback


class ThreadedAsyncInfer:
    """Runs `infer` on `jobs` worker threads; `submit` blocks while all of them are busy."""

    def __init__(self, infer: Callable[[np.ndarray], np.ndarray], callback: ResultCallback, jobs: int = 1) -> None:
        self._infer = infer
        self._callback = callback
        self.jobs = max(1, jobs)
        self._slots = threading.BoundedSemaphore(self.jobs)
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="edge-yolo-infer")
        self._futures: list[Future] = []

    def _run(self, inputs: np.ndarray, userdata: Any) -> None:
        try:
            self._callback(self._infer(inputs), userdata)
        finally:
            self._slots.release()

    def submit(self, inputs: np.ndarray, userdata: Any) -> None:
        """Start inference on a copy-free view of `inputs` (do not modify it until the callback)."""
        self._raise_failed()
        self._slots.acquire()
        self._futures.append(self._pool.submit(self._run, inputs, userdata))

    def _raise_failed(self) -> None:
        # One pass: each future is asked done() once, so one that finishes mid-scan is either
        # raised here or kept for the next check, never dropped.
        pending, finished = [], []
        for f in self._futures:
            (finished if f.done() else pending).append(f)
        self._futures = pending
        for f in finished:
            f.result()  # re-raises a worker's exception in the caller

    def wait_all(self) -> None:
        """Block until every submitted request has called back; re-raise the first failure."""
        futures, self._futures = self._futures, []
        errors = [f.exception() for f in futures]  # waits for every one, failed or not
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

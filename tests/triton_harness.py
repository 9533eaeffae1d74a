"""A real Triton Inference Server for tests and benchmarks: nvidia-pytriton's bundled tritonserver.

nvidia-pytriton pins numpy<2, so it lives in its own virtual environment (default
`<repo>/.venv-triton`, or $EDGE_YOLO_TRITON_VENV), created once from the package registry
(about 20 s with a warm pip cache) and reused. `TritonServer` serves an edge-yolo model
repository through `triton_server/serve.py` (ONNX models on the Python backend, see there) on
free loopback ports and stops it (SIGINT, then SIGKILL after a grace period).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVE = Path(__file__).resolve().parent / "triton_server" / "serve.py"
PACKAGES = ["nvidia-pytriton", "onnxruntime", "numpy<2"]
START_TIMEOUT_S = 90.0


class TritonEnvError(RuntimeError):
    """The Triton server environment cannot be created or the server does not start."""


def venv_dir() -> Path:
    return Path(os.environ.get("EDGE_YOLO_TRITON_VENV", ROOT / ".venv-triton"))


def ensure_server_env() -> Path:
    """The Python of the Triton server environment, created on first use."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    marker = venv / ".edge-yolo-ready"
    if marker.is_file():
        return python
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PACKAGES]]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise TritonEnvError(
                f"cannot create the Triton test server environment {venv} ({' '.join(PACKAGES)} from the "
                f"package registry): {tail}")
    marker.write_text(" ".join(PACKAGES) + "\n")
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TritonServer:
    """tritonserver on 127.0.0.1 serving `repository`; use as a context manager."""

    def __init__(self, repository: Path, workdir: Path) -> None:
        self.repository = Path(repository)
        self.workdir = Path(workdir)
        self.http_port, self.grpc_port = free_port(), free_port()
        self.log_path = self.workdir.parent / f"{self.workdir.name}.log"
        self.process: subprocess.Popen | None = None
        self.start_s = self.stop_s = 0.0

    def grpc_url(self, model: str) -> str:
        return f"grpc://127.0.0.1:{self.grpc_port}/{model}"

    def http_url(self, model: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/{model}"

    def start(self) -> TritonServer:
        python = ensure_server_env()
        t0 = time.perf_counter()
        self.workdir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(python), str(SERVE), str(self.repository), str(self.workdir),
                 "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TritonEnvError(f"tritonserver exited with {self.process.returncode}: {self._log_tail()}")
            if self._ready():
                self.start_s = time.perf_counter() - t0
                return self
            time.sleep(0.2)
        self.stop()
        raise TritonEnvError(f"tritonserver not ready after {START_TIMEOUT_S:.0f} s: {self._log_tail()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v2/health/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def _log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return " | ".join(line for line in lines[-8:] if line.strip())

    def stop(self) -> None:
        """SIGINT (Triton finishes in-flight requests), SIGKILL after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        t0 = time.perf_counter()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stop_s = time.perf_counter() - t0

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

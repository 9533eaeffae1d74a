"""Serve an edge-yolo Triton model repository on the tritonserver that nvidia-pytriton bundles.

Runs in its own environment (nvidia-pytriton, onnxruntime, numpy<2), never inside edge_yolo:

    python serve.py REPOSITORY WORKDIR --http-port 8000 --grpc-port 8001

pytriton's tritonserver has only the Python backend, so every ONNX model of REPOSITORY is
served through it: its config.pbtxt (parsed with Triton's own protobuf schema) keeps names,
dims, data types, batching and parameters, only the backend becomes "python" on CPU, and
onnx_model.py (ONNX Runtime on the same model.onnx) goes into each version directory.
The process then becomes tritonserver (exec), so its pid is the server's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

import pytriton

HERE = Path(__file__).resolve().parent
DIST = Path(pytriton.__file__).resolve().parent / "tritonserver"
LIBS = DIST.parent.parent / "nvidia_pytriton.libs"


def python_backend_model(src: Path, dst: Path) -> None:
    """`src` (a model directory of our export) as a Python-backend model in `dst`."""
    config = text_format.Parse((src / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    config.backend = "python"
    config.ClearField("platform")
    config.ClearField("optimization")
    for group in config.instance_group:
        group.kind = model_config_pb2.ModelInstanceGroup.KIND_CPU
        group.ClearField("gpus")
    dst.mkdir(parents=True)
    (dst / "config.pbtxt").write_text(text_format.MessageToString(config))
    for version in (p for p in src.iterdir() if p.is_dir() and p.name.isdigit()):
        (dst / version.name).mkdir()
        for onnx in version.glob("*.onnx"):
            os.symlink(onnx.resolve(), dst / version.name / onnx.name)
        shutil.copy(HERE / "onnx_model.py", dst / version.name / "model.py")


def backend_directory(workdir: Path) -> Path:
    """Triton's backends directory: the Python backend plus the stub built for this Python."""
    backends = workdir / "backends"
    shutil.copytree(DIST / "backends", backends)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    shutil.copy(DIST / "python_backend_stubs" / version / "triton_python_backend_stub",
                backends / "python" / "triton_python_backend_stub")
    return backends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    repo = workdir / "model_repository"
    repo.mkdir(parents=True)
    for model in sorted(p for p in args.repository.iterdir() if (p / "config.pbtxt").is_file()):
        python_backend_model(model, repo / model.name)
    backends = backend_directory(workdir)
    env = dict(os.environ)
    # The stub embeds libpython: it needs this Python's LIBDIR and this environment's packages.
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(LIBS), sysconfig.get_config_var("LIBDIR"), env.get("LD_LIBRARY_PATH")) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    server = str(DIST / "bin" / "tritonserver")
    os.execve(server, [
        server, f"--model-repository={repo}", f"--backend-directory={backends}",
        f"--http-port={args.http_port}", f"--grpc-port={args.grpc_port}", "--allow-metrics=false",
        "--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--exit-timeout-secs=5",
    ], env)


if __name__ == "__main__":
    main()

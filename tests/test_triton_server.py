"""The Triton backend against a real Triton Inference Server.

The server is the tritonserver that nvidia-pytriton bundles, in its own environment (see
triton_harness.py; created on first use from the package registry). It serves our exported
repository with the model's own config.pbtxt (names, dims, batching, metadata parameters);
only the backend is swapped for Python + ONNX Runtime CPU on the same model.onnx, because
pytriton's server ships the Python backend only. If that environment cannot be made (no
registry), these tests fail with that reason: they are the proof that the backend works.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from edge_yolo import Detector, Detections
from edge_yolo.errors import BackendUnavailableError, EdgeYoloError, UnsupportedModelError
from test_cli_detect import run_cli
from triton_harness import TritonEnvError, TritonServer, free_port

NAMES = {0: "circle", 1: "square", 2: "triangle"}


@pytest.fixture(scope="module")
def server(triton_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """Serves `shapes` (our export), `badshape` (the same model under a config whose input is 3-D)
    and `hung` (the same model answering after 20 s)."""
    repo = tmp_path_factory.mktemp("served") / "repo"
    shutil.copytree(triton_repository / "shapes", repo / "shapes")
    bad = repo / "badshape"
    (bad / "1").mkdir(parents=True)
    os.symlink(repo / "shapes" / "1" / "model.onnx", bad / "1" / "model.onnx")
    config = (repo / "shapes" / "config.pbtxt").read_text()
    (bad / "config.pbtxt").write_text(
        config.replace('name: "shapes"', 'name: "badshape"').replace("dims: [ 3, 320, 320 ]", "dims: [ 3, 102400 ]"))
    hung = repo / "hung"
    shutil.copytree(repo / "shapes", hung)
    (hung / "config.pbtxt").write_text(config.replace('name: "shapes"', 'name: "hung"')
                                       + 'parameters { key: "test_hang_s" value { string_value: "20" } }\n')
    try:
        running = TritonServer(repo, tmp_path_factory.mktemp("triton-work") / "server").start()
    except TritonEnvError as exc:
        pytest.fail(f"no Triton server for these tests: {exc}")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def local(triton_repository: Path) -> Detector:
    """The same exported model.onnx on local ONNX Runtime CPU."""
    return Detector(triton_repository / "shapes" / "1" / "model.onnx", device="cpu")


def as_ref(dets: list[Detections]) -> list[dict]:
    return [{"xyxy": d.xyxy.tolist(), "conf": d.confidence.tolist(), "cls": d.class_id.tolist()} for d in dets]


def assert_same(remote: list[Detections], local: list[Detections], match_fraction) -> None:
    assert sum(len(d) for d in local) >= 50
    assert min(match_fraction(as_ref(remote), as_ref(local))) >= 0.99


def test_grpc_detections_equal_local(server: TritonServer, local: Detector, val_images: list[Path],
                                     match_fraction) -> None:
    with Detector(server.grpc_url("shapes")) as remote:
        assert remote.backend_info.backend == "triton"
        assert remote.names == NAMES and remote.imgsz == (320, 320) and remote.model_info.stride == 32
        assert remote.model_info.metadata["max_batch_size"] == 8
        assert_same(remote(val_images), local(val_images), match_fraction)


def test_http_detections_equal_local(server: TritonServer, local: Detector, val_images: list[Path],
                                     match_fraction) -> None:
    with Detector(server.http_url("shapes"), device="triton") as remote:
        assert remote.names == NAMES
        assert_same(remote(val_images[:40]), local(val_images[:40]), match_fraction)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_stream_with_requests_in_flight(protocol: str, server: TritonServer, local: Detector, video_path: Path,
                                        match_fraction) -> None:
    with Detector(getattr(server, f"{protocol}_url")("shapes")) as remote:
        results = list(remote.stream(video_path, vid_stride=5, jobs=4))
    assert [f.index for f, _ in results] == list(range(0, 150, 5))  # in order despite 4 in flight
    expected = local([f.image for f, _ in results])
    assert_same([d for _, d in results], expected, match_fraction)


def test_cli_detect_and_info(server: TritonServer, local: Detector, val_images: list[Path], tmp_path: Path,
                             capfd: pytest.CaptureFixture, match_fraction) -> None:
    url = server.grpc_url("shapes")
    code, _, err = run_cli(["detect", *val_images[:8], "--model", url, "--device", "triton", "--save-json",
                            "--no-save", "--quiet", "-o", tmp_path], capfd)
    assert code == 0, err
    lines = [json.loads(line) for f in sorted(tmp_path.glob("*.jsonl")) for line in f.read_text().splitlines()]
    by_image = {line["image"]: line["detections"] for line in lines}
    got = [{"xyxy": [d["xyxy"] for d in by_image[p.name]], "conf": [d["confidence"] for d in by_image[p.name]],
            "cls": [d["class_id"] for d in by_image[p.name]]} for p in val_images[:8]]
    assert min(match_fraction(got, as_ref(local(val_images[:8])))) >= 0.99
    code, out, err = run_cli(["info", url], capfd)
    assert code == 0, err
    assert f"model:    {url}" in out and "classes:  3: 0 circle, 1 square, 2 triangle" in out
    assert "selected: triton grpc://" in out


def test_server_down_is_one_clear_error(capfd: pytest.CaptureFixture, val_images: list[Path]) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(BackendUnavailableError, match=f"cannot reach Triton at 127.0.0.1:{port}: "):
        Detector(f"grpc://127.0.0.1:{port}/shapes")
    with pytest.raises(BackendUnavailableError, match=f"cannot reach Triton at 127.0.0.1:{port}: "):
        Detector(f"http://127.0.0.1:{port}/shapes")
    code, _, err = run_cli(["detect", val_images[0], "--model", f"grpc://127.0.0.1:{port}/shapes"], capfd)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"error: cannot reach Triton at 127.0.0.1:{port}: ")


def test_model_not_ready(server: TritonServer) -> None:
    with pytest.raises(BackendUnavailableError,
                       match=r"model 'nosuch' is not ready on Triton at .*: the server has no such model "
                             r"\(it has: badshape, hung, shapes\)"):
        Detector(server.grpc_url("nosuch"))


def test_wrong_shapes(server: TritonServer) -> None:
    with pytest.raises(UnsupportedModelError, match=r"badshape on Triton .*: input images has shape \(\?, 3, 102400\); "
                                                    r"expected \(B, 3, H, W\)"):
        Detector(server.grpc_url("badshape"))
    with Detector(server.grpc_url("shapes")) as remote:
        with pytest.raises(EdgeYoloError, match=r"Triton at .* failed to run 'shapes': .*unexpected shape"):
            remote.backend.infer(np.zeros((1, 3, 640, 640), np.float32))
        with pytest.raises(UnsupportedModelError, match="fixed 320x320 input"):
            Detector(server.grpc_url("shapes"), imgsz=640)


def test_hung_server_is_an_error_not_a_hang(server: TritonServer, val_images: list[Path]) -> None:
    # A request the server never answers fails after the backend's timeout (default 60 s), in a
    # single call and in a stream, instead of blocking the caller for ever.
    image = cv2.imread(str(val_images[0]))
    with Detector(server.grpc_url("hung"), backend_options={"timeout": 1.5}) as remote:
        for run in (lambda: remote(image), lambda: list(remote.stream([str(val_images[0])]))):
            with pytest.raises(EdgeYoloError, match=r"Triton at .* failed to run 'hung': .*[Dd]eadline"):
                run()


def test_device_and_model_must_agree(server: TritonServer, triton_repository: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="is served by Triton: use device triton"):
        Detector(server.grpc_url("shapes"), device="cpu")
    with pytest.raises(BackendUnavailableError, match="device 'triton' runs models served by Triton"):
        Detector(triton_repository / "shapes" / "1" / "model.onnx", device="triton")


def test_cli_val_through_triton_equals_local_onnx(server: TritonServer, triton_repository: Path, val_dir: Path,
                                                  tmp_path: Path, capfd: pytest.CaptureFixture,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The served model and its model.onnx side by side on every device: the two impossible
    pairs are skipped with a warning, the two that run give the same mAP; the row is the URL."""
    onnx, url = triton_repository / "shapes" / "1" / "model.onnx", server.grpc_url("shapes")
    metrics, preds = tmp_path / "m.json", tmp_path / "preds.json"
    with caplog.at_level(logging.WARNING):
        code, out, err = run_cli(["val", onnx, url, "--data", val_dir, "--device", "cpu,triton",
                                  "--save-metrics", metrics, "--save-json", preds], capfd)
    assert code == 0, err
    assert f"skipped {onnx} on triton: device 'triton' runs models served by Triton" in caplog.text
    assert f"skipped {url} on cpu: {url} is served by Triton: use device triton" in caplog.text
    assert f"{url}: imgsz 320x320 (the model's fixed input)" in err          # the served dims, no --imgsz
    local, remote = json.loads(metrics.read_text())["runs"]
    assert (local["model"]["backend"], remote["model"]["backend"]) == ("onnxruntime", "triton")
    assert remote["model"]["path"] == url and remote["model"]["imgsz"] == [320, 320]
    assert remote["n_images"] == 80 and local["map50_95"] > 0.2
    for key in ("map50_95", "map50", "precision", "recall"):
        assert remote[key] == pytest.approx(local[key], abs=1e-3), key
    rows = out.splitlines()[1:3]
    assert rows[0].split()[1:3] == ["model.onnx", "onnxruntime"]
    assert rows[1].split()[1:3] == [url, "triton"] and rows[1].split()[5] == f"{remote['map50_95']:.4f}"
    tag = url.replace("://", "-").replace(":", "-").replace("/", "-")
    assert sorted(p.name for p in tmp_path.glob("preds_*.json")) == [
        "preds_1_model.onnx_onnxruntime.json", f"preds_2_{tag}_triton.json"]


def test_cli_val_http_alone_and_its_errors(server: TritonServer, val_dir: Path, tmp_path: Path,
                                           capfd: pytest.CaptureFixture) -> None:
    from test_cli_val import small_dataset

    data = small_dataset(val_dir, tmp_path / "data", 5)
    url = server.http_url("shapes")
    code, out, err = run_cli(["val", url, "--data", data, "--device", "triton", "--save-metrics",
                              tmp_path / "m.json"], capfd)
    assert code == 0, err
    payload = json.loads((tmp_path / "m.json").read_text())
    assert payload["n_images"] == 5 and payload["model"]["backend"] == "triton" and payload["map50_95"] > 0
    assert out.splitlines()[1].split()[1] == url
    for args, message in (
        (["--device", "cpu"], f"error: {url} is served by Triton: use device triton (or auto), not onnxruntime-cpu"),
        (["--imgsz", "640"], f"error: {url} has a fixed 320x320 input, so imgsz=(640, 640) cannot be used"),
    ):
        code, out, err = run_cli(["val", url, "--data", data, *args], capfd)
        assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith(message), err
    code, _, err = run_cli(["val", server.http_url("nosuch"), "--data", data], capfd)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: model 'nosuch' is not ready on Triton at ")


def test_cli_benchmark_triton_row(server: TritonServer, triton_repository: Path, val_dir: Path, tmp_path: Path,
                                  capfd: pytest.CaptureFixture) -> None:
    """One `triton` row: no file size, mAP as local ONNX gives it, latency and throughput with
    requests in flight."""
    from edge_yolo.evaluate import validate
    from test_cli_val import small_dataset

    data = small_dataset(val_dir, tmp_path / "data", 10)
    url, out_json = server.grpc_url("shapes"), tmp_path / "bench.json"
    code, out, err = run_cli(["benchmark", url, "--data", data, "--frames", "8", "--jobs", "6",
                              "--json", out_json], capfd)
    assert code == 0, err
    result = json.loads(out_json.read_text())
    assert result["model"] == url and result["frames"] == 8
    (row,) = result["results"]
    assert (row["format"], row["device"], row["backend"], row["size_mb"], row["in_flight"]) == (
        "triton", "triton", "triton", None, 6)
    assert row["runs_on"] == url and row["precision"] == "f32"
    assert 0 < row["infer_p50_ms"] <= row["latency_p50_ms"] <= row["latency_p95_ms"] and row["throughput_fps"] > 0
    local, _ = validate(triton_repository / "shapes" / "1" / "model.onnx", data, device="cpu")
    assert row["map50_95"] == pytest.approx(local.map50_95, abs=1e-3)
    table = out.splitlines()
    assert table[0].split()[-2:] == ["in", "flight"]
    assert table[2].split()[:5] == ["triton", "triton", "f32", "-", f"{row['map50_95']:.4f}"]
    assert table[2].split()[-1] == "6"


@pytest.mark.parametrize("args, message", [
    (["--formats", "onnx"], "error: --formats exports a .pt to each format; a Triton model is measured as served"),
    (["--device", "cpu"], "error: {url} is served by Triton: use device triton (or auto), not onnxruntime-cpu"),
])
def test_cli_benchmark_triton_refusals(server: TritonServer, args: list[str], message: str,
                                       capfd: pytest.CaptureFixture) -> None:
    url = server.http_url("shapes")
    code, out, err = run_cli(["benchmark", url, "--frames", "5", *args], capfd)
    assert code == 1 and out == "" and "Traceback" not in err           # after benchmark's progress lines
    assert err.splitlines()[-1].startswith(message.format(url=url)), err


@pytest.mark.parametrize("command", ["val", "benchmark"])
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_cli_val_and_benchmark_server_down(command: str, protocol: str, val_dir: Path,
                                           capfd: pytest.CaptureFixture) -> None:
    port = free_port()  # nothing listens there
    code, out, err = run_cli([command, f"{protocol}://127.0.0.1:{port}/shapes", "--data", val_dir], capfd)
    assert code == 1 and out == "" and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"error: cannot reach Triton at 127.0.0.1:{port}: "), err

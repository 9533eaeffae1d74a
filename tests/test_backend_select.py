"""Backend choice, provider options and backend behaviour.

This machine has no GPU and a CPU-only onnxruntime, so GPU availability is FAKED here by
monkeypatching `onnxruntime.get_available_providers` (and, where a GPU session must "work",
`InferenceSession.get_providers`); every session still really runs on the CPU.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from edge_yolo import read_model_info
from edge_yolo.backends import select
from edge_yolo.backends.onnxruntime import OnnxRuntimeBackend, cuda_options, session_options, tensorrt_options
from edge_yolo.backends.openvino import OpenVinoBackend
from edge_yolo.backends.select import DeviceRequest, create_backend, parse_device
from edge_yolo.errors import BackendUnavailableError
from edge_yolo.preprocess import letterbox, to_nchw, to_nhwc

GPU_PROVIDERS = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "AzureExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auto", DeviceRequest("auto")),
        ("cpu", DeviceRequest("onnxruntime-cpu")),
        ("onnxruntime-cpu", DeviceRequest("onnxruntime-cpu")),
        ("cuda", DeviceRequest("cuda", 0)),
        ("cuda:1", DeviceRequest("cuda", 1)),
        ("tensorrt:2", DeviceRequest("tensorrt", 2)),
        ("openvino", DeviceRequest("openvino", ov_device="CPU")),
        ("openvino:gpu", DeviceRequest("openvino", ov_device="GPU")),
        ("OpenVINO:AUTO", DeviceRequest("openvino", ov_device="AUTO")),
        ("torch", DeviceRequest("torch")),
    ],
)
def test_parse_device(text: str, expected: DeviceRequest) -> None:
    assert parse_device(text) == expected


@pytest.mark.parametrize("text", ["gpu", "cuda:x", "openvino:TPU", "cpu:1", ""])
def test_parse_device_rejects(text: str) -> None:
    with pytest.raises(BackendUnavailableError, match="device"):
        parse_device(text)


@pytest.fixture
def fake_gpu_ort(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[list]:
    """Pretend onnxruntime offers TensorRT and CUDA EPs; record the providers each session gets."""
    monkeypatch.setenv("EDGE_YOLO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(GPU_PROVIDERS))
    real = ort.InferenceSession
    calls: list[list] = []

    def recording(path: str, opts: object = None, providers: list | None = None, **kw: object) -> object:
        calls.append(providers or [])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # ORT warns that it drops the (fake) GPU providers
            return real(path, opts, providers=providers, **kw)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    return calls


@pytest.mark.parametrize(("device", "provider"), [("cuda", "CUDAExecutionProvider"),
                                                  ("tensorrt", "TensorrtExecutionProvider")])
def test_explicit_gpu_that_silently_falls_back_raises(ul_onnx: Path, fake_gpu_ort: list, device: str,
                                                      provider: str) -> None:
    with pytest.raises(BackendUnavailableError, match=f"{provider} was requested but onnxruntime fell back"):
        create_backend(read_model_info(ul_onnx), device)
    assert fake_gpu_ort[-1][0][0] == provider     # it really was asked for


def test_tensorrt_session_gets_cache_and_fp16_options(ul_onnx: Path, fake_gpu_ort: list, tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError):
        OnnxRuntimeBackend(ul_onnx, "tensorrt", device_id=1, workspace_bytes=2 << 30)
    (trt_name, trt), (cuda_name, cuda), cpu = fake_gpu_ort[-1]
    assert (trt_name, cuda_name, cpu) == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    cache = Path(trt["trt_engine_cache_path"])
    assert cache.is_dir() and cache.is_relative_to(tmp_path / "cache" / "tensorrt")
    assert "ort" + ort.__version__ in cache.name and "gpu1" in cache.name   # keyed by versions and GPU
    assert trt == tensorrt_options(cache, 1, True, 2 << 30)
    assert trt["trt_fp16_enable"] is True and trt["trt_timing_cache_enable"] is True
    assert trt["trt_engine_cache_enable"] is True and trt["trt_timing_cache_path"] == str(cache)
    assert trt["trt_max_workspace_size"] == 2 << 30 and trt["device_id"] == 1
    assert cuda == cuda_options(1) == {"device_id": 1, "cudnn_conv_algo_search": "HEURISTIC",
                                       "arena_extend_strategy": "kSameAsRequested"}
    with pytest.raises(BackendUnavailableError):
        OnnxRuntimeBackend(ul_onnx, "tensorrt", precision="f32")
    assert fake_gpu_ort[-1][0][1]["trt_fp16_enable"] is False


def test_auto_skips_a_gpu_that_falls_back_with_reasons(ul_onnx: Path, fake_gpu_ort: list,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge_yolo.backends.openvino.available_devices", lambda: [])
    backend = create_backend(read_model_info(ul_onnx), "auto")
    assert backend.info.backend == "onnxruntime" and backend.info.device == "CPUExecutionProvider"
    skipped = dict(backend.info.skipped)
    assert "fell back" in skipped["tensorrt"] and "fell back" in skipped["cuda"]
    assert skipped["openvino"] == "openvino not installed"
    assert "Azure" not in backend.info.describe()


def test_auto_prefers_a_gpu_provider_that_really_loads(ul_onnx: Path, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """Faked: the session claims TensorRT is active (it runs on the CPU underneath)."""
    monkeypatch.setenv("EDGE_YOLO_CACHE", str(tmp_path))
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(GPU_PROVIDERS))

    class ClaimsTensorrt(ort.InferenceSession):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                super().__init__(*args, **kwargs)

        def get_providers(self) -> list[str]:
            return ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]

    monkeypatch.setattr(ort, "InferenceSession", ClaimsTensorrt)
    backend = create_backend(read_model_info(ul_onnx), "auto")
    assert backend.info.device == "TensorrtExecutionProvider:0" and backend.info.precision == "f16"
    assert backend.info.skipped == []


def test_azure_is_never_an_accelerator(ul_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["AzureExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr("edge_yolo.backends.openvino.available_devices", lambda: [])
    backend = create_backend(read_model_info(ul_onnx), "auto")
    assert backend.info.device == "CPUExecutionProvider"
    assert [o for o, _ in backend.info.skipped] == ["tensorrt", "cuda", "openvino"]


def test_auto_on_this_machine_picks_openvino_for_onnx(ul_onnx: Path) -> None:
    backend = create_backend(read_model_info(ul_onnx), "auto")
    assert backend.info.backend == "openvino" and backend.info.device == "CPU"
    assert dict(backend.info.skipped)["cuda"] == "onnxruntime has no CUDAExecutionProvider"
    assert "skipped tensorrt" in backend.info.describe()


def test_explicit_backends_that_cannot_run(ul_onnx: Path, ul_openvino: Path) -> None:
    ir = read_model_info(ul_openvino)
    with pytest.raises(BackendUnavailableError, match="OpenVINO IR"):
        create_backend(ir, "cpu")
    with pytest.raises(BackendUnavailableError, match="no CUDAExecutionProvider"):
        create_backend(read_model_info(ul_onnx), "cuda:0")
    with pytest.raises(BackendUnavailableError, match="GPU is not available"):
        create_backend(ir, "openvino:GPU")
    with pytest.raises(BackendUnavailableError, match="model's own precision"):
        create_backend(read_model_info(ul_onnx), "cpu", precision="f16")
    with pytest.raises(BackendUnavailableError, match="precision"):
        create_backend(ir, "openvino", precision="int4")
    with pytest.raises(BackendUnavailableError, match=".pt checkpoints only"):
        create_backend(ir, "torch")
    assert select.create_backend(ir, "auto").info.backend == "openvino"


def test_cpu_session_options() -> None:
    so = session_options(threads=1, spinning=False)
    assert so.get_session_config_entry("session.set_denormal_as_zero") == "1"
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert so.intra_op_num_threads == 1
    assert session_options().get_session_config_entry("session.set_denormal_as_zero") == "1"


def _frames(paths: list[Path]) -> list[np.ndarray]:
    return [letterbox(cv2.imread(str(p)), (640, 640))[0] for p in paths]


def test_openvino_precision_and_in_graph_preprocessing(ul_openvino: Path, ul_onnx: Path,
                                                       val_images: list[Path]) -> None:
    """The u8 NHWC BGR input (colour swap, /255 in the graph) gives ONNX Runtime's output."""
    frame = _frames(val_images[:1])
    ov32 = OpenVinoBackend(next(ul_openvino.glob("*.xml")), "CPU", "f32")
    assert ov32.info.precision == "f32" and ov32.input_spec.layout == "NHWC"
    assert ov32.input_spec.dtype == np.uint8 and (ov32.input_spec.height, ov32.input_spec.width) == (640, 640)
    ref = OnnxRuntimeBackend(ul_onnx).infer(to_nchw(frame))
    np.testing.assert_allclose(ov32.infer(to_nhwc(frame)), ref, atol=1e-3)
    default = OpenVinoBackend(next(ul_openvino.glob("*.xml")), "CPU")
    assert default.info.precision in ("bf16", "f16", "f32")   # the device's own default


@pytest.mark.parametrize("kind", ["openvino", "onnxruntime"])
def test_async_queue_matches_infer(kind: str, ul_openvino: Path, ul_onnx: Path, val_images: list[Path]) -> None:
    frames = _frames(val_images[:4])
    if kind == "openvino":
        backend, pack = OpenVinoBackend(ul_openvino, "CPU", "f32"), to_nhwc
    else:
        backend, pack = OnnxRuntimeBackend(ul_onnx), to_nchw
    inputs = [pack([f]) for f in frames]
    got: dict[int, np.ndarray] = {}
    queue = backend.async_queue(lambda out, i: got.__setitem__(i, out), jobs=2)
    for i, x in enumerate(inputs):
        queue.submit(x, i)
    queue.wait_all()
    assert sorted(got) == [0, 1, 2, 3]
    for i, x in enumerate(inputs):
        np.testing.assert_allclose(got[i], backend.infer(x), atol=1e-4)


def test_async_queue_reraises_callback_errors(ul_onnx: Path, val_images: list[Path]) -> None:
    backend = OnnxRuntimeBackend(ul_onnx)
    queue = backend.async_queue(lambda out, i: 1 / 0)
    queue.submit(to_nchw(_frames(val_images[:1])), 0)
    with pytest.raises(ZeroDivisionError):
        queue.wait_all()

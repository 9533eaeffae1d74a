"""Export our YOLOv12 rebuild to ONNX, Ultralytics-compatible, and verify it against torch.

Choices:
- Opset 17 by default: the newest opset TensorRT 8.6 (JetPack 5/6) and every OpenVINO and
  ONNX Runtime release we support parse fully; the graph uses nothing newer (18 only turns
  some attributes into inputs). `--opset` overrides it.
- The legacy TorchScript exporter (`dynamo=False`), as Ultralytics uses: it traces the
  attention reshapes into a plain static graph that onnxslim folds cleanly.
- FP16 (`half=True`) converts the traced FP32 graph to float16 (onnxruntime's converter,
  `keep_io_types=False`): weights, input `images` and output `output0` are float16, like
  Ultralytics' GPU export, so the runtime must feed float16.
  Default file name `<stem>_fp16.onnx` so it never overwrites the FP32 `<stem>.onnx`.
- Never silently replaces another file: see `check_overwrite`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from edge_yolo.errors import ExportError

from converters.export_common import (
    check_batch,
    export_model,
    note,
    plan_export,
    resolve_checkpoint,
    require_export_extra,
    resolve_imgsz,
    staged_output,
    step,
)
from converters.metadata import onnx_props, record_onnx_weights_hash

if TYPE_CHECKING:
    from converters.checkpoint import LoadedCheckpoint

DEFAULT_OPSET = 17
MIN_OPSET = 11


def export_onnx(
    checkpoint: str | Path | LoadedCheckpoint,
    output: str | Path | None = None,
    imgsz: int | tuple[int, int] | None = None,
    half: bool = False,
    dynamic: bool = False,
    batch: int = 1,
    opset: int | None = None,
    simplify: bool = True,
    verify: bool = True,
    force: bool = False,
    dynamic_batch: bool = False,
) -> Path:
    """Export a checkpoint to ONNX and return the .onnx path.

    Input `images` (B,3,H,W) RGB 0..1, output `output0` (B,4+nc,A) xywh in input pixels plus
    sigmoid class scores; BN folded; Ultralytics' metadata_props plus ours. `dynamic` makes
    batch, height and width dynamic, `dynamic_batch` the batch axis only (for Triton's dynamic
    batcher; the anchors stay fixed); `half` gives float16 weights and I/O. With `verify` the
    exported model is run on ONNX Runtime's CPU EP against the torch model: FP32 must be as close
    to a float64 forward as torch's own float32 is (see converters.verify), FP16 must agree on
    detections; ExportError otherwise, and nothing is written (the file appears only once verified).

    The default output sits next to the checkpoint, named by variant:
    `<stem>[_fp16][_HxW][_dynamic][_b<batch>].onnx` (`_HxW` when not the training size). An
    existing file is replaced only when it is an edge-yolo export of the same variant, or
    with `force`.
    """
    require_export_extra("ONNX export")
    import onnx

    requested = resolve_imgsz(imgsz)
    batch = check_batch(batch)
    opset = DEFAULT_OPSET if opset is None else int(opset)
    max_opset = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= max_opset:
        raise ExportError(f"opset must be between {MIN_OPSET} and {max_opset}, got {opset}.")
    if output is not None and Path(output).suffix.lower() != ".onnx":
        raise ExportError(f"the ONNX output must be a .onnx file, got {output}.")
    loaded = resolve_checkpoint(checkpoint)
    hw = requested or resolve_imgsz(loaded.imgsz)
    precision = "fp16" if half else "fp32"
    args = {"batch": batch, "half": half, "dynamic": dynamic, "simplify": simplify, "opset": opset,
            "verify": verify}
    meta, path = plan_export(loaded, hw, batch, precision, args, dynamic, dynamic_batch, output, ".onnx", force)
    path.parent.mkdir(parents=True, exist_ok=True)

    proto = onnx_graph(loaded, hw, batch, half, dynamic, opset, simplify, dynamic_batch)
    for key, value in onnx_props(meta).items():
        proto.metadata_props.add(key=key, value=value)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported ONNX graph is invalid: {exc}") from exc
    with staged_output(path) as staged:
        staged.write_bytes(record_onnx_weights_hash(proto))
        if verify:
            from converters.verify import FP16_MIN_AGREEMENT, onnx_runner, torch_runner, verify_fp32, verify_reduced

            with step("verification on ONNX Runtime CPU"):
                candidate = onnx_runner(staged)
                if half:
                    verify_reduced(torch_runner(loaded.model), candidate, hw, batch, "FP16", FP16_MIN_AGREEMENT)
                else:
                    verify_fp32(loaded, candidate, hw, batch)
    note(f"saved {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path


def onnx_graph(loaded: LoadedCheckpoint, hw: tuple[int, int], batch: int, half: bool, dynamic: bool,
               opset: int = DEFAULT_OPSET, simplify: bool = True,
               dynamic_batch: bool = False):  # noqa: ANN201 - onnx.ModelProto
    """The traced (and simplified) ONNX graph of the fused model, without metadata."""
    shape = "dynamic" if dynamic else f"{'B' if dynamic_batch else batch}x3x{hw[0]}x{hw[1]}"
    with step(f"traced to ONNX opset {opset}, {shape}"):
        proto = _trace(loaded, hw, batch, dynamic, opset, dynamic_batch)
    if simplify:
        with step("simplified with onnxslim"):
            proto = _slim(proto)
    if half:
        with step("converted to FP16 (float16 weights, input and output)"):
            proto = _to_fp16(proto)
    return proto


def _trace(loaded: LoadedCheckpoint, hw: tuple[int, int], batch: int, dynamic: bool,
           opset: int, dynamic_batch: bool = False):  # noqa: ANN202 - onnx.ModelProto, onnx imported lazily
    import io

    import onnx
    import torch

    model = export_model(loaded)
    dummy = torch.zeros(batch, 3, *hw)
    if dynamic:
        axes = {"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch", 2: "anchors"}}
    else:
        axes = {"images": {0: "batch"}, "output0": {0: "batch"}} if dynamic_batch else None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter announces its own deprecation and tracer notes on every call.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model, (dummy,), buffer, dynamo=False, opset_version=opset, do_constant_folding=True,
                input_names=["images"], output_names=["output0"],
                dynamic_axes=axes,
            )
        except Exception as exc:  # noqa: BLE001 - any tracer failure is an export failure
            raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from exc
    return onnx.load_from_string(buffer.getvalue())


def _to_fp16(proto):  # noqa: ANN001, ANN202 - onnx.ModelProto
    # Converting the FP32 graph rather than tracing a half model: the tracer cannot build the
    # anchors' Range op in float16, and this keeps one traced graph for every precision.
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes on constants clamped to the float16 range
        proto = convert_float_to_float16(proto, keep_io_types=False)
    _sort_topologically(proto.graph)
    return proto


def _sort_topologically(graph) -> None:  # noqa: ANN001 - onnx.GraphProto
    # The converter appends the Casts it wraps around float32-only ops (the anchors' Range in a
    # dynamic graph) after their consumers; ONNX requires producers first.
    import onnx

    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = [onnx.NodeProto.FromString(n.SerializeToString()) for n in graph.node], []
    while pending:
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ExportError("the FP16 ONNX graph has a cycle or a missing input; cannot order it.")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def _slim(proto):  # noqa: ANN001, ANN202 - onnx.ModelProto
    import onnxslim

    try:
        return onnxslim.slim(proto)
    except Exception as exc:  # noqa: BLE001 - onnxslim raises assorted errors
        raise ExportError(f"onnxslim failed to simplify the graph: {exc} (try --no-simplify)") from exc

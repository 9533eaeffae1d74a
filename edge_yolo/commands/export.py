"""`edge-yolo export`: a .pt checkpoint to a verified ONNX file, OpenVINO IR directory or
Triton model repository."""

from __future__ import annotations

import time
from pathlib import Path

import click

from edge_yolo.commands.options import parse_imgsz
from edge_yolo.errors import ExportError, ModelLoadError

FORMATS = ("onnx", "openvino", "triton")


@click.command(short_help="Export a YOLOv12 .pt checkpoint to ONNX, OpenVINO IR or a Triton model repository, verified.")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="onnx", show_default=True, type=click.Choice(FORMATS, case_sensitive=False),
              help="Output format.")
@click.option("--imgsz", default=None, help="Input size: 640 or H,W (multiples of 32). Default: the training size.")
@click.option("--half", is_flag=True, help="FP16 weights (ONNX: float16 input and output too).")
@click.option("--int8", is_flag=True, help="OpenVINO INT8 via NNCF post-training quantization (needs --data).")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Calibration images for --int8: a directory of images or a YOLO data.yaml.")
@click.option("--fraction", type=float, default=1.0, show_default=True,
              help="Use this fraction of the calibration images.")
@click.option("--int8-scope", default="auto", show_default=True,
              type=click.Choice(["auto", "head", "head+attention"]),
              help="What stays in float in INT8; auto keeps the variant that agrees best with FP32.")
@click.option("--dynamic", is_flag=True, help="Dynamic batch, height and width (then --batch does not apply).")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Batch size of a static model.")
@click.option("--opset", type=int, default=None, help="ONNX opset (default 17).")
@click.option("--simplify/--no-simplify", default=True, show_default=True, help="Simplify the ONNX graph with onnxslim.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Check the exported model against the PyTorch model.")
@click.option("--name", default=None, help="Triton: the model's name in the repository (default: checkpoint stem).")
@click.option("--max-batch", type=int, default=8, show_default=True, help="Triton: max_batch_size (dynamic batching).")
@click.option("--backend", "triton_backend", default="onnxruntime", show_default=True,
              type=click.Choice(["onnxruntime", "tensorrt", "openvino"]), help="Triton: the backend that serves it.")
@click.option("--instance-kind", type=click.Choice(["gpu", "cpu"]), default=None,
              help="Triton: instance kind (default gpu; cpu for openvino).")
@click.option("--instances", type=int, default=1, show_default=True, help="Triton: model instances of that kind.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="The .onnx file, the _openvino_model directory or the Triton model repository. "
                   "Default: next to the checkpoint.")
@click.option("--force", is_flag=True,
              help="Replace an existing output that is not an edge-yolo export of the same variant.")
def command(checkpoint: Path, fmt: str, imgsz: str | None, half: bool, int8: bool, data: Path | None,
            fraction: float, int8_scope: str, dynamic: bool, batch: int, opset: int | None, simplify: bool,
            verify: bool, name: str | None, max_batch: int, triton_backend: str, instance_kind: str | None,
            instances: int, output: Path | None, force: bool) -> None:
    """Export CHECKPOINT (a YOLOv12 .pt) to ONNX or OpenVINO IR and verify it against PyTorch.

    Default outputs sit next to the checkpoint: best.onnx, best_fp16.onnx,
    best_openvino_model/, best_fp16_openvino_model/, best_int8_openvino_model/; other
    variants add _HxW (not the training size), _dynamic, _b<batch>: best_480x640_dynamic.onnx.
    An existing output is replaced only when it is an edge-yolo export of the same variant
    (e.g. never a best.onnx made by `yolo export`), unless --force. Triton:
    model_repository/best/ (config.pbtxt and 1/model.onnx or model.xml/.bin).
    """
    fmt = fmt.lower()
    if dynamic and batch != 1:
        raise ExportError(f"--dynamic exports take any batch size, so --batch {batch} does not apply: "
                          "drop --batch, or drop --dynamic for a fixed batch.")
    if not checkpoint.is_file():
        raise ModelLoadError(f"checkpoint not found: {checkpoint}")
    if data is not None and not int8:
        raise ExportError("--data gives calibration images for --int8 only.")
    size = parse_imgsz(imgsz)
    start = time.perf_counter()
    if fmt == "triton":
        if half or int8 or dynamic or batch != 1 or opset is not None or not simplify:
            raise ExportError("--format triton exports FP32 with a dynamic batch: --half, --int8, --dynamic, "
                              "--batch, --opset and --no-simplify do not apply (the server sets the precision).")
        from converters.export_triton import export_triton

        path = export_triton(checkpoint, output=output, name=name, max_batch=max_batch, backend=triton_backend,
                             imgsz=size, instance_kind=instance_kind, instances=instances, verify=verify,
                             force=force)
    elif fmt == "onnx":
        if int8:
            raise ExportError("INT8 is supported for --format openvino only.")
        from converters import export_onnx

        path = export_onnx(checkpoint, output=output, imgsz=size, half=half, dynamic=dynamic, batch=batch,
                           opset=opset, simplify=simplify, verify=verify, force=force)
    else:
        if opset is not None:
            raise ExportError("--opset applies to --format onnx only.")
        from converters import export_openvino

        path = export_openvino(checkpoint, output=output, imgsz=size, half=half, dynamic=dynamic, batch=batch,
                               int8=int8, data=data, verify=verify, fraction=fraction, int8_scope=int8_scope,
                               force=force)
    click.echo(f"exported {path} in {time.perf_counter() - start:.1f} s")

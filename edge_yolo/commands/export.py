"""`edge-yolo export`: a .pt checkpoint to a verified ONNX file or OpenVINO IR directory."""

from __future__ import annotations

import re
import time
from pathlib import Path

import click

from edge_yolo.errors import ExportError, ModelLoadError

FORMATS = ("onnx", "openvino")


def parse_imgsz(value: str | None) -> int | tuple[int, int] | None:
    """`640` → 640, `640,480` / `640x480` → (640, 480) as (h, w); ExportError on anything else."""
    if value is None:
        return None
    parts = [p for p in re.split(r"[,x ]+", value.strip().lower()) if p]
    if not parts or len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise ExportError(f"--imgsz must be a size like 640 or H,W like 480,640, got {value!r}.")
    sizes = [int(p) for p in parts]
    return sizes[0] if len(sizes) == 1 else (sizes[0], sizes[1])


@click.command(short_help="Export a YOLOv12 .pt checkpoint to ONNX or OpenVINO IR, verified against PyTorch.")
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
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="The .onnx file or the _openvino_model directory. Default: next to the checkpoint.")
def command(checkpoint: Path, fmt: str, imgsz: str | None, half: bool, int8: bool, data: Path | None,
            fraction: float, int8_scope: str, dynamic: bool, batch: int, opset: int | None, simplify: bool,
            verify: bool, output: Path | None) -> None:
    """Export CHECKPOINT (a YOLOv12 .pt) to ONNX or OpenVINO IR and verify it against PyTorch.

    Default outputs sit next to the checkpoint: best.onnx, best_fp16.onnx,
    best_openvino_model/, best_fp16_openvino_model/, best_int8_openvino_model/.
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
    if fmt == "onnx":
        if int8:
            raise ExportError("INT8 is supported for --format openvino only.")
        from converters import export_onnx

        path = export_onnx(checkpoint, output=output, imgsz=size, half=half, dynamic=dynamic, batch=batch,
                           opset=opset, simplify=simplify, verify=verify)
    else:
        if opset is not None:
            raise ExportError("--opset applies to --format onnx only.")
        from converters import export_openvino

        path = export_openvino(checkpoint, output=output, imgsz=size, half=half, dynamic=dynamic, batch=batch,
                               int8=int8, data=data, verify=verify, fraction=fraction, int8_scope=int8_scope)
    click.echo(f"exported {path} in {time.perf_counter() - start:.1f} s")

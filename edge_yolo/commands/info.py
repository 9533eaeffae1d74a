"""`edge-yolo info`: what a model is, and which backend would run it here, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


LAYOUTS = {"A": "Ultralytics YOLO12", "B": "official YOLOv12 v1.0", "C": "official YOLOv12 turbo",
           "E": "official YOLOv12 Seg/Cls-branch detection"}


def _shape(shape: tuple[int | None, ...]) -> list[int | str]:
    return ["?" if d is None else int(d) for d in shape]


def shape_text(shape: list[int | str]) -> str:
    """[1, 3, 640, 640] → '1x3x640x640'; a dynamic axis shows as '?'."""
    return "x".join(str(d) for d in shape)


def describe_checkpoint(model: Path) -> dict[str, Any]:
    """Layout, scale, parameters, GFLOPs at 640 and training settings of a .pt (needs torch)."""
    from converters import load_checkpoint
    from converters.nn.build import resolve_scale
    from converters.summary import conv_gflops, parameter_count

    ckpt = load_checkpoint(model)
    return {
        "layout": ckpt.layout, "layout_name": LAYOUTS.get(ckpt.layout, ckpt.layout), "fused": ckpt.fused,
        "scale": resolve_scale(ckpt.yaml)[0], "parameters": parameter_count(ckpt.model),
        "gflops_640": round(conv_gflops(ckpt.model, (640, 640)), 2),
        "train_imgsz": list(ckpt.imgsz), "train_epochs": ckpt.epochs,
    }


def available_backends() -> dict[str, list[str]]:
    """Local backends: ONNX Runtime providers (not the remote Azure EP) and OpenVINO devices."""
    from edge_yolo.backends.onnxruntime import available_providers
    from edge_yolo.backends.openvino import available_devices

    providers = [p for p in available_providers() if p != "AzureExecutionProvider"]
    return {"onnxruntime": providers, "openvino": available_devices()}


def describe_model(model: str | Path, device: str = "auto") -> dict[str, Any]:
    """Everything `info` reports, as a JSON-ready dict."""
    from edge_yolo.modelinfo import read_model_info

    info = read_model_info(model)
    report: dict[str, Any] = {
        "model": info.url or str(info.path),
        "format": info.format,
        "input": {"name": info.input_name, "shape": _shape(info.input_shape), "dtype": str(info.input_dtype)},
        "output": {"shape": _shape(info.output_shape)},
        "imgsz": list(info.imgsz) if info.imgsz else None,
        "dynamic": info.dynamic,
        "stride": info.stride,
        "classes": {int(k): v for k, v in info.names.items()},
        "metadata": {k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
                     for k, v in info.metadata.items()},
        "backends_available": available_backends(),
    }
    if info.format == "pt":
        report["checkpoint"] = describe_checkpoint(model)
        report["selected"] = (f"{device}: a .pt runs through its ONNX export, made next to it on first use "
                              "(or with device torch, through PyTorch)")
        return report
    from edge_yolo.backends.select import create_backend

    backend = create_backend(info, device)
    try:
        chosen = backend.info
        report["selected"] = chosen.describe()
        report["selected_detail"] = {
            "backend": chosen.backend, "device": chosen.device, "precision": chosen.precision,
            "skipped": [{"option": o, "reason": r} for o, r in chosen.skipped],
            "input_layout": backend.input_spec.layout,
        }
        from edge_yolo.summary import precision_note

        note = precision_note(chosen.precision, "auto", info.input_dtype)
        if note:
            report["precision_note"] = note
    finally:
        backend.close()
    return report


def format_report(report: dict[str, Any]) -> str:
    """The human-readable form of `describe_model`'s dict."""
    lines = [
        f"model:    {report['model']}",
        f"format:   {report['format']}",
        f"input:    {report['input']['name']} {shape_text(report['input']['shape'])} {report['input']['dtype']}",
        f"output:   {shape_text(report['output']['shape'])}",
        f"imgsz:    {report['imgsz']}{' (dynamic)' if report['dynamic'] else ''}, stride {report['stride']}",
        f"classes:  {len(report['classes'])}: " + ", ".join(f"{k} {v}" for k, v in report["classes"].items()),
    ]
    if ckpt := report.get("checkpoint"):
        lines += [
            f"layout:   {ckpt['layout']} ({ckpt['layout_name']}){', fused' if ckpt['fused'] else ''}, scale {ckpt['scale']}",
            f"size:     {ckpt['parameters']:,} parameters, {ckpt['gflops_640']:.1f} GFLOPs at 640x640",
            f"training: imgsz {shape_text(ckpt['train_imgsz'])}, "
            f"{'epochs unknown' if ckpt['train_epochs'] is None else str(ckpt['train_epochs']) + ' epochs'}",
        ]
    if report["metadata"]:
        lines.append("metadata:")
        lines += [f"  {k}: {v}" for k, v in report["metadata"].items() if k != "names"]
    avail = report["backends_available"]
    lines.append("backends here:")
    lines.append(f"  onnxruntime: {', '.join(avail['onnxruntime']) or 'not installed'}")
    lines.append(f"  openvino:    {', '.join(avail['openvino']) or 'not installed'}")
    lines.append(f"selected: {report['selected']}")
    if report.get("precision_note"):
        lines.append(f"precision: {report['precision_note']}")
    return "\n".join(lines)


@click.command(short_help="Show a model's format, shapes, classes, metadata and the backend `auto` picks.")
@click.argument("model")
@click.option("--device", default="auto", show_default=True, help="Which device request to resolve: auto, cpu, openvino[:CPU|GPU|NPU|AUTO], cuda[:N], "
              "tensorrt[:N], torch, triton.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(model: str, device: str, as_json: bool) -> None:
    """Describe MODEL (.onnx, OpenVINO IR, .pt, or a Triton model URL grpc://host:8001/NAME)
    and the backend that would run it here."""
    report = describe_model(model, device)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))

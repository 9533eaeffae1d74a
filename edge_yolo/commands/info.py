"""`edge-yolo info`: what a model is, and which backend would run it here, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def _shape(shape: tuple[int | None, ...]) -> list[int | str]:
    return ["?" if d is None else int(d) for d in shape]


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
    finally:
        backend.close()
    return report


def format_report(report: dict[str, Any]) -> str:
    """The human-readable form of `describe_model`'s dict."""
    lines = [
        f"model:    {report['model']}",
        f"format:   {report['format']}",
        f"input:    {report['input']['name']} {tuple(report['input']['shape'])} {report['input']['dtype']}",
        f"output:   {tuple(report['output']['shape'])}",
        f"imgsz:    {report['imgsz']}{' (dynamic)' if report['dynamic'] else ''}, stride {report['stride']}",
        f"classes:  {len(report['classes'])}: " + ", ".join(f"{k} {v}" for k, v in report["classes"].items()),
    ]
    if report["metadata"]:
        lines.append("metadata:")
        lines += [f"  {k}: {v}" for k, v in report["metadata"].items() if k != "names"]
    avail = report["backends_available"]
    lines.append("backends here:")
    lines.append(f"  onnxruntime: {', '.join(avail['onnxruntime']) or 'not installed'}")
    lines.append(f"  openvino:    {', '.join(avail['openvino']) or 'not installed'}")
    lines.append(f"selected: {report['selected']}")
    return "\n".join(lines)


@click.command(short_help="Show a model's format, shapes, classes, metadata and the backend `auto` picks.")
@click.argument("model")
@click.option("--device", default="auto", show_default=True, help="Which device request to resolve.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(model: str, device: str, as_json: bool) -> None:
    """Describe MODEL (.onnx, OpenVINO IR, .pt, or a Triton model URL grpc://host:8001/NAME)
    and the backend that would run it here."""
    report = describe_model(model, device)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))

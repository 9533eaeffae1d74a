"""`edge-yolo val`: mAP of one or more models (on one or more devices) on a YOLO dataset."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import click

from ..dataset import Dataset
from ..backends.triton import is_triton_url
from ..errors import DataError, EdgeYoloError
from ..evaluate import VAL_CONF, VAL_IOU, VAL_MAX_DET, Metrics
from .options import parse_imgsz, require_model

log = logging.getLogger(__name__)


@click.command("val")
@click.argument("models", nargs=-1, required=True)
@click.option("--data", required=True, help="A YOLO data.yaml, or a directory with images/ and labels/ "
              "(or images/val and labels/val).")
@click.option("--split", default="val", show_default=True, help="Which split of the dataset to evaluate.")
@click.option("--device", default="auto", show_default=True,
              help="auto, cpu, openvino[:CPU|GPU|NPU|AUTO], cuda[:N], tensorrt[:N], torch, triton, or a comma "
                   "list: every model is evaluated on each (a pair that cannot run is skipped with a warning). "
                   "A .pt with 'auto' runs on our PyTorch rebuild ('torch'), a Triton URL on 'triton'.")
@click.option("--imgsz", default=None,
              help="Letterbox size 640 or H,W  [default: the model's own: a .pt's training size, a static "
                   "model's fixed input (a Triton model's served dims), a dynamic model's metadata imgsz, "
                   "else 640]")
@click.option("--conf", type=float, default=VAL_CONF, show_default=True, help="Confidence threshold.")
@click.option("--iou", type=float, default=VAL_IOU, show_default=True, help="NMS IoU threshold.")
@click.option("--max-det", type=int, default=VAL_MAX_DET, show_default=True, help="Detections kept per image.")
@click.option("--precision", default="auto", show_default=True,
              help="Inference precision: 'auto' (the device's default, e.g. bf16 on AMX CPUs) or 'f32'.")
@click.option("--save-metrics", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metrics as JSON: every run under \"runs\", and with a single run "
                   "its metrics (map50_95, map50, precision, recall, per_class, ...) at the top level too.")
@click.option("--save-json", type=click.Path(dir_okay=False, path_type=Path),
              help="Write COCO-format predictions (one file per run when there are several).")
@click.option("--save-plots", type=click.Path(file_okay=False, path_type=Path),
              help="Write pr_curve_<#>.png and confusion_matrix_<#>.png per run here (needs matplotlib: "
                   "the plots extra).")
def command(models: tuple[str, ...], data: str, split: str, device: str, imgsz: str | None, conf: float,
            iou: float, max_det: int, precision: str, save_metrics: Path | None, save_json: Path | None,
            save_plots: Path | None) -> None:
    """Measure mAP50-95 / mAP50 / precision / recall of MODELS on the val split of --data.

    A MODEL is a model file (.onnx, OpenVINO IR, .pt) or the URL of a model served by Triton
    (grpc://host:8001/NAME, http://host:8000/NAME). Ultralytics' val protocol (conf 0.001,
    multi-label NMS, iou 0.7, max_det 300) with a letterbox at the model's own size (a .pt:
    its training size) unless --imgsz is given; metrics from pycocotools on the labels
    converted to COCO. Several models or devices are shown side by side with Δ to the first;
    a pair that cannot run (an OpenVINO IR on onnxruntime's cpu, a Triton URL on anything but
    triton) is skipped with a warning.
    """
    from ..backends.select import parse_device
    from ..dataset import load_dataset
    from ..evaluate import evaluate_detector, imgsz_origin, make_val_detector, require_pycocotools

    require_pycocotools()
    size = parse_imgsz(imgsz)
    if not Path(data).exists():
        raise DataError(f"dataset not found: {data}")
    for model in models:
        require_model(model)
    devices = [d.strip() for d in device.split(",") if d.strip()] or ["auto"]
    for dev in devices:
        parse_device(dev)   # a misspelt device is an error, not a skipped run
    pairs = [(model, dev) for model in models for dev in devices]
    runs, dataset, skipped = [], None, []
    for model, dev in pairs:
        try:
            detector = make_val_detector(model, dev, size, conf, iou, max_det, precision)
        except EdgeYoloError as exc:
            if len(pairs) == 1:
                raise
            log.warning("skipped %s on %s: %s", model, dev, exc)
            skipped.append(f"{model} on {dev}: {exc}")
            continue
        h, w = detector.imgsz
        click.echo(f"{model}: imgsz {h}x{w} ({imgsz_origin(detector, size)})", err=True)
        try:
            if dataset is None:
                dataset = load_dataset(data, split=split, names=detector.names)
                click.echo(f"{data} ({split}): {len(dataset)} images, {dataset.n_objects} objects, "
                           f"{len(dataset.names)} classes", err=True)
            _check_names(model, detector.names, dataset.names)
            metrics, results = evaluate_detector(detector, dataset, progress=True)
        finally:
            detector.backend.close()
        metrics.model["path"] = str(model)
        runs.append((metrics, results))
    if not runs:
        raise EdgeYoloError("no model/device pair could run: " + "; ".join(skipped))
    labels = display_names([m.model["path"] for m, _ in runs])
    for (metrics, _), label in zip(runs, labels):
        metrics.model["label"] = label
    click.echo(_runs_table([m for m, _ in runs]))
    click.echo(_per_class_table([m for m, _ in runs]))
    if save_metrics:
        save_metrics.parent.mkdir(parents=True, exist_ok=True)
        run_dicts = [dict(m.to_dict(), delta_map50_95=m.map50_95 - runs[0][0].map50_95) for m, _ in runs]
        payload = {"data": str(data), "protocol": {"conf": conf, "iou": iou, "max_det": max_det,
                                                   "letterbox": "square", "multi_label": True}}
        if len(run_dicts) == 1:  # one model on one device: its metrics at the top level too
            payload.update({k: v for k, v in run_dicts[0].items() if k != "delta_map50_95"})
        payload["runs"] = run_dicts
        save_metrics.write_text(json.dumps(payload, indent=2))
        click.echo(f"metrics: {save_metrics}", err=True)
    if save_json:
        save_json.parent.mkdir(parents=True, exist_ok=True)
        for i, (metrics, results) in enumerate(runs, 1):
            path = save_json if len(runs) == 1 else _run_path(save_json, i, metrics)
            path.write_text(json.dumps(results))
            click.echo(f"predictions: {path}", err=True)
    if save_plots and dataset is not None:
        _save_plots(save_plots, runs, dataset)


def _save_plots(folder: Path, runs: list[tuple[Metrics, list[dict]]], dataset: Dataset) -> None:
    """PR curve and confusion matrix PNGs per run; one warning line when matplotlib is missing."""
    from ..evaluate import PR_RECALL
    from ..plots import confusion_matrix, matplotlib_missing, save_confusion_matrix, save_pr_curve

    if (hint := matplotlib_missing()) is not None:
        log.warning(hint)
        return
    ground_truth, names = dataset.to_coco(), dataset.names
    nc = max(names) + 1 if names else 0
    for i, (metrics, results) in enumerate(runs, 1):
        title = f"#{i} {metrics.model['label']} ({metrics.model['backend']} {metrics.model['precision']})"
        pr = save_pr_curve(metrics.pr_curves, PR_RECALL, folder / f"pr_curve_{i}.png", f"Precision-Recall {title}")
        cm = save_confusion_matrix(confusion_matrix(ground_truth, results, nc), names,
                                   folder / f"confusion_matrix_{i}.png", f"Confusion matrix {title}")
        click.echo(f"plots: {pr} {cm}", err=True)


def display_names(paths: list[str]) -> list[str]:
    """File names, with the parent folder where two names collide (runs/a/best.onnx vs
    runs/b/best.onnx → a/best.onnx, b/best.onnx), and the full path if that still collides;
    a Triton model's URL as it is."""
    files = [p for p in paths if not is_triton_url(p)]
    names = [Path(p).name for p in files]
    with_parents = [f"{Path(p).parent.name}/{Path(p).name}" for p in files]
    out = []
    for path in paths:
        if is_triton_url(path):
            out.append(path)
            continue
        name = Path(path).name
        with_parent = f"{Path(path).parent.name}/{name}"
        if names.count(name) == 1:
            out.append(name)
        else:
            out.append(with_parent if with_parents.count(with_parent) == 1 else str(path))
    return out


def _check_names(model: str, model_names: dict[int, str], data_names: dict[int, str]) -> None:
    if model_names and len(model_names) != len(data_names):
        raise DataError(f"{model} has {len(model_names)} classes but the dataset has {len(data_names)}")


def _run_path(base: Path, index: int, metrics: Metrics) -> Path:
    """preds.json → preds_<#>_<model>_<backend>.json for run number `index` (<model>: the file
    name, or the whole URL of a Triton model)."""
    info = metrics.model
    model = info["path"] if is_triton_url(info["path"]) else Path(info["path"]).name
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{index}_{model}_{info['backend']}")
    return base.with_name(f"{base.stem}_{tag}{base.suffix}")


def _runs_table(runs: list[Metrics]) -> str:
    header = ("#", "model", "backend", "precision", "mAP50-95", "mAP50", "P", "R", "Δ mAP50-95",
              "ms/img", "pre/infer/post ms")
    rows = [header]
    base = runs[0].map50_95
    for i, m in enumerate(runs, 1):
        info, sp = m.model, m.speed_ms
        rows.append((str(i), info.get("label", Path(info["path"]).name), f"{info['backend']} {info['device']}",
                     info["precision"],
                     f"{m.map50_95:.4f}", f"{m.map50:.4f}", f"{m.precision:.3f}", f"{m.recall:.3f}",
                     f"{100 * (m.map50_95 - base):+.2f} pt", f"{sp.total:.1f}",
                     f"{sp.preprocess:.1f}/{sp.inference:.1f}/{sp.postprocess:.1f}"))
    return _format(rows, right_from=4)


def _per_class_table(runs: list[Metrics]) -> str:
    """Per class: objects, then P, R, AP50, AP50-95 of each run (suffixed #i when there are several)."""
    names = list(runs[0].per_class)
    keys = (("P", "precision"), ("R", "recall"), ("AP50", "ap50"), ("AP50-95", "ap50_95"))
    suffix = (lambda i: f" #{i}") if len(runs) > 1 else (lambda i: "")
    rows = [("class", "objects") + tuple(f"{label}{suffix(i)}" for i in range(1, len(runs) + 1) for label, _ in keys)]
    for name in names:
        values = [m.per_class[name][key] for m in runs for _, key in keys]
        rows.append((name, str(runs[0].per_class[name]["n_gt"])) + tuple("-" if v is None else f"{v:.4f}" for v in values))
    return _format(rows, right_from=1)


def _format(rows: list[tuple[str, ...]], right_from: int) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.rjust(w) if i >= right_from else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)

"""`edge-yolo val`: mAP of one or more models (on one or more devices) on a YOLO dataset."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from ..errors import DataError, ModelLoadError
from ..evaluate import VAL_CONF, VAL_IOU, VAL_MAX_DET, Metrics


@click.command("val")
@click.argument("models", nargs=-1, required=True)
@click.option("--data", required=True, help="A YOLO data.yaml, or a directory with images/ and labels/ "
              "(or images/val and labels/val).")
@click.option("--device", default="auto", show_default=True,
              help="Backend/device, or a comma list: every model is evaluated on each. A .pt with "
                   "'auto' runs on our PyTorch rebuild ('torch').")
@click.option("--imgsz", type=int, default=None,
              help="Square letterbox size  [default: 640, or a static model's fixed input size]")
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
def command(models: tuple[str, ...], data: str, device: str, imgsz: int | None, conf: float, iou: float,
            max_det: int, precision: str, save_metrics: Path | None, save_json: Path | None) -> None:
    """Measure mAP50-95 / mAP50 / precision / recall of MODELS on the val split of --data.

    Ultralytics' val protocol (conf 0.001, multi-label NMS, iou 0.7, max_det 300) with a
    square letterbox for every model; metrics from pycocotools on the labels converted to
    COCO. Several models or devices are shown side by side with Δ to the first.
    """
    from ..dataset import load_dataset
    from ..evaluate import evaluate_detector, make_val_detector, require_pycocotools

    require_pycocotools()
    if not Path(data).exists():
        raise DataError(f"dataset not found: {data}")
    for model in models:
        if not Path(model).exists():
            raise ModelLoadError(f"model not found: {model}")
    devices = [d.strip() for d in device.split(",") if d.strip()] or ["auto"]
    runs, dataset = [], None
    for model in models:
        for dev in devices:
            detector = make_val_detector(model, dev, imgsz, conf, iou, max_det, precision)
            try:
                if dataset is None:
                    dataset = load_dataset(data, names=detector.names)
                    click.echo(f"{data}: {len(dataset)} images, {dataset.n_objects} objects, "
                               f"{len(dataset.names)} classes", err=True)
                _check_names(model, detector.names, dataset.names)
                metrics, results = evaluate_detector(detector, dataset, progress=True)
            finally:
                detector.backend.close()
            metrics.model["path"] = str(model)
            runs.append((metrics, results))
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


def _check_names(model: str, model_names: dict[int, str], data_names: dict[int, str]) -> None:
    if model_names and len(model_names) != len(data_names):
        raise DataError(f"{model} has {len(model_names)} classes but the dataset has {len(data_names)}")


def _run_path(base: Path, index: int, metrics: Metrics) -> Path:
    """preds.json → preds_<#>_<model>_<backend>.json for run number `index`."""
    info = metrics.model
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{index}_{Path(info['path']).name}_{info['backend']}")
    return base.with_name(f"{base.stem}_{tag}{base.suffix}")


def _runs_table(runs: list[Metrics]) -> str:
    header = ("#", "model", "backend", "precision", "mAP50-95", "mAP50", "P", "R", "Δ mAP50-95",
              "ms/img", "pre/infer/post ms")
    rows = [header]
    base = runs[0].map50_95
    for i, m in enumerate(runs, 1):
        info, sp = m.model, m.speed_ms
        rows.append((str(i), Path(info["path"]).name, f"{info['backend']} {info['device']}", info["precision"],
                     f"{m.map50_95:.4f}", f"{m.map50:.4f}", f"{m.precision:.3f}", f"{m.recall:.3f}",
                     f"{100 * (m.map50_95 - base):+.2f} pt", f"{sp.total:.1f}",
                     f"{sp.preprocess:.1f}/{sp.inference:.1f}/{sp.postprocess:.1f}"))
    return _format(rows, right_from=4)


def _per_class_table(runs: list[Metrics]) -> str:
    names = list(runs[0].per_class)
    rows = [("class", "objects") + tuple(f"AP50-95 #{i + 1}" for i in range(len(runs)))]
    for name in names:
        aps = [m.per_class[name]["ap50_95"] for m in runs]
        rows.append((name, str(runs[0].per_class[name]["n_gt"])) + tuple("-" if a is None else f"{a:.4f}" for a in aps))
    return _format(rows, right_from=1)


def _format(rows: list[tuple[str, ...]], right_from: int) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.rjust(w) if i >= right_from else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)

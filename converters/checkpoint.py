"""Safe loading of YOLOv12 `.pt` checkpoints into our own network, without ultralytics and
without executing anything from the file."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from converters.layout import detect_layout
from converters.nn.build import YOLOv12, build_model, yaml_modules
from converters.safe_pickle import make_pickle_module
from edge_yolo.errors import ModelLoadError, UnsafeCheckpointError, UnsupportedModelError


@dataclass
class LoadedCheckpoint:
    """A checkpoint rebuilt as our network, with what the runtime and exporters need to know."""

    model: YOLOv12              # eval mode, float32, CPU
    names: dict[int, str]
    imgsz: tuple[int, int]      # training image size (h, w)
    layout: str                 # "A" Ultralytics, "B" official v1.0, "C" official turbo, "E" Seg/Cls branch
    fused: bool
    stride: tuple[int, ...]
    nc: int
    yaml: dict
    sha256: str
    source: Path
    epochs: int | None = None   # training epochs from the checkpoint's train args, when recorded


# What a foreign yaml module tells the user about the file; heads first, they say the most.
_FOREIGN_MODULES = {
    "Segment": "a segmentation head (Segment)",
    "Classify": "a classification head (Classify)",
    "Pose": "a pose head (Pose)",
    "OBB": "an oriented-box head (OBB)",
    "v10Detect": "a YOLOv10 head (v10Detect)",
    "RTDETRDecoder": "an RT-DETR decoder",
    "WorldDetect": "a YOLO-World head (WorldDetect)",
    "C2PSA": "YOLO11 C2PSA blocks",
    "C2f": "YOLOv8 C2f blocks",
    "C3": "YOLOv5 C3 blocks",
    "SPPF": "an SPPF block (YOLOv5/v8/11), not YOLOv12",
}
_FOREIGN_CLASSES = {
    "SegmentationModel": "a segmentation model (SegmentationModel)",
    "ClassificationModel": "a classification model (ClassificationModel)",
    "PoseModel": "a pose model (PoseModel)",
    "OBBModel": "an oriented-box model (OBBModel)",
    "RTDETRDetectionModel": "an RT-DETR model",
    "WorldModel": "a YOLO-World model",
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_pickle(path: Path) -> Any:
    """torch.load through the restricted unpickler; every failure becomes our own error."""
    if not path.exists():
        raise ModelLoadError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise ModelLoadError(f"checkpoint path is not a file: {path}")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"checkpoint {path} is empty")
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path} is not a PyTorch zip checkpoint (corrupt, truncated or another format)")
    try:
        with zipfile.ZipFile(path) as zf:
            records = zf.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelLoadError(f"cannot read checkpoint {path}: {e}") from None
    if any(r.endswith("/constants.pkl") or "/code/" in r for r in records):
        # torch.load would hand a TorchScript archive to torch.jit.load; we never do that
        raise UnsupportedModelError(f"{path} is a TorchScript archive, not a training checkpoint")
    if not any(r.endswith("/data.pkl") or r == "data.pkl" for r in records):
        raise ModelLoadError(f"{path} is a zip file but not a PyTorch checkpoint (no data.pkl)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=make_pickle_module())
    except UnsafeCheckpointError as e:
        raise UnsafeCheckpointError(f"refused to load {path}: {e} (nothing in the file was run)") from None
    except UnsupportedModelError as e:
        raise UnsupportedModelError(f"{path} is {e}; nothing in the file was run") from None
    except Exception as e:  # zip/pickle/storage errors of a damaged file
        raise ModelLoadError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None


def _model_entry(ckpt: Any) -> tuple[dict[str, torch.Tensor], dict | None, Any, dict]:
    """(state_dict, yaml, names, args) from a trainer/`Model.save` dict, a plain
    {'state_dict', 'yaml', 'names'} dict, or a bare pickled model."""
    top = ckpt if isinstance(ckpt, dict) else {"model": ckpt}
    if "state_dict" in top and isinstance(top["state_dict"], dict):
        args = dict(top.get("train_args") or {})
        if "imgsz" in top:
            args["imgsz"] = top["imgsz"]
        return dict(top["state_dict"]), top.get("yaml"), top.get("names"), args
    model = top.get("ema") if top.get("ema") is not None else top.get("model")
    if model is None:
        raise UnsupportedModelError("checkpoint holds no model: neither 'ema' nor 'model' nor 'state_dict' is set")
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(f"checkpoint 'model' entry is a {type(model).__name__}, not a model")
    inner = model._modules.get("model")
    if "yaml" not in model.__dict__ and isinstance(inner, nn.Module) and "yaml" in inner.__dict__:
        model = inner  # a bare torch.save(YOLO(...)): the wrapper holds the DetectionModel
    cls = type(model).__name__
    if cls in _FOREIGN_CLASSES:
        raise UnsupportedModelError(f"checkpoint is not a YOLOv12 detection model: it is {_FOREIGN_CLASSES[cls]}")
    attrs = model.__dict__
    args = _as_dict(attrs.get("args"))
    args.update({k: v for k, v in _as_dict(top.get("train_args")).items() if k in ("imgsz", "epochs")})
    return model.state_dict(), attrs.get("yaml"), attrs.get("names"), args


def _as_dict(obj: Any) -> dict:
    if isinstance(obj, dict):
        return dict(obj)
    if obj is not None and hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    return {}


def _check_yaml(yaml: Any) -> dict:
    if not isinstance(yaml, dict) or "backbone" not in yaml or "head" not in yaml:
        raise UnsupportedModelError("checkpoint has no model yaml (backbone/head), so its topology is unknown")
    modules = yaml_modules(yaml)
    for name, what in _FOREIGN_MODULES.items():
        if name in modules:
            raise UnsupportedModelError(f"checkpoint is not a YOLOv12 detection model: its yaml has {what}")
    if "A2C2f" not in modules:
        raise UnsupportedModelError("checkpoint is not a YOLOv12 model: its yaml has no A2C2f attention blocks")
    return yaml


def _imgsz(args: dict) -> tuple[int, int]:
    v = args.get("imgsz", 640)
    try:
        return (int(v[0]), int(v[-1])) if isinstance(v, (list, tuple)) else (int(v), int(v))
    except (TypeError, ValueError, IndexError):
        raise UnsupportedModelError(f"checkpoint training imgsz {v!r} is not a size") from None


def _names(names: Any, nc: int) -> dict[int, str]:
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items()}
    if isinstance(names, (list, tuple)):
        return {i: str(n) for i, n in enumerate(names)}
    return {i: f"class{i}" for i in range(nc)}


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Load a YOLOv12 detection checkpoint (any layout A/B/C/E, fused or not, fp16/fp32) safely
    and rebuild it as our own network with strict weight loading.

    Accepted files: Ultralytics / official-fork trainer or `Model.save` dicts (`ema or model`),
    a bare `torch.save(model)`, and the class-free dict {'state_dict', 'yaml', 'names'} with an
    optional 'imgsz' (int or [h, w]). The topology always comes from the file's own yaml.

    Raises ModelLoadError (unreadable file), UnsafeCheckpointError (pickle references something
    outside the allow-list; nothing was executed) or UnsupportedModelError (not a YOLOv12
    detection model, or an unknown layout).
    """
    path = Path(path)
    ckpt = _read_pickle(path)
    state_dict, yaml, names, args = _model_entry(ckpt)
    yaml = _check_yaml(yaml)
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad or not state_dict:
        raise UnsupportedModelError(f"checkpoint state_dict is empty or holds non-tensors (e.g. {bad[:1]})")
    state_dict = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    try:
        detected = detect_layout({k: tuple(v.shape) for k, v in state_dict.items()})
        model = build_model(yaml, detected.variant)
        model.load_state_dict(state_dict, strict=True)
    except (RuntimeError, ValueError, IndexError, KeyError, TypeError) as e:
        first = " ".join(line.strip() for line in str(e).strip().splitlines()[:2])
        raise UnsupportedModelError(f"checkpoint weights do not fit a YOLOv12 built from its yaml: {first}") from None
    model = model.float().eval().requires_grad_(False)
    nc = model.head.nc
    return LoadedCheckpoint(
        model=model,
        names=_names(names, nc),
        imgsz=_imgsz(args),
        layout=detected.letter,
        fused=detected.variant.fused,
        stride=tuple(int(s) for s in model.stride),
        nc=nc,
        yaml=yaml,
        sha256=_sha256(path),
        source=path,
        epochs=args["epochs"] if isinstance(args.get("epochs"), int) else None,
    )

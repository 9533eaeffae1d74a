"""YOLO-format datasets for `val`: data.yaml or directory → images, labels, COCO ground truth.

Layout (as Ultralytics trains on it): every image `.../images/<rest>/x.jpg` has its labels in
`.../labels/<rest>/x.txt`, one object per line `class cx cy w h` normalised to 0..1 (or a
polygon `class x1 y1 x2 y2 ...`, whose bounding box is used). A missing or empty label file
means an image without objects. Problems that leave the rest of the data usable (a class id
out of range, a label file without its image, an unreadable image) are logged as warnings
naming the file and skipped; malformed data (unparsable lines, a missing split) is a DataError.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from .errors import DataError, one_line

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".dng", ".mpo", ".pfm"}


@dataclass(frozen=True)
class LabeledImage:
    """One image with its ground truth: boxes (N,4) [x, y, w, h] in pixels (top-left corner,
    the COCO form), classes (N,) int64."""

    path: Path
    file_name: str        # path relative to the image root, used as COCO file_name
    width: int
    height: int
    boxes: np.ndarray
    classes: np.ndarray


@dataclass
class Dataset:
    """The images of one split with their labels and the class names."""

    images: list[LabeledImage]
    names: dict[int, str]
    source: Path
    skipped: list[str] = field(default_factory=list)   # one reason per skipped image or label

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_objects(self) -> int:
        return sum(len(im.classes) for im in self.images)

    def to_coco(self) -> dict:
        """COCO ground truth: image id = index, category id = class id, bbox [x, y, w, h]
        in absolute pixels, area = w*h, iscrowd 0, annotation ids from 1."""
        images, annotations = [], []
        for image_id, im in enumerate(self.images):
            images.append({"id": image_id, "file_name": im.file_name, "width": im.width, "height": im.height})
            for (x, y, w, h), cls in zip(im.boxes.tolist(), im.classes.tolist()):
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls),
                    "iscrowd": 0, "bbox": [x, y, w, h], "area": w * h,
                })
        categories = [{"id": k, "name": v} for k, v in sorted(self.names.items())]
        return {"images": images, "annotations": annotations, "categories": categories}


def load_dataset(data: str | Path, split: str = "val", names: dict[int, str] | None = None) -> Dataset:
    """Load a split of a YOLO dataset.

    `data` is a data.yaml (its `path` resolved relative to the yaml file when relative, the
    split a directory, an image list .txt, or a list of those, relative to `path`) or a
    directory holding `images/<split>` + `labels/<split>` or `images/` + `labels/` (names then
    come from a data.yaml inside it, else from `names`, typically the model's).
    """
    data = Path(data)
    if not data.exists():
        raise DataError(f"dataset not found: {data}")
    if data.is_dir():
        yaml_path = next((p for p in (data / "data.yaml", data / "dataset.yaml") if p.is_file()), None)
        image_dir = data / "images" / split
        if not image_dir.is_dir():
            image_dir = data / "images"
        if not image_dir.is_dir():
            raise DataError(f"{data} has no images/{split} or images/ directory")
        sources = [image_dir]
        if yaml_path is not None:
            names = _parse_names(_read_yaml(yaml_path), yaml_path)
    else:
        cfg = _read_yaml(data)
        root = Path(cfg.get("path") or ".")
        if not root.is_absolute():
            root = data.parent / root
        entry = cfg.get(split)
        if not entry:
            raise DataError(f"{data} has no '{split}' split")
        sources = [root / e for e in (entry if isinstance(entry, list) else [entry])]
        names = _parse_names(cfg, data)
    if not names:
        raise DataError(f"{data} gives no class names (add 'names' to a data.yaml)")
    paths = _image_paths(sources)
    if not paths:
        raise DataError(f"no images found in {', '.join(str(s) for s in sources)}")
    return _build(paths, names, data, {s for s in sources if s.is_dir()})


def _read_yaml(path: Path) -> dict:
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read {path}: {one_line(exc)}") from None
    if not isinstance(cfg, dict):
        raise DataError(f"{path} is not a YOLO data.yaml (expected a mapping)")
    return cfg


def _parse_names(cfg: dict, path: Path) -> dict[int, str]:
    names = cfg.get("names")
    if isinstance(names, list):
        return dict(enumerate(str(n) for n in names))
    if isinstance(names, dict):
        try:
            return {int(k): str(v) for k, v in names.items()}
        except ValueError:
            raise DataError(f"{path}: class ids in 'names' must be integers") from None
    if names is None and isinstance(cfg.get("nc"), int):
        return {i: f"class{i}" for i in range(cfg["nc"])}
    raise DataError(f"{path} has no valid 'names'")


def _image_paths(sources: list[Path]) -> list[tuple[Path, Path]]:
    """(image path, root it is listed under) for every image of the split, sorted."""
    found: list[tuple[Path, Path]] = []
    for src in sources:
        if src.is_dir():
            found += [(p, src) for p in sorted(src.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
        elif src.is_file() and src.suffix == ".txt":
            for line in src.read_text().splitlines():
                if line.strip():
                    p = Path(line.strip())
                    p = p if p.is_absolute() else src.parent / p
                    found.append((p, p.parent))
        else:
            raise DataError(f"split source not found: {src}")
    return found


def label_path(image: Path) -> Path:
    """The label file of an image: the last `images` directory replaced by `labels`, .txt."""
    parts = list(image.parts)
    idx = max((i for i, p in enumerate(parts[:-1]) if p == "images"), default=None)
    if idx is None:
        return image.with_suffix(".txt")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def _build(paths: list[tuple[Path, Path]], names: dict[int, str], source: Path,
           dir_sources: set[Path]) -> Dataset:
    skipped: list[str] = []
    with ThreadPoolExecutor(max_workers=2) as pool:   # cv2 decoding releases the GIL
        sizes = list(pool.map(_image_size, [p for p, _ in paths]))
    images: list[LabeledImage] = []
    for (path, root), size in zip(paths, sizes):
        if size is None:
            msg = f"{path}: image missing or unreadable, skipped"
            log.warning(msg)
            skipped.append(msg)
            continue
        w, h = size
        boxes, classes = _read_labels(label_path(path), w, h, names, skipped)
        images.append(LabeledImage(path, path.relative_to(root).as_posix(), w, h, boxes, classes))
    _warn_orphan_labels([p for p, root in paths if root in dir_sources], skipped)
    return Dataset(images, names, source, skipped)


def _image_size(path: Path) -> tuple[int, int] | None:
    # Decoded (not just the header) so EXIF rotation is applied as the Detector will see it.
    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    return None if image is None else (image.shape[1], image.shape[0])


def _read_labels(path: Path, w: int, h: int, names: dict[int, str],
                 skipped: list[str]) -> tuple[np.ndarray, np.ndarray]:
    boxes: list[list[float]] = []
    classes: list[int] = []
    if path.is_file():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            values = line.split()
            if not values:
                continue
            try:
                cls_f, coords = float(values[0]), [float(v) for v in values[1:]]
            except ValueError:
                raise DataError(f"{path}:{n}: not a YOLO label line: {line!r}") from None
            if len(coords) < 4 or (len(coords) > 4 and len(coords) % 2) or cls_f != int(cls_f):
                raise DataError(f"{path}:{n}: expected 'class cx cy w h' or a polygon, got {line!r}")
            cls = int(cls_f)
            if cls not in names:
                msg = f"{path}:{n}: class id {cls} is not in the dataset's {len(names)} classes, label skipped"
                log.warning(msg)
                skipped.append(msg)
                continue
            if len(coords) == 4:
                cx, cy, bw, bh = coords
                pw, ph = bw * w, bh * h
                boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, pw, ph])
            else:
                xs, ys = coords[0::2], coords[1::2]
                boxes.append([min(xs) * w, min(ys) * h, (max(xs) - min(xs)) * w, (max(ys) - min(ys)) * h])
            classes.append(cls)
    return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(classes, np.int64)


def _warn_orphan_labels(paths: list[Path], skipped: list[str]) -> None:
    """Label files without their image, next to the images of directory splits (an image
    list .txt may share its label directory with other splits, so it is not checked)."""
    label_dirs = {label_path(p).parent for p in paths}
    have = {label_path(p) for p in paths}
    for d in sorted(label_dirs):
        if not d.is_dir():
            continue
        for lbl in sorted(d.glob("*.txt")):
            if lbl not in have:
                msg = f"{lbl}: label file has no image, skipped"
                log.warning(msg)
                skipped.append(msg)

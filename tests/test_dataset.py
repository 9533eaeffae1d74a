"""YOLO dataset parsing and COCO ground-truth conversion, on the shared shapes val set and on
small datasets built from its files in tmp_path."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from edge_yolo.dataset import label_path, load_dataset
from edge_yolo.errors import DataError

SHAPES = Path(__file__).parent / "fixtures" / "shapes"


def make_dataset(root: Path, val_dir: Path, n: int = 3, split: str = "val") -> Path:
    """Copy the first n images and labels of the fixture into root/images/<split>, labels/<split>."""
    for kind, suffix in (("images", ".jpg"), ("labels", ".txt")):
        dst = root / kind / split
        dst.mkdir(parents=True)
        for src in sorted((val_dir / kind / "val").glob(f"*{suffix}"))[:n]:
            shutil.copy(src, dst / src.name)
    return root


def write_yaml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_fixture_ground_truth_equals_reference_coco_json(val_dir: Path) -> None:
    gt = load_dataset(val_dir / "data.yaml").to_coco()
    ref = json.loads((SHAPES / "coco_gt_val.json").read_text())
    assert gt["images"] == ref["images"]
    assert gt["categories"] == ref["categories"] == [
        {"id": 0, "name": "circle"}, {"id": 1, "name": "square"}, {"id": 2, "name": "triangle"}]
    assert len(gt["annotations"]) == len(ref["annotations"]) == 226
    for ours, theirs in zip(gt["annotations"], ref["annotations"]):
        assert ours.keys() == theirs.keys()
        for key in ("id", "image_id", "category_id", "iscrowd"):
            assert ours[key] == theirs[key] and type(ours[key]) is int
        # bbox absolute pixels [x, y, w, h]; area = w*h (last-bit float differences only)
        assert ours["bbox"] == pytest.approx(theirs["bbox"], rel=1e-12, abs=1e-9)
        assert ours["area"] == pytest.approx(theirs["area"], rel=1e-12)
        assert ours["area"] == pytest.approx(ours["bbox"][2] * ours["bbox"][3], rel=1e-12)


def test_directory_and_yaml_give_the_same_dataset(val_dir: Path) -> None:
    a, b = load_dataset(val_dir / "data.yaml"), load_dataset(val_dir)
    assert a.to_coco() == b.to_coco()
    assert (len(a), a.n_objects, a.skipped) == (80, 226, [])


def test_yaml_path_is_relative_to_the_yaml_file(tmp_path: Path, val_dir: Path) -> None:
    make_dataset(tmp_path / "ds", val_dir)
    yaml_file = write_yaml(tmp_path / "configs" / "data.yaml",
                           "path: ../ds\nval: images/val\nnames: [circle, square, triangle]\n")
    ds = load_dataset(yaml_file)
    assert len(ds) == 3 and ds.names == {0: "circle", 1: "square", 2: "triangle"}
    assert ds.images[0].path == tmp_path / "configs" / ".." / "ds" / "images" / "val" / "00000.jpg"


def test_directory_without_yaml_takes_names_from_caller(tmp_path: Path, val_dir: Path) -> None:
    root = tmp_path / "ds"
    make_dataset(root, val_dir, n=2)
    # images/ + labels/ directly (no split level)
    for kind in ("images", "labels"):
        (root / kind / "val").rename(root / f"{kind}_tmp")
        (root / kind).rmdir()
        (root / f"{kind}_tmp").rename(root / kind)
    with pytest.raises(DataError, match="no class names"):
        load_dataset(root)
    ds = load_dataset(root, names={0: "a", 1: "b", 2: "c"})
    assert len(ds) == 2 and ds.n_objects > 0


def test_image_list_split_and_polygon_labels(tmp_path: Path, val_dir: Path) -> None:
    root = make_dataset(tmp_path / "ds", val_dir, n=2)
    (root / "val.txt").write_text("images/val/00001.jpg\n")
    # a polygon label: its bounding box is the object
    (root / "labels" / "val" / "00001.txt").write_text("1 0.1 0.2 0.3 0.2 0.3 0.6 0.1 0.6\n")
    ds = load_dataset(write_yaml(root / "data.yaml", "path: .\nval: val.txt\nnames: {0: a, 1: b}\n"))
    assert [im.file_name for im in ds.images] == ["00001.jpg"]
    assert ds.images[0].classes.tolist() == [1]
    assert ds.images[0].boxes[0].tolist() == pytest.approx([64.0, 96.0, 128.0, 192.0])


def test_empty_and_missing_label_files_are_images_without_objects(tmp_path: Path, val_dir: Path) -> None:
    root = make_dataset(tmp_path / "ds", val_dir)
    (root / "labels" / "val" / "00000.txt").write_text("")
    (root / "labels" / "val" / "00001.txt").unlink()
    ds = load_dataset(write_yaml(root / "data.yaml", "path: .\nval: images/val\nnames: [a, b, c]\n"))
    assert len(ds) == 3 and ds.skipped == []
    assert [len(im.classes) for im in ds.images[:2]] == [0, 0] and len(ds.images[2].classes) > 0
    gt = ds.to_coco()
    assert len(gt["images"]) == 3 and {a["image_id"] for a in gt["annotations"]} == {2}


def test_class_id_out_of_range_warns_and_skips_that_label(tmp_path: Path, val_dir: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    root = make_dataset(tmp_path / "ds", val_dir)
    lbl = root / "labels" / "val" / "00000.txt"
    good = lbl.read_text().splitlines()
    lbl.write_text("\n".join(good + ["7 0.5 0.5 0.1 0.1"]) + "\n")
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(write_yaml(root / "data.yaml", "path: .\nval: images/val\nnames: [a, b, c]\n"))
    assert len(ds.images[0].classes) == len(good)        # the bad label skipped, the rest kept
    assert len(ds.skipped) == 1 and "class id 7" in ds.skipped[0] and str(lbl) in ds.skipped[0]
    assert str(lbl) in caplog.text


def test_missing_or_unreadable_image_warns_and_is_skipped(tmp_path: Path, val_dir: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    root = make_dataset(tmp_path / "ds", val_dir)
    (root / "images" / "val" / "00000.jpg").unlink()                 # label without image
    (root / "images" / "val" / "00001.jpg").write_bytes(b"not a jpeg")  # unreadable image
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(write_yaml(root / "data.yaml", "path: .\nval: images/val\nnames: [a, b, c]\n"))
    assert [im.file_name for im in ds.images] == ["00002.jpg"]
    assert len(ds.skipped) == 2
    assert "00001.jpg: image missing or unreadable" in caplog.text
    assert "00000.txt: label file has no image" in caplog.text


@pytest.mark.parametrize(("text", "match"), [
    ("0 0.5 0.5 0.1\n", "expected 'class cx cy w h'"),
    ("zero 0.5 0.5 0.1 0.1\n", "not a YOLO label line"),
])
def test_malformed_label_line_is_a_data_error(tmp_path: Path, val_dir: Path, text: str, match: str) -> None:
    root = make_dataset(tmp_path / "ds", val_dir, n=1)
    (root / "labels" / "val" / "00000.txt").write_text(text)
    with pytest.raises(DataError, match=match):
        load_dataset(write_yaml(root / "data.yaml", "path: .\nval: images/val\nnames: [a]\n"))


def test_bad_data_arguments_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset not found"):
        load_dataset(tmp_path / "missing.yaml")
    with pytest.raises(DataError, match="has no 'val' split"):
        load_dataset(write_yaml(tmp_path / "a.yaml", "path: .\ntrain: images\nnames: [a]\n"))
    with pytest.raises(DataError, match="not a YOLO data.yaml"):
        load_dataset(write_yaml(tmp_path / "b.yaml", "- just a list\n"))
    with pytest.raises(DataError, match="split source not found"):
        load_dataset(write_yaml(tmp_path / "c.yaml", "path: .\nval: nowhere\nnames: [a]\n"))
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        load_dataset(tmp_path / "empty", names={0: "a"})


def test_label_path_replaces_the_last_images_directory() -> None:
    assert label_path(Path("/d/images/x/images/val/a.b.jpg")) == Path("/d/images/x/labels/val/a.b.txt")
    assert label_path(Path("/d/photos/a.png")) == Path("/d/photos/a.txt")

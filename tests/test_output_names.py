"""Outputs of one `detect` run never overwrite each other and every input file is read once:
same-named images from different directories or with different suffixes, glob-named JSON
lines, and a glob through a symlink loop."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from edge_yolo.sinks import image_output_stems
from edge_yolo.sources import resolve_sources

from test_cli_detect import run_cli


@pytest.fixture()
def cams(tmp_path: Path, val_images: list[Path]) -> Path:
    """cam1/img.jpg and cam2/img.jpg (different photos), plus a.jpg and a.png in cam1."""
    for cam, image in (("cam1", val_images[0]), ("cam2", val_images[1])):
        (tmp_path / cam).mkdir()
        shutil.copy(image, tmp_path / cam / "img.jpg")
    shutil.copy(val_images[2], tmp_path / "cam1" / "a.jpg")
    import cv2

    cv2.imwrite(str(tmp_path / "cam1" / "a.png"), cv2.imread(str(val_images[3])))
    return tmp_path


def test_unique_stems() -> None:
    stems = image_output_stems([Path("cam1/img.jpg"), Path("cam2/img.jpg"), Path("x/a.jpg"), Path("x/a.png"),
                                Path("x/solo.jpg"), Path("y/IMG.jpg"), Path("x/a.jpg")])
    assert stems == {Path("cam1/img.jpg"): "cam1_img", Path("cam2/img.jpg"): "cam2_img",
                     Path("y/IMG.jpg"): "y_IMG", Path("x/a.jpg"): "a_jpg", Path("x/a.png"): "a_png",
                     Path("x/solo.jpg"): "solo"}
    # a disambiguated name that another file already has falls back to a number
    clash = image_output_stems([Path("p/q.jpg"), Path("r/q.jpg"), Path("s/p_q.jpg"), Path("s/r_q.jpg"),
                                Path("s/q_jpg.jpg"), Path("t/p_q_jpg.jpg"), Path("t/r_q_jpg.jpg")])
    assert clash[Path("p/q.jpg")] == "q_1" and clash[Path("r/q.jpg")] == "q_2"
    assert len({v.casefold() for v in clash.values()}) == len(clash)


@pytest.mark.parametrize("how", ["glob", "list", "arguments"])
def test_same_named_images_from_two_directories(how: str, cams: Path, ul_onnx: Path, tmp_path: Path,
                                                capfd: pytest.CaptureFixture) -> None:
    if how == "glob":
        specs = [str(cams / "cam*" / "img.jpg")]
    elif how == "list":
        (cams / "list.txt").write_text("cam1/img.jpg\ncam2/img.jpg\n")
        specs = [str(cams / "list.txt")]
    else:
        specs = [str(cams / "cam1" / "img.jpg"), str(cams / "cam2" / "img.jpg")]
    out = tmp_path / "run"
    code, _, err = run_cli(["detect", *specs, "--model", ul_onnx, "--device", "cpu", "--save-json", "--save-txt",
                            "-o", out, "-q"], capfd)
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.jpg")) == ["cam1_img.jpg", "cam2_img.jpg"]
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["cam1_img.txt", "cam2_img.txt"]
    records = [json.loads(line) for f in sorted(out.glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert sorted(r["image"] for r in records) == ["cam1_img.jpg", "cam2_img.jpg"]
    labels = {p.stem: p.read_text().splitlines() for p in (out / "labels").iterdir()}
    for r in records:  # each label file holds its own image's detections
        assert len(labels[Path(r["image"]).stem]) == len(r["detections"])
    assert labels["cam1_img"] != labels["cam2_img"]


def test_same_stem_different_suffix(cams: Path, ul_onnx: Path, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(["detect", cams / "cam1" / "a.jpg", cams / "cam1" / "a.png", "--model", ul_onnx,
                            "--device", "cpu", "--save-txt", "-o", out, "-q"], capfd)
    assert code == 0, err
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["a_jpg.txt", "a_png.txt"]
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["a_jpg.jpg", "a_png.png"]


@pytest.mark.parametrize(("pattern", "name"), [("cam*/img.jpg", "glob"), ("**/*.jpg", "glob"),
                                                ("cam1/*.jpg", "cam1"), ("{root}/cam*/*.jpg", "{root}")])
def test_glob_sources_get_a_readable_name(pattern: str, name: str, cams: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(cams)
    (source,) = resolve_sources(pattern.format(root=cams), vid_stride=1)
    assert source.name == name.format(root=cams.name)


def test_glob_through_a_symlink_loop_reads_each_file_once(cams: Path, ul_onnx: Path, tmp_path: Path,
                                                          capfd: pytest.CaptureFixture) -> None:
    os.symlink("..", cams / "cam1" / "up")  # cam1/up/cam1/up/... loops back to the root
    (source,) = resolve_sources(str(cams / "**" / "*.jpg"))
    assert sorted(str(p.relative_to(cams)) for p in source.paths) == ["cam1/a.jpg", "cam1/img.jpg", "cam2/img.jpg"]
    out = tmp_path / "run"
    code, _, err = run_cli(["detect", cams / "**" / "*.jpg", "--model", ul_onnx, "--device", "cpu",
                            "--save-json", "-o", out, "-q"], capfd)
    assert code == 0, err
    (jsonl,) = out.glob("*.jsonl")
    assert jsonl.name == f"{cams.name}.jsonl"
    assert len(jsonl.read_text().splitlines()) == 3

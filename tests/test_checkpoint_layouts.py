"""Our network built from the stock yaml of every scale matches the real state_dict key/shape
dumps of all three code bases exactly, and layout detection reads each dump right."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from converters.layout import detect_layout
from converters.nn import LAYOUTS, build_model, stock_yaml

KEYS = Path(__file__).parent / "fixtures" / "state_dict_keys"
PREFIX = {"A": "sd_ultralytics_yolo12", "B": "sd_official_v1_yolov12", "C": "sd_official_main_yolov12"}
ENTRIES = {"A": (691, 751, 1245), "B": (699, 759, 1261), "C": (739, 799, 1341)}  # n/s, m, l/x (spec §1.4)


def read_dump(path: Path) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in path.read_text().splitlines():
        key, shape = line.split("\t")
        rows.append((key, tuple(int(d) for d in shape.strip("()").split(",") if d.strip())))
    return rows


def built_shapes(yaml: dict, variant: object) -> list[tuple[str, tuple[int, ...]]]:
    with torch.device("meta"):
        model = build_model(yaml, variant)
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("scale", "nslmx")
@pytest.mark.parametrize("layout", "ABC")
def test_stock_yaml_matches_dump(layout: str, scale: str) -> None:
    dump = read_dump(KEYS / f"{PREFIX[layout]}{scale}.txt")
    expected_entries = ENTRIES[layout][{"n": 0, "s": 0, "m": 1, "l": 2, "x": 2}[scale]]
    assert len(dump) == expected_entries
    yaml = stock_yaml(scale, turbo=layout == "C")
    assert built_shapes(yaml, LAYOUTS[layout]) == dump

    detected = detect_layout(dict(dump))
    assert detected.letter == layout
    assert not detected.variant.fused
    assert detected.variant.nc == 80 and detected.variant.reg_max == 16
    # the shape-driven variant rebuilds the same model, even from the non-turbo yaml for C
    # (conv groups come from the weight shapes)
    assert built_shapes(stock_yaml(scale), detected.variant) == dump


def test_fused_dump_detected() -> None:
    """A fused n model has 239 entries (spec §2.1) and is detected as fused."""
    with torch.device("meta"):
        model = build_model(stock_yaml("n"), "A").fuse()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(shapes) == 239 and not any(".bn." in k for k in shapes)
    detected = detect_layout(shapes)
    assert detected.variant.fused and detected.letter == "A"
    assert built_shapes(stock_yaml("n"), detected.variant) == list(shapes.items())


@pytest.mark.parametrize("scale", "nl")
def test_layout_e_detected(scale: str) -> None:
    """Seg/Cls-branch detection models: gamma at every scale, MLP ratio 1.0 at l/x."""
    yaml = stock_yaml(scale)
    shapes = dict(built_shapes(yaml, LAYOUTS["E"]))
    assert "model.6.gamma" in shapes and "model.8.gamma" in shapes
    c_ = shapes["model.6.cv1.conv.weight"][0]
    hidden = shapes["model.6.m.0.0.mlp.0.conv.weight"][0]
    assert hidden == (c_ if scale == "l" else 2 * c_)
    assert detect_layout(shapes).letter == "E"

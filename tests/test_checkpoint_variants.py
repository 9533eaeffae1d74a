"""Checkpoint variants the loader must handle: fused (pickled `forward_fuse` bound methods),
`ema` entry, fp32, the plain-dict format, layout E and a custom-width yaml."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from checkpoint_factory import randomize, save_plain, save_ultralytics_style
from converters import LoadedCheckpoint, load_checkpoint
from converters.nn import build_model, stock_yaml
from converters.safe_pickle import make_pickle_module

GOLDEN = Path(__file__).parent / "fixtures" / "checkpoints" / "yolo12n_ul.golden.npz"


@pytest.fixture(scope="module")
def shapes_ckpt(shapes_pt: Path) -> LoadedCheckpoint:
    return load_checkpoint(shapes_pt)


@pytest.fixture(scope="module")
def photo_320() -> torch.Tensor:
    """A real photo letterboxed to 320x320 (the golden fixture's chelsea input)."""
    return torch.from_numpy(np.load(GOLDEN)["x_320_u8"].astype(np.float32) / np.float32(255))


def run(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return model(x).numpy()


def test_fused_checkpoint_matches_unfused(tmp_path: Path, shapes_ckpt: LoadedCheckpoint,
                                          photo_320: torch.Tensor) -> None:
    fused = copy.deepcopy(shapes_ckpt.model).fuse()
    path = save_ultralytics_style(tmp_path / "fused.pt", fused, shapes_ckpt.yaml, shapes_ckpt.names,
                                  imgsz=320, half=False, fused_forward=True)
    pm = make_pickle_module()
    torch.load(path, weights_only=False, pickle_module=pm)
    assert "__builtin__.getattr" in pm.seen_globals or "builtins.getattr" in pm.seen_globals

    loaded = load_checkpoint(path)
    assert loaded.fused and loaded.layout == "A"
    assert not any(".bn." in k for k in loaded.model.state_dict())
    ref = run(shapes_ckpt.model, photo_320)
    assert float(np.abs(run(loaded.model, photo_320) - ref).max()) <= 1e-3
    assert "ultralytics" not in sys.modules


def test_fused_fp16_checkpoint_loads(tmp_path: Path, shapes_ckpt: LoadedCheckpoint) -> None:
    fused = copy.deepcopy(shapes_ckpt.model).fuse()
    path = save_ultralytics_style(tmp_path / "fused16.pt", fused, shapes_ckpt.yaml, shapes_ckpt.names,
                                  imgsz=320, half=True, fused_forward=True)
    loaded = load_checkpoint(path)
    assert loaded.fused and loaded.names == shapes_ckpt.names
    assert len(loaded.model.state_dict()) == 239


def test_fused_layout_b_keeps_pe_bias(tmp_path: Path) -> None:
    """Fusing the official v1.0 model folds its pe bias into the fused conv bias."""
    v1 = load_checkpoint(Path(__file__).parent / "fixtures" / "checkpoints" / "yolov12n_v1.pt")
    x = torch.from_numpy(np.load(GOLDEN)["x_320_u8"].astype(np.float32) / np.float32(255))
    fused = copy.deepcopy(v1.model).fuse()
    assert float(np.abs(run(fused, x) - run(v1.model, x)).max()) <= 1e-3
    loaded = load_checkpoint(save_plain(tmp_path / "v1_fused.pt", fused.state_dict(), v1.yaml, v1.names))
    assert loaded.fused
    assert float(np.abs(run(loaded.model, x) - run(v1.model, x)).max()) <= 1e-3


@pytest.mark.parametrize("half", [False, True])
def test_ema_entry(tmp_path: Path, shapes_ckpt: LoadedCheckpoint, photo_320: torch.Tensor, half: bool) -> None:
    """A mid-training checkpoint: model None, weights in `ema`; fp32 and fp16."""
    path = save_ultralytics_style(tmp_path / "last.pt", shapes_ckpt.model, shapes_ckpt.yaml, shapes_ckpt.names,
                                  imgsz=320, entry="ema", half=half)
    loaded = load_checkpoint(path)
    assert loaded.layout == "A" and loaded.imgsz == (320, 320) and loaded.names == shapes_ckpt.names
    # the fixture is fp16 already, so re-saving in either precision keeps the weights exactly
    np.testing.assert_array_equal(run(loaded.model, photo_320), run(shapes_ckpt.model, photo_320))


@pytest.mark.parametrize("bare", ["model", "wrapper"])
def test_bare_saved_model(tmp_path: Path, shapes_ckpt: LoadedCheckpoint, photo_320: torch.Tensor, bare: str) -> None:
    """torch.save(model) or torch.save(YOLO(...)) without a checkpoint dict around it."""
    path = save_ultralytics_style(tmp_path / "bare.pt", shapes_ckpt.model, shapes_ckpt.yaml, shapes_ckpt.names,
                                  imgsz=320, bare=bare)
    loaded = load_checkpoint(path)
    assert loaded.names == shapes_ckpt.names and loaded.imgsz == (320, 320)
    np.testing.assert_array_equal(run(loaded.model, photo_320), run(shapes_ckpt.model, photo_320))


def roundtrip_plain(tmp_path: Path, yaml: dict, layout: str, seed: int) -> tuple[torch.nn.Module, LoadedCheckpoint]:
    torch.manual_seed(seed)
    model = randomize(build_model(yaml, layout), seed)
    names = {i: f"c{i}" for i in range(yaml["nc"])}
    path = save_plain(tmp_path / f"{layout}.pt", model.state_dict(), yaml, names, imgsz=[256, 320])
    return model, load_checkpoint(path)


def test_layout_e_plain_dict(tmp_path: Path) -> None:
    model, loaded = roundtrip_plain(tmp_path, stock_yaml("n", nc=5), "E", seed=1)
    assert loaded.layout == "E" and loaded.nc == 5 and loaded.imgsz == (256, 320)
    assert loaded.names == {i: f"c{i}" for i in range(5)}
    assert loaded.model.model[6].gamma is not None
    x = torch.rand(1, 3, 256, 320, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(run(loaded.model, x), run(model, x), atol=1e-4)


def test_custom_width_l_topology(tmp_path: Path) -> None:
    """An `l` topology (4 A2C2f repeats, C3k inner blocks, gamma, MLP 1.2) at width 0.25."""
    yaml = stock_yaml("l", nc=3)
    yaml["scales"] = {"l": [1.0, 0.25, 512]}
    model, loaded = roundtrip_plain(tmp_path, yaml, "A", seed=2)
    assert loaded.layout == "A"
    sd = loaded.model.state_dict()
    assert sd["model.0.conv.weight"].shape[0] == 16
    assert "model.6.m.3.1.attn.qkv.conv.weight" in sd and "model.6.gamma" in sd
    assert sd["model.6.m.0.0.mlp.0.conv.weight"].shape[0] == int(64 * 1.2)
    assert "model.2.m.0.m.1.cv2.conv.weight" in sd  # C3k inner blocks at l
    x = torch.rand(1, 3, 256, 320, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(run(loaded.model, x), run(model, x), atol=1e-4)

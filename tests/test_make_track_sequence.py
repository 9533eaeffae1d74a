"""benchmarks/make_track_sequence.py writes a MOTChallenge sequence whose ground truth matches its video."""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import make_track_sequence  # noqa: E402 - a benchmarks/ script, not a package


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seq") / "seed4"
    make_track_sequence.make_sequence(4, out, frames=40)
    return out


def test_video_and_gt_agree(sequence: Path) -> None:
    with av.open(str(sequence / "video.mp4")) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == 40 and frames[0].shape == (720, 1280, 3)
    gt = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",", ndmin=2)
    assert gt.shape[1] == 9
    frame, ids, x, y, w, h, flag, cls, vis = gt.T
    assert frame.min() == 1 and frame.max() == 40
    assert 5 <= len(np.unique(ids)) <= 12
    assert (x >= 0).all() and (y >= 0).all() and (w >= 1).all() and (h >= 1).all()
    assert (x + w <= 1280).all() and (y + h <= 720).all()
    assert set(cls) <= {0, 1, 2}
    assert ((vis >= 0.25) == (flag == 1)).all() and (vis <= 1).all()
    assert (vis < 1).any(), "no shape is ever occluded or cut by the frame edge"
    # A fully visible shape is a flat saturated colour, unlike the photo behind it: the pixel at
    # the centre of its box (inside a circle, square or triangle of this size) is one of FILLS.
    for row in gt[(vis == 1) & (cls != 2)][:20]:
        image = frames[int(row[0]) - 1]
        pixel = image[int(row[3] + row[5] / 2), int(row[2] + row[4] / 2)].astype(int)
        assert min(np.abs(pixel - c).max() for c in make_track_sequence.FILLS) < 40, (row, pixel)


def test_same_seed_same_sequence(sequence: Path, tmp_path: Path) -> None:
    make_track_sequence.make_sequence(4, tmp_path / "again", frames=40)
    assert (tmp_path / "again" / "gt" / "gt.txt").read_text() == (sequence / "gt" / "gt.txt").read_text()

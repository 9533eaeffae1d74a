"""One OpenCV owns `cv2/`: the `trackers` library requires opencv-python, and opencv-python-headless
installs the same files, so having both leaves whichever was written last (and removing one
deletes cv2 for the other). edge-yolo therefore depends on opencv-python itself."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPENCV_DISTRIBUTIONS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                        "opencv-contrib-python-headless")


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_one_opencv_distribution_owns_cv2() -> None:
    import cv2

    installed = [d for d in OPENCV_DISTRIBUTIONS if _installed(d)]
    assert len(installed) == 1, f"several distributions install cv2/: {installed}"
    dist = metadata.distribution(installed[0])
    assert Path(cv2.__file__).resolve() == Path(str(dist.locate_file("cv2/__init__.py"))).resolve()


def test_edge_yolo_depends_on_the_opencv_that_trackers_requires() -> None:
    text = (ROOT / "pyproject.toml").read_text()  # tomllib is 3.11+, and this project supports 3.10
    block = re.search(r"^dependencies = \[(.*?)\]", text, re.S | re.M)
    assert block
    ours = _requirement_names(re.findall(r'"([^"]+)"', block.group(1))) & set(OPENCV_DISTRIBUTIONS)
    theirs = _requirement_names(metadata.requires("trackers") or []) & set(OPENCV_DISTRIBUTIONS)
    assert ours == theirs == {"opencv-python"}
    assert re.search(r'^track = \["trackers', text, re.M)

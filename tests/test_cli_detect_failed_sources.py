"""`edge-yolo detect` with a source that cannot be read beside one that can: the good one's
outputs are written, the summary names the failed one and the exit code is 3 (not 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_cli_detect import run_cli

# No camera is attached here; a high index stays absent even on a machine with a webcam or two.
MISSING_WEBCAM = "57"


def test_missing_webcam_beside_an_image_exits_3(tmp_path: Path, ul_onnx: Path, val_images: list[Path],
                                                capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(["detect", MISSING_WEBCAM, val_images[0], "-m", ul_onnx, "--device", "cpu",
                            "--save-json", "-o", out], capfd)
    assert code == 3, err
    assert (f"failed sources (1 of 2): cannot open webcam {MISSING_WEBCAM}: no camera with that index, "
            "or it is in use") in err
    assert "1 frames in" in err and "retrying" not in err
    assert (out / val_images[0].name).is_file()
    assert len((out / f"{val_images[0].stem}.jsonl").read_text().splitlines()) == 1


def test_failed_sources_are_reported_even_when_quiet(tmp_path: Path, ul_onnx: Path, val_images: list[Path],
                                                     capfd: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["detect", val_images[0], MISSING_WEBCAM, "-m", ul_onnx, "--device", "cpu",
                            "--no-save", "-o", tmp_path / "run", "--quiet"], capfd)
    assert code == 3
    assert err.strip().splitlines()[-1].startswith("failed sources (1 of 2): cannot open webcam")


def test_only_source_missing_is_one_error_line(tmp_path: Path, ul_onnx: Path, capfd: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["detect", MISSING_WEBCAM, "-m", ul_onnx, "--device", "cpu", "-o", tmp_path / "run"],
                           capfd)
    assert code == 1
    assert err.strip().splitlines()[-1] == (f"error: cannot open webcam {MISSING_WEBCAM}: no camera with that "
                                            "index, or it is in use")

"""Bad and hostile checkpoint files are refused with one clear sentence, and nothing in them
ever runs."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from checkpoint_factory import save_plain, save_ultralytics_style
from converters import load_checkpoint
from converters.nn import build_model, stock_yaml
from edge_yolo.errors import ModelLoadError, UnsafeCheckpointError, UnsupportedModelError

CHECKPOINTS = Path(__file__).parent / "fixtures" / "checkpoints"


class SystemPayload:
    """Unpickling this would run a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


class FileWritePayload:
    """Unpickling this would write `marker` through builtins.exec."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("payload", [SystemPayload, FileWritePayload])
def test_reduce_payload_refused_and_not_run(tmp_path: Path, payload: type) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": payload(marker), "train_args": {"imgsz": 640}}, path)
    with pytest.raises(UnsafeCheckpointError, match="not on the allow-list"):
        load_checkpoint(path)
    assert not marker.exists()


def test_payload_nested_in_real_checkpoint(tmp_path: Path) -> None:
    """A real checkpoint with one extra hostile entry is refused as a whole."""
    marker = tmp_path / "pwned"
    real = load_checkpoint(CHECKPOINTS / "yolo12n_ul.pt")
    state = {"state_dict": real.model.state_dict(), "yaml": real.yaml, "names": real.names,
             "extra": SystemPayload(marker)}
    torch.save(state, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"posix\.system|os\.system"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_raw_pickle_not_unpickled(tmp_path: Path) -> None:
    """A legacy (non-zip) pickle file is refused before any unpickling."""
    marker = tmp_path / "pwned"
    path = tmp_path / "legacy.pt"
    path.write_bytes(pickle.dumps(SystemPayload(marker)))
    with pytest.raises(ModelLoadError, match="not a PyTorch zip checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_non_allow_listed_global(tmp_path: Path) -> None:
    import datetime

    path = tmp_path / "global.pt"
    torch.save({"model": None, "date": datetime.datetime(2025, 1, 1)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"datetime\.datetime"):
        load_checkpoint(path)


def test_getattr_beyond_forward_refused(tmp_path: Path) -> None:
    """`builtins.getattr` is only honoured for forward/forward_fuse/forward_split."""

    class Sneaky:
        def __reduce__(self) -> tuple:
            return (getattr, (torch.nn.Identity(), "register_forward_hook"))

    torch.save({"model": Sneaky()}, tmp_path / "sneaky.pt")
    with pytest.raises(UnsafeCheckpointError, match="register_forward_hook"):
        load_checkpoint(tmp_path / "sneaky.pt")


def test_truncated(tmp_path: Path) -> None:
    data = (CHECKPOINTS / "yolo12n_ul.pt").read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        load_checkpoint(path)


def test_corrupt_member(tmp_path: Path) -> None:
    """A zip whose pickle record is garbage: a ModelLoadError, not a pickle traceback."""
    src = CHECKPOINTS / "yolo12n_ul.pt"
    path = tmp_path / "corrupt.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item)
            zout.writestr(item, b"\x80\x02garbage" if item.filename.endswith("data.pkl") else data)
    with pytest.raises(ModelLoadError, match="cannot read checkpoint"):
        load_checkpoint(path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated; users still have such files
def test_torchscript_archive_refused(tmp_path: Path) -> None:
    """torch.load would pass a TorchScript zip to torch.jit.load; we refuse it instead."""
    torch.jit.save(torch.jit.script(torch.nn.ReLU()), tmp_path / "scripted.pt")
    with pytest.raises(UnsupportedModelError, match="TorchScript"):
        load_checkpoint(tmp_path / "scripted.pt")


def test_other_zip_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "other.pt", "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ModelLoadError, match="no data.pkl"):
        load_checkpoint(tmp_path / "other.pt")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ModelLoadError, match="not a PyTorch zip checkpoint"):
        load_checkpoint(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pt"
    path.touch()
    with pytest.raises(ModelLoadError, match="is empty"):
        load_checkpoint(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_tensor_only_file(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, tmp_path / "w.pt")
    with pytest.raises(UnsupportedModelError, match="holds no model"):
        load_checkpoint(tmp_path / "w.pt")


def yolov8_yaml() -> dict:
    return {
        "nc": 80, "scales": {"n": [0.33, 0.25, 1024]}, "scale": "n",
        "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [128, 3, 2]], [-1, 3, "C2f", [128, True]],
                     [-1, 1, "SPPF", [1024, 5]]],
        "head": [[[-1], 1, "Detect", ["nc"]]],
    }


def test_yolov8_refused(tmp_path: Path) -> None:
    """A YOLOv8 checkpoint (C2f blocks, SPPF) in the plain-dict format."""
    sd = {"model.2.cv1.conv.weight": torch.zeros(32, 32, 1, 1), "model.2.m.0.cv1.conv.weight": torch.zeros(16, 16, 3, 3)}
    path = save_plain(tmp_path / "yolov8n.pt", sd, yolov8_yaml(), {0: "a"})
    with pytest.raises(UnsupportedModelError, match="YOLOv8 C2f"):
        load_checkpoint(path)


@pytest.mark.parametrize(("change", "message"), [
    (lambda y: y["head"].__setitem__(-1, [[-1], 1, "Segment", ["nc", 32, 256]]), "segmentation head"),
    (lambda y: y["backbone"].__setitem__(3, [-1, 2, "C2PSA", [1024]]), "YOLO11 C2PSA"),
])
def test_foreign_yolov8_variants_named(tmp_path: Path, change: object, message: str) -> None:
    """The head is named before the blocks (YOLOv8-seg is 'segmentation', not 'C2f')."""
    yaml = yolov8_yaml()
    change(yaml)  # type: ignore[operator]
    path = save_plain(tmp_path / "foreign.pt", {"model.0.conv.weight": torch.zeros(16, 3, 3, 3)}, yaml, {0: "a"})
    with pytest.raises(UnsupportedModelError, match=message):
        load_checkpoint(path)


def test_segmentation_refused(tmp_path: Path) -> None:
    """A YOLOv12-seg style checkpoint: pickled SegmentationModel whose yaml ends in Segment."""
    yaml = stock_yaml("n")
    model = build_model(yaml, "A")
    yaml["head"][-1] = [[14, 17, 20], 1, "Segment", ["nc", 32, 256]]
    path = save_ultralytics_style(tmp_path / "seg.pt", model, yaml, {0: "a"}, model_class="SegmentationModel")
    with pytest.raises(UnsupportedModelError, match="segmentation"):
        load_checkpoint(path)
    path = save_plain(tmp_path / "seg_plain.pt", model.state_dict(), yaml, {0: "a"})
    with pytest.raises(UnsupportedModelError, match="segmentation head"):
        load_checkpoint(path)


def test_segmentation_keys_refused(tmp_path: Path) -> None:
    """A Detect yaml but proto (mask) weights in the state_dict."""
    yaml = stock_yaml("n")
    sd = build_model(yaml, "A").state_dict()
    sd["model.21.proto.cv1.conv.weight"] = torch.zeros(64, 64, 3, 3)
    with pytest.raises(UnsupportedModelError, match="segmentation"):
        load_checkpoint(save_plain(tmp_path / "seg.pt", sd, yaml, {0: "a"}))


def test_classification_refused(tmp_path: Path) -> None:
    yaml = stock_yaml("n")
    yaml["head"] = [[-1, 1, "Classify", ["nc"]]]
    path = save_plain(tmp_path / "cls.pt", {"model.9.linear.weight": torch.zeros(80, 1280)}, yaml, {0: "a"})
    with pytest.raises(UnsupportedModelError, match="classification head"):
        load_checkpoint(path)


def test_unknown_attention_names_refused(tmp_path: Path) -> None:
    """Turbo-like weights whose AAttn sub-modules have names we do not know."""
    turbo = load_checkpoint(CHECKPOINTS / "yolov12n_turbo.pt")
    sd = {k.replace(".attn.qk.", ".attn.qk_flash."): v for k, v in turbo.model.state_dict().items()}
    path = save_plain(tmp_path / "flash.pt", sd, turbo.yaml, turbo.names)
    with pytest.raises(UnsupportedModelError, match="unknown YOLOv12 attention layout"):
        load_checkpoint(path)


def test_mismatched_weights_refused(tmp_path: Path) -> None:
    """Weights that do not fit the yaml (an s state_dict under an n yaml) never give a model."""
    sd = build_model(stock_yaml("s"), "A").state_dict()
    path = save_plain(tmp_path / "mixed.pt", sd, stock_yaml("n"), {0: "a"})
    with pytest.raises(UnsupportedModelError, match="do not fit"):
        load_checkpoint(path)


def test_no_yaml_refused(tmp_path: Path) -> None:
    sd = build_model(stock_yaml("n"), "A").state_dict()
    torch.save({"state_dict": sd, "names": {0: "a"}}, tmp_path / "noyaml.pt")
    with pytest.raises(UnsupportedModelError, match="no model yaml"):
        load_checkpoint(tmp_path / "noyaml.pt")


def test_message_is_one_line(tmp_path: Path) -> None:
    """One sentence on one line naming the file (the CLI prints it as `error: ...`)."""
    path = tmp_path / "random.pt"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(ModelLoadError) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)

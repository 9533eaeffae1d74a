"""Tracking on the fixture tracking video (shapes moving, MOTChallenge ground truth): our MOT
metrics against TrackEval's numbers, `edge-yolo track` against Ultralytics' ByteTrack on the
same model, its outputs (annotated video, JSON lines, MOT text, counts), the Python API, every
tracker kind, and sources that die mid-run (a truncated video file, a stream that drops)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_yolo import Detections, Detector
from edge_yolo.annotate import draw_detections, track_color
from edge_yolo.commands.detect import EXIT_SOURCES_FAILED
from edge_yolo.commands.track import TrackRun
from edge_yolo.errors import EdgeYoloError
from edge_yolo.mot_eval import evaluate_mot
from edge_yolo.sources import LiveSource, VideoFile
from edge_yolo.sinks import MotWriter
from edge_yolo.tracking import TRACKER_KINDS, create_tracker, track_conf, tracker_parameters

from test_cli_detect import run_cli, video_frames
from test_sources import faststart_copy

TRACK = Path(__file__).parent / "fixtures" / "track"
GT = TRACK / "gt" / "gt.txt"
UL_TRACKS = TRACK / "ul_bytetrack_onnx.txt"
# TrackEval on Ultralytics 8.4 `yolo track` (ByteTrack) output, same ONNX model (from the fixture's notes).
UL_TRACKEVAL = {"HOTA": 0.598, "MOTA": 0.364, "IDF1": 0.652, "IDSW": 23}
LINE = "0,400,1280,400"
ZONE = "100,100,700,100,700,600,100,600"


@pytest.fixture(scope="module")
def track_video() -> Path:
    return TRACK / "video.mp4"


@pytest.fixture(scope="module")
def track_run(tmp_path_factory: pytest.TempPathFactory, ul_onnx: Path, track_video: Path) -> dict[str, Any]:
    """One `edge-yolo track` run over the whole video with every output on."""
    out = tmp_path_factory.mktemp("track") / "run"
    proc = subprocess.run([sys.executable, "-c", "from edge_yolo.cli import main; main()", "track", str(track_video),
                           "--model", str(ul_onnx), "--device", "cpu", "--save-json", "--save-mot", "--line", LINE,
                           "--zone", ZONE, "-o", str(out)], capture_output=True, text=True, timeout=900)
    code, err = proc.returncode, proc.stderr
    return {"code": code, "err": err, "out": out,
            "records": [json.loads(line) for line in (out / "video.jsonl").read_text().splitlines()],
            "mot": np.loadtxt(out / "mot" / "video.txt", delimiter=",", ndmin=2)}


def test_mot_eval_reproduces_trackeval_on_ultralytics_tracks() -> None:
    m = evaluate_mot(GT, UL_TRACKS)
    assert m["HOTA"] == pytest.approx(UL_TRACKEVAL["HOTA"], abs=5e-4)
    assert m["MOTA"] == pytest.approx(UL_TRACKEVAL["MOTA"], abs=5e-4)
    assert m["IDF1"] == pytest.approx(UL_TRACKEVAL["IDF1"], abs=5e-4)
    assert m["IDSW"] == UL_TRACKEVAL["IDSW"]


def test_mot_eval_ignores_flag_zero_regions(tmp_path: Path) -> None:
    """Tracks that are exactly the ground truth score 1.0; boxes on flag-0 rows change nothing."""
    gt = np.loadtxt(GT, delimiter=",")
    scored = gt[gt[:, 6] != 0]
    perfect = tmp_path / "perfect.txt"
    np.savetxt(perfect, np.c_[scored[:, :6], np.ones(len(scored)), -np.ones((len(scored), 3))], delimiter=",", fmt="%g")
    with_ignored = tmp_path / "with_ignored.txt"
    ignored = gt[gt[:, 6] == 0].copy()
    ignored[:, 1] += 1000  # their own ids
    np.savetxt(with_ignored, np.r_[np.c_[scored[:, :6], np.ones(len(scored)), -np.ones((len(scored), 3))],
                                   np.c_[ignored[:, :6], np.ones(len(ignored)), -np.ones((len(ignored), 3))]],
               delimiter=",", fmt="%g")
    for path in (perfect, with_ignored):
        m = evaluate_mot(GT, path)
        assert m["HOTA"] == pytest.approx(1.0) and m["MOTA"] == pytest.approx(1.0)
        assert m["IDF1"] == pytest.approx(1.0) and m["IDSW"] == 0 and m["CLR_FP"] == 0


def test_mot_eval_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("not,a,mot\nfile\n")
    with pytest.raises(EdgeYoloError, match="MOTChallenge"):
        evaluate_mot(GT, bad)
    with pytest.raises(EdgeYoloError, match="not found"):
        evaluate_mot(GT, tmp_path / "missing.txt")


def test_track_beats_ultralytics_bytetrack(track_run: dict[str, Any]) -> None:
    assert track_run["code"] == 0, track_run["err"]
    ours = evaluate_mot(GT, track_run["out"] / "mot" / "video.txt")
    ul = evaluate_mot(GT, UL_TRACKS)
    assert ours["HOTA"] >= ul["HOTA"]
    assert ours["IDF1"] >= ul["IDF1"]
    assert ours["IDSW"] < ul["IDSW"]


def test_botsort_at_its_defaults_beats_ultralytics_bytetrack(ul_onnx: Path, track_video: Path, tmp_path: Path) -> None:
    """BoT-SORT at edge-yolo's defaults (no camera-motion compensation, 0.5 thresholds) over the
    whole video, via the Python API at its tracking confidence."""
    assert track_conf("botsort") == 0.1 and tracker_parameters("botsort")["enable_cmc"] is False
    detector = Detector(ul_onnx, device="cpu", conf=track_conf("botsort"))
    mot = MotWriter(tmp_path / "botsort.txt")
    for frame, dets in detector.track(str(track_video), tracker="botsort"):
        mot.write(frame, dets)
    mot.close()
    ours, ul = evaluate_mot(GT, tmp_path / "botsort.txt"), evaluate_mot(GT, UL_TRACKS)
    assert ours["HOTA"] >= ul["HOTA"] and ours["IDF1"] >= ul["IDF1"] and ours["IDSW"] < ul["IDSW"]


def test_track_runs_at_the_trackers_confidence_unless_one_is_given(ul_onnx: Path, track_video: Path) -> None:
    def lowest(detector: Detector, **kwargs: Any) -> float:
        return min(float(d.confidence.min()) for _, d in islice(detector.track(str(track_video), **kwargs), 40) if len(d))

    default = Detector(ul_onnx, device="cpu")
    assert default.conf == 0.25
    assert track_conf("bytetrack") <= lowest(default) < 0.1        # ByteTrack keeps low-score boxes of its tracks
    assert lowest(default, tracker="sort") >= track_conf("sort")
    assert lowest(default, conf=0.3) >= 0.3
    assert lowest(Detector(ul_onnx, device="cpu", conf=0.3)) >= 0.3  # the detector's own conf, when given, wins
    with pytest.raises(EdgeYoloError, match="conf must be a number between 0 and 1"):
        next(iter(default.stream(str(track_video), conf=2)))


def test_tracking_defaults() -> None:
    """edge-yolo's own defaults over the library's where they differ; the detector confidence per kind."""
    assert tracker_parameters("bytetrack") == {
        "lost_track_buffer": 30, "track_activation_threshold": 0.7, "minimum_consecutive_frames": 2,
        "minimum_iou_threshold": 0.2, "high_conf_det_threshold": 0.7}
    assert [track_conf(kind) for kind in TRACKER_KINDS] == [0.05, 0.1, 0.1, 0.1]
    assert create_tracker("bytetrack", minimum_iou_threshold=0.1).options == {"minimum_iou_threshold": 0.1}
    with pytest.raises(EdgeYoloError, match="unknown tracker"):
        track_conf("deepsort")


def test_track_outputs_agree(track_run: dict[str, Any]) -> None:
    out, records, mot = track_run["out"], track_run["records"], track_run["mot"]
    assert video_frames(out / "video.mp4") == len(records) == 200
    assert [r["frame"] for r in records] == list(range(200))
    dets = [(r["frame"] + 1, d["track_id"], d["xyxy"], d["confidence"]) for r in records for d in r["detections"]]
    assert len(dets) == len(mot) > 500
    assert all(tid >= 1 for _, tid, _, _ in dets)
    # MOT text: frame (1-based), id, x, y, w, h, conf, -1, -1, -1, in the JSON lines' order
    assert mot.shape[1] == 10 and (mot[:, 7:] == -1).all()
    np.testing.assert_array_equal(mot[:, 0], [f for f, _, _, _ in dets])
    np.testing.assert_array_equal(mot[:, 1], [t for _, t, _, _ in dets])
    xyxy = np.array([b for _, _, b, _ in dets])
    np.testing.assert_allclose(mot[:, 2:6], np.c_[xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], atol=0.006)
    for r in records:  # one box per track and frame
        ids = [d["track_id"] for d in r["detections"]]
        assert len(ids) == len(set(ids))
    err = track_run["err"]
    assert "video: " in err and " tracks" in err and "track " in err  # summary: track count, track stage timing


def _centre_y(box: list[float]) -> float:
    return (box[1] + box[3]) / 2


def test_line_counts_follow_the_tracks(track_run: dict[str, Any]) -> None:
    """--line across the whole width at y=400 (drawn left to right: "in" = moving down):
    recount the crossings from the tracks' centres in the JSON lines."""
    records = track_run["records"]
    last_side: dict[int, tuple[bool, str]] = {}
    expected_in: dict[str, int] = {}
    expected_out: dict[str, int] = {}
    for r in records:
        for d in r["detections"]:
            y = _centre_y(d["xyxy"])
            if y == 400:
                continue
            below = y > 400
            before = last_side.get(d["track_id"])
            if before is not None and before[0] != below:
                target = expected_in if below else expected_out
                target[d["class_name"]] = target.get(d["class_name"], 0) + 1
            last_side[d["track_id"]] = (below, d["class_name"])
        line = r["lines"][0]
        assert line["line"] == [0.0, 400.0, 1280.0, 400.0]
        assert line["in"] == expected_in and line["out"] == expected_out
    assert sum(expected_out.values()) >= 2  # the shapes drift upwards through the line
    assert "line 1 0,400,1280,400: in " in track_run["err"]


def test_zone_counts_follow_the_tracks(track_run: dict[str, Any]) -> None:
    inside_ids: set[int] = set()
    entries: dict[str, int] = {}
    for r in track_run["records"]:
        inside: dict[str, int] = {}
        now = set()
        for d in r["detections"]:
            x1, y1, x2, y2 = d["xyxy"]
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            if 100 <= cx <= 700 and 100 <= cy <= 600:
                inside[d["class_name"]] = inside.get(d["class_name"], 0) + 1
                now.add(d["track_id"])
                if d["track_id"] not in inside_ids:
                    entries[d["class_name"]] = entries.get(d["class_name"], 0) + 1
        inside_ids = now
        zone = r["zones"][0]
        assert zone["inside"] == inside and zone["entries"] == entries
    assert sum(entries.values()) >= 3


def test_track_colours_are_per_id() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    dets = Detections(np.array([[10, 10, 50, 50], [110, 10, 150, 50]]), np.array([0.9, 0.8]), np.array([0, 0]),
                      {0: "circle"}, tracker_id=np.array([3, 4]))
    draw_detections(image, dets, labels=False)
    assert tuple(image[30, 10]) == track_color(3) and tuple(image[30, 110]) == track_color(4)
    assert track_color(3) != track_color(4) and track_color(3) == track_color(3)


@pytest.fixture(scope="module")
def first_frames(ul_onnx: Path, track_video: Path) -> list[tuple[Any, Detections]]:
    """The first 30 frames and their detections at ByteTrack's tracking confidence, via the Python API."""
    detector = Detector(ul_onnx, device="cpu", conf=track_conf("bytetrack"))
    return list(islice(detector.stream(str(track_video)), 30))


def test_python_api_tracks_like_the_cli(ul_onnx: Path, track_video: Path, track_run: dict[str, Any]) -> None:
    detector = Detector(ul_onnx, device="cpu")  # no conf given: track() runs at ByteTrack's, as the CLI
    for (frame, dets), record in zip(islice(detector.track(str(track_video)), 30), track_run["records"]):
        assert frame.index == record["frame"]
        assert dets.tracker_id.tolist() == [d["track_id"] for d in record["detections"]]
        np.testing.assert_allclose(dets.xyxy, np.array([d["xyxy"] for d in record["detections"]]).reshape(-1, 4),
                                   atol=1e-3)
        assert [d["track_id"] for d in dets.to_dict()["detections"]] == dets.tracker_id.tolist()


@pytest.mark.parametrize("kind", TRACKER_KINDS)
def test_every_tracker_kind_tracks(kind: str, first_frames: list[tuple[Any, Detections]]) -> None:
    tracker = create_tracker(kind, frame_rate=25)
    ids_per_frame = []
    for frame, dets in first_frames:
        tracked = tracker.update(dets, frame.image)
        assert tracked.tracker_id is not None and tracked.tracker_id.dtype == np.int64
        assert len(set(tracked.tracker_id.tolist())) == len(tracked)
        # tracked boxes are detector boxes, unchanged
        for box in tracked.xyxy:
            assert (np.abs(dets.xyxy - box).max(axis=1) == 0).any()
        ids_per_frame.append(set(tracked.tracker_id.tolist()))
    # The shapes stay in view for the whole clip: a track keeps its id over many frames.
    lifetimes = Counter(i for ids in ids_per_frame for i in ids)
    assert lifetimes and max(lifetimes.values()) >= 10  # a tracker that lost ids every frame would fail
    tracker.reset()
    again = [tracker.update(dets, frame.image).tracker_id.tolist() for frame, dets in first_frames[:5]]
    assert min(i for ids in again for i in ids) == 1  # ids start again from 1


def test_tracker_options_are_checked() -> None:
    assert create_tracker("bytetrack", lost_track_buffer=60).options == {"lost_track_buffer": 60}
    with pytest.raises(EdgeYoloError, match="has no option"):
        create_tracker("sort", high_conf_det_threshold=0.5)
    with pytest.raises(EdgeYoloError, match="unknown tracker"):
        create_tracker("deepsort")
    assert create_tracker("bytetrack", minimum_iou_threshold=1).options == {"minimum_iou_threshold": 1}
    with pytest.raises(EdgeYoloError, match="bytetrack option lost_track_buffer takes a whole number, got 2.5"):
        create_tracker("bytetrack", lost_track_buffer=2.5)
    with pytest.raises(EdgeYoloError, match="botsort option enable_cmc takes true or false, got 1"):
        create_tracker("botsort", enable_cmc=1)
    with pytest.raises(EdgeYoloError, match="sort option track_activation_threshold must be between 0 and 1, got 2"):
        create_tracker("sort", track_activation_threshold=2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tracker", "deepsort"], "error: Invalid value for '--tracker'"),
        (["--tracker-opt", "lost_track_buffer"], "error: --tracker-opt takes NAME=VALUE"),
        (["--tracker-opt", "nonsense=1"], "error: bytetrack has no option nonsense"),
        (["--tracker-opt", "lost_track_buffer=abc"], "error: bytetrack option lost_track_buffer takes a whole number, got 'abc'"),
        (["--tracker-opt", "minimum_iou_threshold=-0.1"], "error: bytetrack option minimum_iou_threshold must be between 0 and 1"),
        (["--line", "1,2,3"], "error: --line takes x1,y1,x2,y2"),
        (["--line", "1,2,1,2"], "error: a counting line needs two different end points"),
        (["--zone", "1,2,3,4"], "error: --zone takes"),
        (["--zone", "a,b,c,d,e,f"], "error: --zone must be numbers"),
    ],
)
def test_bad_track_options_are_one_error_line(args: list[str], message: str, tmp_path: Path, ul_onnx: Path,
                                              track_video: Path, capfd: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["track", track_video, "--model", ul_onnx, "-o", tmp_path / "run", *args], capfd)
    assert code != 0
    assert err.strip().splitlines()[-1].startswith(message), err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_truncated_video_keeps_its_tracks(tmp_path: Path, ul_onnx: Path, track_video: Path,
                                          capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    data = faststart_copy(track_video, tmp_path / "full.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 5])
    readable = sum(1 for _ in VideoFile(cut))
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        code, _, err = run_cli(["track", cut, "--model", ul_onnx, "--device", "cpu", "--save-json", "--save-mot",
                                "-o", out, "--quiet"], capfd)
    assert code == 0, err
    assert 10 < readable < 150
    records = [json.loads(line) for line in (out / "cut.jsonl").read_text().splitlines()]
    assert video_frames(out / "cut.mp4") == len(records) == readable
    mot = np.loadtxt(out / "mot" / "cut.txt", delimiter=",", ndmin=2)
    assert len(mot) == sum(len(r["detections"]) for r in records) > 0
    assert mot[:, 0].max() <= readable
    assert any("truncated" in r.getMessage() for r in caplog.records)


def test_stream_that_dies_mid_run_keeps_its_outputs(tmp_path: Path, ul_onnx: Path, track_video: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A network stream that breaks part-way: no RTSP server runs here, so a truncated copy of
    the video read through OpenCV's capture (the stream code path, reconnects included) stands
    in for it (no reconnect allowed: reopening the file would replay it). Tracking ends with a
    warning, exit code 3 (a lost source) and complete outputs."""
    data = faststart_copy(track_video, tmp_path / "full.mp4").read_bytes()
    cut = tmp_path / "cam.mp4"
    cut.write_bytes(data[: len(data) // 5])
    detector = Detector(ul_onnx, device="cpu", conf=0.1)
    camera = LiveSource(str(cut), reconnects=0)
    out = tmp_path / "run"
    run = TrackRun(detector, [camera], out, save_media=True, save_json=True, save_txt=False, show=False,
                   line_width=None, labels=True, confidence=True, quiet=True, save_mot=True, tracker="bytetrack",
                   tracker_options={}, line_specs=(LINE,), zone_specs=(ZONE,), anchor="center")
    with caplog.at_level(logging.WARNING):
        assert run.execute() == EXIT_SOURCES_FAILED
    name = camera.name
    records = [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
    assert 10 < len(records) < 150
    assert video_frames(out / f"{name}.mp4") == len(records)
    assert all("track_id" in d for r in records for d in r["detections"])
    assert records[-1]["zones"][0]["entries"]
    mot = np.loadtxt(out / "mot" / f"{name}.txt", delimiter=",", ndmin=2)
    assert len(mot) == sum(len(r["detections"]) for r in records)
    assert any("lost; gave up after 0 reconnect attempts" in r.getMessage() for r in caplog.records)

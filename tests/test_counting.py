"""Line and zone counting on hand-made tracks (geometry whose answer is known exactly)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_yolo import Detections
from edge_yolo.counting import LineCounter, ZoneCounter
from edge_yolo.errors import EdgeYoloError

NAMES = {0: "car", 1: "person"}


def frame(*objects: tuple[int, int, float, float]) -> Detections:
    """Tracked boxes of 20x20 centred at (x, y): objects are (track id, class id, x, y)."""
    if not objects:
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0), NAMES, tracker_id=np.zeros(0))
    ids, classes, xs, ys = zip(*objects)
    xyxy = np.array([[x - 10, y - 10, x + 10, y + 10] for x, y in zip(xs, ys)])
    return Detections(xyxy, np.full(len(ids), 0.9), np.array(classes), NAMES, tracker_id=np.array(ids))


def test_line_counts_each_direction_per_class() -> None:
    line = LineCounter((0, 100), (200, 100))  # drawn left to right: "in" = moving down
    path = [
        frame((1, 0, 50, 80), (2, 1, 150, 120)),
        frame((1, 0, 50, 95), (2, 1, 150, 105)),
        frame((1, 0, 50, 110), (2, 1, 150, 90)),   # 1 crosses down (in), 2 crosses up (out)
        frame((1, 0, 50, 130), (2, 1, 150, 70)),
    ]
    crossed = []
    for dets in path:
        line.update(dets)
        crossed.append((line.crossed_in, line.crossed_out))
    assert line.counts() == {"line": [0.0, 100.0, 200.0, 100.0], "in": {"car": 1}, "out": {"person": 1}}
    assert crossed[2] == ([1], [2]) and crossed[3] == ([], [])


def test_line_direction_follows_its_end_points() -> None:
    reversed_line = LineCounter((200, 100), (0, 100))  # drawn right to left: "in" = moving up
    for y in (80, 120):
        reversed_line.update(frame((1, 0, 50, y)))
    assert reversed_line.counts()["out"] == {"car": 1} and reversed_line.counts()["in"] == {}


def test_line_ignores_crossings_beyond_the_segment_and_counts_each_return() -> None:
    line = LineCounter((0, 100), (100, 100))
    for y in (80, 120, 80, 120):             # x=50: on the segment, crosses three times
        line.update(frame((1, 0, 50, y), (2, 0, 300, y)))  # x=300: beyond the end, never counted
    assert line.counts()["in"] == {"car": 2} and line.counts()["out"] == {"car": 1}


def test_line_bottom_anchor() -> None:
    line = LineCounter((0, 100), (200, 100), anchor="bottom")
    line.update(frame((1, 0, 50, 85)))       # bottom edge at 95: above
    line.update(frame((1, 0, 50, 95)))       # bottom edge at 105: below, centre still above
    assert line.counts()["in"] == {"car": 1}


def test_zone_inside_and_entries() -> None:
    zone = ZoneCounter([(0, 0), (100, 0), (100, 100), (0, 100)])
    steps = [
        (frame((1, 0, 50, 50), (2, 1, 150, 50)), {"car": 1}, {"car": 1}),
        (frame((1, 0, 60, 50), (2, 1, 90, 50)), {"car": 1, "person": 1}, {"car": 1, "person": 1}),
        (frame((1, 0, 160, 50), (2, 1, 80, 50)), {"person": 1}, {"car": 1, "person": 1}),
        (frame((1, 0, 50, 50)), {"car": 1}, {"car": 2, "person": 1}),  # 1 came back; 2 not seen
        (frame(), {}, {"car": 2, "person": 1}),
    ]
    for dets, inside, entries in steps:
        zone.update(dets)
        assert zone.counts()["inside"] == inside
        assert zone.counts()["entries"] == entries


def test_zone_polygon_is_not_a_box() -> None:
    triangle = ZoneCounter.from_text("0,0,100,0,0,100")
    assert triangle.contains(np.array([[20.0, 20.0], [80.0, 80.0], [50.0, 49.0]])).tolist() == [True, False, True]


def test_counting_needs_tracks() -> None:
    untracked = Detections(np.array([[0, 0, 10, 10]]), np.array([0.9]), np.array([0]), NAMES)
    with pytest.raises(EdgeYoloError, match="tracker_id"):
        LineCounter((0, 0), (10, 10)).update(untracked)
    with pytest.raises(EdgeYoloError, match="tracker_id"):
        ZoneCounter([(0, 0), (10, 0), (10, 10)]).update(untracked)


@pytest.mark.parametrize(("make", "text", "message"), [
    (LineCounter.from_text, "1,2,3", "--line takes x1,y1,x2,y2"),
    (LineCounter.from_text, "5,5,5,5", "two different end points"),
    (ZoneCounter.from_text, "1,2,3,4", "--zone takes"),
    (ZoneCounter.from_text, "1,2,3,4,5", "--zone takes"),
    (ZoneCounter.from_text, "1,x,3,4,5,6", "--zone must be numbers"),
])
def test_bad_geometry_is_a_clear_error(make, text: str, message: str) -> None:  # noqa: ANN001
    with pytest.raises(EdgeYoloError, match=message):
        make(text)
    with pytest.raises(EdgeYoloError, match="anchor must be"):
        LineCounter((0, 0), (1, 1), anchor="top")

"""Synthetic tracking sequences for the shapes model, in MOTChallenge form, from a seed.

Flat-coloured circles, squares and triangles (hard edges, the colours of the shapes training
data) move over a panning photograph: varied speeds and directions, slow turns, spin and size
changes; they cross and occlude each other, leave the frame and come back later with the same
id, and some enter mid-sequence. Each seed also draws the difficulty: object count (5-12), size
and speed ranges, how often objects are aimed at each other, and the camera's pan speed.

    python benchmarks/make_track_sequence.py --seed 3 --out /tmp/seqs/seed3 [--frames 200]

writes `video.mp4` (MPEG-4 Part 2, 1280x720, 25 fps), `gt/gt.txt` and `seqinfo.ini`. gt rows
are `frame,id,x,y,w,h,flag,class,visibility` (frame 1-based): the box is the whole shape's box
clipped to the frame, visibility the fraction of the shape's pixels that are in the frame and
not covered by a shape in front, flag 0 when that is under 0.25 (an ignore region), class the
shapes model's class id (0 circle, 1 square, 2 triangle).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "tests" / "fixtures" / "shapes"
PHOTOS = SHAPES / "data" / "images" / "val"
CLASSES: list[str] = json.loads((SHAPES / "names.json").read_text())  # circle, square, triangle
# Fill colours (BGR): those of the training shapes (white, black, the six saturated primaries and
# secondaries) used to find them in the photos; black is never drawn (the shapes model hardly ever
# finds a black shape in video, nor does the tracking fixture have one).
COLOURS = ((255, 255, 255), (0, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 0),
           (0, 255, 255), (255, 0, 255), (255, 255, 0))
FILLS = tuple(c for c in COLOURS if c != (0, 0, 0))
WIDTH, HEIGHT, FPS = 1280, 720, 25
MIN_VISIBILITY = 0.25  # below it a gt row is flagged 0 (ignored), as in the fixture
SUBPIXEL = 4  # fractional bits for OpenCV drawing: smooth motion with hard edges


@dataclass
class Difficulty:
    """What a seed draws for the whole sequence."""

    objects: int
    radius: tuple[float, float]  # circumradius range, pixels
    speed: tuple[float, float]  # pixels per frame
    aim: float  # probability that an object's heading is aimed at another object (crossings)
    turn: float  # largest heading change, radians per frame
    pan_speed: float  # the camera's peak pan speed, pixels per frame
    late: float  # fraction of objects that first enter after the start

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Difficulty":
        hard = rng.uniform()  # one knob that moves everything together, plus per-seed noise
        lo = rng.uniform(2.0, 4.0) + 2 * hard
        return cls(
            objects=int(rng.integers(5, 13)),
            radius=(rng.uniform(28, 36) - 4 * hard, rng.uniform(50, 72)),
            speed=(lo, lo + rng.uniform(4, 8) + 4 * hard),
            aim=float(np.clip(0.2 + 0.6 * hard + rng.normal(0, 0.1), 0, 1)),
            turn=rng.uniform(0.005, 0.02 + 0.03 * hard),
            pan_speed=rng.uniform(2, 10),
            late=rng.uniform(0.1, 0.4),
        )


@dataclass
class Shape:
    """One object: its class, look and motion state (centre, velocity, angle, size)."""

    track_id: int
    cls: int
    colour: tuple[int, int, int]
    radius: float
    x: float = 0.0
    y: float = 0.0
    vx: float = 0.0
    vy: float = 0.0
    angle: float = 0.0
    spin: float = 0.0
    turn: float = 0.0
    pulse: tuple[float, float] = (0.0, 0.0)  # size oscillation: amplitude, phase step
    phase: float = 0.0
    shape_jitter: np.ndarray = field(default_factory=lambda: np.zeros(3))
    enter_at: int = 0  # frame at which it (re-)enters; inactive before
    active: bool = False

    def scale(self) -> float:
        return self.radius * (1 + self.pulse[0] * math.sin(self.phase))

    def polygon(self) -> np.ndarray:
        """Outline points (float, pixels); a circle as a 64-gon (its box and mask match cv2.circle's)."""
        r = self.scale()
        if self.cls == CLASSES.index("circle"):
            t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        elif self.cls == CLASSES.index("square"):
            t = self.angle + np.arange(4) * math.pi / 2
        else:
            t = self.angle + np.arange(3) * 2 * math.pi / 3 + self.shape_jitter
        return np.stack([self.x + r * np.cos(t), self.y + r * np.sin(t)], axis=1)

    def step(self, rng: np.random.Generator) -> None:
        heading = math.atan2(self.vy, self.vx) + self.turn
        speed = math.hypot(self.vx, self.vy)
        self.vx, self.vy = speed * math.cos(heading), speed * math.sin(heading)
        self.x += self.vx
        self.y += self.vy
        self.angle += self.spin
        self.phase += self.pulse[1]
        if rng.uniform() < 0.02:  # now and then a new turn rate
            self.turn = -self.turn if rng.uniform() < 0.5 else self.turn * rng.uniform(0.5, 1.5)


def _aim_or_wander(shape: Shape, others: list[Shape], difficulty: Difficulty, rng: np.random.Generator,
                   default_heading: float) -> None:
    """Set the velocity: towards another active object with probability `aim`, else `default_heading`."""
    targets = [o for o in others if o.active and o is not shape]
    heading = default_heading
    if targets and rng.uniform() < difficulty.aim:
        t = targets[int(rng.integers(len(targets)))]
        heading = math.atan2(t.y + 20 * t.vy - shape.y, t.x + 20 * t.vx - shape.x)
    speed = rng.uniform(*difficulty.speed)
    shape.vx, shape.vy = speed * math.cos(heading), speed * math.sin(heading)


def _enter_from_edge(shape: Shape, others: list[Shape], difficulty: Difficulty, rng: np.random.Generator) -> None:
    """Place the shape just outside a random edge, heading into the frame."""
    edge = int(rng.integers(4))
    r = shape.radius * 1.2
    along = rng.uniform(0.15, 0.85)
    if edge == 0:
        shape.x, shape.y, inward = -r, along * HEIGHT, 0.0
    elif edge == 1:
        shape.x, shape.y, inward = WIDTH + r, along * HEIGHT, math.pi
    elif edge == 2:
        shape.x, shape.y, inward = along * WIDTH, -r, math.pi / 2
    else:
        shape.x, shape.y, inward = along * WIDTH, HEIGHT + r, -math.pi / 2
    _aim_or_wander(shape, others, difficulty, rng, inward + rng.uniform(-0.7, 0.7))
    speed = math.hypot(shape.vx, shape.vy)
    if shape.vx * math.cos(inward) + shape.vy * math.sin(inward) < speed * math.cos(1.2):
        # aimed more than 1.2 rad off the inward direction (it might never come in): go straight in
        shape.vx, shape.vy = speed * math.cos(inward), speed * math.sin(inward)
    shape.active = True


def make_shapes(difficulty: Difficulty, frames: int, rng: np.random.Generator) -> list[Shape]:
    """The sequence's objects, those present at the start placed inside the frame."""
    shapes = []
    for i in range(difficulty.objects):
        shape = Shape(
            track_id=i + 1, cls=int(rng.integers(len(CLASSES))), colour=FILLS[int(rng.integers(len(FILLS)))],
            radius=rng.uniform(*difficulty.radius), angle=rng.uniform(0, 2 * math.pi),
            spin=rng.uniform(-0.05, 0.05), turn=rng.uniform(-difficulty.turn, difficulty.turn),
            pulse=(rng.uniform(0, 0.15), rng.uniform(0.01, 0.06)), phase=rng.uniform(0, 2 * math.pi),
            shape_jitter=rng.uniform(-0.12, 0.12, 3),
        )
        if rng.uniform() < difficulty.late:
            shape.enter_at = int(rng.integers(10, frames * 2 // 3))
        else:
            shape.x, shape.y = rng.uniform(0.08, 0.92) * WIDTH, rng.uniform(0.1, 0.9) * HEIGHT
            shape.active = True
        shapes.append(shape)
    for shape in shapes:
        if shape.active:
            _aim_or_wander(shape, shapes, difficulty, rng, rng.uniform(0, 2 * math.pi))
    return shapes


def clean_photo(path: Path) -> np.ndarray:
    """A training photo with its labelled shapes painted out (they would be unlabelled objects here).

    In each label box, the pixels near the shape's colour (read at the box centre) are inpainted.
    """
    photo = cv2.imread(str(path))
    h, w = photo.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    labels = PHOTOS.parent.parent / "labels" / PHOTOS.name / f"{path.stem}.txt"
    for line in labels.read_text().splitlines():
        _, cx, cy, bw, bh = map(float, line.split())
        x1, y1 = max(int((cx - bw / 2) * w) - 3, 0), max(int((cy - bh / 2) * h) - 3, 0)
        x2, y2 = min(int((cx + bw / 2) * w) + 4, w), min(int((cy + bh / 2) * h) + 4, h)
        centre = np.median(photo[int(cy * h) - 2:int(cy * h) + 3, int(cx * w) - 2:int(cx * w) + 3].reshape(-1, 3), axis=0)
        colour = min(COLOURS, key=lambda c: float(np.abs(np.subtract(c, centre)).sum()))
        near = np.abs(photo[y1:y2, x1:x2].astype(int) - colour).max(axis=2) < 90
        mask[y1:y2, x1:x2] |= near.astype(np.uint8)
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    return cv2.inpaint(photo, mask, 5, cv2.INPAINT_TELEA)


def background(rng: np.random.Generator, difficulty: Difficulty, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """A photo scaled up to cover the frame over the whole pan, and the pan offset of every frame.

    The pan speed follows a half cosine (fast, slowing, reversing), along a random direction.
    """
    photos = sorted(PHOTOS.glob("*.jpg"))
    photo = clean_photo(photos[int(rng.integers(len(photos)))])
    direction = rng.uniform(0, 2 * math.pi)
    t = np.arange(frames)
    travel = difficulty.pan_speed * frames / math.pi * np.sin(math.pi * t / frames + rng.uniform(0, math.pi))
    offsets = np.stack([travel * math.cos(direction), travel * math.sin(direction)], axis=1)
    offsets -= offsets.min(axis=0)
    span = offsets.max(axis=0)
    scale = max((WIDTH + span[0] + 2) / photo.shape[1], (HEIGHT + span[1] + 2) / photo.shape[0])
    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    return big, offsets


def render(shapes: list[Shape], backdrop: np.ndarray) -> tuple[np.ndarray, list[tuple[Shape, tuple, float]]]:
    """Draw the active shapes (list order = back to front) on `backdrop`; each visible shape's
    clipped box (x, y, w, h) and visibility."""
    pad = 200  # id buffer beyond the frame, so shapes partly outside keep their whole area
    ids = np.zeros((HEIGHT + 2 * pad, WIDTH + 2 * pad), np.int32)
    frame = backdrop.copy()
    drawn: list[tuple[Shape, np.ndarray, int]] = []
    for k, shape in enumerate(shapes, start=1):
        if not shape.active:
            continue
        pts = shape.polygon()
        fixed = np.round(pts * (1 << SUBPIXEL)).astype(np.int32)
        cv2.fillPoly(frame, [fixed], shape.colour, lineType=cv2.LINE_8, shift=SUBPIXEL)
        x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int) + pad - 1, 0)
        mask = np.zeros((int(2 * shape.scale()) + 4, int(2 * shape.scale()) + 4), np.uint8)
        local = np.round((pts + pad - (x0, y0)) * (1 << SUBPIXEL)).astype(np.int32)
        cv2.fillPoly(mask, [local], 1, lineType=cv2.LINE_8, shift=SUBPIXEL)
        window = ids[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]]
        window[mask[:window.shape[0], :window.shape[1]] > 0] = k
        drawn.append((shape, pts, int(mask.sum())))
    visible = np.bincount(ids[pad:pad + HEIGHT, pad:pad + WIDTH].ravel(), minlength=len(shapes) + 1)
    rows = []
    for shape, pts, area in drawn:
        x1, y1 = np.clip(np.floor(pts.min(axis=0)), 0, None)
        x2, y2 = np.minimum(np.ceil(pts.max(axis=0)), (WIDTH, HEIGHT))
        if x2 - x1 >= 1 and y2 - y1 >= 1 and area:
            k = shapes.index(shape) + 1
            rows.append((shape, (int(x1), int(y1), int(x2 - x1), int(y2 - y1)), visible[k] / area))
    return frame, rows


def _has_left(shape: Shape) -> bool:
    """Wholly outside the frame and moving away from it."""
    pts = shape.polygon()
    outside = pts[:, 0].max() < 0 or pts[:, 0].min() > WIDTH or pts[:, 1].max() < 0 or pts[:, 1].min() > HEIGHT
    return bool(outside and shape.vx * (WIDTH / 2 - shape.x) + shape.vy * (HEIGHT / 2 - shape.y) < 0)


def make_sequence(seed: int, out: Path, frames: int = 200) -> Difficulty:
    """Write one sequence (video.mp4, gt/gt.txt, seqinfo.ini) into `out`; returns its difficulty."""
    rng = np.random.default_rng(seed)
    difficulty = Difficulty.draw(rng)
    shapes = make_shapes(difficulty, frames, rng)
    big, offsets = background(rng, difficulty, frames)
    (out / "gt").mkdir(parents=True, exist_ok=True)
    gt_lines = []
    with av.open(str(out / "video.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = WIDTH, HEIGHT, "yuv420p", 4_000_000
        stream.codec_tag = "mp4v"
        for n in range(frames):
            for shape in shapes:
                if not shape.active and n >= shape.enter_at:
                    _enter_from_edge(shape, shapes, difficulty, rng)
            ox, oy = offsets[n]
            backdrop = cv2.warpAffine(big, np.float32([[1, 0, -ox], [0, 1, -oy]]), (WIDTH, HEIGHT),
                                      flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            image, rows = render(shapes, backdrop)
            for shape, (x, y, w, h), vis in sorted(rows, key=lambda r: r[0].track_id):
                flag = int(vis >= MIN_VISIBILITY)
                gt_lines.append(f"{n + 1},{shape.track_id},{x},{y},{w},{h},{flag},{shape.cls},{vis:.3f}\n")
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
            for shape in shapes:
                if shape.active:
                    shape.step(rng)
                    if _has_left(shape):
                        shape.active = False
                        shape.enter_at = n + 1 + int(rng.integers(5, 60))
        container.mux(stream.encode(None))
    (out / "gt" / "gt.txt").write_text("".join(gt_lines))
    (out / "seqinfo.ini").write_text(
        f"[Sequence]\nname={out.name}\nimDir=img1\nframeRate={FPS}\nseqLength={frames}\n"
        f"imWidth={WIDTH}\nimHeight={HEIGHT}\nimExt=.jpg\n")
    return difficulty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="sequence directory to write")
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    difficulty = make_sequence(args.seed, args.out, args.frames)
    print(f"{args.out}: seed {args.seed}, {difficulty}")


if __name__ == "__main__":
    main()

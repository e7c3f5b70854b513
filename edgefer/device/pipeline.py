"""One frame in, labelled faces out: detect -> crop per card -> classify -> smooth.

In a video a face moves a few pixels from one frame to the next, so the pipeline does less than
everything on every frame (as MediaPipe's own face pipelines detect rarely and track):
- it detects every `detect_every` frames and carries the last boxes in between, detecting again
  at once when a box reaches the frame's edge, a face's reading falls below the card's uncertain
  bar, or the last detection found no face;
- it reads a tracked face from the model every `classify_every` frames, the smoothed average
  standing in between; a new face, one below the bar, or one near a change of expression (its
  label leading the runner-up by less than STEADY) is read at once;
- where the card asks for flip averaging (the face and its mirror image), it reads a tracked face
  on one side a read, alternating, and lets the tracker's average join the two; a new face, or
  one below the card's uncertain bar, is read on both sides at once.
Stills (an image folder, a photo) are read whole, every time. `cost()` counts what was done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import EdgeferError
from ..core.faces import MIN_SCORE, FaceDetector, resolve_face_model
from ..core.files import MAX_THREADS
from ..core.quiet import quiet_native
from ..core.taxonomy import COMPOUND_EMOTIONS, top_two_compound
from .classifier import Classifier
from .cost import macs
from .latency import Latency
from .summary import reading
from .tracker import SMOOTHING, Track, Tracker

# a video's default: detect every 4th frame, read a steady face every 2nd (measured on the clip:
# docs/results/device-latency.md); 1 and 1 do all of it on every frame
DETECT_EVERY, CLASSIFY_EVERY = 4, 2
STEADY = 0.5  # a face whose top probability leads the runner-up by less is read every frame


@dataclass(frozen=True)
class Face:
    """One face in one frame as the pipeline read it: what every sink takes (the window, the live
    view, CSV, JSON lines, the timeline, the Python API)."""

    box: tuple[int, int, int, int]  # x, y, width, height in pixels of the image given
    label: str  # the most probable expression
    probs: dict[str, float]  # every class of the model, summing to 1
    score: float  # the face detector's confidence that this is a face
    uncertain: bool = False  # the top probability is below the card's bar
    track: int | None = None  # the same number for the same face across a stream's frames
    pair: str | None = None  # a compound ("happily_surprised") when reading pairs

    def to_dict(self) -> dict:
        """The face as JSON lines and the live view's state.json give it."""
        out = {
            "track": self.track,
            "box": list(self.box),
            "score": self.score,
            "label": self.label,
            "uncertain": self.uncertain,
            "probs": self.probs,
        }
        return out if self.pair is None else dict(out, pair=self.pair)


class FloatModel(EdgeferError, ValueError):
    pass


class PairsNeedBasic(EdgeferError, ValueError):
    pass


class BadOption(EdgeferError, ValueError):
    pass


def check_options(
    threads=1, min_score=0.5, smoothing=0.6, uncertain=None, pairs=None, detect_every=1, classify_every=1
):
    """The ranges edgefer-cam's argparse types hold, for the Python API alike (ExpressionReader, Pipeline)."""
    checks = (
        (
            "threads",
            threads,
            isinstance(threads, int) and 1 <= threads <= MAX_THREADS,
            f"a whole number from 1 to {MAX_THREADS}",
        ),
        ("min_score", min_score, 0 < min_score <= 1, "above 0 and up to 1"),
        ("smoothing", smoothing, 0 <= smoothing < 1, "from 0 (off) up to below 1"),
        (
            "uncertain",
            uncertain,
            uncertain is None or 0 <= uncertain < 1,
            "None (the card's bar) or from 0 up to below 1",
        ),
        (
            "pairs",
            pairs,
            pairs is None or 0 <= pairs <= 0.5,
            "None or from 0 up to 0.5 (two emotions cannot both pass more)",
        ),
        (
            "detect_every",
            detect_every,
            isinstance(detect_every, int) and detect_every >= 1,
            "a whole number, 1 or more",
        ),
        (
            "classify_every",
            classify_every,
            isinstance(classify_every, int) and classify_every >= 1,
            "a whole number, 1 or more",
        ),
    )
    for name, value, ok, want in checks:
        if not ok:
            raise BadOption(f"{name}={value!r}: must be {want}")


class Pipeline:
    def __init__(
        self,
        model,
        face_model=None,
        threads: int = 1,
        min_score: float = MIN_SCORE,
        video: bool = True,
        smoothing: float = SMOOTHING,
        allow_float: bool = False,
        flip_average: bool | None = None,
        track: bool = True,
        pairs: float | None = None,
        faces: str = "near",
        uncertain: float | None = None,
        detect_every: int = DETECT_EVERY,
        classify_every: int = CLASSIFY_EVERY,
        alternate_sides: bool = True,
    ):
        # track=False: stills, each frame its own face set (no identities, no smoothing across frames)
        # flip_average: None follows the model's card; True / False overrides it
        # pairs: read a compound ("happily_surprised") from a basic model's two most probable
        # emotions when both reach this probability (edgefer.core.taxonomy.top_two_compound)
        # faces: near (short-range detector) | far (full-range: small faces, a room); face_model wins
        # uncertain: flag a face as uncertain below this top probability; None follows the card
        # detect_every / classify_every: in a tracked video, detect / read a steady face every N
        # frames (1: every frame); stills, and frames of unrelated scenes, are read whole
        # alternate_sides: in a tracked video, read a flip-averaged face one side a frame (_side)
        check_options(threads, min_score, smoothing, uncertain, pairs, detect_every, classify_every)
        with quiet_native():  # LiteRT logs its start-up (XNNPACK) to stderr
            self._open(model, face_model, threads, min_score, video, allow_float, flip_average, faces)
        if uncertain is not None:
            self.spec = self.spec.replace(uncertain_below=uncertain)
        self.tracker = Tracker(smoothing=smoothing) if track else None
        self.detect_every, self.classify_every = (detect_every, classify_every) if track and video else (1, 1)
        self.alternate_sides = alternate_sides and track and video
        self._carried, self._since_detect, self.frames = [], 0, 0
        self.pairs = pairs
        if pairs is not None and len(set(self.classifier.labels) & set(COMPOUND_EMOTIONS)) < 2:
            raise PairsNeedBasic(
                f"--pairs reads two basic emotions; {self.classifier.path.name} has "
                f"{self.classifier.labels}; use a basic model such as ferplus"
            )

    def _open(self, model, face_model, threads, min_score, video, allow_float, flip_average, faces):
        self.classifier = Classifier(model, threads=threads, flip_average=flip_average)
        self.spec = self.classifier.spec
        if not (self.classifier.integer or allow_float):
            raise FloatModel(
                f"{model}: not an integer model (input {self.classifier.input['dtype'].__name__}); "
                "export it with edgefer-export --int8, or pass --allow-float to run it anyway"
            )
        self.face_model = resolve_face_model(face_model, faces)
        self.detector = FaceDetector(self.face_model, video=video, min_score=min_score)

    def about(self) -> dict:
        """What runs, for the live view."""
        clf, spec = self.classifier, self.spec
        about = {
            "model": clf.path.name,
            "classes": ", ".join(clf.labels),
            "taxonomy": spec.taxonomy,
            "input": f"{spec.size} px {spec.color}, crop margin {spec.crop.margin}, offset {spec.crop.offset_y}",
            "flip averaging": ("on, a tracked face one side a frame" if self.alternate_sides else "on")
            if spec.flip_average
            else "off",
            "interpreter": clf.backend,
            "face model": Path(str(self.face_model)).name,
        }
        if spec.temperature != 1.0:
            about["calibration"] = f"temperature {spec.temperature:g}"
        if spec.uncertain_below:
            about["uncertain"] = f"top probability below {spec.uncertain_below:g}"
        if self.pairs is not None:
            about["compound pairs"] = f"the two most probable emotions, both >= {self.pairs}"
        return about

    def describe(self) -> str:
        """One line saying what runs: model, its contract, face model, interpreter."""
        clf, spec = self.classifier, self.spec
        flip = "flip averaging" + (" (a tracked face one side a frame)" if self.alternate_sides else "")
        return (
            f"model {clf.path.name}: {len(clf.labels)} classes ({spec.taxonomy}), {spec.size} px "
            f"{spec.color}, {flip if spec.flip_average else 'single pass'}, {clf.backend}; "
            f"faces: {Path(str(self.face_model)).name}"
        )

    def process(self, frame, latency: Latency | None = None) -> list[Face]:
        lap = time.perf_counter()

        def mark(stage):
            nonlocal lap
            now = time.perf_counter()
            if latency is not None:
                latency.add(stage, now - lap)
            lap = now

        self.frames += 1
        faces = self._faces_in(frame)
        mark("detect")
        # a face is read from the model when it is new, below the bar, or its turn has come
        tracks = self.tracker.match([f.box for f in faces]) if self.tracker else [None] * len(faces)
        fresh = [t is None or t.unread + 1 >= self.classify_every or not self._steady(t.probs) for t in tracks]
        inputs = [
            (self.spec.face_pixels(frame.rgb, f.box, f.keypoints[:2] if len(f.keypoints) >= 2 else None), self._side(t))
            for f, t, read in zip(faces, tracks, fresh)
            if read
        ]
        mark("preprocess")
        readings = iter([self.classifier.run(x, side) for x, side in inputs])
        probs = [next(readings) if read else None for read in fresh]
        mark("classify")
        tracks = (
            self.tracker.update([f.box for f in faces], probs)
            if self.tracker
            else [Track(i, f.box, p) for i, (f, p) in enumerate(zip(faces, probs))]
        )
        labels = self.classifier.labels
        out = []
        for f, t in zip(faces, tracks):
            probs = {k: round(float(v), 4) for k, v in zip(labels, t.probs)}
            out.append(
                Face(
                    box=tuple(int(v) for v in f.box),
                    label=labels[int(np.argmax(t.probs))],
                    probs=probs,
                    score=round(f.score, 3),
                    uncertain=self.spec.uncertain(t.probs),
                    track=t.id if self.tracker else None,
                    pair=None if self.pairs is None else top_two_compound(probs, self.pairs),
                )
            )
        return out

    def _side(self, track) -> int | None:
        """Which side of a face to read where flip averaging reads both. A tracked face is read on
        one side a read, the face then its mirror image, and the tracker's average across reads
        stands in for the pair's; a new face, and one below the card's uncertain bar (where one
        side's reading could tip the label), get both at once (None)."""
        if not self.alternate_sides or track is None or self.spec.uncertain(track.probs):
            return None
        return track.reads % 2

    def _steady(self, probs) -> bool:
        """A reading the next frame will hardly change: its label leads the runner-up by STEADY and
        is above the card's uncertain bar. Near a change of expression the margin is small, and
        the face is read every frame."""
        top, second = np.sort(probs)[-2:][::-1]
        return top - second >= STEADY and not self.spec.uncertain(probs)

    def _faces_in(self, frame) -> list:
        """This frame's faces: detected, or the last detection's carried over while it holds."""
        h, w = frame.rgb.shape[:2]
        carry = (
            self._carried
            and self._since_detect + 1 < self.detect_every
            and all(x > 0 and y > 0 and x + bw < w and y + bh < h for x, y, bw, bh in (f.box for f in self._carried))
            and not any(self.spec.uncertain(t.probs) for t in self.tracker.tracks if t.missed == 0)
        )
        if carry:
            self._since_detect += 1
            return self._carried
        self._carried, self._since_detect = self.detector.detect(frame.rgb, int(frame.t * 1000)), 0
        return self._carried

    def cost(self) -> dict:
        """Interpreter invokes and multiply-accumulates per frame so far, detector and classifier:
        the figures that are the same on every machine."""
        n = max(self.frames, 1)
        invokes = {"detect": self.detector.invokes, "classify": self.classifier.invokes}
        macs_done = {
            "detect": self.detector.invokes * macs(self.face_model),
            "classify": self.classifier.images * macs(self.classifier.path),
        }
        return {
            "frames": self.frames,
            "invokes_per_frame": {k: round(v / n, 3) for k, v in {**invokes, "total": sum(invokes.values())}.items()},
            "mmacs_per_frame": {
                k: round(v / n / 1e6, 2) for k, v in {**macs_done, "total": sum(macs_done.values())}.items()
            },
        }

    def close(self):
        self.detector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def draw(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
    """BGR frame with a box and the smoothed label on every face."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    for f in faces:
        x, y, w, h = f.box
        cv2.rectangle(bgr, (x, y), (x + w, y + h), (0, 200, 0), 2)
        text = reading(f)  # a compound model's label, or a pair read from a basic model: "happily surprised"
        color = (160, 160, 160) if f.uncertain else (0, 200, 0)
        cv2.putText(bgr, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
    return bgr

"""One frame in, labelled faces out: detect -> crop per card -> classify -> smooth."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import EdgeferError
from ..core.faces import FaceDetector, resolve_face_model
from ..core.quiet import quiet_native
from ..core.taxonomy import COMPOUND_EMOTIONS, top_two_compound
from .classifier import Classifier
from .latency import Latency
from .tracker import Track, Tracker


class FloatModel(EdgeferError, ValueError):
    pass


class PairsNeedBasic(EdgeferError, ValueError):
    pass


class Pipeline:
    def __init__(
        self,
        model,
        face_model=None,
        threads: int = 1,
        min_score: float = 0.5,
        video: bool = True,
        smoothing: float = 0.6,
        allow_float: bool = False,
        flip_average: bool | None = None,
        track: bool = True,
        pairs: float | None = None,
        faces: str = "near",
        uncertain: float | None = None,
    ):
        # track=False: stills, each frame its own face set (no identities, no smoothing across frames)
        # flip_average: None follows the model's card; True / False overrides it
        # pairs: read a compound ("happily_surprised") from a basic model's two most probable
        # emotions when both reach this probability (edgefer.core.taxonomy.top_two_compound)
        # faces: near (short-range detector) | far (full-range: small faces, a room); face_model wins
        # uncertain: flag a face as uncertain below this top probability; None follows the card
        with quiet_native():  # LiteRT logs its start-up (XNNPACK) to stderr
            self._open(model, face_model, threads, min_score, video, allow_float, flip_average, faces)
        if uncertain is not None:
            self.spec = self.spec.replace(uncertain_below=uncertain)
        self.tracker = Tracker(smoothing=smoothing) if track else None
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
            "flip averaging": "on" if spec.flip_average else "off",
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
        return (
            f"model {clf.path.name}: {len(clf.labels)} classes ({spec.taxonomy}), {spec.size} px "
            f"{spec.color}, {'flip averaging' if spec.flip_average else 'single pass'}, {clf.backend}; "
            f"faces: {self.face_model}"
        )

    def process(self, frame, latency: Latency | None = None) -> list[dict]:
        lap = time.perf_counter()

        def mark(stage):
            nonlocal lap
            now = time.perf_counter()
            if latency is not None:
                latency.add(stage, now - lap)
            lap = now

        faces = self.detector.detect(frame.rgb, int(frame.t * 1000))
        mark("detect")
        inputs = [
            self.spec.face_pixels(frame.rgb, f.box, f.keypoints[:2] if len(f.keypoints) >= 2 else None) for f in faces
        ]
        mark("preprocess")
        probs = [self.classifier.run(x) for x in inputs]
        mark("classify")
        tracks = (
            self.tracker.update([f.box for f in faces], probs)
            if self.tracker
            else [Track(i, f.box, p) for i, (f, p) in enumerate(zip(faces, probs))]
        )
        labels = self.classifier.labels
        out = [
            {
                "id": t.id,
                "box": list(f.box),
                "score": round(f.score, 3),
                "label": labels[int(np.argmax(t.probs))],
                "uncertain": self.spec.uncertain(t.probs),
                "probs": {k: round(float(v), 4) for k, v in zip(labels, t.probs)},
            }
            for f, t in zip(faces, tracks)
        ]
        if self.pairs is not None:
            for face in out:
                face["pair"] = top_two_compound(face["probs"], self.pairs)
        return out

    def close(self):
        self.detector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def draw(rgb: np.ndarray, faces: list[dict]) -> np.ndarray:
    """BGR frame with a box and the smoothed label on every face."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    for f in faces:
        x, y, w, h = f["box"]
        cv2.rectangle(bgr, (x, y), (x + w, y + h), (0, 200, 0), 2)
        # a compound model's label, or a pair read from a basic model: "happily surprised"
        text = f"{f['label']} {f['probs'][f['label']]:.2f}"
        text = (f.get("pair") or (f"uncertain ({text})" if f.get("uncertain") else text)).replace("_", " ")
        color = (160, 160, 160) if f.get("uncertain") else (0, 200, 0)
        cv2.putText(bgr, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
    return bgr

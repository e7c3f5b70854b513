"""One frame in, labelled faces out: detect -> crop per card -> classify -> smooth."""
from __future__ import annotations

import time

import cv2
import numpy as np

from ..core.preprocess import crop_face
from .classifier import Classifier
from .faces import FaceDetector, resolve_face_model
from .latency import Latency
from .tracker import Tracker


class Pipeline:
    def __init__(self, model, face_model=None, threads: int = 1, min_score: float = 0.5,
                 video: bool = True, smoothing: float = 0.6, allow_float: bool = False,
                 single_pass: bool = False):
        # single_pass: one invoke per face even where the card asks for flip averaging
        self.classifier = Classifier(model, threads=threads, flip_average=False if single_pass else None)
        if not (self.classifier.integer or allow_float):
            raise ValueError(f"{model}: not an integer model (input {self.classifier.input['dtype'].__name__}); "
                             "export it with edgefer-export --int8, or pass --allow-float to run it anyway")
        self.face_model = resolve_face_model(face_model)
        self.detector = FaceDetector(self.face_model, video=video, min_score=min_score)
        self.tracker = Tracker(smoothing=smoothing)
        self.margin = self.classifier.card["face_crop"]["margin"]
        self.align = self.classifier.card["face_crop"].get("align", "none") == "eyes"

    def describe(self) -> str:
        """One line saying what runs: model, its contract, face model, interpreter."""
        clf, inp = self.classifier, self.classifier.card["input"]
        return (f"model {clf.path.name}: {len(clf.labels)} classes ({clf.card['taxonomy']}), {inp['size']} px "
                f"{inp['color']}, {'flip averaging' if clf.flip_average else 'single pass'}, {clf.backend}; "
                f"faces: {self.face_model}")

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
        inputs = []
        for f in faces:
            eyes = f.keypoints[:2] if self.align and len(f.keypoints) >= 2 else None
            inputs.append(self.classifier.prepare(crop_face(frame.rgb, f.box, self.margin, eyes)))
        mark("preprocess")
        probs = [self.classifier.run(x) for x in inputs]
        mark("classify")
        tracks = self.tracker.update([f.box for f in faces], probs)
        labels = self.classifier.labels
        return [{"id": t.id, "box": list(f.box), "score": round(f.score, 3),
                 "label": labels[int(np.argmax(t.probs))],
                 "probs": {k: round(float(v), 4) for k, v in zip(labels, t.probs)}}
                for f, t in zip(faces, tracks)]

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
        text = f"{f['label']} {f['probs'][f['label']]:.2f}"
        cv2.putText(bgr, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 200, 0), 1, cv2.LINE_AA)
    return bgr

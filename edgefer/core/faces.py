"""Faces from BlazeFace, MediaPipe's short-range face detector, run with the same LiteRT interpreter
as the expression model: no MediaPipe on the device (its 1.x wheels abort on a Raspberry Pi 4's
Cortex-A72, and its 0.10.x wheels stop at Python 3.12 on aarch64).

The decoding is MediaPipe's face_detection graph: the frame letterboxed into the model's square
RGB input in [-1, 1]; fixed-size SSD anchors; box and 6 keypoint offsets scaled by the input side;
sigmoid scores; weighted non-maximum suppression at IoU 0.3; the letterbox removed. Two models:
- near (default): short-range BlazeFace, 128x128, 896 anchors (16x16 cells x 2 at stride 8, 8x8 x 6
  at stride 16), for faces within about 2 m (a webcam, a doorway);
- far: the full-range sparse model, 192x192, 2,304 anchors (48x48 cells x 1 at stride 4), for
  smaller faces (a room, an audience), at a higher cost per frame.
On the shared clip and Yale frames they find the faces MediaPipe finds (tests/test_device.py
compares them where mediapipe is installed).

In the core because training crops full-frame datasets with the very detector the device runs.

Face model, first hit wins: `--face-model PATH`, the EDGEFER_FACE_MODEL environment variable, the
model bundled in the package for `--faces near|far` (edgefer/models/, Apache-2.0, Google).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import EdgeferError
from .interpreter import interpreter_class

FACE_MODEL_ENV = "EDGEFER_FACE_MODEL"
FACE_MODELS = {"near": "blaze_face_short_range.tflite", "far": "face_detection_full_range_sparse.tflite"}
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
# anchor layers of each model, by its input side: (stride, anchors per cell)
ANCHOR_LAYERS = {128: ((8, 2), (16, 6)), 192: ((4, 1),)}
NMS_IOU = 0.3

MIN_SCORE = 0.5  # a detection below this score is not a face (edgefer-cam --min-score)


class FaceModelMissing(EdgeferError, FileNotFoundError):
    pass


def resolve_face_model(explicit=None, faces: str = "near") -> Path:
    if explicit:
        if not Path(explicit).is_file():
            raise FaceModelMissing(
                f"{explicit}: no such face model; pass --face-model a BlazeFace .tflite (short-range or full-range)"
            )
        return Path(explicit)
    env = os.environ.get(FACE_MODEL_ENV)
    if env:
        if not Path(env).is_file():
            raise FaceModelMissing(f"{FACE_MODEL_ENV}={env}: no such file; fix or unset it")
        return Path(env)
    if faces not in FACE_MODELS:
        raise FaceModelMissing(f"--faces {faces}: choose one of {', '.join(FACE_MODELS)}")
    bundled = MODELS_DIR / FACE_MODELS[faces]
    if not bundled.is_file():
        raise FaceModelMissing(
            f"{bundled}: the bundled face model is missing; reinstall edgefer "
            f"or pass --face-model PATH to {FACE_MODELS[faces]}"
        )
    return bundled


def anchors(side: int) -> np.ndarray:
    """Anchor centres (n, 2) of the model with this input side, in MediaPipe's order."""
    centres = []
    for stride, per_cell in ANCHOR_LAYERS[side]:
        cells = side // stride
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.array(centres, np.float32)


@dataclass
class Detection:
    """One face the detector found (the reading of a face is `edgefer.Face`)."""

    box: tuple[int, int, int, int]  # x, y, w, h in pixels
    score: float
    keypoints: list[tuple[float, float]] = field(default_factory=list)  # pixels: right eye, left eye, ...


class FaceDetector:
    """BlazeFace on RGB frames. `video` and the timestamps are accepted for the sources' sake; each
    frame is detected on its own, as MediaPipe's FaceDetector does."""

    def __init__(self, model_path, video: bool = True, min_score: float = MIN_SCORE, threads: int = 1):
        Interpreter, _ = interpreter_class()
        try:
            self._interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
            self._interpreter.allocate_tensors()
            inp = self._interpreter.get_input_details()[0]
            self.side = int(inp["shape"][1])
            self._anchors = anchors(self.side)
            outputs = {tuple(d["shape"][1:]): d["index"] for d in self._interpreter.get_output_details()}
            n = len(self._anchors)
            self._input, self._boxes, self._scores = inp["index"], outputs[(n, 16)], outputs[(n, 1)]
            assert tuple(inp["shape"][1:]) == (self.side, self.side, 3)
        except (ValueError, RuntimeError, KeyError, AssertionError) as exc:
            raise FaceModelMissing(
                f"{model_path}: not a usable face detector model (BlazeFace short-range takes "
                f"128x128 RGB and gives 896 boxes, full-range 192x192 and 2,304; "
                f"{str(exc)[:80]})"
            ) from None
        self.min_score = min_score
        self.invokes = 0  # counted for edgefer-bench's machine-independent figures

    def detect(self, rgb: np.ndarray, t_ms: int | None = None) -> list[Detection]:
        h, w = rgb.shape[:2]
        side = self.side
        scale = side / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        top, left = (side - nh) // 2, (side - nw) // 2
        tensor = np.full((side, side, 3), -1.0, np.float32)  # black letterbox
        tensor[top : top + nh, left : left + nw] = (
            cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR) / 127.5 - 1.0
        )
        self._interpreter.set_tensor(self._input, tensor[None])
        self._interpreter.invoke()
        self.invokes += 1
        raw = self._interpreter.get_tensor(self._boxes)[0]
        logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0], -100.0, 100.0)
        scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))  # float32 exp(100) overflows
        keep = np.flatnonzero(scores >= self.min_score)
        offsets, centre_of = raw[keep] / side, self._anchors[keep]
        centres, sizes = offsets[:, :2] + centre_of, offsets[:, 2:4]
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)  # x0 y0 x1 y1, 0..1
        points = offsets[:, 4:16].reshape(-1, 6, 2) + centre_of[:, None, :]

        def to_pixels(xy):  # letterboxed 0..1 -> frame pixels
            return (xy * side - (left, top)) / scale

        faces = []
        for box, score, kps in weighted_nms(boxes, scores[keep], points):
            (x0, y0), (x1, y1) = to_pixels(box[:2]), to_pixels(box[2:])
            if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h or int(x1 - x0) < 1 or int(y1 - y0) < 1:
                continue  # a box in the letterbox's padding, not on the frame (only a very low bar keeps one)
            faces.append(
                Detection(
                    (int(x0), int(y0), int(x1 - x0), int(y1 - y0)),
                    float(score),
                    [tuple(map(float, to_pixels(k))) for k in kps],
                )
            )
        return faces

    def close(self):
        self._interpreter = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray):
    """MediaPipe's weighted non-maximum suppression: each group of boxes overlapping the best one by
    more than NMS_IOU becomes their score-weighted average. Yields (box, best score, keypoints)."""
    remaining = np.argsort(-scores)
    while len(remaining):
        best = boxes[remaining[0]]
        rest = boxes[remaining]
        inter = np.clip(np.minimum(rest[:, 2], best[2]) - np.maximum(rest[:, 0], best[0]), 0, None) * np.clip(
            np.minimum(rest[:, 3], best[3]) - np.maximum(rest[:, 1], best[1]), 0, None
        )
        area = (rest[:, 2] - rest[:, 0]) * (rest[:, 3] - rest[:, 1])
        overlap = inter / np.maximum(area + area[0] - inter, 1e-9)
        group, remaining = remaining[overlap > NMS_IOU], remaining[overlap <= NMS_IOU]
        weights = scores[group][:, None]
        yield (
            (boxes[group] * weights).sum(0) / weights.sum(),
            scores[group[0]],
            (points[group] * weights[:, :, None]).sum(0) / weights.sum(),
        )

"""Faces from BlazeFace, MediaPipe's short-range face detector, run with the same LiteRT interpreter
as the expression model: no MediaPipe on the device (its 1.x wheels abort on a Raspberry Pi 4's
Cortex-A72, and its 0.10.x wheels stop at Python 3.12 on aarch64).

The decoding is MediaPipe's face_detection_short_range graph: the frame letterboxed into 128x128
RGB in [-1, 1]; 896 SSD anchors (16x16 cells x 2 at stride 8, 8x8 x 6 at stride 16, fixed size);
box and 6 keypoint offsets scaled by 128; sigmoid scores; weighted non-maximum suppression at IoU
0.3; the letterbox removed. On the shared clip and Yale frames it finds the faces MediaPipe's
Tasks FaceDetector finds (tests/test_device.py compares the two where mediapipe is installed).

In the core because training crops full-frame datasets with the very detector the device runs.

Face model, first hit wins: `--face-model PATH`, the EDGEFER_FACE_MODEL environment variable, the
model bundled in the package (edgefer/models/blaze_face_short_range.tflite, Apache-2.0, Google).
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
FACE_MODEL_NAME = "blaze_face_short_range.tflite"
BUNDLED_FACE_MODEL = Path(__file__).resolve().parents[1] / "models" / FACE_MODEL_NAME
SIDE, NMS_IOU = 128, 0.3


class FaceModelMissing(EdgeferError, FileNotFoundError):
    pass


def resolve_face_model(explicit=None) -> Path:
    if explicit:
        if not Path(explicit).is_file():
            raise FaceModelMissing(f"{explicit}: no such face model; pass --face-model a BlazeFace short-range .tflite")
        return Path(explicit)
    env = os.environ.get(FACE_MODEL_ENV)
    if env:
        if not Path(env).is_file():
            raise FaceModelMissing(f"{FACE_MODEL_ENV}={env}: no such file; fix or unset it")
        return Path(env)
    if not BUNDLED_FACE_MODEL.is_file():
        raise FaceModelMissing(f"{BUNDLED_FACE_MODEL}: the bundled face model is missing; reinstall edgefer "
                               f"or pass --face-model PATH to {FACE_MODEL_NAME}")
    return BUNDLED_FACE_MODEL


def _anchors() -> np.ndarray:
    """Anchor centres (896, 2) of the short-range model, in MediaPipe's order."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = SIDE // stride
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.array(centres, np.float32)


ANCHORS = _anchors()


@dataclass
class Face:
    box: tuple[int, int, int, int]          # x, y, w, h in pixels
    score: float
    keypoints: list[tuple[float, float]] = field(default_factory=list)  # pixels: right eye, left eye, ...


class FaceDetector:
    """BlazeFace on RGB frames. `video` and the timestamps are accepted for the sources' sake; each
    frame is detected on its own, as MediaPipe's FaceDetector does."""

    def __init__(self, model_path, video: bool = True, min_score: float = 0.5, threads: int = 1):
        Interpreter, _ = interpreter_class()
        try:
            self._interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
            self._interpreter.allocate_tensors()
            inp = self._interpreter.get_input_details()[0]
            outputs = {tuple(d["shape"][1:]): d["index"] for d in self._interpreter.get_output_details()}
            self._input, self._boxes, self._scores = inp["index"], outputs[(896, 16)], outputs[(896, 1)]
            assert tuple(inp["shape"][1:]) == (SIDE, SIDE, 3)
        except (ValueError, RuntimeError, KeyError, AssertionError) as exc:
            raise FaceModelMissing(f"{model_path}: not a usable face detector model (a BlazeFace short-range "
                                   f".tflite takes 128x128 RGB and gives 896 boxes; {str(exc)[:80]})") from None
        self.min_score = min_score

    def detect(self, rgb: np.ndarray, t_ms: int | None = None) -> list[Face]:
        h, w = rgb.shape[:2]
        scale = SIDE / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        top, left = (SIDE - nh) // 2, (SIDE - nw) // 2
        tensor = np.full((SIDE, SIDE, 3), -1.0, np.float32)   # black letterbox
        tensor[top:top + nh, left:left + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR) / 127.5 - 1.0
        self._interpreter.set_tensor(self._input, tensor[None])
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes)[0]
        logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0], -100.0, 100.0)
        scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))   # float32 exp(100) overflows
        keep = np.flatnonzero(scores >= self.min_score)
        offsets, anchors = raw[keep] / SIDE, ANCHORS[keep]
        centres, sizes = offsets[:, :2] + anchors, offsets[:, 2:4]
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)   # x0 y0 x1 y1, 0..1
        points = offsets[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]

        def to_pixels(xy):   # letterboxed 0..1 -> frame pixels
            return (xy * SIDE - (left, top)) / scale

        faces = []
        for box, score, kps in weighted_nms(boxes, scores[keep], points):
            (x0, y0), (x1, y1) = to_pixels(box[:2]), to_pixels(box[2:])
            faces.append(Face((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), float(score),
                              [tuple(map(float, to_pixels(k))) for k in kps]))
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
        inter = (np.clip(np.minimum(rest[:, 2], best[2]) - np.maximum(rest[:, 0], best[0]), 0, None)
                 * np.clip(np.minimum(rest[:, 3], best[3]) - np.maximum(rest[:, 1], best[1]), 0, None))
        area = (rest[:, 2] - rest[:, 0]) * (rest[:, 3] - rest[:, 1])
        overlap = inter / np.maximum(area + area[0] - inter, 1e-9)
        group, remaining = remaining[overlap > NMS_IOU], remaining[overlap <= NMS_IOU]
        weights = scores[group][:, None]
        yield ((boxes[group] * weights).sum(0) / weights.sum(), scores[group[0]],
               (points[group] * weights[:, :, None]).sum(0) / weights.sum())

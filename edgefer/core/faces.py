"""Faces from MediaPipe's BlazeFace (Tasks API `FaceDetector`), and where its model comes from.

In the core because training crops full-frame datasets with the very detector the device runs;
mediapipe is imported only when a detector is made.

Face model resolution, first hit wins:
  1. `--face-model PATH`
  2. the EDGEFER_FACE_MODEL environment variable
  3. the user cache, ~/.cache/edgefer/blaze_face_short_range.tflite
  4. the short-range model that mediapipe <= 0.10.21 wheels carry (it loads in the Tasks API)
  5. a download of Google's official blaze_face_short_range.tflite into the cache (connected machines)
"""
from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EdgeferError
from .files import write_bytes

FACE_MODEL_ENV = "EDGEFER_FACE_MODEL"
FACE_MODEL_NAME = "blaze_face_short_range.tflite"
FACE_MODEL_URL = ("https://storage.googleapis.com/mediapipe-models/face_detector/"
                  "blaze_face_short_range/float16/latest/blaze_face_short_range.tflite")


class FaceModelMissing(EdgeferError, FileNotFoundError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgefer"


def packaged_face_model() -> Path | None:
    try:
        import mediapipe
    except ImportError:
        return None
    path = Path(mediapipe.__file__).parent / "modules" / "face_detection" / "face_detection_short_range.tflite"
    return path if path.is_file() else None


def resolve_face_model(explicit=None, download: bool = True) -> Path:
    if explicit:
        if not Path(explicit).is_file():
            raise FaceModelMissing(f"{explicit}: no such face model; pass --face-model a BlazeFace .tflite")
        return Path(explicit)
    env = os.environ.get(FACE_MODEL_ENV)
    if env:
        if not Path(env).is_file():
            raise FaceModelMissing(f"{FACE_MODEL_ENV}={env}: no such file; fix or unset it")
        return Path(env)
    cached = cache_dir() / FACE_MODEL_NAME
    if cached.is_file():
        return cached
    packaged = packaged_face_model()
    if packaged:
        return packaged
    if download:
        try:
            with urllib.request.urlopen(FACE_MODEL_URL, timeout=20) as response:
                write_bytes(cached, response.read())
            return cached
        except OSError as exc:
            reason = exc
    else:
        reason = "downloads disabled"
    raise FaceModelMissing(
        f"no face detector model: none given, {FACE_MODEL_ENV} unset, none in {cached.parent}, none inside "
        f"mediapipe, and the download failed ({reason}). Pass --face-model PATH to {FACE_MODEL_NAME} "
        f"(or copy it to {cached})")


@dataclass
class Face:
    box: tuple[int, int, int, int]          # x, y, w, h in pixels
    score: float
    keypoints: list[tuple[float, float]] = field(default_factory=list)  # pixels: right eye, left eye, ...


class FaceDetector:
    """BlazeFace on RGB frames. VIDEO mode (tracking between frames) for streams, IMAGE for stills.
    Close it explicitly (`with FaceDetector(...) as d:`); MediaPipe raises if left to the GC at exit."""

    def __init__(self, model_path, video: bool = True, min_score: float = 0.5):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        self.video = video
        mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
        options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_path=str(model_path)),
                                             running_mode=mode, min_detection_confidence=min_score)
        try:
            self._detector = vision.FaceDetector.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise FaceModelMissing(f"{model_path}: not a usable face detector model ({str(exc).splitlines()[0]})") from None
        self._last_ms = -1

    def detect(self, rgb: np.ndarray, t_ms: int | None = None) -> list[Face]:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self.video:
            t_ms = max(int(t_ms if t_ms is not None else self._last_ms + 1), self._last_ms + 1)  # must increase
            self._last_ms = t_ms
            result = self._detector.detect_for_video(image, t_ms)
        else:
            result = self._detector.detect(image)
        h, w = rgb.shape[:2]
        faces = []
        for d in result.detections:
            b = d.bounding_box
            faces.append(Face((int(b.origin_x), int(b.origin_y), int(b.width), int(b.height)),
                              float(d.categories[0].score) if d.categories else 0.0,
                              [(k.x * w, k.y * h) for k in (d.keypoints or [])]))
        return faces

    def close(self):
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

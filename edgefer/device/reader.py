"""The device side from Python: an image or a stream in, faces with their expressions out.

    import edgefer

    reader = edgefer.ExpressionReader()              # the bundled default model and face detector
    for face in reader.read("photo.jpg"):            # a path, or an RGB array (order="bgr" for OpenCV's)
        print(face.box, face.label, face.probs[face.label], face.score)

    for frame, faces in reader.stream("clip.mp4"):   # 0 (webcam), a video, an image folder, "picamera"
        print(frame.index, [f.label for f in faces])

The same Pipeline as edgefer-cam: BlazeFace, the card's face crop, the int8 model in LiteRT. A
still is read on its own; a stream tracks each face and smooths its probabilities over frames.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..core.errors import EdgeferError
from ..core.faces import MIN_SCORE
from ..core.preprocess import read_image
from ..models import model_path
from .pipeline import CLASSIFY_EVERY, DETECT_EVERY, Face, Pipeline, check_options
from .sources import Frame, open_source
from .tracker import SMOOTHING

ORDERS = ("rgb", "bgr")


class BadArray(EdgeferError, ValueError):
    pass


def as_rgb(image, order: str = "rgb") -> np.ndarray:
    """A path (any format Pillow reads) or a uint8 array, gray (H, W) or colour (H, W, 3) in `order`,
    as the RGB frame the pipeline takes."""
    if order not in ORDERS:
        raise BadArray(f"order={order!r}: say 'rgb' or 'bgr' (OpenCV's cv2.imread gives bgr)")
    if isinstance(image, (str, Path)):
        image, order = read_image(image), "rgb"
    array = np.asarray(image)
    if (
        array.dtype != np.uint8
        or array.ndim not in (2, 3)
        or (array.ndim == 3 and array.shape[2] not in (3, 4))
        or 0 in array.shape[:2]
    ):
        raise BadArray(
            f"an image of shape {array.shape} and dtype {array.dtype}: pass uint8 (H, W) gray or "
            "(H, W, 3) colour, or a file path"
        )
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=-1)
    array = array[..., :3]
    return np.ascontiguousarray(array[..., ::-1] if order == "bgr" else array)


class ExpressionReader:
    """Faces and their expressions. `model`: a bundled name (fer2013-balanced, fer2013, ferplus) or
    an int8 .tflite with its card; `face_model`: a BlazeFace .tflite (default: the package's);
    `faces`: near (within about 2 m) or far (a room); the rest as edgefer-cam's options."""

    def __init__(
        self,
        model: str | Path | None = None,
        face_model: str | Path | None = None,
        faces: str = "near",
        threads: int = 1,
        min_score: float = MIN_SCORE,
        smoothing: float = SMOOTHING,
        flip_average: bool | None = None,
        uncertain: float | None = None,
        pairs: float | None = None,
        detect_every: int = DETECT_EVERY,
        classify_every: int = CLASSIFY_EVERY,
        alternate_sides: bool = True,
        allow_float: bool = False,
    ):
        self.options = dict(
            model=model_path(model),
            face_model=face_model,
            faces=faces,
            threads=threads,
            min_score=min_score,
            flip_average=flip_average,
            uncertain=uncertain,
            pairs=pairs,
            allow_float=allow_float,
        )
        # the video shortcuts (edgefer-cam's --detect-every, --classify-every, --alternate-sides): stream() only
        self.video_options = dict(
            detect_every=detect_every, classify_every=classify_every, alternate_sides=alternate_sides
        )
        self.smoothing = smoothing
        check_options(threads, min_score, smoothing, uncertain, pairs, detect_every, classify_every)
        self._stills = Pipeline(**self.options, video=False, track=False)
        self._lock = threading.Lock()  # one interpreter: calls from several threads take turns
        self.labels = list(self._stills.classifier.labels)

    def read(self, image, order: str = "rgb") -> list[Face]:
        """Every face in one image, each read on its own (no smoothing from earlier calls). Safe to call
        from several threads: they take turns on the one interpreter."""
        rgb = as_rgb(image, order)
        with self._lock:
            faces = self._stills.process(Frame(rgb, 0.0, 0))
        return faces

    def stream(self, source=0, max_frames: int = 0) -> Iterator[tuple[Frame, list[Face]]]:
        """(frame, faces) for each frame of a webcam index, a video file or URL, an image folder or
        "picamera"; `frame.rgb` is the image. Faces of a video are tracked and smoothed."""
        frames = open_source(str(source))
        tracked = not frames.stills
        try:
            with Pipeline(
                **self.options, **self.video_options, video=tracked, track=tracked, smoothing=self.smoothing
            ) as pipeline:
                for frame in frames:
                    yield frame, pipeline.process(frame)
                    if max_frames and frame.index + 1 >= max_frames:
                        break
        finally:
            frames.close()

    def close(self):
        self._stills.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

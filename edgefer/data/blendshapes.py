"""The face landmarker's blendshapes as a second training target.

MediaPipe's face landmarker (`face_landmarker.task`) reads 52 blendshapes (brow down, nose sneer,
mouth frown, jaw open ...) from 478 landmarks; it learned faces from far more people than FER-2013.
Run beside the CNN on the device it costs 4.3 times the classify stage (experiments/blendshapes.py).
Taught instead: the trainer (`edgefer-train --blendshapes FILE.npz`) gives the CNN a second head that
predicts each training face's blendshapes next to its expression, then drops it, so the device runs
the same network at the same cost.

The file holds `paths` (image files), `names` (the 52 blendshapes, in the model's order) and
`scores` (N, 52; NaN where the landmarker found no face), written once by
`python recipes/blendshape_targets.py`. mediapipe is needed to write it (the dev extra), not to train.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..core import preprocess
from ..core.files import atomic_path
from .base import DatasetError, FaceDataset, read_npz

UPSCALE, BORDER = 4, 48  # a 48 px FER-2013 face becomes 192 px inside a 288 px gray square:
# below about 100 px the landmarker's own detector finds few faces


def landmarker(task) -> callable:
    """gray uint8 image -> its 52 blendshape scores, or None where the landmarker finds no face."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(task)),
        running_mode=vision.RunningMode.IMAGE,
        output_face_blendshapes=True,
        num_faces=1,
        min_face_detection_confidence=0.3,
        min_face_presence_confidence=0.3,
    )
    detector = vision.FaceLandmarker.create_from_options(opts)

    def read(gray: np.ndarray) -> np.ndarray | None:
        rgb = np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
        found = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)).face_blendshapes
        return np.array([c.score for c in found[0]], np.float32) if found else None

    return read


def blendshape_names() -> list[str]:
    """The landmarker's 52 blendshapes in its output order (mediapipe's enum names)."""
    from mediapipe.tasks.python.vision.face_landmarker import Blendshapes

    return [b.name for b in sorted(Blendshapes, key=lambda b: b.value)]


def mirror_columns(names) -> np.ndarray:
    """Column order of the mirror image's blendshapes: every ...LEFT swapped with its ...RIGHT."""
    names = [str(n) for n in names]
    swap = [n.replace("LEFT", "#").replace("RIGHT", "LEFT").replace("#", "RIGHT") for n in names]
    return np.array([names.index(s) for s in swap])


def read_small_face(read, gray: np.ndarray) -> np.ndarray | None:
    """The landmarker on a small face crop, upscaled onto a gray border first."""
    big = cv2.resize(gray, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    return read(cv2.copyMakeBorder(big, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT, value=128))


def read_blendshapes(paths: list[str], task, progress=None) -> np.ndarray:
    """(N, 52) blendshapes of face crops, NaN rows where the landmarker found no face."""
    read = landmarker(task)
    scores = np.full((len(paths), 52), np.nan, np.float32)
    for i, path in enumerate(progress(paths) if progress else paths):
        found = read_small_face(read, preprocess.read_image(path))
        if found is not None:
            scores[i] = found
    return scores


def save_blendshapes(path, paths: list[str], names: list[str], scores: np.ndarray) -> None:
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:  # np.savez adds .npz to a bare path name
        np.savez(f, paths=np.array([str(p) for p in paths]), names=np.array(names), scores=scores)


def load_blendshapes(path) -> tuple[list[str], list[str], np.ndarray]:
    """(paths, names, scores) of a blendshape file, or one clear error naming it and the fix."""
    path, writer = Path(path), "python recipes/blendshape_targets.py --data DATA --out FILE.npz"
    paths, names, scores = read_npz(path, ("paths", "names", "scores"), "blendshapes", writer)
    if scores.shape != (len(paths), len(names)):
        raise DatasetError(
            f"{path}: {scores.shape[0]} rows of {scores.shape[1:]} scores for {len(paths)} paths "
            f"and {len(names)} names; write it with {writer}"
        )
    return [str(p) for p in paths], [str(n) for n in names], scores


def attach_blendshapes(ds: FaceDataset, path) -> FaceDataset:
    """Give the training split its blendshape targets (`split.aux`, (N, 53)): each face's scores
    with every LEFT/RIGHT pair averaged (augmentation mirrors the face, not its target), then 1
    where the landmarker found that face (0: no blendshape loss for it). Images are matched by
    file name, as teacher files are."""
    paths, names, scores = load_blendshapes(path)
    scores = (scores + scores[:, mirror_columns(names)]) / 2
    row = {os.path.basename(p): i for i, p in enumerate(paths)}
    split = ds.splits["train"]
    aux = np.zeros((len(split), len(names) + 1), np.float32)
    for i, item in enumerate(split.images):
        k = row.get(os.path.basename(item)) if isinstance(item, str) else None
        if k is not None and np.isfinite(scores[k, 0]):
            aux[i, :-1], aux[i, -1] = scores[k], 1.0
    found = int(aux[:, -1].sum())
    if not found:
        raise DatasetError(
            f"{path}: none of its faces is in {ds.name}'s training split (matched by file name); "
            "write it for this dataset with python recipes/blendshape_targets.py"
        )
    split.aux = aux
    ds.notes.append(f"blendshapes {Path(path).name}: a second target for {found} of {len(split)} training faces")
    return ds

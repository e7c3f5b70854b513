"""What every dataset reader returns, and the steps shared by all of them.

A reader only finds images and labels (file paths, or pixel arrays for csv datasets) and says
whether its images are face crops or full frames; pixels are decoded later by `load_pixels()`
through the model's `InputSpec`, so training sees faces prepared exactly as the device prepares them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..core import preprocess
from ..core.errors import EdgeferError
from ..core.spec import InputSpec

SPLITS = ("train", "val", "test")


class DatasetError(EdgeferError, ValueError):
    """Bad dataset on disk; the message names the file or folder and the fix."""


@dataclass
class Split:
    images: list  # file paths (str) or uint8 arrays
    labels: np.ndarray  # int class index per image
    soft: np.ndarray | None = None  # optional (N, C) soft targets (FER+ votes)

    def __len__(self):
        return len(self.labels)

    def subset(self, index) -> Split:
        index = np.asarray(index, dtype=int)
        return Split(
            [self.images[i] for i in index],
            self.labels[index],
            None if self.soft is None else self.soft[index],
        )


@dataclass
class FaceDataset:
    name: str
    labels: list[str]
    taxonomy: str
    splits: dict[str, Split]
    source: str = ""
    notes: list[str] = field(default_factory=list)
    framing: str = "crops"  # "crops": faces cropped by the dataset; "frames": training detects and crops

    def counts(self) -> dict[str, list[int]]:
        n = len(self.labels)
        return {s: np.bincount(sp.labels, minlength=n).tolist() for s, sp in self.splits.items()}

    def sizes(self) -> dict[str, int]:
        return {s: len(sp) for s, sp in self.splits.items()}


def read_npz(path: Path, keys: tuple[str, ...], kind: str, writer: str) -> list[np.ndarray]:
    """The arrays `keys` of a per-image target file, or one clear error naming it and its writer."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file; --{kind} takes the .npz written by {writer}")
    try:
        saved = np.load(path, allow_pickle=False)
        return [saved[key] for key in keys]
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"{path}: not a {kind} file ({exc}); write it with {writer}") from None


def mix_teacher(ds: FaceDataset, teacher, weight: float) -> FaceDataset:
    """Distillation targets: each image's target becomes (1 - weight) x what it was (its label, or
    the FER+ votes mixed in) plus weight x a stronger model's probabilities for that image.
    `teacher` is the .npz that `recipes/teacher_targets.py` writes (file names, the teacher's labels,
    its probabilities), cached once so that training reads them like votes; images are matched by
    file name, and ones the teacher did not see keep their target."""
    path = Path(teacher)
    if not 0.0 <= weight <= 1.0:
        raise DatasetError(f"teacher weight {weight} must be within 0..1")
    names, labels, probs = read_npz(path, ("names", "labels", "probs"), "teacher", "python recipes/teacher_targets.py")
    names, labels = list(names), list(labels)
    missing = [c for c in ds.labels if c not in labels]
    if missing:
        raise DatasetError(
            f"{path}: the teacher cannot say {missing} ({ds.name} classes {ds.labels}); "
            "use a teacher model with those classes"
        )
    probs = probs[:, [labels.index(c) for c in ds.labels]]
    probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-9, None)
    row = {name: i for i, name in enumerate(names)}
    n, matched = len(ds.labels), 0
    for split in ds.splits.values():
        soft = split.soft if split.soft is not None else np.eye(n, dtype=np.float32)[split.labels]
        for i, item in enumerate(split.images):
            k = row.get(os.path.basename(item)) if isinstance(item, str) else None
            if k is not None:
                soft[i] = (1 - weight) * soft[i] + weight * probs[k]
                matched += 1
        split.soft = soft.astype(np.float32)
    ds.notes.append(
        f"teacher {path.name} mixed into the targets (weight {weight}) for {matched} of "
        f"{sum(len(s) for s in ds.splits.values())} images"
    )
    return ds


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, taken): `fraction` of each class taken, the same every run for one seed."""
    rng = np.random.default_rng(seed)
    taken = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(len(idx) * fraction))
        if fraction > 0 and len(idx) >= 2:  # every class gets at least one, never loses its last
            k = min(max(k, 1), len(idx) - 1)
        elif len(idx) < 2:
            k = 0
        taken.extend(idx[:k])
    taken = np.sort(np.array(taken, dtype=int))
    kept = np.setdiff1d(np.arange(len(labels)), taken)
    return kept, taken


def fill_splits(
    dataset_splits: dict[str, Split], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, Split]:
    """Add missing val/test splits by a stratified, seeded cut of train."""
    splits = dict(dataset_splits)
    if "test" not in splits:
        kept, taken = stratified_split(splits["train"].labels, test_fraction, seed)
        splits["train"], splits["test"] = splits["train"].subset(kept), splits["train"].subset(taken)
    if "val" not in splits:
        kept, taken = stratified_split(splits["train"].labels, val_fraction, seed + 1)
        splits["train"], splits["val"] = splits["train"].subset(kept), splits["train"].subset(taken)
    return {s: splits[s] for s in SPLITS}


def load_pixels(split: Split, spec: InputSpec, desc: str = "images", face_model=None):
    """Decode every image of a split into what the model sees, through `spec`.

    Full frames (spec.framing "frames") are cropped around their largest face with the device's
    detector and the spec's crop, exactly as on the device; a frame with no face is skipped.
    Returns (pixels uint8 (N, size, size, C), kept index into the split, skipped [(path, reason)]).
    Unreadable files are skipped and reported, not fatal: one bad JPEG should not cost a night's run.
    """
    detector = None
    if spec.framing == "frames":
        from ..core.faces import FaceDetector, resolve_face_model

        detector = FaceDetector(resolve_face_model(face_model), video=False)

    def one(item):
        try:
            image = item if isinstance(item, np.ndarray) else preprocess.read_image(item)
        except preprocess.BadImage as exc:
            return None, str(exc)
        if detector is None:
            return spec.pixels(image), None
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
        faces = detector.detect(rgb)
        if not faces:
            return None, f"{item if isinstance(item, str) else 'image'}: no face found; crop it by hand or delete it"
        face = max(faces, key=lambda f: f.box[2] * f.box[3])
        return spec.face_pixels(rgb, face.box, face.keypoints[:2]), None

    out = np.zeros((len(split), *spec.shape), np.uint8)
    kept, skipped = [], []
    # the detector is not thread-safe: full frames are cropped one at a time
    workers = 1 if detector else min(8, (os.cpu_count() or 2) * 2)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = pool.map(one, split.images, chunksize=256)
            for i, (pixels, error) in enumerate(
                tqdm(results, total=len(split), desc=desc, unit="img", leave=False, mininterval=1.0)
            ):
                if error:
                    skipped.append((split.images[i], error))
                else:
                    out[len(kept)] = pixels
                    kept.append(i)
    finally:
        if detector:
            detector.close()
    return out[: len(kept)], np.array(kept, dtype=int), skipped

"""What every dataset reader returns, and the steps shared by all of them.

A reader only finds images and labels (file paths, or pixel arrays for csv datasets); pixels are
decoded later by `load_pixels()` through the shared core, so training sees faces prepared exactly
as the device will prepare them.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..core import preprocess

SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


class DatasetError(ValueError):
    """Bad dataset on disk; the message names the file or folder and the fix."""


@dataclass
class Split:
    images: list          # file paths (str) or uint8 arrays
    labels: np.ndarray    # int class index per image
    soft: np.ndarray | None = None  # optional (N, C) soft targets (FER+ votes)

    def __len__(self):
        return len(self.labels)

    def subset(self, index) -> "Split":
        index = np.asarray(index, dtype=int)
        return Split([self.images[i] for i in index], self.labels[index],
                     None if self.soft is None else self.soft[index])


@dataclass
class FaceDataset:
    name: str
    labels: list[str]
    taxonomy: str
    splits: dict[str, Split]
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, list[int]]:
        n = len(self.labels)
        return {s: np.bincount(sp.labels, minlength=n).tolist() for s, sp in self.splits.items()}

    def sizes(self) -> dict[str, int]:
        return {s: len(sp) for s, sp in self.splits.items()}


def list_images(folder) -> list[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS and not f.startswith("."))


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


def fill_splits(dataset_splits: dict[str, Split], val_fraction: float, test_fraction: float, seed: int) -> dict[str, Split]:
    """Add missing val/test splits by a stratified, seeded cut of train."""
    splits = dict(dataset_splits)
    if "test" not in splits:
        kept, taken = stratified_split(splits["train"].labels, test_fraction, seed)
        splits["train"], splits["test"] = splits["train"].subset(kept), splits["train"].subset(taken)
    if "val" not in splits:
        kept, taken = stratified_split(splits["train"].labels, val_fraction, seed + 1)
        splits["train"], splits["val"] = splits["train"].subset(kept), splits["train"].subset(taken)
    return {s: splits[s] for s in SPLITS}


def load_pixels(split: Split, size: int, color: str, equalization: str, desc: str = "images"):
    """Decode and prepare every image of a split.

    Returns (pixels uint8 (N, size, size, C), kept index into the split, skipped [(path, reason)]).
    Unreadable files are skipped and reported, not fatal: one bad JPEG should not cost a night's run.
    """
    def one(item):
        try:
            image = item if isinstance(item, np.ndarray) else preprocess.read_image(item)
            return preprocess.prepare(image, size, color, equalization), None
        except preprocess.BadImage as exc:
            return None, str(exc)

    out = np.zeros((len(split), size, size, preprocess.channels(color)), np.uint8)
    kept, skipped = [], []
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        results = pool.map(one, split.images, chunksize=256)
        for i, (pixels, error) in enumerate(tqdm(results, total=len(split), desc=desc, unit="img",
                                                  leave=False, mininterval=1.0)):
            if error:
                skipped.append((split.images[i], error))
            else:
                out[len(kept)] = pixels
                kept.append(i)
    return out[:len(kept)], np.array(kept, dtype=int), skipped

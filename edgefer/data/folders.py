"""Folder-per-class datasets (Kaggle FER-2013 layout and friends) and CK+."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..core.preprocess import list_images
from ..core.taxonomy import UnknownLabel, canonical, taxonomy_for
from .base import DatasetError, FaceDataset, Split, fill_splits, stratified_split

# FER-2013 image folders carry the official split in the file name.
FER2013_PREFIX = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SPLIT_DIRS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def _class_dirs(folder: Path) -> dict[str, Path]:
    """Canonical class name -> class folder, refusing unknown names and empty folders."""
    found = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            name = canonical(d.name)
        except UnknownLabel as exc:
            raise DatasetError(f"{d}: class folder name {exc}; rename the folder") from None
        if not list_images(d):
            raise DatasetError(f"{d}: class folder holds no images; add images or remove the folder")
        if name in found:
            raise DatasetError(f"{d} and {found[name]} are the same class '{name}'; merge them")
        found[name] = d
    if not found:
        raise DatasetError(f"{folder}: no class folders (expected {folder}/<class>/*.jpg)")
    return found


def _collect(folders: dict[str, Path], labels: list[str]):
    paths, ys = [], []
    for name, d in folders.items():
        files = list_images(d)
        paths += files
        ys += [labels.index(name)] * len(files)
    return paths, np.array(ys, dtype=int)


def read_folder(root, val_fraction=0.1, test_fraction=0.1, seed=0, **_) -> FaceDataset:
    """`root/<class>/*` (split here, stratified and seeded) or `root/{train,val,test}/<class>/*`.

    When file names carry FER-2013's usage (Training_/PublicTest_/PrivateTest_) that official split
    wins over the folder: PublicTest is validation, PrivateTest the test set."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder; pass --data a folder of class folders")
    split_dirs = {SPLIT_DIRS[p.name.lower()]: p for p in root.iterdir() if p.is_dir() and p.name.lower() in SPLIT_DIRS}
    if "train" not in split_dirs and split_dirs:
        raise DatasetError(f"{root}: has {sorted(split_dirs)} but no train/ folder")
    per_split = {s: _class_dirs(d) for s, d in split_dirs.items()} or {"all": _class_dirs(root)}
    taxonomy, labels = taxonomy_for({c for f in per_split.values() for c in f})
    collected = {s: _collect(f, labels) for s, f in per_split.items()}
    paths = [p for ps, _ in collected.values() for p in ps]
    ys = np.concatenate([y for _, y in collected.values()])

    usage = [FER2013_PREFIX.get(os.path.basename(p).split("_", 1)[0]) for p in paths]
    notes = []
    if all(usage) and set(usage) != set(FER2013_PREFIX.values()):
        # FER-2013 names, but not all three usages: the name-based split would leave a split empty
        notes.append(
            f"file names carry FER-2013 usage but only {', '.join(sorted(set(usage)))}: split by folder instead"
        )
        usage = [None]
    if all(usage):
        splits = {
            s: Split([p for p, u in zip(paths, usage) if u == s], ys[[u == s for u in usage]])
            for s in ("train", "val", "test")
        }
        notes.append("official FER-2013 split from file names: Training=train, PublicTest=val, PrivateTest=test")
    elif "all" in collected:
        splits = fill_splits({"train": Split(paths, ys)}, val_fraction, test_fraction, seed)
        notes.append(f"one folder: stratified split val={val_fraction} test={test_fraction} seed={seed}")
    else:
        splits = fill_splits({s: Split(*collected[s]) for s in collected}, val_fraction, test_fraction, seed)
    return FaceDataset(root.name, labels, taxonomy, splits, str(root), notes)


# --- CK+ ---------------------------------------------------------------------------------------
# Every CK+ sequence gives several near-identical frames of one person, so a random split leaks
# faces into the test set. We split by subject (S005, S010, ...) instead.
SUBJECT = re.compile(r"(S\d{3,})")
CKPLUS_CODES = ("neutral", "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")


def _subject_splits(paths, ys, val_fraction, test_fraction, seed):
    subjects = []
    for p in paths:
        m = SUBJECT.search(os.path.basename(p)) or SUBJECT.search(p)
        if not m:
            raise DatasetError(f"{p}: no CK+ subject id (S###) in the name; CK+ is split by subject")
        subjects.append(m.group(1))
    unique = sorted(set(subjects))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_test = max(1, int(round(len(unique) * test_fraction)))
    n_val = max(1, int(round(len(unique) * val_fraction)))
    which = {}
    for rank, i in enumerate(order):
        which[unique[i]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return {
        s: Split(
            [p for p, sub in zip(paths, subjects) if which[sub] == s],
            ys[np.array([which[sub] == s for sub in subjects], dtype=bool)],
        )
        for s in ("train", "val", "test")
    }


def read_ckplus(root, val_fraction=0.1, test_fraction=0.1, seed=0, frames=3, **_) -> FaceDataset:
    """CK+ as class folders (CK+48 style, `S005_001_00000011.png`) or in its original layout
    (`cohn-kanade-images/S005/001/*.png` + `Emotion/S005/001/*_emotion.txt`, of which the last
    `frames` frames of each labelled sequence are used: the apex of the expression)."""
    root = Path(root)
    emotion_dir = root / "Emotion"
    if emotion_dir.is_dir():
        image_dir = root / "cohn-kanade-images"
        paths, names = [], []
        for label_file in sorted(emotion_dir.rglob("*_emotion.txt")):
            try:
                code = int(float(label_file.read_text().split()[0]))
                name = CKPLUS_CODES[code]
            except (ValueError, IndexError):
                raise DatasetError(f"{label_file}: expected one emotion code 0..7") from None
            seq = image_dir / label_file.parent.relative_to(emotion_dir)
            if not seq.is_dir() or not list_images(seq):
                raise DatasetError(
                    f"{label_file} labels sequence {seq}, which has no images; restore it or delete the label file"
                )
            for p in list_images(seq)[-frames:]:
                paths.append(p)
                names.append(name)
        if not paths:
            raise DatasetError(f"{emotion_dir}: no *_emotion.txt label files")
    else:
        folders = _class_dirs(root)
        paths, names = [], []
        for name, d in folders.items():
            files = list_images(d)
            paths += files
            names += [name] * len(files)
    taxonomy, labels = taxonomy_for(set(names))
    ys = np.array([labels.index(n) for n in names], dtype=int)
    splits = _subject_splits(paths, ys, val_fraction, test_fraction, seed)
    # the original layout holds 640x490 frames: training crops the face as the device does
    return FaceDataset(
        "ckplus",
        labels,
        taxonomy,
        splits,
        str(root),
        [f"split by subject val={val_fraction} test={test_fraction} seed={seed}"],
        framing="frames" if emotion_dir.is_dir() else "crops",
    )


def looks_like_ckplus(root: Path) -> bool:
    if (root / "Emotion").is_dir():
        return True
    try:
        sample = next(p for d in root.iterdir() if d.is_dir() for p in d.iterdir())
    except (StopIteration, OSError):
        return False
    return bool(re.match(r"S\d{3,}_\d{3}_", sample.name))


__all__ = ["read_folder", "read_ckplus", "stratified_split", "looks_like_ckplus"]

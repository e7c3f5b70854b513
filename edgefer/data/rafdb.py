"""RAF-DB basic (7 classes) and compound (11 classes).

Layout as distributed: `EmoLabel/list_patition_label.txt` with lines `train_00001.jpg 5`, images in
`Image/aligned/train_00001_aligned.jpg` (preferred: faces already aligned and cropped) or
`Image/original/train_00001.jpg`. The official split is the `train_`/`test_` prefix; validation is
cut from train, stratified and seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.taxonomy import COMPOUND11
from .base import DatasetError, FaceDataset, Split, fill_splits

# RAF-DB basic labels 1..7, in RAF's own order, as canonical names.
RAF_BASIC = ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")


def _image_for(root: Path, name: str) -> Path | None:
    stem = Path(name).stem
    for candidate in (
        root / "Image" / "aligned" / f"{stem}_aligned.jpg",
        root / "Image" / "aligned" / name,
        root / "Image" / "original" / name,
        root / "Image" / name,
    ):
        if candidate.exists():
            return candidate
    return None


def read_rafdb(root, compound=None, val_fraction=0.1, seed=0, **_) -> FaceDataset:
    root = Path(root)
    label_file = root / "EmoLabel" / "list_patition_label.txt"
    if not label_file.exists():
        raise DatasetError(f"{label_file}: not found; pass --data the RAF-DB folder holding EmoLabel/ and Image/")
    entries = []
    for n, line in enumerate(label_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            name, code = line.split()[:2]
            entries.append((name, int(code)))
        except ValueError:
            raise DatasetError(f"{label_file}:{n}: expected '<image> <label>', got {line!r}") from None
    codes = [c for _, c in entries]
    if compound is None:
        compound = max(codes) > len(RAF_BASIC)
    names = COMPOUND11 if compound else RAF_BASIC
    taxonomy = "compound11" if compound else "basic7"
    if min(codes) < 1 or max(codes) > len(names):
        raise DatasetError(f"{label_file}: labels must be 1..{len(names)} for RAF-DB {taxonomy}")
    from ..core.taxonomy import TAXONOMIES

    labels = [c for c in TAXONOMIES[taxonomy] if c in {names[k - 1] for k in codes}]

    by_split: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    for name, code in entries:
        split = "train" if name.startswith("train") else "test" if name.startswith("test") else None
        if split is None:
            raise DatasetError(f"{label_file}: {name} starts with neither train_ nor test_")
        image = _image_for(root, name)
        if image is None:
            raise DatasetError(
                f"{label_file} names {name}, but no such image under {root / 'Image'} "
                "(aligned/ or original/); restore the image or remove its line"
            )
        by_split[split][0].append(str(image))
        by_split[split][1].append(labels.index(names[code - 1]))
    splits = {s: Split(p, np.array(y, dtype=int)) for s, (p, y) in by_split.items()}
    splits = fill_splits(splits, val_fraction, 0.0, seed)
    # aligned images are face crops; the originals are whole photos that training crops
    original = any("aligned" not in Path(p).parent.name for s in splits.values() for p in s.images)
    return FaceDataset(
        "rafdb-compound" if compound else "rafdb",
        labels,
        taxonomy,
        splits,
        str(root),
        [f"official train/test; val={val_fraction} of train, stratified, seed={seed}"],
        framing="frames" if original else "crops",
    )

"""Datasets: one registry of readers, and `load_dataset()` that picks one from what is on disk.

>>> ds = load_dataset("../shared/data/fer2013")
>>> ds.labels, ds.sizes()
"""

from __future__ import annotations

from pathlib import Path

from .base import DatasetError, FaceDataset, Split, load_pixels, mix_teacher
from .fer2013 import read_fer2013_csv, read_ferplus, read_ferplus_compound
from .folders import looks_like_ckplus, read_ckplus, read_folder
from .rafdb import read_rafdb

DATASETS = {
    "folder": read_folder,
    "fer2013-csv": read_fer2013_csv,
    "ferplus": read_ferplus,
    "ferplus-compound": read_ferplus_compound,
    "rafdb": lambda root, **kw: read_rafdb(root, compound=False, **kw),
    "rafdb-compound": lambda root, **kw: read_rafdb(root, compound=True, **kw),
    "ckplus": read_ckplus,
}


def detect(path) -> str:
    """Which reader fits `path` (used when --dataset is `auto`)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder; pass --data a dataset folder or csv")
    if path.is_file():
        with open(path, newline="") as f:
            header = f.readline()
        if "pixels" in header:
            return "fer2013-csv"
        if "contempt" in header and "NF" in header:
            return "ferplus"
        raise DatasetError(f"{path}: a csv that is neither FER-2013 (emotion,pixels,Usage) nor FER+ votes")
    if (path / "fer2013new.csv").exists():
        return "ferplus"
    if (path / "EmoLabel" / "list_patition_label.txt").exists():
        return "rafdb"  # basic or compound is decided from the label range
    if looks_like_ckplus(path):
        return "ckplus"
    return "folder"


def load_dataset(path, dataset: str = "auto", **options) -> FaceDataset:
    kind = detect(path) if dataset == "auto" else dataset
    if kind not in DATASETS:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose one of {['auto', *DATASETS]}")
    if kind == "rafdb" and dataset == "auto":
        return read_rafdb(path, **options)
    return DATASETS[kind](path, **options)


__all__ = ["DATASETS", "DatasetError", "FaceDataset", "Split", "detect", "load_dataset", "load_pixels"]

"""Dataset setup for a run: the dataset its configuration names, the input spec resolved once
from both, and every split decoded through that spec into arrays (no TensorFlow here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.spec import FaceCrop, InputSpec
from ..data import FaceDataset, load_dataset, load_pixels, mix_teacher
from .config import ConfigError, TrainConfig


@dataclass
class Arrays:
    x: np.ndarray  # uint8 (N, S, S, C)
    y: np.ndarray  # int (N,)
    soft: np.ndarray | None


def dataset_for(cfg: TrainConfig) -> FaceDataset:
    """The dataset a configuration names, with its split options (used by train, evaluate, export)."""
    ds = load_dataset(
        cfg.data,
        cfg.dataset,
        images=cfg.images,
        mapping=cfg.mapping,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
        seed=cfg.seed,
        compound_votes=cfg.compound_votes,
        compound_min=cfg.compound_min,
    )
    if cfg.votes:
        from ..data.fer2013 import mix_votes

        mix_votes(ds, cfg.votes, cfg.votes_weight)
    if cfg.teacher:
        mix_teacher(ds, cfg.teacher, cfg.teacher_weight)
    return ds


def spec_for(cfg: TrainConfig, ds: FaceDataset) -> InputSpec:
    """The input spec of a run, resolved once from its configuration and dataset."""
    return InputSpec(
        labels=tuple(ds.labels),
        taxonomy=ds.taxonomy,
        size=cfg.size,
        color=cfg.color,
        equalize=cfg.equalize,
        crop=FaceCrop(cfg.margin, cfg.offset_y, cfg.align),
        framing=ds.framing if cfg.framing == "auto" else cfg.framing,
        flip_average=cfg.flip_average,
    )


def cap_per_class(ds: FaceDataset, cap: int | None, seed: int) -> FaceDataset:
    """Keep at most `cap` images per class in every split (a seeded choice), for quick runs."""
    if not cap:
        return ds
    rng = np.random.default_rng(seed)
    for name, split in ds.splits.items():
        keep = []
        for c in np.unique(split.labels):
            keep.extend(rng.permutation(np.flatnonzero(split.labels == c))[:cap])
        ds.splits[name] = split.subset(np.sort(keep))
    return ds


def prepare_arrays(ds: FaceDataset, spec: InputSpec) -> tuple[dict[str, Arrays], list]:
    """Decode every split through the run's input spec."""
    arrays, skipped = {}, []
    for name, split in ds.splits.items():
        x, kept, bad = load_pixels(split, spec, desc=f"loading {name}")
        skipped += bad
        if len(kept) == 0:
            raise ConfigError(f"{ds.source}: the {name} split has no readable images")
        arrays[name] = Arrays(
            x,
            split.labels[kept],
            None if split.soft is None else split.soft[kept],
        )
    return arrays, skipped


def soft_targets(cfg: TrainConfig) -> bool:
    """Whether training fits soft targets: FER+ distributions, votes mixed in, or a teacher's."""
    return cfg.soft_labels or bool(cfg.votes) or bool(cfg.teacher)


def targets_of(a: Arrays, n: int, soft: bool) -> np.ndarray:
    """Soft targets (FER+ votes, a teacher's probabilities) where the config asks for them, else one-hot labels."""
    if soft and a.soft is not None:
        return a.soft.astype(np.float32)
    return np.eye(n, dtype=np.float32)[a.y]


def split_warnings(arrays: dict[str, Arrays], labels) -> list[str]:
    """What makes a run's test figures mean less than they say: test faces pixel-identical to training
    faces (the model has seen them), and classes with no test faces (their F1 counts as 0)."""
    import hashlib

    out = []
    if "train" in arrays and "test" in arrays and len(arrays["test"].x):
        seen = {hashlib.sha1(x.tobytes()).digest() for x in arrays["train"].x}
        leaked = sum(hashlib.sha1(x.tobytes()).digest() in seen for x in arrays["test"].x)
        if leaked:
            out.append(
                f"{leaked} of {len(arrays['test'].x)} test faces are pixel-identical to training faces: the test "
                "figures count faces the model has seen (remove the copies to measure it on new faces)"
            )
    if "test" in arrays:
        absent = [labels[c] for c in range(len(labels)) if not (arrays["test"].y == c).any()]
        if absent:
            out.append(
                f"no test faces of {', '.join(absent)}: {'its' if len(absent) == 1 else 'their'} F1 counts as 0 in "
                "the macro-F1 (add faces of it, or a larger test share)"
            )
    return out


def data_digest(ds: FaceDataset) -> str:
    """sha256 of what a run trains on: every split's images (a file by its class folder, name and
    bytes, so a copy of the data elsewhere has the same digest) and labels. A resumed run checks it:
    an image added, removed or replaced since the run began is a different run."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    for name in sorted(ds.splits):
        split = ds.splits[name]
        h.update(name.encode() + np.asarray(split.labels).tobytes())
        for item in split.images:
            if isinstance(item, str):
                path = Path(item)
                h.update(f"{path.parent.name}/{path.name}".encode())
                try:
                    h.update(path.read_bytes())
                except OSError:
                    h.update(b"unreadable")
            else:
                h.update(np.ascontiguousarray(item).tobytes())
    return h.hexdigest()

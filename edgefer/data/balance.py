"""Class balance: per-class counts per split, imbalance ratio, a printed table and a bar chart; and
oversampling's index (the ways to balance a run register in edgefer.train.balancers)."""

from __future__ import annotations

import numpy as np

from ..core import plots
from ..core.files import write_json
from .base import FaceDataset


def balance_report(ds: FaceDataset) -> dict:
    counts = ds.counts()
    train = [c for c in counts["train"] if c > 0] or [0]
    return {
        "dataset": ds.name,
        "labels": ds.labels,
        "counts": counts,
        "sizes": ds.sizes(),
        "imbalance_ratio": (max(train) / min(train)) if min(train) else float("inf"),
        "largest": ds.labels[counts["train"].index(max(counts["train"]))],
        "smallest": ds.labels[counts["train"].index(min(counts["train"]))],
    }


def format_balance(report: dict) -> str:
    splits = list(report["counts"])
    lines = [f"{'class':<22}" + "".join(f"{s:>9}" for s in splits)]
    for i, label in enumerate(report["labels"]):
        lines.append(f"{label:<22}" + "".join(f"{report['counts'][s][i]:>9d}" for s in splits))
    lines.append(f"{'total':<22}" + "".join(f"{report['sizes'][s]:>9d}" for s in splits))
    lines.append(
        f"imbalance (largest/smallest train class): {report['imbalance_ratio']:.1f} "
        f"({report['largest']} / {report['smallest']})"
    )
    return "\n".join(lines)


def write_balance(ds: FaceDataset, out_dir) -> dict:
    report = balance_report(ds)
    write_json(f"{out_dir}/balance.json", report)
    plots.balance_png(
        report["counts"],
        ds.labels,
        f"{out_dir}/balance.png",
        title=f"{ds.name}: images per class (imbalance {report['imbalance_ratio']:.1f}x)",
    )
    return report


def oversample_index(y: np.ndarray, seed: int, quota: int | dict | None = None, classes=None) -> np.ndarray:
    """Every class (or just `classes`) repeated, with a random remainder, up to `quota` (default:
    the largest class; a dict gives each class its own); classes already at or above it keep their
    images once. The augmentation then makes the repeats differ."""
    rng = np.random.default_rng(seed)
    quotas = quota if isinstance(quota, dict) else {}
    default = quota if isinstance(quota, int) and quota else np.bincount(y).max()
    idx = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        target = quotas.get(int(c), default)
        if len(members) >= target or (classes is not None and c not in classes):
            idx.append(members)
            continue
        idx.append(
            np.concatenate(
                [np.tile(members, target // len(members)), rng.choice(members, target % len(members), replace=False)]
            )
        )
    return rng.permutation(np.concatenate(idx))

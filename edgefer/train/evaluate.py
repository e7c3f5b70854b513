"""Evaluate a finished run's model on a split of its dataset (or another dataset), through its spec."""

from __future__ import annotations

from ..core.metrics import classification_report
from ..data import FaceDataset
from .run import RunError, load


def evaluate(run_dir, dataset: FaceDataset | None = None, split: str = "test") -> dict:
    run = load(run_dir)
    if dataset is not None and tuple(dataset.labels) != run.spec.labels:
        raise RunError(f"dataset labels {dataset.labels} differ from the model's {list(run.spec.labels)}")
    arrays = run.arrays([split], dataset=dataset)[split]
    return classification_report(arrays.y, run.predict(arrays.x).argmax(1), list(run.spec.labels))

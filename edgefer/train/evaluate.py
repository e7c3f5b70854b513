"""Evaluate a finished run's model on a split of its dataset (or another dataset), from the card."""
from __future__ import annotations

import json
from pathlib import Path

from ..core import card as card_mod
from ..core.metrics import classification_report
from ..data import FaceDataset
from ._tf import keras
from .config import ConfigError, TrainConfig
from .trainer import cap_per_class, dataset_for, predict, prepare_arrays


def evaluate(run_dir, dataset: FaceDataset | None = None, split: str = "test") -> dict:
    run_dir = Path(run_dir)
    card = card_mod.load(run_dir / "card.json")
    if not (run_dir / "model.keras").exists():
        raise ConfigError(f"{run_dir}/model.keras: no model; is {run_dir} a finished edgefer-train run?")
    cfg = TrainConfig(**json.loads((run_dir / "config.json").read_text())["config"])
    ds = dataset or dataset_for(cfg)
    if ds.labels != card["labels"]:
        raise ConfigError(f"dataset labels {ds.labels} differ from the model's {card['labels']}")
    inp = card["input"]
    cfg.size, cfg.color, cfg.equalize = inp["size"], inp["color"], inp["equalize"]
    ds.splits = {split: ds.splits[split]}
    cap_per_class(ds, cfg.max_per_class, cfg.seed)
    arrays, _ = prepare_arrays(ds, cfg)
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    probs = predict(model, arrays[split].x, cfg.tta_flip)
    return classification_report(arrays[split].y, probs.argmax(1), ds.labels)

"""A run directory written by edgefer-train, opened once for every stage that reads one
(evaluate, export, the benchmarks): its model, its input spec (from card.json), its configuration
and its data, prepared through that spec.

>>> run = load("runs/fer")
>>> probs = run.predict(run.arrays(["val"])["val"].x)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import card as card_mod
from ..core.errors import EdgeferError
from ..core.spec import InputSpec
from ..data import FaceDataset
from .backbones import keras_runner
from .config import FIELDS, RENAMED, ConfigError, TrainConfig, without_retired


class RunError(EdgeferError, ValueError):
    pass


@dataclass
class Run:
    dir: Path
    config: TrainConfig
    card: dict
    spec: InputSpec
    model: object = None  # the run's Keras model (its best epoch); None when opened with model=False

    def dataset(self, max_per_class: int | None = None) -> FaceDataset:
        """The run's dataset with its split, labels checked against the spec."""
        from .arrays import cap_per_class, dataset_for

        ds = dataset_for(self.config)
        if tuple(ds.labels) != self.spec.labels:
            raise RunError(
                f"{self.config.data}: dataset labels {ds.labels} differ from {self.dir}/card.json's "
                f"{list(self.spec.labels)}; pass the dataset the run was trained on"
            )
        return cap_per_class(ds, max_per_class or self.config.max_per_class, self.config.seed)

    def arrays(self, splits=None, dataset: FaceDataset | None = None, max_per_class: int | None = None) -> dict:
        """{split: Arrays} of pixels prepared through the run's spec (all splits by default)."""
        from .arrays import prepare_arrays

        ds = dataset or self.dataset(max_per_class)
        if splits:
            ds.splits = {s: ds.splits[s] for s in splits}
        try:
            return prepare_arrays(ds, self.spec)[0]
        except ConfigError as exc:
            raise RunError(str(exc)) from None

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities of the run's Keras model, flip-averaged as the spec says."""
        return self.spec.predict(keras_runner(self.model, self.spec), pixels)


def read_config(run_dir: Path) -> TrainConfig:
    path = run_dir / "config.json"
    try:
        saved = json.loads(path.read_text())["config"]
    except FileNotFoundError:
        raise RunError(f"{path}: missing; pass the run directory edgefer-train wrote") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RunError(f"{path}: not a run configuration ({exc}); restore it or retrain") from None
    try:
        values = without_retired({RENAMED.get(k, k): v for k, v in saved.items()}, run_dir)
    except ConfigError as exc:
        raise RunError(str(exc)) from None
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise RunError(f"{path}: unknown key(s) {sorted(unknown)}; written by another edgefer version?")
    return TrainConfig(**values)


def load(run_dir, model: bool = True) -> Run:
    """Open a run; RunError naming the file and the fix when something is missing or disagrees."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run directory; pass the --out folder of edgefer-train")
    try:
        card = card_mod.load(run_dir / "card.json")
    except card_mod.BadCard as exc:
        raise RunError(str(exc)) from None
    run = Run(run_dir, read_config(run_dir), card, card_mod.spec(card, str(run_dir / "card.json")))
    if model:
        run.model = _load_model(run_dir / "model.keras", run.spec)
    return run


def _load_model(path: Path, spec: InputSpec):
    from .._tf import keras

    if not path.exists():
        raise RunError(
            f"{path}: no model; pass the run directory of a finished edgefer-train run (or finish it with --resume)"
        )
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # TypeError: a layer class Keras does not know
        raise RunError(
            f"{path}: unreadable model ({str(exc).splitlines()[0][:120]}); retrain, or resume the run to rewrite it"
        ) from None
    if tuple(model.input_shape[1:]) != spec.shape:
        raise RunError(
            f"{path.parent}/card.json says input {spec.shape} but model.keras takes "
            f"{tuple(model.input_shape[1:])}; the card does not belong to this model (retrain, or restore the run's card)"
        )
    if model.output_shape[-1] != len(spec.labels):
        raise RunError(
            f"{path.parent}/card.json lists {len(spec.labels)} labels but the model has "
            f"{model.output_shape[-1]} outputs"
        )
    return model

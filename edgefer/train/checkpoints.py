"""What a run keeps while it trains, so that a kill at any moment loses at most the epoch in
progress: the best and last models and the loop's state each epoch, the running mean of the
weights for tail averaging, and the check that a resumed run is the run it continues."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .._tf import keras, tf
from ..core.errors import NotWritable
from ..core.files import atomic_path, write_json
from .config import FIELDS, ConfigError, TrainConfig


class RunCheckpoint(keras.callbacks.Callback):
    """Every epoch: the best model so far, the last model with its optimizer, and the loop's own
    state (history, best, early-stopping wait), each written atomically, so a kill at any moment
    leaves a run that `--resume` continues exactly where it stopped."""

    def __init__(self, run_dir: Path, state: dict, patience: int, best_path: Path, deliver):
        super().__init__()
        self.run_dir, self.state, self.patience, self.best_path = run_dir, state, patience, best_path
        self.deliver = deliver  # the model being trained -> the model as it ships (`at_size`)

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        # with a blendshape head Keras names the expression's accuracy after its output ("probs_")
        logs = {key.replace("probs_accuracy", "accuracy"): value for key, value in (logs or {}).items()}
        for key, value in logs.items():
            self.state["history"].setdefault(key, []).append(float(value))
        # wall time is kept per epoch, so a killed run's time still adds up after --resume
        self.state["train_seconds"] = self.state.get("train_seconds", 0.0) + time.time() - self.started
        val_acc = float(logs.get("val_accuracy", 0.0))
        best = val_acc > self.state["best_val_accuracy"]
        if best:
            self.state.update(best_val_accuracy=val_acc, best_epoch=epoch + 1, wait=0)
        else:
            self.state["wait"] += 1
        self.state["epoch"] = epoch + 1
        try:
            if best:
                with atomic_path(self.best_path, suffix=".keras") as tmp:
                    self.deliver(self.model).save(tmp)
            with atomic_path(self.run_dir / "checkpoints" / "last.keras", suffix=".keras") as tmp:
                self.model.save(tmp)
            write_json(self.run_dir / "checkpoints" / "state.json", self.state)
        except OSError as exc:  # disk full: the previous files are whole (atomic writes)
            raise NotWritable(
                f"{self.run_dir}: epoch {epoch + 1} could not be saved ({exc.strerror or exc}); "
                "free space there, then continue with --resume from the last saved epoch"
            ) from None
        if self.state["wait"] >= self.patience:
            print(f"early stop: validation accuracy has not improved for {self.patience} epochs")


class EpochMeanWeights(keras.callbacks.Callback):
    """From epoch `first` on, the mean of the trainable weights over every step of each epoch,
    written when the epoch ends (before RunCheckpoint's state, which comes after it in the list), so
    a resumed run averages exactly the steps an uninterrupted one would."""

    def __init__(self, run_dir: Path, first: int):
        super().__init__()
        self.folder, self.first, self.sums = run_dir / "checkpoints", first, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.steps = epoch + 1, 0
        if self.epoch >= self.first and self.sums is None:
            # sums kept as variables and added in one graph call: copying every variable out to
            # numpy each step would cost a good part of the step itself
            self.sums = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.model.trainable_weights]
            self.accumulate = tf.function(
                lambda: [s.assign_add(v) for s, v in zip(self.sums, self.model.trainable_weights)]
            )
        for s in self.sums or ():
            s.assign(tf.zeros_like(s))

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch >= self.first:
            self.accumulate()
            self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.epoch >= self.first and self.steps:
            with atomic_path(self.folder / f"mean_epoch_{self.epoch}.npz", suffix=".npz") as tmp:
                np.savez(tmp, *[s.numpy() / self.steps for s in self.sums])


def average_epochs(model, folder: Path, epochs, batches, bn_batches: int = 100):
    """Set the trainable weights to the mean of those epochs' mean weights (each epoch has as many
    steps), then re-measure BatchNorm's statistics for them on training batches: the statistics
    the run kept belong to the last step's weights, not to their mean."""
    means = [np.load(folder / f"mean_epoch_{k}.npz") for k in epochs]
    for i, variable in enumerate(model.trainable_weights):
        variable.assign(np.mean([m[f"arr_{i}"] for m in means], axis=0))
    for x, _ in batches.take(bn_batches):  # momentum 0.9: after 100 batches the old statistics weigh 0.9**100
        model(x, training=True)  # (frozen layers keep theirs: they run in inference mode)


def check_resume(cfg: TrainConfig, run_dir: Path, framing: str, data_sha256: str | None = None) -> dict | None:
    """The saved loop state when resuming; refuses a run made with another configuration, and
    refuses to overwrite an existing run without --resume."""
    state_file = run_dir / "checkpoints" / "state.json"
    if not state_file.exists():
        if cfg.resume:
            print(f"{run_dir}: nothing to resume, starting a new run")
        return None
    if not cfg.resume:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    saved = _read_json(run_dir / "config.json", run_dir)
    if saved.get("fingerprint") != cfg.fingerprint(framing):
        # an option added since the run was made reads as its default, which is what the run did
        changed = sorted(
            k for k in cfg.trained_keys(framing) if saved["config"].get(k, FIELDS[k].default) != getattr(cfg, k)
        )
        changed += [
            f"the contents of {getattr(cfg, key.removesuffix('_sha256'))}"
            for key, digest in cfg.file_digests().items()
            if saved.get(key) != digest
        ]
        if changed:  # else the same training under a fingerprint of another edgefer version
            raise ConfigError(
                f"{run_dir} was trained with another configuration (differs in {changed}); "
                "resume with the original settings or choose another --out"
            )
    if data_sha256 and saved.get("data_sha256") not in (None, data_sha256):  # runs made before it was kept
        raise ConfigError(
            f"{run_dir}: the training data changed since the run began (an image added, removed or replaced in "
            f"{cfg.data}); resume on the data it was trained on, or choose another --out"
        )
    state = _read_json(state_file, run_dir)
    if not isinstance(state.get("epoch"), int):
        raise ConfigError(
            f"{state_file}: not a training state; delete {run_dir / 'checkpoints'} to start over, or choose another --out"
        )
    state["planned_epochs"] = saved.get("config", {}).get("epochs", cfg.epochs)
    return state


def _read_json(path: Path, run_dir: Path) -> dict:
    """A run's own JSON file, or one line saying what to do when it is missing or damaged."""
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: missing, so {run_dir} cannot be resumed as it was trained; restore it, or choose another --out"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: damaged ({exc}); {run_dir} cannot be resumed: restore it, delete {run_dir / 'checkpoints'} "
            "to start over, or choose another --out"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: not what edgefer-train writes; restore it, or choose another --out")
    return value

"""What a run keeps while it trains, so that a kill at any moment loses at most the epoch in
progress: the best and last models and the loop's state each epoch, and the check that a resumed
run is the run it continues."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .._tf import keras
from ..core.errors import NotWritable
from ..core.files import atomic_path, write_json
from .config import FIELDS, ConfigError, TrainConfig, without_retired


class RunCheckpoint(keras.callbacks.Callback):
    """Every epoch: the best model so far, the last model with its optimizer, and the loop's own
    state (history, best, early-stopping wait), each written atomically, so a kill at any moment
    leaves a run that `--resume` continues exactly where it stopped."""

    def __init__(self, run_dir: Path, state: dict, patience: int):
        super().__init__()
        self.run_dir, self.state, self.patience = run_dir, state, patience

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
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
                with atomic_path(self.run_dir / "model.keras", suffix=".keras") as tmp:
                    self.model.save(tmp)
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
    without_retired(saved.get("config", {}), run_dir)  # this edgefer would continue it without what made it
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

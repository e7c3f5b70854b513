"""dataset -> fine-tuned model -> evaluation, writing everything into one run directory.

RUN/
  config.json        the resolved configuration and its fingerprint
  balance.json/.png  class counts per split
  model.keras        best epoch by validation accuracy
  card.json          the input spec resolved when the run started, with provenance (edgefer.core.card)
  metrics.json       test-split report (+ validation under "val")
  confusion_matrix.png, curves.png
  checkpoints/       last epoch with optimizer state + state.json, for --resume
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._tf import keras, tf
from ..core import card as card_mod
from ..core import plots
from ..core.errors import EdgeferError
from ..core.files import check_writable, write_bytes, write_json
from ..core.metrics import classification_report, format_report
from ..core.spec import InputSpec
from ..data import FaceDataset
from ..data.balance import format_balance, write_balance
from . import cluster
from .arrays import cap_per_class, data_digest, dataset_for, prepare_arrays, spec_for, split_warnings
from .backbones import build_model, keras_runner
from .balancers import BALANCERS
from .batches import epoch_batches, training_examples, validation_batches
from .checkpoints import RunCheckpoint, check_resume
from .config import ConfigError, TrainConfig


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    card: dict
    history: dict


def weights_fingerprint(model) -> str:
    """A short digest of every weight, to compare workers' models without their files."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()[:16]


def make_strategy(name: str):
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # GPUs when there are any; otherwise every logical CPU device (tests make two).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    # multiworker reads the cluster from the TF_CONFIG environment variable on every host
    return tf.distribute.MultiWorkerMirroredStrategy()


def compile_for_training(model, cfg: TrainConfig, steps_per_epoch: int, jit_compile: bool = False):
    """The recipe's optimiser (Adam, a cosine over the whole run), loss and metric
    (benchmarks/train_step.py times this very step)."""
    model.compile(
        optimizer=keras.optimizers.Adam(lr_schedule(cfg, steps_per_epoch)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )


def lr_schedule(cfg: TrainConfig, steps_per_epoch: int):
    return keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=max(1, cfg.epochs * steps_per_epoch))


def build_or_load(
    cfg: TrainConfig,
    spec: InputSpec,
    run_dir: Path,
    state: dict | None,
    strategy,
    steps_per_epoch: int,
):
    with strategy.scope():
        if state is not None:
            print(f"resuming {run_dir} after epoch {state['epoch']} of {cfg.epochs}")
            model = keras.models.load_model(run_dir / "checkpoints" / "last.keras")
            if model.outputs[0].shape[-1] != len(spec.labels):
                raise ConfigError(
                    f"{run_dir} was trained on {model.outputs[0].shape[-1]} classes and the data now has "
                    f"{len(spec.labels)} ({', '.join(spec.labels)}); resume on the data it was trained on, or choose another --out"
                )
            if state.pop("planned_epochs") != cfg.epochs:
                # a run extended (or cut) with --epochs: the cosine runs over the new length from here
                print(f"{run_dir}: the learning rate now follows a cosine over {cfg.epochs} epochs")
                model.optimizer.learning_rate = lr_schedule(cfg, steps_per_epoch)
            return model, state
        model = build_model(
            cfg.arch,
            len(spec.labels),
            spec.size,
            spec.channels,
            cfg.alpha,
            cfg.weights,
            cfg.dropout,
            cfg.bn_momentum,
            cfg.freeze,
        )
        compile_for_training(model, cfg, steps_per_epoch)
    return model, {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "wait": 0, "history": {}}


def train(cfg: TrainConfig, dataset: FaceDataset | None = None) -> RunResult:
    """Train and evaluate one run as `cfg` says; returns its metrics and card. With several
    workers (multiworker) the chief writes `cfg.out`, every other worker a temporary folder."""
    cfg.check()
    who = cluster.role() if cfg.strategy == "multiworker" else None
    created = not Path(cfg.out).exists()
    if who is None or who.chief:
        run_dir = check_writable(cfg.out)
    else:
        run_dir, created = cluster.worker_folder(Path(cfg.out)), True
    with run_lock(run_dir):
        return _train_locked(cfg, dataset, run_dir, who, created)


class RunBusy(EdgeferError, BlockingIOError):
    pass


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """One run at a time in a run folder (an exclusive lock on RUN/.lock, let go when the process
    ends however it ends): two runs into one folder would leave a card, model and checkpoint that
    disagree."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(run_dir / ".lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(
                f"{run_dir}: another edgefer-train is writing this run; wait for it, or pass another --out"
            ) from None
        yield


def _train_locked(cfg: TrainConfig, dataset, run_dir: Path, who, created: bool) -> RunResult:
    try:
        with contextlib.ExitStack() as cleanup:  # a watchdog, if any, ends with the run however it ends
            result = _train(cfg, dataset, run_dir, who, created, cleanup)
        return result if who is None or who.chief else replace(result, run_dir=Path(cfg.out))
    except BaseException:
        # a run that failed before its first checkpoint leaves nothing behind: no resumable state,
        # so no half-made folder to trip over
        if created and not (run_dir / "checkpoints" / "state.json").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if who is not None and not who.chief:
            shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class Prepared:
    """A run's data, ready to train on: the dataset, the spec its card will carry, the arrays of each
    split through that spec, and what was said of them on the way."""

    ds: FaceDataset
    spec: InputSpec
    digest: str
    saved_state: dict | None
    arrays: dict
    skipped: list
    balance_info: dict | None


def _train(
    cfg: TrainConfig,
    dataset: FaceDataset | None,
    run_dir: Path,
    who: cluster.Role | None,
    created: bool,
    cleanup: contextlib.ExitStack,
) -> RunResult:
    data = read_data(cfg, dataset, run_dir)
    state = fit_model(cfg, data, run_dir, who, created, cleanup)
    return write_results(cfg, data, run_dir, state, who)


def read_data(cfg: TrainConfig, dataset: FaceDataset | None, run_dir: Path) -> Prepared:
    """The dataset read, checked against a run being resumed, capped, balanced (the GAN's samples
    added where asked), and every split's images through the spec."""
    ds = dataset or dataset_for(cfg)
    spec = spec_for(cfg, ds)
    digest = data_digest(ds)
    saved_state = check_resume(cfg, run_dir, spec.framing, digest)
    keras.utils.set_random_seed(cfg.seed)
    ds = cap_per_class(ds, cfg.max_per_class, cfg.seed)
    for note in ds.notes:
        print(f"{ds.name}: {note}")
    print(format_balance(write_balance(ds, run_dir)))

    arrays, skipped = prepare_arrays(ds, spec)
    if skipped:
        write_bytes(run_dir / "skipped.txt", "".join(f"{reason}\n" for _, reason in skipped).encode())
        print(f"skipped {len(skipped)} unreadable image(s), listed in {run_dir / 'skipped.txt'}")
    if len(np.unique(arrays["train"].y)) < 2:
        raise ConfigError(f"{ds.source}: the train split needs at least two classes")
    for warning in split_warnings(arrays, ds.labels):
        print(f"warning: {ds.source}: {warning}", file=sys.stderr)
    balance_info, balancer = None, BALANCERS[cfg.balance]
    if balancer.add_images is not None:
        arrays["train"], balance_info = balancer.add_images(ds, cfg, spec, run_dir, arrays["train"])
    return Prepared(ds, spec, digest, saved_state, arrays, skipped, balance_info)


def fit_model(cfg: TrainConfig, data: Prepared, run_dir: Path, who, created: bool, cleanup: contextlib.ExitStack):
    """The model built (or loaded to resume) and trained epoch by epoch, a checkpoint after each;
    returns the loop's state."""
    spec, arrays, n = data.spec, data.arrays, len(data.ds.labels)
    # several workers: from here each waits on the others, so a watchdog ends a wait that would not
    watchdog = None
    if who is not None:
        watchdog = cluster.Watchdog(cfg.worker_timeout, who, run_dir if created else None, temporary=not who.chief)
        cleanup.callback(watchdog.stop)
    strategy = make_strategy(cfg.strategy)
    if who is not None:
        print(
            f"{who}: {'writes ' + str(run_dir) if who.chief else 'writes a temporary folder; the chief writes ' + cfg.out}"
        )
    examples, count = training_examples(arrays, cfg, n)
    val_ds = validation_batches(arrays, cfg, n)
    steps = int(np.ceil(count / cfg.batch_size))
    model, state = build_or_load(cfg, spec, run_dir, data.saved_state, strategy, steps)
    write_json(
        run_dir / "config.json",
        {
            "fingerprint": cfg.fingerprint(spec.framing),
            "config": cfg.to_dict(),
            **cfg.file_digests(),
            "data_sha256": data.digest,
        },
    )

    verbose = cfg.verbose if cfg.verbose is not None else (1 if sys.stdout.isatty() else 2)
    callbacks = [RunCheckpoint(run_dir, state, cfg.patience)]
    if watchdog is not None:
        callbacks.insert(0, cluster.Heartbeat(watchdog))
    balancer = BALANCERS[cfg.balance]
    weights = balancer.class_weight(arrays["train"].y, n) if balancer.class_weight else None
    # one fit per epoch, each on that epoch's own seeded pipeline: resumed epochs match uninterrupted ones
    while state["epoch"] < cfg.epochs and state["wait"] < cfg.patience:
        batches = epoch_batches(examples, count, cfg, state["epoch"])  # seeds TensorFlow by (seed, epoch)
        # the training step traced again under that seed: its dropout masks are the epoch's own, not
        # the continuation of a random state that a resumed process would start afresh
        model.train_function = None
        with cluster.peers_answer(who):
            model.fit(
                batches,
                validation_data=val_ds,
                epochs=state["epoch"] + 1,
                initial_epoch=state["epoch"],
                class_weight=weights,
                callbacks=callbacks,
                verbose=verbose,
            )
    if watchdog is not None:
        watchdog.stop()  # the rest is this worker's own: no more waiting on the others
    return state


def write_results(cfg: TrainConfig, data: Prepared, run_dir: Path, state: dict, who) -> RunResult:
    """The delivered model evaluated on the validation and test splits through its spec, and the
    run's metrics, card and plots written."""
    ds, spec, arrays = data.ds, data.spec, data.arrays
    delivered = keras.models.load_model(run_dir / "model.keras", compile=False)
    reports = {}
    for split in ("val", "test"):
        probs = spec.predict(keras_runner(delivered, spec), arrays[split].x)
        reports[split] = classification_report(arrays[split].y, probs.argmax(1), ds.labels)
    metrics = dict(
        reports["test"],
        split="test",
        val=reports["val"],
        dataset=ds.name,
        best_epoch=state["best_epoch"],
        epochs_run=state["epoch"],
        train_seconds=round(state.get("train_seconds", 0.0), 1),
        skipped_images=len(data.skipped),
        flip_average=spec.flip_average,
        balance=data.balance_info or {"method": cfg.balance},
    )
    write_json(run_dir / "metrics.json", metrics)
    card = card_mod.make_card(
        spec,
        arch=cfg.arch,
        alpha=cfg.alpha,
        # a local file is named by its file name (the card travels; the path is this machine's)
        weights=cfg.weights
        if cfg.weights in ("imagenet", "none")
        else f"file {Path(cfg.weights).name}"
        if cfg.weights
        else "none",
        dataset=ds.name,
        splits={s: len(a.y) for s, a in arrays.items()},
        metrics={"test": {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}},
    )
    write_json(run_dir / "card.json", card)
    plots.confusion_matrix_png(
        metrics["confusion_matrix"],
        ds.labels,
        run_dir / "confusion_matrix.png",
        title=f"{ds.name} test: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}",
    )
    plots.curves_png(state["history"], run_dir / "curves.png")
    print(format_report(metrics))
    if who is not None:  # the same weights on every worker, or the strategy failed to keep them in step
        print(f"{who}: weights fingerprint {weights_fingerprint(delivered)}, after {state['epoch']} epochs")
    if who is None or who.chief:
        print(f"wrote {run_dir}/ (model.keras, card.json, metrics.json, confusion_matrix.png, curves.png)")
    return RunResult(run_dir, metrics, card, state["history"])

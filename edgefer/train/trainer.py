"""dataset -> fine-tuned model -> evaluation, writing everything into one run directory.

RUN/
  config.json        the resolved configuration and its fingerprint
  balance.json/.png  class counts per split
  model.keras        best epoch by validation accuracy (with average_from: the averaged weights);
                     the classifier alone (with blendshapes, their head is left behind)
  card.json          the input spec resolved when the run started, with provenance (edgefer.core.card)
  metrics.json       test-split report (+ validation under "val")
  confusion_matrix.png, curves.png
  checkpoints/       last epoch with optimizer state + state.json, for --resume; with average_from,
                     best_epoch.keras and each averaged epoch's mean weights (mean_epoch_K.npz)
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..core import card as card_mod
from ..core import plots
from ..core.errors import NotWritable
from ..core.files import atomic_path, check_writable, write_bytes, write_json
from ..core.metrics import classification_report, format_report
from ..core.spec import FaceCrop, InputSpec
from ..data import FaceDataset, load_dataset, load_pixels, mix_teacher
from ..data.blendshapes import attach_blendshapes
from ..data.balance import format_balance, oversample_index, write_balance
from .._tf import keras, tf
from .backbones import build_model, freeze_features, freeze_through, keras_runner
from .config import FIELDS, ConfigError, TrainConfig


@dataclass
class Arrays:
    x: np.ndarray          # uint8 (N, S, S, C)
    y: np.ndarray          # int (N,)
    soft: np.ndarray | None
    aux: np.ndarray | None = None   # (N, 53) blendshape targets and whether the landmarker found the face
    weight: np.ndarray | None = None  # (N,) training weight per face (votes_clarity)


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    card: dict
    history: dict


def dataset_for(cfg: TrainConfig) -> FaceDataset:
    """The dataset a configuration names, with its split options (used by train, evaluate, export)."""
    ds = load_dataset(cfg.data, cfg.dataset, images=cfg.images, mapping=cfg.mapping,
                      val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=cfg.seed,
                      compound_votes=cfg.compound_votes, compound_min=cfg.compound_min)
    if cfg.votes:
        from ..data.fer2013 import mix_votes
        mix_votes(ds, cfg.votes, cfg.votes_weight, neutral=cfg.votes_neutral, clarity=cfg.votes_clarity)
    if cfg.teacher:
        mix_teacher(ds, cfg.teacher, cfg.teacher_weight)
    return ds


def spec_for(cfg: TrainConfig, ds: FaceDataset) -> InputSpec:
    """The input spec of a run, resolved once from its configuration and dataset."""
    return InputSpec(labels=tuple(ds.labels), taxonomy=ds.taxonomy, size=cfg.size, color=cfg.color,
                     equalize=cfg.equalize, crop=FaceCrop(cfg.margin, cfg.offset_y, cfg.align),
                     framing=ds.framing if cfg.faces == "auto" else cfg.faces, flip_average=cfg.flip_average)


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
        arrays[name] = Arrays(x, split.labels[kept], None if split.soft is None else split.soft[kept],
                              None if split.aux is None else split.aux[kept],
                              None if split.weight is None else split.weight[kept])
    return arrays, skipped


def soft_targets(cfg: TrainConfig) -> bool:
    """Whether training fits soft targets: FER+ distributions, votes mixed in, or a teacher's."""
    return cfg.soft_labels or bool(cfg.votes) or bool(cfg.teacher)


def _targets(a: Arrays, n: int, soft: bool) -> np.ndarray:
    """Soft targets (FER+ votes, a teacher's probabilities) where the config asks for them, else one-hot labels."""
    if soft and a.soft is not None:
        return a.soft.astype(np.float32)
    return np.eye(n, dtype=np.float32)[a.y]


def augmenter(cfg: TrainConfig, seed: int):
    layers = []
    if cfg.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if cfg.rotation:
        layers.append(keras.layers.RandomRotation(cfg.rotation / 360.0, fill_mode="reflect", seed=seed))
    if cfg.shift:
        layers.append(keras.layers.RandomTranslation(cfg.shift, cfg.shift, fill_mode="reflect", seed=seed))
    if cfg.zoom:
        layers.append(keras.layers.RandomZoom(cfg.zoom, fill_mode="reflect", seed=seed))
    return keras.Sequential(layers, name="augment") if layers else None


def camera_conditions(x):
    """What a real camera does to a face that FER-2013's web photos rarely show, on a float batch
    of 0..255 pixels: brightness / contrast / gamma, defocus blur, sensor noise and an occluding
    patch (a hand at the chin, a microphone). Gray stays gray: one noise field for all channels."""
    b = tf.shape(x)[0]
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    rnd = lambda shape, lo, hi: tf.random.uniform(shape, lo, hi)  # noqa: E731
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * rnd([b, 1, 1, 1], 0.6, 1.4) + mean + rnd([b, 1, 1, 1], -40.0, 40.0)
    x = 255.0 * (tf.clip_by_value(x, 0.0, 255.0) / 255.0) ** tf.exp(rnd([b, 1, 1, 1], -0.5, 0.5))
    # defocus: a 5x5 binomial blur mixed in with a random strength, on 40% of the faces
    amount = tf.cast(rnd([b, 1, 1, 1], 0, 1) < 0.4, tf.float32) * rnd([b, 1, 1, 1], 0.3, 1.0)
    x = x + amount * (binomial_blur(x) - x)
    x = x + tf.random.normal([b, h, w, 1]) * rnd([b, 1, 1, 1], 0.0, 8.0)
    # occlusion on 25% of the faces: a box of 15..35% of the side, anywhere, one flat gray
    yy = tf.cast(tf.range(h), tf.float32)[None, :, None, None] / tf.cast(h, tf.float32)
    xx = tf.cast(tf.range(w), tf.float32)[None, None, :, None] / tf.cast(w, tf.float32)
    cy, cx = rnd([b, 1, 1, 1], 0, 1), rnd([b, 1, 1, 1], 0, 1)
    half_h, half_w = rnd([b, 1, 1, 1], 0.075, 0.175), rnd([b, 1, 1, 1], 0.075, 0.175)
    box = (tf.abs(yy - cy) < half_h) & (tf.abs(xx - cx) < half_w) & (rnd([b, 1, 1, 1], 0, 1) < 0.25)
    x = tf.where(box, rnd([b, 1, 1, 1], 0.0, 255.0), x)
    return tf.clip_by_value(x, 0.0, 255.0)


def mix_pairs(x, t, alpha: float):
    """mixup (Zhang et al. 2018): each face of a batch blended with the next one, pixels and targets
    by the same weight drawn from Beta(alpha, alpha), so that between two expressions the model
    learns a blend rather than a sharp boundary fitted to noisy single labels."""
    b = tf.shape(x)[0]
    g, h = tf.random.gamma([b], alpha), tf.random.gamma([b], alpha)
    w = g / (g + h)   # Beta(alpha, alpha) from two Gammas
    other = tf.roll(tf.range(b), 1, axis=0)
    wx, wt = tf.reshape(w, [-1, 1, 1, 1]), tf.reshape(w, [-1, 1])
    return wx * x + (1 - wx) * tf.gather(x, other), wt * t + (1 - wt) * tf.gather(t, other)


def binomial_blur(x):
    """The 5x5 binomial blur ([1 4 6 4 1] / 16 down the rows, then along them), edges mirrored.
    Shifted slices, not a convolution: TensorFlow's CPU depthwise convolution took 120 ms a batch
    of 96 px faces in the input pipeline, which shares two cores with the training step, and its
    zero padding darkened the borders of every blurred face."""
    taps = (1.0, 4.0, 6.0, 4.0, 1.0)
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    padded = tf.pad(x, [[0, 0], [2, 2], [0, 0], [0, 0]], "SYMMETRIC")
    x = tf.add_n([t / 16.0 * padded[:, i:i + h] for i, t in enumerate(taps)])
    padded = tf.pad(x, [[0, 0], [0, 0], [2, 2], [0, 0]], "SYMMETRIC")
    return tf.add_n([t / 16.0 * padded[:, :, i:i + w] for i, t in enumerate(taps)])


def training_examples(arrays: dict[str, Arrays], cfg: TrainConfig, n: int):
    """(the training split as (pixels, target) examples, oversampled as the config says; their
    count). Built once per run: the arrays are copied into the pipeline here, not every epoch."""
    train = arrays["train"]
    index = (oversample_index(train.y, cfg.seed, cfg.per_class) if cfg.balance == "oversample"
             else np.arange(len(train.y)))
    targets = _targets(train, n, soft_targets(cfg))
    if train.aux is not None:   # two heads, two targets: the expression and the face's blendshapes
        targets = (targets[index], train.aux[index])
    else:
        targets = targets[index]
    # a third element, when there is one, is each face's weight in the loss (Keras' sample weights)
    parts = (train.x[index], targets) if train.weight is None else (train.x[index], targets, train.weight[index])
    return tf.data.Dataset.from_tensor_slices(parts), len(index)


def epoch_batches(examples, count: int, cfg: TrainConfig, epoch: int):
    """The training batches of `epoch`. Their shuffle and augmentation are seeded by (seed, epoch)
    alone, not by how often a pipeline was iterated: a run resumed at epoch k sees the batches the
    uninterrupted run saw at epoch k, where a fresh iterator would replay epoch 1's order and
    augmentations (which the model had fitted already)."""
    epoch_seed = cfg.seed * 100_003 + epoch
    tf.random.set_seed(epoch_seed)   # the op seeds of the augmentation maps traced below
    aug = augmenter(cfg, epoch_seed)
    batches = examples.shuffle(min(count, 20000), seed=epoch_seed, reshuffle_each_iteration=False).batch(cfg.batch_size)
    # gray3 faces are one gray channel three times: augment the one, then copy it back to three
    # (a third of the work in a pipeline that shares two cores with the model's training step)
    gray3 = cfg.color == "gray3" and (aug is not None or cfg.camera)
    if gray3:
        batches = batches.map(lambda x, *rest: (x[..., :1], *rest))
    batches = batches.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if epoch < cfg.warmup_epochs:   # progressive resizing: smaller faces first, augmented at that size
        side = cfg.warmup_size
        batches = batches.map(lambda x, *rest: (tf.image.resize(x, [side, side], method="area"), *rest),
                              num_parallel_calls=tf.data.AUTOTUNE)
    # the random maps run one batch at a time: parallel calls would draw from the random state in
    # an order that differs run to run (each batch's ops are multi-threaded all the same)
    if aug is not None:
        batches = batches.map(lambda x, *rest: (tf.clip_by_value(aug(x, training=True), 0, 255), *rest))
    if cfg.camera:
        batches = batches.map(lambda x, *rest: (camera_conditions(x), *rest))
    if cfg.mixup:
        batches = batches.map(lambda x, t: mix_pairs(x, t, cfg.mixup))
    if gray3:
        batches = batches.map(lambda x, *rest: (tf.tile(x, [1, 1, 1, 3]), *rest))
    return _sharded(batches)


def validation_batches(arrays: dict[str, Arrays], cfg: TrainConfig, n: int):
    val, train_aux = arrays["val"], arrays["train"].aux
    targets = _targets(val, n, False)
    if train_aux is not None:   # validation is on the expression: its blendshape targets are masked out
        targets = (targets, np.zeros((len(val.y), train_aux.shape[1]), np.float32))
    return _sharded(tf.data.Dataset.from_tensor_slices((val.x, targets))
                    .batch(cfg.batch_size * 2).map(_to_float))


def make_datasets(arrays: dict[str, Arrays], cfg: TrainConfig, n: int, epoch: int = 0):
    """(training batches of `epoch`, validation batches, images per epoch), for a single pass (QAT),
    at the size the model ships at: a run's warm-up epochs on smaller faces are behind it."""
    cfg = replace(cfg, warmup_size=0, warmup_epochs=0)
    examples, count = training_examples(arrays, cfg, n)
    return epoch_batches(examples, count, cfg, epoch), validation_batches(arrays, cfg, n), count


def _to_float(x, *rest):
    return (tf.cast(x, tf.float32), *rest)


def _sharded(ds):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def make_strategy(name: str):
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # GPUs when there are any; otherwise every logical CPU device (tests make two).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    # multiworker reads the cluster from the TF_CONFIG environment variable on every host
    return tf.distribute.MultiWorkerMirroredStrategy()


def class_weights(y: np.ndarray, n: int) -> dict[int, float]:
    counts = np.bincount(y, minlength=n).astype(float)
    return {i: float(len(y) / (n * c)) if c else 0.0 for i, c in enumerate(counts)}


class RunCheckpoint(keras.callbacks.Callback):
    """Every epoch: the best model so far, the last model with its optimizer, and the loop's own
    state (history, best, early-stopping wait), each written atomically, so a kill at any moment
    leaves a run that `--resume` continues exactly where it stopped."""

    def __init__(self, run_dir: Path, state: dict, patience: int, best_path: Path, deliver):
        super().__init__()
        self.run_dir, self.state, self.patience, self.best_path = run_dir, state, patience, best_path
        self.deliver = deliver   # the model being trained -> the model as it ships (`at_size`)

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
        except OSError as exc:   # disk full: the previous files are whole (atomic writes)
            raise NotWritable(f"{self.run_dir}: epoch {epoch + 1} could not be saved ({exc.strerror or exc}); "
                              "free space there, then continue with --resume from the last saved epoch") from None
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
            # sums kept as variables and added in one graph call: copying 131 variables out to
            # numpy every step took 40 ms, a sixth of a 96 px training step on two cores
            self.sums = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.model.trainable_weights]
            self.accumulate = tf.function(lambda: [s.assign_add(v) for s, v in zip(self.sums, self.model.trainable_weights)])
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
    for x, _ in batches.take(bn_batches):   # momentum 0.9: after 100 batches the old statistics weigh 0.9**100
        model(x, training=True)             # (frozen layers keep theirs: they run in inference mode)


def check_resume(cfg: TrainConfig, run_dir: Path, framing: str) -> dict | None:
    """The saved loop state when resuming; refuses a run made with another configuration, and
    refuses to overwrite an existing run without --resume."""
    state_file = run_dir / "checkpoints" / "state.json"
    if not state_file.exists():
        if cfg.resume:
            print(f"{run_dir}: nothing to resume, starting a new run")
        return None
    if not cfg.resume:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    saved = json.loads((run_dir / "config.json").read_text())
    if saved.get("fingerprint") != cfg.fingerprint(framing):
        # an option added since the run was made reads as its default, which is what the run did
        changed = sorted(k for k in cfg.trained_keys(framing)
                         if saved["config"].get(k, FIELDS[k].default) != getattr(cfg, k))
        changed += [f"the contents of {getattr(cfg, key.removesuffix('_sha256'))}"
                    for key, digest in cfg.file_digests().items() if saved.get(key) != digest]
        if changed:   # else the same training under a fingerprint of another edgefer version
            raise ConfigError(f"{run_dir} was trained with another configuration (differs in {changed}); "
                              "resume with the original settings or choose another --out")
    state = json.loads(state_file.read_text())
    state["planned_epochs"] = saved["config"].get("epochs", cfg.epochs)
    return state


def compile_for_training(model, cfg: TrainConfig, steps_per_epoch: int, jit_compile: bool = False):
    """The recipe's optimiser (Adam, a cosine over the whole run), loss and metric
    (benchmarks/train_step.py times this very step); with a blendshape head, its loss beside."""
    expression = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    two = len(model.outputs) == 2
    model.compile(optimizer=keras.optimizers.Adam(lr_schedule(cfg, steps_per_epoch)),
                  loss=[expression, masked_bce] if two else expression,
                  loss_weights=[1.0, cfg.blendshape_weight] if two else None,
                  metrics=[["accuracy"], []] if two else ["accuracy"], jit_compile=jit_compile)


def with_blendshape_head(model, count: int):
    """The classifier with a second output on its pooled features: `count` blendshape scores."""
    scores = keras.layers.Dense(count, activation="sigmoid", name="blendshapes")(model.get_layer("pool").output)
    return keras.Model(model.input, [model.output, scores], name=model.name)


def classifier(model):
    """The expression classifier of a model with or without a blendshape head (what ships)."""
    return model if len(model.outputs) == 1 else keras.Model(model.input, model.outputs[0], name=model.name)


def at_size(model, cfg: TrainConfig, spec: InputSpec):
    """The classifier with its input fixed at the spec's side, as export and the device take it: a run
    that trains its first epochs on smaller faces (warmup_size) trains a model of any input side."""
    model = classifier(model)
    if model.input_shape[1] == spec.size:
        return model
    fixed = build_model(cfg.arch, len(spec.labels), spec.size, spec.channels, cfg.alpha, None,
                        cfg.dropout, cfg.bn_momentum, cfg.freeze)
    fixed.set_weights(model.get_weights())   # the same layers in the same order: only the input differs
    return fixed


def masked_bce(y_true, y_pred):
    """Mean binary cross-entropy over the blendshape scores; 0 for a face without them (last
    column of y_true 0: the landmarker missed it, or a validation face)."""
    per_score = keras.losses.binary_crossentropy(y_true[:, :-1, None], y_pred[..., None])
    return tf.reduce_mean(per_score, axis=-1) * y_true[:, -1]


def lr_schedule(cfg: TrainConfig, steps_per_epoch: int):
    return keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=max(1, cfg.epochs * steps_per_epoch))


def build_or_load(cfg: TrainConfig, spec: InputSpec, run_dir: Path, state: dict | None, strategy, steps_per_epoch: int,
                  blendshapes: int = 0):
    with strategy.scope():
        if state is not None:
            print(f"resuming {run_dir} after epoch {state['epoch']} of {cfg.epochs}")
            model = keras.models.load_model(run_dir / "checkpoints" / "last.keras",
                                            custom_objects={"masked_bce": masked_bce})
            if state.pop("planned_epochs") != cfg.epochs:
                # a run extended (or cut) with --epochs: the cosine runs over the new length from here
                print(f"{run_dir}: the learning rate now follows a cosine over {cfg.epochs} epochs")
                model.optimizer.learning_rate = lr_schedule(cfg, steps_per_epoch)
            return model, state
        # with warm-up epochs on smaller faces, one model takes both sides (its weights do not depend on it)
        model = build_model(cfg.arch, len(spec.labels), None if cfg.warmup_size else spec.size, spec.channels,
                            cfg.alpha, cfg.weights, cfg.dropout, cfg.bn_momentum, cfg.freeze)
        if blendshapes:
            model = with_blendshape_head(model, blendshapes)
        if cfg.probe_epochs:
            freeze_features(model)
        compile_for_training(model, cfg, steps_per_epoch)
    return model, {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "wait": 0, "history": {}}


def fine_tune(model, cfg: TrainConfig, strategy, steps_per_epoch: int) -> None:
    """After the probe epochs every layer learns but those `freeze` keeps, with a fresh Adam (the
    probe's knew the head's weights alone) that takes the cosine up where the probe left it."""
    print(f"epoch {cfg.probe_epochs + 1}: the head is fitted; every layer{' after ' + cfg.freeze if cfg.freeze else ''} learns from here")
    with strategy.scope():
        for layer in model.layers:
            layer.trainable = True
        if cfg.freeze:
            freeze_through(model, cfg.freeze)
        compile_for_training(model, cfg, steps_per_epoch)
        model.optimizer.iterations.assign(cfg.probe_epochs * steps_per_epoch)


def train(cfg: TrainConfig, dataset: FaceDataset | None = None) -> RunResult:
    """Train and evaluate one run as `cfg` says; returns its metrics and card."""
    cfg.check()
    created = not Path(cfg.out).exists()
    run_dir = check_writable(cfg.out)
    try:
        return _train(cfg, dataset, run_dir)
    except BaseException:
        # a run that failed before its first checkpoint leaves nothing behind: no resumable state,
        # so no half-made folder to trip over
        if created and not (run_dir / "checkpoints" / "state.json").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train(cfg: TrainConfig, dataset: FaceDataset | None, run_dir: Path) -> RunResult:
    ds = dataset or dataset_for(cfg)
    spec = spec_for(cfg, ds)
    saved_state = check_resume(cfg, run_dir, spec.framing)
    keras.utils.set_random_seed(cfg.seed)
    ds = cap_per_class(ds, cfg.max_per_class, cfg.seed)
    if cfg.blendshapes:
        attach_blendshapes(ds, cfg.blendshapes)
    n = len(ds.labels)
    for note in ds.notes:
        print(f"{ds.name}: {note}")
    balance = write_balance(ds, run_dir)
    print(format_balance(balance))

    arrays, skipped = prepare_arrays(ds, spec)
    if skipped:
        write_bytes(run_dir / "skipped.txt", "".join(f"{reason}\n" for _, reason in skipped).encode())
        print(f"skipped {len(skipped)} unreadable image(s), listed in {run_dir / 'skipped.txt'}")
    if len(np.unique(arrays["train"].y)) < 2:
        raise ConfigError(f"{ds.source}: the train split needs at least two classes")
    balance_info = None
    if cfg.balance == "gan":
        from .gan_balance import gan_balance  # the GAN only loads when asked for
        arrays["train"], balance_info = gan_balance(ds, cfg, spec, run_dir, arrays["train"])

    strategy = make_strategy(cfg.strategy)
    examples, count = training_examples(arrays, cfg, n)
    val_ds = validation_batches(arrays, cfg, n)
    steps = int(np.ceil(count / cfg.batch_size))
    aux = arrays["train"].aux
    model, state = build_or_load(cfg, spec, run_dir, saved_state, strategy, steps,
                                 blendshapes=0 if aux is None else aux.shape[1] - 1)
    write_json(run_dir / "config.json", {"fingerprint": cfg.fingerprint(spec.framing), "config": cfg.to_dict(),
                                         **cfg.file_digests()})

    verbose = cfg.verbose if cfg.verbose is not None else (1 if sys.stdout.isatty() else 2)
    best_path = run_dir / "checkpoints" / "best_epoch.keras" if cfg.average_from else run_dir / "model.keras"
    callbacks = [RunCheckpoint(run_dir, state, cfg.patience, best_path, deliver=lambda m: at_size(m, cfg, spec))]
    if cfg.average_from:
        callbacks.insert(0, EpochMeanWeights(run_dir, cfg.average_from))
    weights = class_weights(arrays["train"].y, n) if cfg.balance == "class-weights" else None
    # one fit per epoch, each on that epoch's own seeded pipeline: resumed epochs match uninterrupted ones
    while state["epoch"] < cfg.epochs and state["wait"] < cfg.patience:
        if cfg.probe_epochs and state["epoch"] == cfg.probe_epochs:   # a resumed run's last.keras is the probe's too
            fine_tune(model, cfg, strategy, steps)
        model.fit(epoch_batches(examples, count, cfg, state["epoch"]), validation_data=val_ds, epochs=state["epoch"] + 1, initial_epoch=state["epoch"],
                  class_weight=weights, callbacks=callbacks, verbose=verbose)
    averaged = None
    if cfg.average_from:
        averaged = list(range(cfg.average_from, state["epoch"] + 1)) or None
        if averaged:
            print(f"model.keras: averaging the weights of epochs {averaged[0]}-{averaged[-1]}")
            model = keras.models.load_model(run_dir / "checkpoints" / "last.keras", compile=False,
                                            custom_objects={"masked_bce": masked_bce})
            average_epochs(model, run_dir / "checkpoints", averaged, epoch_batches(examples, count, cfg, state["epoch"]))
            model = at_size(model, cfg, spec)
        else:   # stopped early, before the first epoch to average
            model = keras.models.load_model(best_path, compile=False)
        with atomic_path(run_dir / "model.keras", suffix=".keras") as tmp:
            model.save(tmp)

    delivered = keras.models.load_model(run_dir / "model.keras", compile=False)
    reports = {}
    for split in ("val", "test"):
        probs = spec.predict(keras_runner(delivered, spec), arrays[split].x)
        reports[split] = classification_report(arrays[split].y, probs.argmax(1), ds.labels)
    metrics = dict(reports["test"], split="test", val=reports["val"], dataset=ds.name,
                   best_epoch=state["best_epoch"], epochs_run=state["epoch"], averaged_epochs=averaged,
                   train_seconds=round(state.get("train_seconds", 0.0), 1), skipped_images=len(skipped),
                   flip_average=spec.flip_average, balance=balance_info or {"method": cfg.balance})
    write_json(run_dir / "metrics.json", metrics)
    card = card_mod.make_card(
        spec, arch=cfg.arch, alpha=cfg.alpha, weights="imagenet" if cfg.weights not in ("none", None) else "none",
        dataset=ds.name, splits={s: len(a.y) for s, a in arrays.items()},
        metrics={"test": {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}})
    write_json(run_dir / "card.json", card)
    plots.confusion_matrix_png(metrics["confusion_matrix"], ds.labels, run_dir / "confusion_matrix.png",
                               title=f"{ds.name} test: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}")
    plots.curves_png(state["history"], run_dir / "curves.png")
    print(format_report(metrics))
    print(f"wrote {run_dir}/ (model.keras, card.json, metrics.json, confusion_matrix.png, curves.png)")
    return RunResult(run_dir, metrics, card, state["history"])

"""The tf.data pipeline: the training split as examples once per run, each epoch's batches
seeded by (seed, epoch), and the validation batches."""

from __future__ import annotations

import numpy as np

from .._tf import tf
from .arrays import Arrays, soft_targets, targets_of
from .augment import augmenter, camera_conditions
from .balancers import BALANCERS
from .config import TrainConfig


def training_examples(arrays: dict[str, Arrays], cfg: TrainConfig, n: int):
    """(the training split as (pixels, target) examples, oversampled as the config says; their
    count). Built once per run: the arrays are copied into the pipeline here, not every epoch."""
    train = arrays["train"]
    balancer = BALANCERS[cfg.balance]
    index = balancer.index(train.y, cfg) if balancer.index else np.arange(len(train.y))
    targets = targets_of(train, n, soft_targets(cfg))
    return tf.data.Dataset.from_tensor_slices((train.x[index], targets[index])), len(index)


def epoch_batches(examples, count: int, cfg: TrainConfig, epoch: int):
    """The training batches of `epoch`. Their shuffle and augmentation are seeded by (seed, epoch)
    alone, not by how often a pipeline was iterated: a run resumed at epoch k sees the batches the
    uninterrupted run saw at epoch k, where a fresh iterator would replay epoch 1's order and
    augmentations (which the model had fitted already)."""
    epoch_seed = cfg.seed * 100_003 + epoch
    tf.random.set_seed(epoch_seed)  # the op seeds of the augmentation maps traced below
    aug = augmenter(cfg, epoch_seed)
    batches = examples.shuffle(min(count, 20000), seed=epoch_seed, reshuffle_each_iteration=False).batch(cfg.batch_size)
    # gray3 faces are one gray channel three times: augment the one, then copy it back to three
    # (a third of the work in a pipeline that shares two cores with the model's training step)
    gray3 = cfg.color == "gray3" and (aug is not None or cfg.camera)
    if gray3:
        batches = batches.map(lambda x, *rest: (x[..., :1], *rest))
    batches = batches.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    # the random maps run one batch at a time: parallel calls would draw from the random state in
    # an order that differs run to run (each batch's ops are multi-threaded all the same)
    if aug is not None:
        batches = batches.map(lambda x, *rest: (tf.clip_by_value(aug(x, training=True), 0, 255), *rest))
    if cfg.camera:
        batches = batches.map(lambda x, *rest: (camera_conditions(x), *rest))
    if gray3:
        batches = batches.map(lambda x, *rest: (tf.tile(x, [1, 1, 1, 3]), *rest))
    return _sharded(batches)


def validation_batches(arrays: dict[str, Arrays], cfg: TrainConfig, n: int):
    val = arrays["val"]
    targets = targets_of(val, n, False)
    return _sharded(tf.data.Dataset.from_tensor_slices((val.x, targets)).batch(cfg.batch_size * 2).map(_to_float))


def make_datasets(arrays: dict[str, Arrays], cfg: TrainConfig, n: int, epoch: int = 0):
    """(training batches of `epoch`, validation batches, images per epoch), for a single pass (QAT)."""
    examples, count = training_examples(arrays, cfg, n)
    return epoch_batches(examples, count, cfg, epoch), validation_batches(arrays, cfg, n), count


def _to_float(x, *rest):
    return (tf.cast(x, tf.float32), *rest)


def _sharded(ds):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)

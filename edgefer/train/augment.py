"""Augmentation of training faces, on float batches of 0..255 pixels: geometry (flip, rotation,
shift, zoom), camera conditions."""

from __future__ import annotations

from .._tf import keras, tf
from .config import TrainConfig


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


def binomial_blur(x):
    """The 5x5 binomial blur ([1 4 6 4 1] / 16 down the rows, then along them), edges mirrored.
    Shifted slices, not a convolution: TensorFlow's CPU depthwise convolution took 120 ms a batch
    of 96 px faces in the input pipeline, which shares two cores with the training step, and its
    zero padding darkened the borders of every blurred face."""
    taps = (1.0, 4.0, 6.0, 4.0, 1.0)
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    padded = tf.pad(x, [[0, 0], [2, 2], [0, 0], [0, 0]], "SYMMETRIC")
    x = tf.add_n([t / 16.0 * padded[:, i : i + h] for i, t in enumerate(taps)])
    padded = tf.pad(x, [[0, 0], [0, 0], [2, 2], [0, 0]], "SYMMETRIC")
    return tf.add_n([t / 16.0 * padded[:, :, i : i + w] for i, t in enumerate(taps)])

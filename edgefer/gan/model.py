"""A class-conditional DCGAN: the generator takes noise + a class, the discriminator judges an image
for a class through a projection (Miyato & Koyama 2018): score = linear(features) + <embed(class), features>.
Images are in [-1, 1]; the side must be a multiple of 8 (48 for FER-2013).

The class condition has a strength in [0, 1], an input of both networks: the generator's class
embedding and the discriminator's projection term are scaled by it, so training can start
unconditional and phase the condition in (Shahbazi et al., ICLR 2022: with little data, conditioning
from the start collapses the classes). At 1 the networks are the plain conditional ones."""

from __future__ import annotations

from .._tf import keras, tf
from . import GanError


def generator(n_classes: int, size: int = 48, channels: int = 1, z_dim: int = 128, width: int = 64):
    if size % 8:
        raise GanError(f"GAN image size must be a multiple of 8, not {size}; pass --gan-size 48 (or 32, 64)")
    base = size // 8
    z = keras.Input((z_dim,), name="z")
    y = keras.Input((), dtype="int32", name="label")
    strength = keras.Input((1,), name="condition")
    e = keras.layers.Embedding(n_classes, z_dim)(y)
    e = keras.layers.Multiply()([e, strength])
    h = keras.layers.Concatenate()([z, e])
    h = keras.layers.Dense(base * base * width * 4, use_bias=False)(h)
    h = keras.layers.Reshape((base, base, width * 4))(h)
    h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    for filters in (width * 2, width):
        h = keras.layers.Conv2DTranspose(filters, 4, 2, padding="same", use_bias=False)(h)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    out = keras.layers.Conv2DTranspose(channels, 4, 2, padding="same", activation="tanh")(h)
    return keras.Model([z, y, strength], out, name="generator")


class Projection(keras.layers.Layer):
    """<embed(class), features>: the class-conditional part of the discriminator's score."""

    def __init__(self, n_classes: int, dim: int, **kw):
        super().__init__(**kw)
        self.embed = keras.layers.Embedding(n_classes, dim)

    def call(self, inputs):
        features, label = inputs
        return tf.reduce_sum(self.embed(label) * features, axis=1, keepdims=True)


def discriminator(n_classes: int, size: int = 48, channels: int = 1, width: int = 64, spectral: bool = True):
    """Spectral normalisation (Miyato et al. 2018) keeps the hinge-loss discriminator from overpowering
    the generator, which otherwise collapses to one texture within a few epochs on FER-2013.
    WGAN-GP gets its Lipschitz bound from the gradient penalty instead (spectral=False)."""

    def sn(layer):
        return keras.layers.SpectralNormalization(layer) if spectral else layer

    x = keras.Input((size, size, channels), name="image")
    y = keras.Input((), dtype="int32", name="label")
    strength = keras.Input((1,), name="condition")
    h = x
    for filters in (width, width * 2, width * 4):  # no BatchNorm: WGAN-GP penalises per-sample gradients
        h = sn(keras.layers.Conv2D(filters, 4, 2, padding="same"))(h)
        h = keras.layers.LeakyReLU(0.1)(h)
    features = keras.layers.GlobalAveragePooling2D()(h)
    projection = keras.layers.Multiply()([Projection(n_classes, width * 4)([features, y]), strength])
    score = keras.layers.Add()([sn(keras.layers.Dense(1))(features), projection])
    return keras.Model([x, y, strength], score, name="discriminator")


def diff_augment(x):
    """DiffAugment (Zhao et al., NeurIPS 2020), policy colour + translation + cutout, for images in
    [-1, 1]: the same kind of random, differentiable transforms on real and fake images before the
    discriminator, so that it cannot memorise a small training set, while the generator still
    learns through the transforms."""
    batch, size = tf.shape(x)[0], tf.shape(x)[1]
    # colour: brightness and contrast (saturation means nothing on gray faces)
    x = x + (tf.random.uniform((batch, 1, 1, 1)) - 0.5)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * tf.random.uniform((batch, 1, 1, 1), 0.5, 1.5) + mean
    # translation by up to 1/8 of the side, zero-padded
    shift = size // 8

    def translate(x, axis):
        index = tf.range(size)[None, :] + tf.random.uniform((batch, 1), -shift, shift + 1, dtype=tf.int32)
        valid = tf.cast((index >= 0) & (index < size), x.dtype)
        moved = tf.gather(x, tf.clip_by_value(index, 0, size - 1), axis=axis, batch_dims=1)
        return moved * tf.reshape(valid, [batch, size, 1, 1] if axis == 1 else [batch, 1, size, 1])

    x = translate(translate(x, 1), 2)
    # cutout: a square of half the side, anywhere, set to zero
    centre_y = tf.random.uniform((batch, 1, 1), 0, size, dtype=tf.int32)
    centre_x = tf.random.uniform((batch, 1, 1), 0, size, dtype=tf.int32)
    inside = (tf.abs(tf.range(size)[None, :, None] - centre_y) < size // 4) & (
        tf.abs(tf.range(size)[None, None, :] - centre_x) < size // 4
    )
    return x * tf.cast(~inside, x.dtype)[..., None]

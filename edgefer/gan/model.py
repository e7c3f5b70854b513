"""A class-conditional DCGAN: the generator takes noise + a class, the discriminator judges an image
for a class through a projection (Miyato & Koyama 2018): score = linear(features) + <embed(class), features>.
Images are in [-1, 1]; the side must be a multiple of 8 (48 for FER-2013)."""
from __future__ import annotations

from .._tf import keras, tf
from . import GanError


def generator(n_classes: int, size: int = 48, channels: int = 1, z_dim: int = 128, width: int = 64):
    if size % 8:
        raise GanError(f"GAN image size must be a multiple of 8, not {size}; pass --gan-size 48 (or 32, 64)")
    base = size // 8
    z = keras.Input((z_dim,), name="z")
    y = keras.Input((), dtype="int32", name="label")
    e = keras.layers.Embedding(n_classes, z_dim)(y)
    h = keras.layers.Concatenate()([z, e])
    h = keras.layers.Dense(base * base * width * 4, use_bias=False)(h)
    h = keras.layers.Reshape((base, base, width * 4))(h)
    h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    for filters in (width * 2, width):
        h = keras.layers.Conv2DTranspose(filters, 4, 2, padding="same", use_bias=False)(h)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
    out = keras.layers.Conv2DTranspose(channels, 4, 2, padding="same", activation="tanh")(h)
    return keras.Model([z, y], out, name="generator")


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
    h = x
    for filters in (width, width * 2, width * 4):  # no BatchNorm: WGAN-GP penalises per-sample gradients
        h = sn(keras.layers.Conv2D(filters, 4, 2, padding="same"))(h)
        h = keras.layers.LeakyReLU(0.1)(h)
    features = keras.layers.GlobalAveragePooling2D()(h)
    score = keras.layers.Add()([sn(keras.layers.Dense(1))(features), Projection(n_classes, width * 4)([features, y])])
    return keras.Model([x, y], score, name="discriminator")

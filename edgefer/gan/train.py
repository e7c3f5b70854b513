"""Train the conditional GAN on a training split (never validation or test), resumably.

GAN_DIR/
  meta.json              what it was trained on and how: labels, taxonomy, size, channels, loss,
                         DiffAugment, classifier guidance, condition warm-up (checked on reuse)
  checkpoints/           generator, discriminator, optimizers and epoch (tf.train.CheckpointManager)
  samples_epochNNN.png   one row per class, fixed noise, every `sample_every` epochs
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .._tf import keras, tf
from ..core.files import atomic_path, write_json
from . import GanError
from .model import diff_augment, discriminator, generator


@dataclass
class GanMeta:
    dataset: str
    labels: list
    taxonomy: str
    size: int
    channels: int
    loss: str = "hinge"
    z_dim: int = 128
    width: int = 64
    # how it is trained (defaults: as GANs made before these options were)
    augment: bool = False  # DiffAugment on real and fake images before the discriminator
    guide: float = 0.0  # weight of a frozen real-data classifier's cross-entropy on G(z, y)
    condition_warmup: int = 0  # epochs over which the class condition is phased in from 0 to 1

    def check_matches(self, other: GanMeta, where) -> None:
        for key in ("labels", "taxonomy", "size", "channels", "augment", "guide", "condition_warmup"):
            if getattr(self, key) != getattr(other, key):
                raise GanError(
                    f"{where}: generator was trained for {key}={getattr(other, key)!r}, this dataset needs "
                    f"{getattr(self, key)!r}; train a new GAN (another --gan-dir) for this dataset"
                )


def load_meta(gan_dir) -> GanMeta:
    path = Path(gan_dir) / "meta.json"
    if not path.exists():
        raise GanError(f"{path}: no GAN here (meta.json missing); train one with --balance gan")
    return GanMeta(**json.loads(path.read_text()))


def to_unit(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) / 127.5 - 1.0


def to_pixels(images) -> np.ndarray:
    return np.clip((np.asarray(images) + 1.0) * 127.5, 0, 255).round().astype(np.uint8)


class Gan:
    def __init__(self, meta: GanMeta, gan_dir):
        self.meta, self.dir = meta, Path(gan_dir)
        n = len(meta.labels)
        self.G = generator(n, meta.size, meta.channels, meta.z_dim, meta.width)
        self.D = discriminator(n, meta.size, meta.channels, meta.width, spectral=meta.loss == "hinge")
        # SNGAN's settings for hinge (TTUR: the discriminator learns faster); WGAN-GP's own otherwise
        if meta.loss == "hinge":
            self.opt_g, self.opt_d = keras.optimizers.Adam(1e-4, 0.0, 0.9), keras.optimizers.Adam(4e-4, 0.0, 0.9)
        else:
            self.opt_g, self.opt_d = keras.optimizers.Adam(1e-4, 0.0, 0.9), keras.optimizers.Adam(1e-4, 0.0, 0.9)
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.ckpt = tf.train.Checkpoint(G=self.G, D=self.D, opt_g=self.opt_g, opt_d=self.opt_d, epoch=self.epoch)
        self.manager = tf.train.CheckpointManager(self.ckpt, self.dir / "checkpoints", max_to_keep=2)

    @classmethod
    def open(cls, gan_dir, meta: GanMeta) -> Gan:
        """A new GAN in `gan_dir`, or the one there (resumed), refusing one made for other data."""
        gan_dir = Path(gan_dir)
        if (gan_dir / "meta.json").exists():
            saved = load_meta(gan_dir)
            meta.check_matches(saved, gan_dir)
            meta = saved
        gan = cls(meta, gan_dir)
        if gan.manager.latest_checkpoint:
            gan.ckpt.restore(gan.manager.latest_checkpoint).expect_partial()
        else:
            write_json(gan_dir / "meta.json", asdict(meta))
        return gan

    @property
    def checkpoint(self) -> str | None:
        return self.manager.latest_checkpoint

    def sample(self, labels, seed: int | None = None) -> np.ndarray:
        """uint8 images, one per label."""
        labels = np.asarray(labels, dtype=np.int32)
        rng = np.random.default_rng(seed)
        out = []
        for i in range(0, len(labels), 256):
            z = rng.standard_normal((len(labels[i : i + 256]), self.meta.z_dim)).astype(np.float32)
            full = np.ones((len(z), 1), np.float32)  # the full class condition
            out.append(to_pixels(self.G([z, labels[i : i + 256], full], training=False)))
        return (
            np.concatenate(out) if out else np.zeros((0, self.meta.size, self.meta.size, self.meta.channels), np.uint8)
        )

    def sample_grid(self, path, per_class: int = 8):
        n = len(self.meta.labels)
        images = self.sample(np.repeat(np.arange(n), per_class), seed=1234)
        s = self.meta.size
        grid = (
            images.reshape(n, per_class, s, s, self.meta.channels)
            .transpose(0, 2, 1, 3, 4)
            .reshape(n * s, per_class * s, -1)
        )
        grid = grid[..., 0] if self.meta.channels == 1 else grid
        with atomic_path(path, suffix=".png") as tmp:
            Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(tmp)

    def strength(self, epoch: int) -> float:
        """The class condition's strength in `epoch` (0-based): phased in linearly over the warm-up."""
        warmup = self.meta.condition_warmup
        return 1.0 if not warmup else min(1.0, epoch / warmup)

    def _steps(self, guide=None):
        G, D, opt_g, opt_d, loss, z_dim = self.G, self.D, self.opt_g, self.opt_d, self.meta.loss, self.meta.z_dim
        n, augment, guide_weight = len(self.meta.labels), self.meta.augment, self.meta.guide

        def judge(images, labels, strength):
            return D([diff_augment(images) if augment else images, labels, strength], training=True)

        @tf.function
        def d_step(real, labels, strength):
            batch = tf.shape(real)[0]
            strength = tf.fill((batch, 1), strength)
            z = tf.random.normal((batch, z_dim))
            fake = G([z, labels, strength], training=True)
            with tf.GradientTape() as tape:
                d_real = judge(real, labels, strength)
                d_fake = judge(fake, labels, strength)
                if loss == "hinge":
                    d_loss = tf.reduce_mean(tf.nn.relu(1.0 - d_real)) + tf.reduce_mean(tf.nn.relu(1.0 + d_fake))
                else:
                    eps = tf.random.uniform((batch, 1, 1, 1))
                    mixed = eps * real + (1 - eps) * fake
                    with tf.GradientTape() as gp_tape:
                        gp_tape.watch(mixed)
                        d_mixed = D([mixed, labels, strength], training=True)
                    grads = gp_tape.gradient(d_mixed, mixed)
                    norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
                    d_loss = tf.reduce_mean(d_fake) - tf.reduce_mean(d_real) + 10.0 * tf.reduce_mean((norm - 1.0) ** 2)
            opt_d.apply_gradients(zip(tape.gradient(d_loss, D.trainable_variables), D.trainable_variables))
            return d_loss

        @tf.function
        def g_step(batch, strength):
            # classes drawn uniformly: minority classes get as much of the generator's attention as any
            labels = tf.random.uniform((batch,), 0, n, dtype=tf.int32)
            z = tf.random.normal((batch, z_dim))
            strengths = tf.fill((batch, 1), strength)
            with tf.GradientTape() as tape:
                fake = G([z, labels, strengths], training=True)
                g_loss = -tf.reduce_mean(judge(fake, labels, strengths))
                if guide is not None and guide_weight:
                    # a frozen classifier of real faces pushes each image toward its class
                    # (class-balancing GAN, Rangwani et al. 2021), phased in with the condition.
                    # It judges augmented images where DiffAugment is on: at weight 1 on plain images
                    # the generator learned one adversarial texture per class within 30 epochs
                    # (docs/results/balancing.md), which a texture does not survive as easily when shifted and cut
                    shown = diff_augment(fake) if augment else fake
                    probs = guide((shown + 1.0) * 127.5, training=False)
                    g_loss += (
                        guide_weight
                        * strength
                        * tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probs))
                    )
            opt_g.apply_gradients(zip(tape.gradient(g_loss, G.trainable_variables), G.trainable_variables))
            return g_loss

        return d_step, g_step

    def fit(
        self,
        pixels: np.ndarray,
        labels: np.ndarray,
        epochs: int,
        batch_size: int = 64,
        sample_every: int = 5,
        seed: int = 0,
        guide=None,
    ) -> dict:
        """Train up to `epochs` in total (a resumed GAN continues from its saved epoch). `guide`: a
        frozen Keras classifier of real faces (0..255 pixels in, probabilities out), used when the
        meta's `guide` weight is above 0."""
        if self.meta.guide and guide is None:
            raise GanError(
                f"{self.dir}: this GAN is trained with a guiding classifier (guide={self.meta.guide}); pass one"
            )
        d_step, g_step = self._steps(guide)
        batch_size = max(1, min(batch_size, len(labels)))
        data = tf.data.Dataset.from_tensor_slices((to_unit(pixels), labels.astype(np.int32)))
        data = data.shuffle(min(len(labels), 30000), seed=seed).batch(batch_size, drop_remainder=True).prefetch(2)
        steps = len(labels) // batch_size
        started, history = time.time(), []
        for epoch in range(int(self.epoch.numpy()), epochs):
            bar = tqdm(data, total=steps, desc=f"GAN epoch {epoch + 1}/{epochs}", unit="step", mininterval=2.0)
            epoch_started = time.time()
            d_losses, g_losses = [], []
            strength = tf.constant(self.strength(epoch), tf.float32)
            for real, y in bar:
                d_losses.append(float(d_step(real, y, strength)))
                g_losses.append(float(g_step(tf.shape(real)[0], strength)))
            self.epoch.assign(epoch + 1)
            self.manager.save()
            history.append(
                {
                    "epoch": epoch + 1,
                    "d_loss": float(np.mean(d_losses)),
                    "g_loss": float(np.mean(g_losses)),
                    "condition": float(strength),
                    "seconds": round(time.time() - epoch_started, 1),
                }
            )
            if (epoch + 1) % sample_every == 0 or epoch + 1 == epochs:
                self.sample_grid(self.dir / f"samples_epoch{epoch + 1:03d}.png")
        log = self.dir / "history.json"
        old = json.loads(log.read_text()) if log.exists() else []
        write_json(log, old + history)
        return {"epochs": int(self.epoch.numpy()), "seconds": round(time.time() - started, 1), "history": history}

"""One registry of ways to even out the classes of a training split, as the datasets
(`edgefer.data.DATASETS`) and the backbones (`backbones.BACKBONES`) register: `--balance NAME`.

Each acts at one point of a run: `add_images` gives the training split new images before the
examples are built (the conditional GAN's faces), `index` repeats examples (oversampling), and
`class_weight` weighs each class in the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data.balance import oversample_index


@dataclass(frozen=True)
class Balancer:
    what: str  # one line for --help
    add_images: Callable | None = None  # (dataset, cfg, spec, run_dir, train arrays) -> (train arrays, info)
    index: Callable | None = None  # (train labels, cfg) -> the training examples' indices, repeats and all
    class_weight: Callable | None = None  # (train labels, classes) -> {class: weight in the loss}


def class_weights(y: np.ndarray, n: int) -> dict[int, float]:
    """Each class weighted by the inverse of its share of the training split (0 for an empty one)."""
    counts = np.bincount(y, minlength=n).astype(float)
    return {i: float(len(y) / (n * c)) if c else 0.0 for i, c in enumerate(counts)}


def _gan_images(ds, cfg, spec, run_dir, train):
    from .gan_balance import gan_balance  # the GAN loads only when asked for

    return gan_balance(ds, cfg, spec, run_dir, train)


BALANCERS = {
    "none": Balancer("every training image once"),
    "class-weights": Balancer("each class weighted in the loss by its inverse share", class_weight=class_weights),
    "oversample": Balancer(
        "each class's images repeated up to per_class (default: the largest class)",
        index=lambda y, cfg: oversample_index(y, cfg.seed, cfg.per_class),
    ),
    "gan": Balancer(
        "a conditional GAN's faces, gated by a classifier, fill each class up to per_class",
        add_images=_gan_images,
    ),
}

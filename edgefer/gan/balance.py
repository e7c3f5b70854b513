"""Fill minority classes of a training split with GAN images, and check what was made.

RUN/synthetic/
  <class>/gan_000000.png ...   synthetic training images (training split only)
  manifest.json                every synthetic file, its class, the generator checkpoint, what was
                               oversampled instead and why; written last and atomically, so a run
                               that dies midway leaves no manifest
  quality.json                 per class: the gate's pass rate, fidelity, train-on-synthetic-test-
                               on-real, memorisation and diversity
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..core.files import atomic_path, write_json
from . import GanError


def quotas(counts, per_class: int | None, min_images: int, labels) -> tuple[dict, list[str]]:
    """Images to synthesise per class index, and notes for what was not done and why."""
    counts = list(counts)
    quota = per_class if per_class is not None else max(counts)
    notes = []
    if quota <= min(counts):
        raise GanError(
            f"quota {quota} is not above any class's count (smallest: {min(counts)}); "
            "nothing to synthesise: raise --per-class or use --balance none"
        )
    above = [labels[i] for i, c in enumerate(counts) if c > quota]
    if above:
        notes.append(f"{', '.join(above)} already above the quota {quota}; left as they are")
    todo = {}
    for i, c in enumerate(counts):
        if c >= quota:
            continue
        if c < min_images:
            notes.append(
                f"{labels[i]}: only {c} training images, too few to learn a GAN class from "
                f"(minimum {min_images}); oversampled instead"
            )
            todo[i] = ("oversample", quota - c)
        else:
            todo[i] = ("gan", quota - c)
    return todo, notes


def gated_samples(gan, cls: int, count: int, score, threshold: float, max_tries: int = 10, seed: int = 0):
    """Up to `count` images of class `cls` that an independent classifier (`score`: images ->
    (N, classes) probabilities) gives at least `threshold` for that class, drawing at most
    `max_tries` x `count` candidates (Bhattarai et al. 2020: samples selected by a classifier's
    confidence beat random synthetic ones). Returns (images, pass rate, candidates drawn)."""
    kept, passed, drawn, rng_seed = [], 0, 0, seed
    while passed < count and drawn < max_tries * count:
        batch = max(256, 2 * (count - passed))
        images = gan.sample(np.full(batch, cls), seed=rng_seed)
        rng_seed += 1_000_003
        drawn += batch
        kept.append(images[score(images)[:, cls] >= threshold])
        passed += len(kept[-1])
    size, channels = gan.meta.size, gan.meta.channels
    images = np.concatenate(kept)[:count] if kept else np.zeros((0, size, size, channels), np.uint8)
    return images, (passed / drawn if drawn else 0.0), drawn


def write_synthetic(images_by_class: dict, labels, out_dir, gan, oversampled: dict) -> dict:
    """Save the synthetic images of each class index; returns the manifest, also written to
    out_dir/manifest.json, last. `oversampled`: class -> (real images repeated, why)."""
    out_dir = Path(out_dir)
    files = []
    for cls, images in images_by_class.items():
        folder = out_dir / labels[cls]
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            path = folder / f"gan_{i:06d}.png"
            with atomic_path(path, suffix=".png") as tmp:
                Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(tmp, format="PNG")
            files.append({"path": str(path), "label": labels[cls], "synthetic": True})
    manifest = {
        "generator_checkpoint": gan.checkpoint,
        "gan_dir": str(gan.dir),
        "labels": list(labels),
        "dataset": gan.meta.dataset,
        "count": len(files),
        "files": files,
        "oversampled": {labels[c]: {"images": n, "why": why} for c, (n, why) in oversampled.items()},
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def _flat(images: np.ndarray, side: int = 24) -> np.ndarray:
    import cv2

    return (
        np.stack([cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA).reshape(-1) for im in images]).astype(
            np.float32
        )
        / 255.0
    )


def _nearest(a: np.ndarray, b: np.ndarray, same: bool = False) -> np.ndarray:
    """Distance from each row of a to its nearest row of b (excluding itself when same)."""
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    if same:
        np.fill_diagonal(d2, np.inf)
    return np.sqrt(np.maximum(d2.min(1), 0))


def _mean_pairwise(a: np.ndarray) -> float:
    d2 = (a**2).sum(1)[:, None] + (a**2).sum(1)[None, :] - 2 * a @ a.T
    n = len(a)
    return float(np.sqrt(np.maximum(d2, 0)).sum() / max(1, n * (n - 1)))


def quality(
    real: np.ndarray,
    real_y: np.ndarray,
    synth: np.ndarray,
    synth_y: np.ndarray,
    labels,
    classify=None,
    sample: int = 300,
    seed: int = 0,
) -> dict:
    """Per class: fidelity (share a real-data classifier assigns to the intended class),
    memorisation (nearest-real distance; near-copies are closer than 99% of real images are to
    their own nearest real neighbour) and diversity (mean pairwise distance, synthetic vs real)."""
    rng = np.random.default_rng(seed)
    report = {}
    predicted = classify(synth) if (classify is not None and len(synth)) else None
    for c, label in enumerate(labels):
        s_idx = np.flatnonzero(synth_y == c)
        if len(s_idx) == 0:
            continue
        r_idx = np.flatnonzero(real_y == c)
        s = _flat(synth[rng.permutation(s_idx)[:sample]])
        r = _flat(real[rng.permutation(r_idx)[: max(sample, 1000)]])
        real_nn = _nearest(r, r, same=True)
        threshold = float(np.percentile(real_nn, 1))
        synth_nn = _nearest(s, r)
        entry = {
            "synthetic": int(len(s_idx)),
            "real": int(len(r_idx)),
            "nn_distance_synthetic_median": float(np.median(synth_nn)),
            "nn_distance_real_median": float(np.median(real_nn)),
            "near_copy_threshold": threshold,
            "near_copies": int((synth_nn < threshold).sum()),
            "checked": int(len(s)),
            "diversity_synthetic": _mean_pairwise(s[:200]),
            "diversity_real": _mean_pairwise(r[:200]),
        }
        if predicted is not None:
            entry["fidelity"] = float((predicted[s_idx] == c).mean())
        report[label] = entry
    return report

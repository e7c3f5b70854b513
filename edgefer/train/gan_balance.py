"""`--balance gan`: train (or reuse) the conditional GAN (edgefer.gan) on the training split, fill
minority classes up to the quota, check the synthetic images, and add them to the training split only."""
from __future__ import annotations

import numpy as np

from ..core.files import write_json
from ..data import Split, load_pixels
from ..data.balance import oversample_index
from ..gan.balance import quality, quotas, write_synthetic
from ..gan.train import Gan, GanMeta
from .._tf import keras
from .backbones import build_model


def real_data_classifier(pixels, labels, n_classes, epochs, seed):
    """A small CNN trained on real images only: it scores whether synthetic images look like their class."""
    keras.utils.set_random_seed(seed)
    model = build_model("smallcnn", n_classes, pixels.shape[1], pixels.shape[-1], weights=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(pixels.astype(np.float32), labels, epochs=epochs, batch_size=128, verbose=0)
    return lambda images: model.predict(images.astype(np.float32), batch_size=256, verbose=0).argmax(1)


def gan_balance(ds, cfg, spec, run_dir, train_arrays):
    """Returns (train arrays with synthetic images added, a summary for metrics.json)."""
    n = len(ds.labels)
    color = "rgb" if spec.color == "rgb" else "gray"
    # the GAN sees the faces as the model does, at its own native size, colour and no equalisation
    native_spec = spec.replace(size=cfg.gan_size, color=color, equalize="none")
    native, kept, _ = load_pixels(ds.splits["train"], native_spec, desc="GAN training images")
    y = ds.splits["train"].labels[kept]
    meta = GanMeta(ds.name, list(ds.labels), ds.taxonomy, cfg.gan_size, 3 if color == "rgb" else 1, cfg.gan_loss,
                   width=cfg.gan_width)
    gan = Gan.open(cfg.gan_dir or run_dir / "gan", meta)
    fit = gan.fit(native, y, cfg.gan_epochs, seed=cfg.seed)
    print(f"GAN: {fit['epochs']} epochs in {gan.dir} ({fit['seconds']} s this run)")

    todo, notes = quotas(np.bincount(y, minlength=n), cfg.per_class, cfg.gan_min_images, ds.labels)
    for note in notes:
        print(f"balance gan: {note}")
    out = run_dir / "synthetic"
    manifest, synth, synth_y = write_synthetic(gan, todo, ds.labels, out, cfg.seed)

    classify = real_data_classifier(native, y, n, cfg.gan_fidelity_epochs, cfg.seed) if cfg.gan_fidelity_epochs else None
    checks = quality(native, y, synth, synth_y, ds.labels, classify, seed=cfg.seed)
    if classify is not None:  # how far to trust the fidelity figures: the judge's own accuracy on real val images
        val_x, val_kept, _ = load_pixels(ds.splits["val"], native_spec, desc="fidelity check")
        checks["fidelity_classifier"] = {
            "arch": "smallcnn", "epochs": cfg.gan_fidelity_epochs,
            "val_accuracy": float((classify(val_x) == ds.splits["val"].labels[val_kept]).mean()) if len(val_kept) else None}
    write_json(out / "quality.json", checks)

    # synthetic files are faces already: the same pixel path as real ones, without a detector
    split = Split([f["path"] for f in manifest["files"]], np.array([ds.labels.index(f["label"]) for f in manifest["files"]], dtype=int))
    x_syn, kept_syn, _ = load_pixels(split, spec.replace(framing="crops"), desc="synthetic images")
    syn_y = split.labels[kept_syn]
    # classes with too few real images for the GAN: repeat real ones, as --balance oversample does
    fallback = [c for c, (how, _) in todo.items() if how == "oversample"]
    real = (oversample_index(train_arrays.y, cfg.seed, cfg.per_class, classes=fallback) if fallback
            else np.arange(len(train_arrays.y)))
    soft = None
    if train_arrays.soft is not None:  # synthetic images get one-hot soft targets
        soft = np.concatenate([train_arrays.soft[real], np.eye(n, dtype=np.float32)[syn_y]])
    merged = type(train_arrays)(np.concatenate([train_arrays.x[real], x_syn]),
                                np.concatenate([train_arrays.y[real], syn_y]), soft)
    summary = {"method": "gan", "gan_dir": str(gan.dir), "generator_checkpoint": gan.checkpoint,
               "gan_epochs": fit["epochs"], "synthetic_images": int(len(kept_syn)), "notes": notes,
               "train_counts_after": np.bincount(merged.y, minlength=n).tolist(),
               "manifest": str(out / "manifest.json"), "quality": checks}
    return merged, summary

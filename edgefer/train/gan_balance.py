"""`--balance gan`: train (or reuse) the conditional GAN (edgefer.gan) on the training split, fill
minority classes up to the quota with samples that pass a quality gate, check what was made, and
add it to the training split only.

Two small classifiers of real faces, each trained on its own half of the training split, keep each
other honest: the *guide* (half A) pushes the generator toward its class during GAN training; the
*gate* (half B) never saw the generator's training signal, decides which samples are kept and
scores fidelity. A gate that shared the guide's data or weights would only reward images made to
fool that one network. A small CNN that learned from a few hundred faces a class judges texture more
than expression, so the gate can instead be a finished edgefer-train run (`gan_gate_run`, e.g. a FER+
model that learned from 28,000 faces): an expert that never took part in GAN training either.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from .._tf import keras
from ..core import card as card_mod
from ..core.files import write_json
from ..core.taxonomy import compound_name, top_two_compound
from ..data import Split, load_pixels
from ..data.balance import oversample_index
from ..data.base import stratified_split
from ..gan import GanError
from ..gan.balance import gated_samples, quality, quotas, write_synthetic
from ..gan.train import Gan, GanMeta
from .backbones import keras_runner


def real_face_classifier(pixels, labels, n_classes, epochs, seed):
    """A small CNN trained on real faces (0..255 pixels in, probabilities out): three conv blocks,
    about a fifth of `smallcnn`'s work per image, so the guide, the gate and the TSTR check cost
    seconds per epoch at 48 px rather than minutes."""
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input(pixels.shape[1:])
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(x)
    for filters in (32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=0.9)(x))
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dropout(0.3)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(pixels.astype(np.float32), labels, epochs=epochs, batch_size=64, verbose=0)
    model.trainable = False
    return model


def probabilities(model, images) -> np.ndarray:
    return model.predict(images.astype(np.float32), batch_size=256, verbose=0)


def train_judges(pixels, labels, n_classes, epochs, seed, guide: bool = True, gate: bool = True):
    """(guide, gate): classifiers of real faces on the two halves of the training split (either
    left out, None, when not needed: a GAN without a guide, a gate that is an expert run)."""
    half_a, half_b = stratified_split(labels, 0.5, seed + 11)
    guide = real_face_classifier(pixels[half_a], labels[half_a], n_classes, epochs, seed) if guide else None
    gate = real_face_classifier(pixels[half_b], labels[half_b], n_classes, epochs, seed + 1) if gate else None
    return guide, gate


def expert_judge(run_dir, labels):
    """score(images) -> (N, len(labels)) from a finished run's model, for gating and fidelity.
    Classes the run knows are its probabilities; a compound class ("sadly_fearful") is 1 where the
    run's two most probable basic emotions name it (top_two_compound at threshold 0, the reader that
    beat a dedicated compound model on compound faces, docs/results/compound.md), else 0."""
    # opened here rather than with train.run.load: that module reaches the trainer, which imports this one
    card_path = Path(run_dir) / "card.json"
    spec = card_mod.spec(card_mod.load(card_path), str(card_path))
    known, labels = list(spec.labels), list(labels)
    pairs = {compound_name(a, b) for a, b in combinations(known, 2)}
    if not (set(labels) <= set(known) or set(labels) <= pairs):
        raise GanError(
            f"{run_dir}: its classes {known} cover neither {labels} nor name them as pairs of basic emotions; "
            "pass a run trained on the same classes or on basic emotions (e.g. FER+)"
        )
    model = keras.models.load_model(Path(run_dir) / "model.keras", compile=False)

    columns = [known.index(c) for c in labels] if set(labels) <= set(known) else None

    def score(images: np.ndarray) -> np.ndarray:
        pixels = np.stack([spec.pixels(im[..., 0] if im.shape[-1] == 1 else im) for im in images])
        probs = spec.predict(keras_runner(model, spec), pixels)
        if columns is not None:
            return probs[:, columns]
        out = np.zeros((len(images), len(labels)), np.float32)
        for i, p in enumerate(probs):
            name = top_two_compound(dict(zip(known, p.tolist())), 0.0)
            if name in labels:
                out[i, labels.index(name)] = 1.0
        return out

    return score


def judged_accuracy(score, images, labels) -> float:
    """Share of real faces a judge assigns to their class (a face it scores 0 everywhere: wrong)."""
    probs = score(images)
    return float(((probs.argmax(1) == labels) & (probs.max(1) > 0)).mean())


def gate_verdicts(gan, score, n_classes, per_class, seed, threshold) -> tuple[list, list]:
    """Per class, on `per_class` ungated samples: fidelity (the share the gate, `score`: images ->
    probabilities, assigns to their class) and the share it would pass at `threshold`."""
    y = np.repeat(np.arange(n_classes), per_class)
    probs = score(gan.sample(y, seed=seed))
    fidelity = [float((probs[y == c].argmax(1) == c).mean()) for c in range(n_classes)]
    passes = [float((probs[y == c, c] >= threshold).mean()) for c in range(n_classes)]
    return fidelity, passes


def train_on_synthetic(gan, n_classes, val_x, val_y, per_class, epochs, seed) -> dict:
    """Train-on-synthetic-test-on-real (Ravuri & Vinyals 2019): a classifier that saw only
    generated images, `per_class` of every class, scored on real validation faces. Per-class
    recall says which classes the generator's images carry."""
    labels = np.repeat(np.arange(n_classes), per_class)
    model = real_face_classifier(gan.sample(labels, seed=seed + 7), labels, n_classes, epochs, seed)
    predicted = probabilities(model, val_x).argmax(1)
    recall = [float((predicted[val_y == c] == c).mean()) if (val_y == c).any() else None for c in range(n_classes)]
    return {"accuracy": float((predicted == val_y).mean()), "recall": recall, "per_class": per_class}


def gan_balance(ds, cfg, spec, run_dir, train_arrays):
    """Returns (train arrays with synthetic images added, a summary for metrics.json)."""
    color = "rgb" if spec.color == "rgb" else "gray"
    # the GAN sees the faces as the model does, at its own native size, colour and no equalisation
    native_spec = spec.replace(size=cfg.gan_size, color=color, equalize="none")
    native, kept, _ = load_pixels(ds.splits["train"], native_spec, desc="GAN training images")
    y = ds.splits["train"].labels[kept]
    gan, fit, score = fit_gan(ds, cfg, native, y, 3 if color == "rgb" else 1, run_dir)
    counts = np.bincount(y, minlength=len(ds.labels))
    synthetic, gate_report, oversampled, notes = fill_classes(ds, cfg, gan, score, counts)
    out = run_dir / "synthetic"
    manifest = write_synthetic(synthetic, ds.labels, out, gan, oversampled)
    checks = synthetic_quality(ds, cfg, gan, score, native, y, synthetic, gate_report, native_spec)
    write_json(out / "quality.json", checks)
    merged, added = with_synthetic(ds, cfg, spec, train_arrays, manifest, counts, oversampled)
    summary = {
        "method": "gan",
        "gan_dir": str(gan.dir),
        "generator_checkpoint": gan.checkpoint,
        "gan_epochs": fit["epochs"],
        "synthetic_images": added,
        "notes": notes,
        "train_counts_after": np.bincount(merged.y, minlength=len(ds.labels)).tolist(),
        "manifest": str(out / "manifest.json"),
        "quality": checks,
    }
    return merged, summary


def fit_gan(ds, cfg, native, y, channels: int, run_dir):
    """Trains (or resumes, or reuses) the GAN on the training faces `native` with the guide, and
    returns it, its fit report and the gate (`score`: images -> class probabilities)."""
    n = len(ds.labels)
    judges = cfg.gan_fidelity_epochs or 1
    guide, gate = train_judges(native, y, n, judges, cfg.seed, guide=bool(cfg.gan_guide), gate=not cfg.gan_gate_run)
    # the gate: an expert run when given (opened before GAN training, so a wrong run fails at once)
    score = (
        expert_judge(cfg.gan_gate_run, ds.labels) if cfg.gan_gate_run else lambda images: probabilities(gate, images)
    )
    meta = GanMeta(
        ds.name,
        list(ds.labels),
        ds.taxonomy,
        cfg.gan_size,
        channels,
        cfg.gan_loss,
        width=cfg.gan_width,
        augment=cfg.gan_augment,
        guide=cfg.gan_guide,
        condition_warmup=cfg.gan_condition_warmup,
    )
    gan = Gan.open(cfg.gan_dir or run_dir / "gan", meta)
    fit = gan.fit(native, y, cfg.gan_epochs, seed=cfg.seed, guide=guide)
    print(f"GAN: {fit['epochs']} epochs in {gan.dir} ({fit['seconds']} s this run)")
    return gan, fit, score


def fill_classes(ds, cfg, gan, score, counts):
    """Per class short of the quota, the gated synthetic images that fill it, and what is
    oversampled instead (a class with too few real images, samples the gate refused, the cap):
    (synthetic by class, the gate's report, oversampled {class: (count, why)}, notes)."""
    todo, notes = quotas(counts, cfg.per_class, cfg.gan_min_images, ds.labels)
    quota = cfg.per_class if cfg.per_class is not None else int(counts.max())
    synthetic, gate_report, oversampled = {}, {}, {}
    for cls, (how, missing) in todo.items():
        if how == "oversample":
            oversampled[cls] = (missing, f"{counts[cls]} real images, fewer than --gan-min-images {cfg.gan_min_images}")
            continue
        cap = int(cfg.gan_max_share * quota)  # at most this many synthetic images in one class
        images, pass_rate, drawn = gated_samples(gan, cls, min(missing, cap), score, cfg.gan_gate, seed=cfg.seed + cls)
        synthetic[cls] = images
        gate_report[ds.labels[cls]] = {
            "pass_rate": round(pass_rate, 4),
            "drawn": drawn,
            "kept": len(images),
            "wanted": missing,
            "cap": cap,
        }
        if len(images) < missing:
            why = (
                f"gate kept {len(images)} of {drawn} samples (threshold {cfg.gan_gate})"
                if len(images) < min(missing, cap)
                else f"synthetic images capped at {cfg.gan_max_share:.0%} of the quota {quota}"
            )
            oversampled[cls] = (missing - len(images), why)
    for cls, (count, why) in oversampled.items():
        notes.append(f"{ds.labels[cls]}: {count} real images repeated instead of synthetic ones ({why})")
    for note in notes:
        print(f"balance gan: {note}")
    return synthetic, gate_report, oversampled, notes


def synthetic_quality(ds, cfg, gan, score, native, y, synthetic, gate_report, native_spec) -> dict:
    """What the generator makes, judged by the gate on ungated samples, and what was kept:
    fidelity, memorisation and diversity, and train-on-synthetic-test-on-real, per class."""
    n = len(ds.labels)
    judges = cfg.gan_fidelity_epochs or 1
    synth_y = np.concatenate([np.full(len(v), c) for c, v in synthetic.items()]) if synthetic else np.zeros(0, int)
    synth = np.concatenate(list(synthetic.values())) if synthetic else np.zeros((0, *native.shape[1:]), np.uint8)
    fidelity, _ = gate_verdicts(gan, score, n, 200, cfg.seed + 99, cfg.gan_gate)
    checks = quality(native, y, synth, synth_y, ds.labels, seed=cfg.seed)
    val_x, val_kept, _ = load_pixels(ds.splits["val"], native_spec, desc="real validation faces")
    val_y = ds.splits["val"].labels[val_kept]
    tstr = train_on_synthetic(gan, n, val_x, val_y, per_class=cfg.gan_tstr_images, epochs=judges, seed=cfg.seed)
    for c, label in enumerate(ds.labels):
        entry = checks.setdefault(label, {})
        entry["fidelity"] = fidelity[c]  # ungated samples the gate assigns to their class
        entry["tstr_recall"] = tstr["recall"][c]
        if label in gate_report:
            entry["gate"] = gate_report[label]
    checks["judges"] = {
        "arch": "3-block CNN (real_face_classifier)",
        "epochs": judges,
        "halves": "guide: half A" + ("" if cfg.gan_gate_run else ", gate: half B") + " of the training split",
        "gate": cfg.gan_gate_run or "the half-B CNN",
        "gate_val_accuracy": judged_accuracy(score, val_x, val_y),
        "gate_threshold": cfg.gan_gate,
    }
    checks["tstr"] = {"val_accuracy": tstr["accuracy"], "images_per_class": tstr["per_class"]}
    return checks


def with_synthetic(ds, cfg, spec, train_arrays, manifest, counts, oversampled):
    """The training arrays with the synthetic files added, read through the model's own pixel path,
    and real images repeated where the GAN did not fill a class: (arrays, synthetic images added)."""
    n = len(ds.labels)
    # synthetic files are faces already: the same pixel path as real ones, without a detector
    split = Split(
        [f["path"] for f in manifest["files"]],
        np.array([ds.labels.index(f["label"]) for f in manifest["files"]], dtype=int),
    )
    x_syn, kept_syn, _ = load_pixels(split, spec.replace(framing="crops"), desc="synthetic images")
    syn_y = split.labels[kept_syn]
    real_quota = {c: int(counts[c]) + count for c, (count, _) in oversampled.items()}
    real = (
        oversample_index(train_arrays.y, cfg.seed, real_quota, classes=list(real_quota))
        if real_quota
        else np.arange(len(train_arrays.y))
    )
    soft = None
    if train_arrays.soft is not None:  # synthetic images get one-hot soft targets
        soft = np.concatenate([train_arrays.soft[real], np.eye(n, dtype=np.float32)[syn_y]])
    merged = type(train_arrays)(
        np.concatenate([train_arrays.x[real], x_syn]), np.concatenate([train_arrays.y[real], syn_y]), soft
    )
    return merged, int(len(kept_syn))

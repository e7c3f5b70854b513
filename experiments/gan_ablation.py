"""Which GAN settings make samples that carry their class: one GAN per variant on a dataset's
training split, the same seed and epochs, each scored by the gate classifier (trained on the other
half of the training split than the guide) and by train-on-synthetic-test-on-real on validation.

    python experiments/gan_ablation.py --config recipes/compound.toml --epochs 60 --runs runs/gan_ablation \\
        --json runs/gan_ablation.json

Variants are cumulative: old (the GAN as it was), +augment (DiffAugment), +guide (the guide
classifier's cross-entropy, weight 0.1), +warmup (the class condition phased in); guide1 is the
first setting tried (weight 1, the guide on plain images). GAN folders are resumed (a variant
already at --epochs is only scored). --gate-run RUN adds a second, expert judge: a finished run
(e.g. a FER+ model) scores the same samples, for fidelity and its pass rate.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from edgefer.core.files import atomic_path, write_json
from edgefer.data import load_pixels
from edgefer.gan.train import Gan, GanMeta
from edgefer.train import make_config
from edgefer.train.arrays import dataset_for, spec_for
from edgefer.train.gan_balance import (
    expert_judge,
    gate_verdicts,
    judged_accuracy,
    probabilities,
    train_judges,
    train_on_synthetic,
)

VARIANTS = {
    "old": dict(augment=False, guide=0.0, condition_warmup=0),
    "+augment": dict(augment=True, guide=0.0, condition_warmup=0),
    "+guide": dict(augment=True, guide=0.1, condition_warmup=0),
    "+warmup": dict(augment=True, guide=0.1, condition_warmup=5),
    # the first setting tried: guide weight 1 on un-augmented images (kept to score its collapse)
    "guide1": dict(augment=True, guide=1.0, condition_warmup=5),
}


def verdict_grid(gan, score, path, per_class: int = 8, scale: int = 2):
    """The sample grid (same noise as samples_epochNNN.png), each image framed green where the judge
    gives it its intended class at least 0.5, red where not; the class name starts each row."""
    labels, side = gan.meta.labels, gan.meta.size * scale
    y = np.repeat(np.arange(len(labels)), per_class)
    images = gan.sample(y, seed=1234)
    kept = score(images)[np.arange(len(y)), y] >= 0.5
    text_w, pad = 150, 3
    canvas = Image.new("RGB", (text_w + per_class * (side + 2 * pad), len(labels) * (side + 2 * pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (image, ok) in enumerate(zip(images, kept)):
        row, col = divmod(i, per_class)
        x0, y0 = text_w + col * (side + 2 * pad), row * (side + 2 * pad)
        draw.rectangle(
            [x0, y0, x0 + side + 2 * pad - 1, y0 + side + 2 * pad - 1], fill=(0, 160, 0) if ok else (200, 0, 0)
        )
        face = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).resize((side, side), Image.NEAREST)
        canvas.paste(face.convert("RGB"), (x0 + pad, y0 + pad))
        if col == 0:
            draw.text((4, y0 + side // 2), labels[row].replace("_", " "), fill="black")
    with atomic_path(path, suffix=".png") as tmp:
        canvas.save(tmp, format="PNG")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="recipes/compound.toml")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--runs", default="runs/gan_ablation")
    p.add_argument("--judge-epochs", type=int, default=None, help="default: the config's gan_fidelity_epochs")
    p.add_argument("--gate-run", default=None, help="a finished run that judges the samples too (e.g. a FER+ model)")
    p.add_argument("--json", default="runs/gan_ablation.json")
    args = p.parse_args()
    cfg = make_config(args.config)
    ds = dataset_for(cfg)
    spec = spec_for(cfg, ds).replace(size=cfg.gan_size, color="gray", equalize="none")
    x, kept, _ = load_pixels(ds.splits["train"], spec, desc="train")
    y = ds.splits["train"].labels[kept]
    val_x, val_kept, _ = load_pixels(ds.splits["val"], spec, desc="val")
    val_y = ds.splits["val"].labels[val_kept]
    n, judges = len(ds.labels), args.judge_epochs or cfg.gan_fidelity_epochs
    guide, gate = train_judges(x, y, n, judges, cfg.seed)
    gate_score = lambda images: probabilities(gate, images)  # noqa: E731
    gate_val = judged_accuracy(gate_score, val_x, val_y)
    print(f"gate classifier: {gate_val:.2%} on real validation faces")
    expert = expert_judge(args.gate_run, ds.labels) if args.gate_run else None
    expert_val = judged_accuracy(expert, val_x, val_y) if expert else None
    if expert:
        print(f"expert judge {args.gate_run}: {expert_val:.2%} on real validation faces")

    rows = []
    for name in args.variants.split(","):
        meta = GanMeta(
            ds.name, list(ds.labels), ds.taxonomy, cfg.gan_size, 1, cfg.gan_loss, width=cfg.gan_width, **VARIANTS[name]
        )
        gan = Gan.open(Path(args.runs) / name.strip("+"), meta)
        t0 = time.time()
        fit = gan.fit(x, y, args.epochs, seed=cfg.seed, guide=guide if meta.guide else None)
        fidelity, passes = gate_verdicts(gan, gate_score, n, 300, cfg.seed + 99, cfg.gan_gate)
        expert_fidelity, expert_passes = (
            gate_verdicts(gan, expert, n, 300, cfg.seed + 99, cfg.gan_gate) if expert else (None, None)
        )
        tstr = train_on_synthetic(gan, n, val_x, val_y, cfg.gan_tstr_images, judges, cfg.seed)
        if expert:
            verdict_grid(gan, expert, gan.dir / f"expert_verdicts_epoch{fit['epochs']:03d}.png")
        rows.append(
            {
                "variant": name,
                **VARIANTS[name],
                "epochs": fit["epochs"],
                "seconds_this_run": round(time.time() - t0, 1),
                "fidelity": dict(zip(ds.labels, fidelity)),
                "fidelity_min": min(fidelity),
                "fidelity_mean": float(np.mean(fidelity)),
                "gate_pass": dict(zip(ds.labels, passes)),
                **(
                    {
                        "expert_fidelity": dict(zip(ds.labels, expert_fidelity)),
                        "expert_fidelity_min": min(expert_fidelity),
                        "expert_fidelity_mean": float(np.mean(expert_fidelity)),
                        "expert_pass": dict(zip(ds.labels, expert_passes)),
                    }
                    if expert
                    else {}
                ),
                "tstr_val_accuracy": tstr["accuracy"],
                "tstr_recall": dict(zip(ds.labels, tstr["recall"])),
                "grid": str(gan.dir / f"samples_epoch{fit['epochs']:03d}.png"),
            }
        )
        print(
            f"{name}: fidelity mean {rows[-1]['fidelity_mean']:.2f} (min {rows[-1]['fidelity_min']:.2f}), "
            f"TSTR {tstr['accuracy']:.2%}, {rows[-1]['seconds_this_run']} s",
            flush=True,
        )

    extra = " expert fidelity mean / min | expert pass mean |" if expert else ""
    print(
        f"\n| variant | fidelity mean | fidelity min | gate pass mean (>= {cfg.gan_gate}) |{extra} TSTR val acc | "
        "GAN seconds |\n" + "|---" * (6 + 2 * bool(expert)) + "|"
    )
    for r in rows:
        cells = (
            (
                f" {r['expert_fidelity_mean']:.2f} / {r['expert_fidelity_min']:.2f} | "
                f"{np.mean(list(r['expert_pass'].values())):.2f} |"
            )
            if expert
            else ""
        )
        print(
            f"| {r['variant']} | {r['fidelity_mean']:.2f} | {r['fidelity_min']:.2f} | "
            f"{np.mean(list(r['gate_pass'].values())):.2f} |{cells} {r['tstr_val_accuracy']:.2%} | {r['seconds_this_run']} |"
        )
    for key in ("fidelity", "expert_fidelity") if expert else ("fidelity",):
        print(
            f"\n{key.replace('_', ' ')} per class:\n| variant | "
            + " | ".join(ds.labels)
            + " |\n"
            + "|---" * (n + 1)
            + "|"
        )
        for r in rows:
            print(f"| {r['variant']} | " + " | ".join(f"{r[key][c]:.2f}" for c in ds.labels) + " |")
    write_json(
        args.json,
        {
            "config": args.config,
            "epochs": args.epochs,
            "gate_val_accuracy": gate_val,
            "expert": args.gate_run,
            "expert_val_accuracy": expert_val,
            "judge_epochs": judges,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()

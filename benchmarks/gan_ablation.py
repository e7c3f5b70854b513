"""Which GAN settings make samples that carry their class: one GAN per variant on a dataset's
training split, the same seed and epochs, each scored by the gate classifier (trained on the other
half of the training split than the guide) and by train-on-synthetic-test-on-real on validation.

    python benchmarks/gan_ablation.py --config train/compound.toml --epochs 60 --runs runs/gan_ablation \\
        --json runs/gan_ablation.json

Variants are cumulative: old (the GAN as it was), +augment (DiffAugment), +guide (the guide
classifier's cross-entropy, weight 0.1), +warmup (the class condition phased in); guide1 is the
first setting tried (weight 1, the guide on plain images). GAN folders are resumed.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from edgefer.core.files import write_json
from edgefer.data import load_pixels
from edgefer.gan.train import Gan, GanMeta
from edgefer.train import make_config
from edgefer.train.gan_balance import gate_verdicts, probabilities, train_judges, train_on_synthetic
from edgefer.train.trainer import dataset_for, spec_for

VARIANTS = {
    "old": dict(augment=False, guide=0.0, condition_warmup=0),
    "+augment": dict(augment=True, guide=0.0, condition_warmup=0),
    "+guide": dict(augment=True, guide=0.1, condition_warmup=0),
    "+warmup": dict(augment=True, guide=0.1, condition_warmup=5),
    # the first setting tried: guide weight 1 on un-augmented images (kept to score its collapse)
    "guide1": dict(augment=True, guide=1.0, condition_warmup=5),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="train/compound.toml")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--runs", default="runs/gan_ablation")
    p.add_argument("--judge-epochs", type=int, default=None, help="default: the config's gan_fidelity_epochs")
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
    gate_val = float((probabilities(gate, val_x).argmax(1) == val_y).mean())
    print(f"gate classifier: {gate_val:.2%} on real validation faces")

    rows = []
    for name in args.variants.split(","):
        meta = GanMeta(ds.name, list(ds.labels), ds.taxonomy, cfg.gan_size, 1, cfg.gan_loss, width=cfg.gan_width,
                       **VARIANTS[name])
        gan = Gan.open(Path(args.runs) / name.strip("+"), meta)
        t0 = time.time()
        fit = gan.fit(x, y, args.epochs, seed=cfg.seed, guide=guide if meta.guide else None)
        fidelity, passes = gate_verdicts(gan, gate, n, 300, cfg.seed + 99, cfg.gan_gate)
        tstr = train_on_synthetic(gan, n, val_x, val_y, cfg.gan_tstr_images, judges, cfg.seed)
        rows.append({"variant": name, **VARIANTS[name], "epochs": fit["epochs"], "seconds_this_run": round(time.time() - t0, 1),
                     "fidelity": dict(zip(ds.labels, fidelity)), "fidelity_min": min(fidelity),
                     "fidelity_mean": float(np.mean(fidelity)), "gate_pass": dict(zip(ds.labels, passes)),
                     "tstr_val_accuracy": tstr["accuracy"], "tstr_recall": dict(zip(ds.labels, tstr["recall"])),
                     "grid": str(gan.dir / f"samples_epoch{fit['epochs']:03d}.png")})
        print(f"{name}: fidelity mean {rows[-1]['fidelity_mean']:.2f} (min {rows[-1]['fidelity_min']:.2f}), "
              f"TSTR {tstr['accuracy']:.2%}, {rows[-1]['seconds_this_run']} s", flush=True)

    print(f"\n| variant | fidelity mean | fidelity min | gate pass mean (>= {cfg.gan_gate}) | TSTR val acc | "
          "GAN seconds |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['fidelity_mean']:.2f} | {r['fidelity_min']:.2f} | "
              f"{np.mean(list(r['gate_pass'].values())):.2f} | {r['tstr_val_accuracy']:.2%} | {r['seconds_this_run']} |")
    print("\nfidelity per class:\n| variant | " + " | ".join(ds.labels) + " |\n" + "|---" * (n + 1) + "|")
    for r in rows:
        print(f"| {r['variant']} | " + " | ".join(f"{r['fidelity'][c]:.2f}" for c in ds.labels) + " |")
    write_json(args.json, {"config": args.config, "epochs": args.epochs, "gate_val_accuracy": gate_val,
                           "judge_epochs": judges, "rows": rows})


if __name__ == "__main__":
    main()

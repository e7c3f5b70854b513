"""Same backbone and schedule, several ways to balance the classes: none, class-weights, oversample,
gan-old (the GAN before the gate), gan (guided, DiffAugment, phased condition, gated samples) and
gan-expert (the same GAN, gated by a finished run given as --gate-run, e.g. a FER+ model).
Choices read on validation (PublicTest); test (PrivateTest) reported. With GAN rows, the quality
table per class: gate pass rate, fidelity (the independent gate classifier on ungated samples),
train-on-synthetic-test-on-real recall, synthetic images kept.

    python experiments/balance_compare.py --config recipes/fer2013.toml --epochs 6 \\
        --gan-dir runs/gan_fer2013 --gan-epochs 12 --json runs/balance_compare.json
    python experiments/balance_compare.py --config recipes/compound.toml --epochs 20 --runs runs/compound \\
        --methods none,class-weights,oversample,gan --gan-dir runs/gan_ablation/warmup --gan-epochs 120 \\
        --json runs/compound/balance.json

Runs already finished (RUN/metrics.json present) are read, not retrained; runs killed midway resume.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgefer.core.files import write_json
from edgefer.train import make_config, train

# each row: the balance method and what it changes; "gan-old" is the GAN as it was before the gate,
# DiffAugment, the guide classifier and the phased condition (every sample kept, no cap)
METHODS = {
    "none": {"balance": "none"},
    "class-weights": {"balance": "class-weights"},
    "oversample": {"balance": "oversample"},
    "gan-old": {
        "balance": "gan",
        "gan_augment": False,
        "gan_guide": 0.0,
        "gan_condition_warmup": 0,
        "gan_gate": 0.0,
        "gan_max_share": 1.0,
    },
    "gan": {"balance": "gan"},
    "gan-expert": {"balance": "gan"},  # gated by --gate-run
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="recipes/fer2013.toml")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--runs", default="runs", help="run directories go to RUNS/balance_<method>")
    p.add_argument("--gan-dir", default="runs/gan_fer2013", help="the gan row's GAN folder (reused or resumed)")
    p.add_argument("--gan-old-dir", default=None, help="the gan-old row's GAN folder (default: GAN_DIR_old)")
    p.add_argument("--gan-epochs", type=int, default=12)
    p.add_argument("--gate-run", default=None, help="gan-expert: the finished run that gates its samples")
    p.add_argument("--per-class", type=int, default=None, help="oversample / gan quota (default: the recipe's)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    p.add_argument("--json", default="runs/balance_compare.json")
    args = p.parse_args()
    rows = []
    for method in args.methods.split(","):
        out = Path(args.runs) / f"balance_{method.replace('-', '_')}"
        if (out / "metrics.json").exists():
            metrics = json.loads((out / "metrics.json").read_text())
        else:
            gan_dir = {
                "gan": args.gan_dir,
                "gan-expert": args.gan_dir,
                "gan-old": args.gan_old_dir or args.gan_dir + "_old",
            }.get(method)
            if method == "gan-expert" and not args.gate_run:
                p.error("the gan-expert row needs --gate-run RUN (a finished run that gates the samples)")
            cfg = make_config(
                args.config,
                epochs=args.epochs,
                out=str(out),
                verbose=2,
                gan_dir=gan_dir,
                gan_gate_run=args.gate_run if method == "gan-expert" else None,
                gan_epochs=args.gan_epochs,
                per_class=args.per_class,
                resume=(out / "checkpoints" / "state.json").exists(),
                **METHODS[method],
            )
            metrics = train(cfg).metrics
        recall = {c: round(m["recall"], 3) for c, m in metrics["per_class"].items()}
        rows.append(
            {
                "balance": method,
                "val_accuracy": round(metrics["val"]["accuracy"], 4),
                "val_macro_f1": round(metrics["val"]["macro_f1"], 4),
                "test_accuracy": round(metrics["accuracy"], 4),
                "test_macro_f1": round(metrics["macro_f1"], 4),
                "test_recall": recall,
                "train_seconds": metrics.get("train_seconds"),
                "run": str(out),
            }
        )
    labels = list(rows[0]["test_recall"])
    print(
        "| balance | val acc | val macro-F1 | test acc | test macro-F1 | "
        + " | ".join(f"{c} recall" for c in labels)
        + " |"
    )
    print("|---" * (5 + len(labels)) + "|")
    for r in rows:
        print(
            f"| {r['balance']} | {r['val_accuracy']:.2%} | {r['val_macro_f1']:.3f} | {r['test_accuracy']:.2%} | "
            f"{r['test_macro_f1']:.3f} | " + " | ".join(f"{r['test_recall'][c]:.3f}" for c in labels) + " |"
        )
    quality = {
        r["balance"]: json.loads((Path(r["run"]) / "synthetic" / "quality.json").read_text())
        for r in rows
        if r["balance"].startswith("gan") and (Path(r["run"]) / "synthetic" / "quality.json").exists()
    }
    if quality:
        print(
            "\n| GAN | class | gate pass rate | fidelity (gate, ungated) | TSTR recall | synthetic kept |\n|---|---|---|---|---|---|"
        )
        for name, checks in quality.items():
            for c in labels:
                q = checks.get(c, {})
                gate = q.get("gate", {})
                print(
                    f"| {name} | {c} | {gate.get('pass_rate', float('nan')):.2f} | {q.get('fidelity', float('nan')):.2f} | "
                    f"{q.get('tstr_recall') if q.get('tstr_recall') is not None else float('nan'):.2f} | {gate.get('kept', q.get('synthetic', 0))} |"
                )
    write_json(
        args.json,
        {"config": args.config, "epochs": args.epochs, "gan_epochs": args.gan_epochs, "rows": rows, "quality": quality},
    )


if __name__ == "__main__":
    main()

"""Same backbone and schedule, four ways to balance FER-2013's classes: none, class-weights,
oversample, gan. Choices read on PublicTest (val); PrivateTest (test) reported.

    python benchmarks/balance_compare.py --config train/fer2013.toml --epochs 6 \\
        --gan-dir runs/gan_fer2013 --gan-epochs 12 --json runs/balance_compare.json

Runs already finished (RUN/metrics.json present) are read, not retrained; runs killed midway resume.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgefer.core.files import write_json
from edgefer.train import make_config, train

METHODS = ("none", "class-weights", "oversample", "gan")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="train/fer2013.toml")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--runs", default="runs", help="run directories go to RUNS/balance_<method>")
    p.add_argument("--gan-dir", default="runs/gan_fer2013")
    p.add_argument("--gan-epochs", type=int, default=12)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--json", default="runs/balance_compare.json")
    args = p.parse_args()
    rows = []
    for method in args.methods.split(","):
        out = Path(args.runs) / f"balance_{method.replace('class-weights', 'class_weights')}"
        if (out / "metrics.json").exists():
            metrics = json.loads((out / "metrics.json").read_text())
        else:
            cfg = make_config(args.config, epochs=args.epochs, balance=method, out=str(out), verbose=2,
                              gan_dir=args.gan_dir if method == "gan" else None, gan_epochs=args.gan_epochs,
                              resume=(out / "checkpoints" / "state.json").exists())
            metrics = train(cfg).metrics
        recall = {c: round(m["recall"], 3) for c, m in metrics["per_class"].items()}
        rows.append({"balance": method, "val_accuracy": round(metrics["val"]["accuracy"], 4),
                     "val_macro_f1": round(metrics["val"]["macro_f1"], 4),
                     "test_accuracy": round(metrics["accuracy"], 4), "test_macro_f1": round(metrics["macro_f1"], 4),
                     "test_recall": recall, "train_seconds": metrics.get("train_seconds"), "run": str(out)})
    labels = list(rows[0]["test_recall"])
    print("| balance | val acc | val macro-F1 | test acc | test macro-F1 | " + " | ".join(f"{c} recall" for c in labels) + " |")
    print("|---" * (5 + len(labels)) + "|")
    for r in rows:
        print(f"| {r['balance']} | {r['val_accuracy']:.2%} | {r['val_macro_f1']:.3f} | {r['test_accuracy']:.2%} | "
              f"{r['test_macro_f1']:.3f} | " + " | ".join(f"{r['test_recall'][c]:.3f}" for c in labels) + " |")
    write_json(args.json, {"config": args.config, "epochs": args.epochs, "rows": rows})


if __name__ == "__main__":
    main()

"""Two ways to read compound expressions, on the FER+ compound split (edgefer.data ferplus-compound):
the dedicated compound model, and the top two probabilities of the `ferplus` model (an emotion
pair when both reach a threshold, chosen on validation). Both int8, both through LiteRT and the
spec their cards carry. Plus the float runs of experiments/balance_compare.py, if given.

    python experiments/compound_compare.py --model edgefer/models/compound_int8.tflite \\
        --runs runs/compound/balance_none runs/compound/balance_oversample --json runs/compound_compare.json
    python experiments/compound_compare.py --json runs/compound_top_two.json   # ferplus's top two alone

Chosen on validation (PublicTest images); test (PrivateTest images) reported.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgefer.core.files import write_json
from edgefer.core.metrics import classification_report
from edgefer.core.taxonomy import top_two_compound
from edgefer.data import load_dataset, load_pixels
from edgefer.device.classifier import Classifier
from edgefer.evaluate.checks import SHARED
from edgefer.models import model_path

THRESHOLDS = np.round(np.arange(0.0, 0.45, 0.025), 3)


def probabilities(clf: Classifier, split, desc: str):
    x, kept, _ = load_pixels(split, clf.spec, desc=desc)
    return np.stack([clf.run(p) for p in x]), split.labels[kept]


def scores(y_true, y_pred, labels) -> dict:
    """Accuracy and macro-F1 over the compound classes; a prediction of -1 (no compound) is wrong."""
    report = classification_report(y_true, np.where(y_pred < 0, len(labels), y_pred), labels + ["(none)"])
    per_class = {c: round(report["per_class"][c]["recall"], 3) for c in labels}
    f1 = float(np.mean([report["per_class"][c]["f1"] for c in labels]))
    return {
        "accuracy": round(float((y_true == y_pred).mean()), 4),
        "macro_f1": round(f1, 4),
        "answered": round(float((y_pred >= 0).mean()), 4),
        "recall": per_class,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model",
        help="the dedicated compound int8 model (recipes/make_default.sh compound); "
        "without it, only the basic model's top two are read",
    )
    p.add_argument("--basic", default="ferplus", help="the basic-emotion model read by its top two")
    p.add_argument("--data", default=str(SHARED / "data" / "ferplus"))
    p.add_argument("--runs", nargs="*", default=[], help="run directories of balance_compare.py to list beside")
    p.add_argument("--json", default="runs/compound_compare.json")
    args = p.parse_args()
    ds = load_dataset(args.data, "ferplus-compound")
    labels = list(ds.labels)
    rows = []

    if args.model:
        compound = Classifier(model_path(args.model))
        if list(compound.labels) != labels:
            raise SystemExit(f"{args.model}: classes {compound.labels} are not the dataset's {labels}")
        row = {"reader": f"compound model ({Path(args.model).name}, int8)"}
        for split in ("val", "test"):
            probs, y = probabilities(compound, ds.splits[split], f"compound {split}")
            row[split] = scores(y, probs.argmax(1), labels)
        rows.append(row)

    basic = Classifier(model_path(args.basic))
    read, others = {}, {}
    # FER+ faces that are no compound (one leading emotion, or neutral): a reader must leave them alone
    plain = load_dataset(args.data, "ferplus")
    compound_files = {p for s in ds.splits.values() for p in s.images}
    for split in ("val", "test"):
        probs, y = probabilities(basic, ds.splits[split], f"{args.basic} {split}")
        read[split] = (y, [dict(zip(basic.labels, p)) for p in probs])
        rest = plain.splits[split].subset(
            [i for i, p in enumerate(plain.splits[split].images) if p not in compound_files]
        )
        probs, _ = probabilities(basic, rest, f"{args.basic} {split}, no compound")
        others[split] = [dict(zip(basic.labels, p)) for p in probs]

    def top_two(split, threshold):
        y, probs = read[split]
        pred = np.array([labels.index(c) if (c := top_two_compound(p, threshold)) in labels else -1 for p in probs])
        result = scores(y, pred, labels)
        # on every face, compound or not: the 9 compounds plus "no compound" as a tenth class
        none = len(labels)
        other_pred = np.array(
            [labels.index(c) if (c := top_two_compound(p, threshold)) in labels else none for p in others[split]],
            dtype=int,
        )
        false_pairs = other_pred != none
        y_all = np.concatenate([y, np.full(len(other_pred), none)])
        p_all = np.concatenate([np.where(pred < 0, none, pred), other_pred])
        every = classification_report(y_all, p_all, labels + ["(none)"])
        result.update(
            false_pair_rate=round(float(false_pairs.mean()), 4),
            all_faces=len(y_all),
            all_faces_macro_f1=round(every["macro_f1"], 4),
        )
        return result

    best = max(THRESHOLDS, key=lambda t: (top_two("val", t)["macro_f1"], -t))
    rows.append(
        {
            "reader": f"{args.basic} top two (int8), threshold {best} (best on compound val faces)",
            "threshold": float(best),
            "val": top_two("val", best),
            "test": top_two("test", best),
        }
    )
    # what a camera needs: a threshold that also leaves the faces without a compound alone
    best_all = max(THRESHOLDS, key=lambda t: (top_two("val", t)["all_faces_macro_f1"], t))
    rows.append(
        {
            "reader": f"{args.basic} top two (int8), threshold {best_all} (best on all val faces)",
            "threshold": float(best_all),
            "val": top_two("val", best_all),
            "test": top_two("test", best_all),
        }
    )

    for run in args.runs:
        m = json.loads((Path(run) / "metrics.json").read_text())
        rows.append(
            {
                "reader": f"float run {Path(run).name}",
                "val": {"accuracy": round(m["val"]["accuracy"], 4), "macro_f1": round(m["val"]["macro_f1"], 4)},
                "test": {
                    "accuracy": round(m["accuracy"], 4),
                    "macro_f1": round(m["macro_f1"], 4),
                    "recall": {c: round(v["recall"], 3) for c, v in m["per_class"].items()},
                },
            }
        )

    counts = ds.counts()
    print("| class | " + " | ".join(counts) + " |\n|---|---|---|---|")
    for i, c in enumerate(labels):
        print(f"| {c} | " + " | ".join(str(counts[s][i]) for s in counts) + " |")
    print(
        "\n| reader | val acc | val macro-F1 | test acc | test macro-F1 | test answered | test: faces without a "
        "compound given one |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        false_pairs = r["test"].get("false_pair_rate")
        print(
            f"| {r['reader']} | {r['val']['accuracy']:.2%} | {r['val']['macro_f1']:.3f} | {r['test']['accuracy']:.2%} | "
            f"{r['test']['macro_f1']:.3f} | {r['test'].get('answered', 1.0):.0%} | "
            f"{'100% (always answers)' if false_pairs is None else f'{false_pairs:.0%}'} |"
        )
    print("\ntest recall per class:\n| reader | " + " | ".join(labels) + " |\n" + "|---" * (len(labels) + 1) + "|")
    for r in rows:
        if "recall" in r["test"]:
            print(f"| {r['reader']} | " + " | ".join(f"{r['test']['recall'].get(c, 0):.2f}" for c in labels) + " |")
    write_json(args.json, {"counts": counts, "labels": labels, "rows": rows, "notes": ds.notes})


if __name__ == "__main__":
    main()

"""Class-prior (logit) adjustment of an exported model, fitted on what people see and checked on
faces it never saw: a bias per class added to the model's log-probabilities (the card's
`inference.logit_bias`), chosen by coordinate ascent to maximise the mean per-class recall against
the FER+ majority label of the PublicTest images (validation; 10 annotators per image). Reported
before and after: that fit, the FER+ majority and FER-2013 label of the PrivateTest images, and Yale
full frames through the device pipeline. Writes a copy of the model with the bias in its card.

    python benchmarks/calibrate.py --model fer2013-balanced --json runs/calibrate.json
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cross_check import SHARED, ferplus_check, yale_check
from edgefer.core import card as card_mod
from edgefer.core.files import write_bytes, write_json
from edgefer.core.spec import adjust
from edgefer.data import load_pixels
from edgefer.data.fer2013 import read_ferplus
from edgefer.device.classifier import Classifier
from edgefer.models import model_path

GRID = np.round(np.arange(-2.0, 2.01, 0.25), 2)


def mean_recall(y: np.ndarray, pred: np.ndarray, classes) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in classes if np.any(y == c)]))


def fit_bias(probs: np.ndarray, y: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Coordinate ascent over one bias per class on a grid, the first class held at 0."""
    classes = np.unique(y)
    bias = np.zeros(probs.shape[1], np.float32)
    best = mean_recall(y, probs.argmax(1), classes)
    for _ in range(rounds):
        for c in range(1, probs.shape[1]):
            for value in GRID:
                trial = bias.copy()
                trial[c] = value
                score = mean_recall(y, adjust(probs, trial).argmax(1), classes)
                if score > best + 1e-9:
                    best, bias = score, trial
    return bias


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="fer2013-balanced", help="bundled name or .tflite")
    p.add_argument("--face-model", default=str(SHARED / "models" / "blaze_face_short_range.tflite"))
    p.add_argument("--out", help="the adjusted model (default: runs/calibrated_<name>.tflite)")
    p.add_argument("--json", default="runs/calibrate.json")
    args = p.parse_args()
    path = model_path(args.model)
    clf = Classifier(path)
    plain = clf.spec.replace(logit_bias=())
    clf.spec = plain
    ferplus = read_ferplus(SHARED / "data" / "ferplus")
    val = ferplus.splits["val"]
    truth = np.array([clf.labels.index(ferplus.labels[i]) if ferplus.labels[i] in clf.labels else -1 for i in val.labels])
    keep = np.flatnonzero(truth >= 0)
    x, kept, _ = load_pixels(val.subset(keep), plain, desc="PublicTest")
    probs = plain.predict(clf.run_batch, x)
    y = truth[keep][kept]
    bias = fit_bias(probs, y)
    fitted = {"before": mean_recall(y, probs.argmax(1), np.unique(y)),
              "after": mean_recall(y, adjust(probs, bias).argmax(1), np.unique(y))}
    out = Path(args.out or f"runs/calibrated_{path.stem}.tflite")
    card = card_mod.read_embedded(path)
    write_bytes(out, card_mod.embed(card_mod.model_bytes(path.read_bytes()),
                                    card_mod.with_spec(card, plain.replace(logit_bias=tuple(bias.tolist())))))
    result = {"model": str(path), "adjusted_model": str(out), "logit_bias": dict(zip(clf.labels, bias.tolist())),
              "publictest_ferplus_mean_recall": fitted}
    for which, model in (("before", path), ("after", out)):
        c = Classifier(model)
        c.spec = c.spec.replace(logit_bias=()) if which == "before" else c.spec
        result[which] = {"ferplus_test": ferplus_check(c, ferplus.splits["test"], ferplus.labels)}
        if which == "after" or not card_mod.spec(card).logit_bias:
            result[which]["yale"] = yale_check(model, args.face_model)
        f, yl = result[which]["ferplus_test"], result[which].get("yale", {})
        print(f"{which:6s} PrivateTest: FER+ majority {f['agrees_with_ferplus_majority']:.2%}, FER-2013 label "
              f"{f['agrees_with_fer2013_label']:.2%}, FER+ recall {f['ferplus_recall']}  |  Yale "
              f"{yl.get('accuracy', float('nan')):.2%} {yl.get('recall')}", flush=True)
    print(f"bias {result['logit_bias']}; PublicTest FER+ mean recall {fitted['before']:.3f} -> {fitted['after']:.3f}")
    write_json(args.json, result)


if __name__ == "__main__":
    main()

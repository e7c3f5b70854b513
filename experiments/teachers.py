"""Which teacher to distil from: every ensemble of the given exported models, scored as
cross_check.py scores one model, before any student is trained. A student rarely beats its teacher,
so this bounds what distillation can give; choose on PublicTest (FER+ majority) and Yale.

An ensemble is the geometric mean of its members' probabilities over the basic-7 classes (FER+'s
contempt dropped and the rest renormalised): `edgefer.core.spec.ensemble`, the mean
`recipes/teacher_targets.py` writes.

    python experiments/teachers.py --model fer2013-balanced --model fer2013 --model ferplus \\
        --json runs/teachers.json
"""

from __future__ import annotations

import argparse
import itertools

import cv2
import numpy as np

from edgefer.core import preprocess
from edgefer.core.files import write_json
from edgefer.core.spec import ensemble
from edgefer.core.taxonomy import BASIC7
from edgefer.data.fer2013 import read_ferplus
from edgefer.device.classifier import Classifier
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import Frame
from edgefer.evaluate.checks import SHARED, ferplus_truths, mean_recall, recall, yale_files, yale_truth
from edgefer.models import model_path


def readings(name: str, ferplus) -> dict:
    """(its labels, its probabilities on the FER+ PublicTest / PrivateTest images and the Yale frames)."""
    clf = Classifier(model_path(name))
    out = {
        s: np.stack([clf.run(clf.prepare(preprocess.read_image(p))) for p in ferplus.splits[s].images])
        for s in ("val", "test")
    }
    yale = []
    with Pipeline(model_path(name), None, video=False, smoothing=0.0, uncertain=0.0) as pipeline:
        for k, path in enumerate(yale_files()):
            rgb = cv2.cvtColor(preprocess.read_image(path), cv2.COLOR_GRAY2RGB)
            faces = pipeline.process(Frame(rgb, k / 25, k, path.name))
            face = max(faces, key=lambda f: f.box[2] * f.box[3])  # the subject; all 59 are found
            yale.append([face.probs[c] for c in clf.labels])
    out["yale"] = np.array(yale, np.float32)
    return clf.labels, out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="bundled name or .tflite; repeat")
    p.add_argument("--json", default="runs/teachers.json")
    args = p.parse_args()
    ferplus = read_ferplus(SHARED / "data" / "ferplus")
    truth = {}
    for s in ("val", "test"):
        plus, fer = ferplus_truths(ferplus.splits[s], ferplus.labels)
        truth[s] = {"plus": plus, "fer": fer}
    truth["yale"] = [yale_truth(f) for f in yale_files()]
    probs = {name: readings(name, ferplus) for name in args.model}

    def score(pred: list[str], against: list[str], keep: list[bool]) -> float:
        return round(float(np.mean([a == b for a, b, k in zip(pred, against, keep) if k])), 4)

    rows = {}
    for r in range(1, len(args.model) + 1):
        for members in itertools.combinations(args.model, r):
            mean = {
                k: ensemble([(probs[m][0], probs[m][1][k]) for m in members], BASIC7) for k in ("val", "test", "yale")
            }
            pred = {k: [BASIC7[int(np.argmax(q))] for q in v] for k, v in mean.items()}
            row = {}
            for s, name in (("val", "publictest"), ("test", "privatetest")):
                keep = [t in BASIC7 for t in truth[s]["plus"]]  # images whose majority is contempt: apart
                row[f"{name}_ferplus_majority"] = score(pred[s], truth[s]["plus"], keep)
                row[f"{name}_fer2013_label"] = score(pred[s], truth[s]["fer"], keep)
                # each class weighed the same, as on posed faces (cross_check's ferplus_mean_recall)
                kept = np.array(keep)
                row[f"{name}_ferplus_mean_recall"] = round(
                    mean_recall(np.array(truth[s]["plus"])[kept], np.array(pred[s])[kept], BASIC7), 4
                )
            row["yale"] = score(pred["yale"], truth["yale"], [True] * len(truth["yale"]))
            row["yale_recall"] = recall(truth["yale"], pred["yale"])
            rows[" + ".join(members)] = row
            print(f"{' + '.join(members):60s} {row}", flush=True)
    write_json(
        args.json,
        {"images": {s: sum(t in BASIC7 for t in truth[s]["plus"]) for s in ("val", "test")}, "ensembles": rows},
    )
    print("wrote", args.json)


if __name__ == "__main__":
    main()

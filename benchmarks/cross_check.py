"""Exported models against labels and faces they were not trained on (edgefer.evaluate.checks
and benchmarks/peers.py say what each figure is): FER+ majority and FER-2013 labels on PublicTest / PrivateTest, the same
faces cropped at the detector's box, clear emotional faces, Yale full frames through the device
pipeline; with more than one --model, each against the first on the same faces (paired intervals).

With --model fer, the `fer` package (its Haar cascade and CNN) is scored the same way: each 48x48
FER-2013 image given to it as the face, and the Yale frames through its own detector. It is not a
dependency; install it aside without its heavy extras:
    pip install --no-deps --target /tmp/fer_pkg fer
    PYTHONPATH=/tmp/fer_pkg python benchmarks/cross_check.py --model fer2013-balanced --model fer

    python benchmarks/cross_check.py --model fer2013-balanced --model fer2013 --model ferplus \\
        --json results/cross_check.json
"""

from __future__ import annotations

import argparse
import sys

from peers import FerPackage, at_box, fer_class, format_paired, paired

from edgefer.core.errors import EdgeferError
from edgefer.core.files import write_json
from edgefer.data.fer2013 import read_ferplus
from edgefer.device.classifier import Classifier
from edgefer.evaluate.checks import SHARED, ferplus_check, yale_check
from edgefer.models import model_path


def main():
    try:
        check()
    except EdgeferError as exc:
        sys.exit(f"cross_check: {exc}")


def check():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="bundled name, .tflite, or fer (the fer package); repeat")
    p.add_argument("--face-model", default=str(SHARED / "models" / "blaze_face_short_range.tflite"))
    p.add_argument("--json", default="runs/cross_check.json")
    args = p.parse_args()
    if "fer" in (args.model or []):
        fer_class()  # asked for before any face is read
    ferplus = read_ferplus(SHARED / "data" / "ferplus")
    results = {}
    for name in args.model or ["fer2013"]:
        clf = FerPackage() if name == "fer" else Classifier(model_path(name))
        results[name] = {
            "taxonomy": clf.card["taxonomy"],
            "labels": list(clf.labels),
            "flip_average": clf.flip_average,
            # PublicTest: where choices are made; PrivateTest: reported
            "ferplus_val": ferplus_check(clf, ferplus.splits["val"], ferplus.labels),
            "ferplus_test": ferplus_check(clf, ferplus.splits["test"], ferplus.labels),
            "ferplus_val_at_box": ferplus_check(clf, ferplus.splits["val"], ferplus.labels, at_box),
            "ferplus_test_at_box": ferplus_check(clf, ferplus.splits["test"], ferplus.labels, at_box),
            "yale": clf.yale() if name == "fer" else yale_check(model_path(name), args.face_model),
        }
        v, f, y = results[name]["ferplus_val"], results[name]["ferplus_test"], results[name]["yale"]
        vb, fb = results[name]["ferplus_val_at_box"], results[name]["ferplus_test_at_box"]
        print(
            f"{name:18s} PublicTest: FER+ majority {v['agrees_with_ferplus_majority']:.2%} "
            f"(mean per-class recall {v['ferplus_mean_recall']:.2%})  FER-2013 label "
            f"{v['agrees_with_fer2013_label']:.2%}  |  PrivateTest: FER+ majority {f['agrees_with_ferplus_majority']:.2%} "
            f"(mean per-class recall {f['ferplus_mean_recall']:.2%})  FER-2013 label "
            f"{f['agrees_with_fer2013_label']:.2%}  on {f['images']} PrivateTest images "
            f"(+{f['images_with_a_label_the_model_lacks']} it cannot label)  |  cropped at the box: FER+ "
            f"majority {vb['agrees_with_ferplus_majority']:.2%} / {fb['agrees_with_ferplus_majority']:.2%} "
            f"(mean per-class recall {vb['ferplus_mean_recall']:.2%} / {fb['ferplus_mean_recall']:.2%})  |  clear emotional "
            f"faces, mean recall {v['clear_emotion_mean_recall']:.2%} / {f['clear_emotion_mean_recall']:.2%} "
            f"({v['clear_emotion_images']} / {f['clear_emotion_images']} images)  |  Yale {y['accuracy']:.2%} "
            f"of {y['images']} (faces {y['faces_found']})  recall {y['recall']}  "
            f"p(true class) {y['true_class_probability']}",
            flush=True,
        )
    # what one set of faces can tell apart: each model against the first, on the same images
    first, *others = results
    diffs = {name: paired(results[first], results[name], ferplus) for name in others}
    for name, diff in diffs.items():
        print(format_paired(name, first, diff))
    write_json(args.json, {"models": results, "paired_against": first, "paired": diffs})
    print("wrote", args.json)


if __name__ == "__main__":
    main()

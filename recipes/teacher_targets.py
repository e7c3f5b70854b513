"""Teacher probabilities for distillation (`edgefer-train --teacher FILE.npz`): one or more exported
models read every training image, each as its card says (crop, colour, flip averaging, temperature),
and their probabilities are averaged in log space (a geometric mean) over the classes the student
will learn. Written once, so training reads them like FER+ votes instead of running the teachers
every step. Labels a teacher has and the student lacks (FER+ contempt) are dropped when mixed.

    python recipes/teacher_targets.py --model fer2013-balanced --model ferplus \\
        --data ../shared/data/fer2013 --out runs/teacher_default_ferplus.npz

`--keep-clear FERPLUS` leaves out of the file the training faces whose FER+ votes make them clear
emotional faces (as benchmarks/cross_check.py counts them): those keep their own targets (label and
votes), and the student learns from the teacher only where people read a face more than one way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgefer.core import preprocess
from edgefer.core.errors import EdgeferError
from edgefer.core.files import atomic_path
from edgefer.core.spec import ensemble
from edgefer.data import load_dataset
from edgefer.data.fer2013 import read_ferplus
from edgefer.device.classifier import Classifier
from edgefer.evaluate.checks import clear_emotions, ferplus_truths
from edgefer.models import model_path


def teacher_probs(models: list[str], images: list[str]) -> tuple[list[str], np.ndarray]:
    """(labels every teacher has, in the first teacher's order; (N, labels) geometric-mean probabilities)."""
    teachers = [Classifier(model_path(m)) for m in models]
    labels = [c for c in teachers[0].labels if all(c in t.labels for t in teachers)]
    readings = [
        (
            t.labels,
            np.stack(
                [
                    t.run(t.prepare(preprocess.read_image(path)))
                    for path in tqdm(images, desc=f"teacher {t.path.name}", mininterval=10)
                ]
            ),
        )
        for t in teachers
    ]
    return labels, ensemble(readings, labels)


def clear_faces(ferplus_dir) -> set[str]:
    """File names of the FER-2013 training faces that FER+ votes make clear emotional faces."""
    ferplus = read_ferplus(ferplus_dir)
    train = ferplus.splits["train"]
    plus, _ = ferplus_truths(train, list(ferplus.labels))
    return {Path(p).name for p, clear in zip(train.images, clear_emotions(train, plus)) if clear}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="bundled name or .tflite; repeat for an ensemble")
    p.add_argument("--data", required=True, help="the dataset the student trains on (its training split is read)")
    p.add_argument("--dataset", default="auto")
    p.add_argument("--out", required=True, help=".npz to write")
    p.add_argument("--keep-clear", metavar="FERPLUS", help="the FER+ folder: leave its clear emotional faces out")
    args = p.parse_args(argv)
    try:
        ds = load_dataset(args.data, args.dataset)
        images = [x for x in ds.splits["train"].images if isinstance(x, str)]
        if not images:
            raise EdgeferError(
                f"{args.data}: no image files in its training split; teachers read files "
                "(a FER-2013 csv has none: use the image folder)"
            )
        if args.keep_clear:
            clear = clear_faces(args.keep_clear)
            kept = [x for x in images if Path(x).name not in clear]
            print(f"left out {len(images) - len(kept)} clear emotional faces: they keep their own targets")
            images = kept
        labels, probs = teacher_probs(args.model, images)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as f:  # np.savez adds .npz to a bare path name
                np.savez(
                    f,
                    names=np.array([Path(x).name for x in images]),
                    labels=np.array(labels),
                    probs=probs,
                    models=np.array([str(m) for m in args.model]),
                )
    except EdgeferError as exc:
        sys.exit(f"teacher_targets: {exc}")
    print(f"wrote {out}: {len(images)} images, labels {labels}, teachers {args.model}")


if __name__ == "__main__":
    main()

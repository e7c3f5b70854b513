"""What a model reads on faces it was not trained on: the checks edgefer-calibrate reports
and the benchmarks and experiments build on.

1. FER+ majority labels (10 annotators per image) on the PublicTest images (validation: where
   choices are made) and the PrivateTest images (reported), next to FER-2013's single original
   label of the same images: how often a model agrees with most people.
   Images whose FER+ label a model cannot output (contempt, for a basic-7 model) are counted apart.
2. Yale faces: full 320x243 head-and-shoulders frames, through the whole device pipeline (BlazeFace,
   crop per card, int8 LiteRT). The four Yale conditions with an expression a FER model knows:
   happy, sad, surprised, normal (neutral). 04_sad.png is a copy of 04_normal.png in the shared
   data and is left out.
3. Clear emotional faces: the FER+ images at least 70% of whose counted votes name one emotion other
   than neutral (and contempt), the mean of the six per-class recalls on them: posed sets leave no
   doubt which expression is meant, while most FER-2013 faces' doubt is between an emotion and none.

The benchmarks add what they compare against (benchmarks/peers.py): the `fer` package, two models
paired on the same faces, and faces re-cropped at the detector's box.

The datasets are read from $EDGEFER_SHARED, else ../shared (beside the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..core import metrics, preprocess
from ..core.taxonomy import canonical
from ..data import load_dataset, load_pixels
from ..device.classifier import Classifier
from ..device.pipeline import Pipeline
from ..device.sources import Frame


def _shared() -> Path:
    """$EDGEFER_SHARED, else the `shared` folder beside the clone this package runs from (an editable
    install), else ../shared from the working directory."""
    if os.environ.get("EDGEFER_SHARED"):
        return Path(os.environ["EDGEFER_SHARED"])
    beside_clone = Path(__file__).resolve().parents[3] / "shared"
    return beside_clone if beside_clone.is_dir() else Path("../shared")


SHARED = _shared()
YALE = {"happy": "happy", "sad": "sad", "surprised": "surprise", "normal": "neutral"}
CLEAR = 0.7  # share of an image's counted FER+ votes on its top emotion for it to count as clear
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise")


def per_class_mean(truth: list[str], values: list[float]) -> dict:
    """The mean of `values` over the items of each true class, rounded to 3 places."""
    return {c: round(float(np.mean([v for t, v in zip(truth, values) if t == c])), 3) for c in sorted(set(truth))}


def recall(truth: list[str], pred: list[str]) -> dict:
    return per_class_mean(truth, [p == t for t, p in zip(truth, pred)])


def mean_recall(y: np.ndarray, pred: np.ndarray, classes) -> float:
    """Each class weighs the same, as in a set of posed faces with about as many of each expression
    (posed sets); accuracy on FER-2013's images weighs neutral and happy most."""
    kept = np.isin(y, classes)
    return metrics.mean_recall(y[kept], pred[kept])


def ferplus_truths(test, labels: list[str]) -> tuple[list[str], list[str]]:
    """Each image of a FER+ split: its FER+ majority label and its FER-2013 label (its folder)."""
    return [labels[i] for i in test.labels], [canonical(Path(p).parent.name) for p in test.images]


def clear_emotions(split, plus) -> np.ndarray:
    """Which images of a FER+ split are clear emotional faces (see the module's 4.); `plus`: their
    FER+ majority labels (`ferplus_truths`)."""
    return (split.soft.max(axis=1) >= CLEAR) & np.isin(plus, EMOTIONS)


def ferplus_check(clf: Classifier, test, labels: list[str], view=None) -> dict:
    """test: a FER+ split (paths of FER-2013 files, FER+ label indices into labels); `view`, when
    given, re-crops each face before the model sees it."""
    plus, original = ferplus_truths(test, labels)
    pred = []
    for path in test.images:
        image = preprocess.read_image(path)
        probs = clf.run(clf.prepare(view(image) if view else image))
        pred.append(clf.labels[int(np.argmax(probs))])
    known = [i for i, t in enumerate(plus) if t in clf.labels]
    truth, said = [plus[i] for i in known], [pred[i] for i in known]
    clear = clear_emotions(test, plus)
    return {
        "images": len(known),
        "images_with_a_label_the_model_lacks": len(plus) - len(known),
        "agrees_with_ferplus_majority": round(float(np.mean([s == t for s, t in zip(said, truth)])), 4),
        "agrees_with_fer2013_label": round(float(np.mean([pred[i] == original[i] for i in known])), 4),
        "ferplus_recall": recall(truth, said),
        "ferplus_mean_recall": round(mean_recall(np.array(truth), np.array(said), np.unique(truth)), 4),
        "clear_emotion_images": int(clear.sum()),
        "clear_emotion_mean_recall": round(mean_recall(np.array(plus)[clear], np.array(pred)[clear], EMOTIONS), 4),
        "predictions": pred,  # every image's, in the split's order: for paired comparisons
    }


def yale_truth(path) -> str:
    """A Yale file's expression: its condition (`07_surprised.png` -> surprise)."""
    return YALE[Path(path).stem.split("_", 1)[1]]


def yale_files() -> list[Path]:
    """The Yale frames of the four conditions that name an expression (04_sad.png, a copy of 04_normal.png, left out)."""
    return sorted(
        p
        for p in (SHARED / "data" / "yale_faces").glob("*.png")
        if p.stem.split("_", 1)[1] in YALE and p.name != "04_sad.png"
    )


def yale_check(model, face_model) -> dict:
    """Yale frames through the device pipeline; the largest face is the subject."""
    with Pipeline(model, face_model, video=False, smoothing=0.0, uncertain=0.0) as pipeline:  # the decision itself

        def read(k, path, rgb):
            faces = pipeline.process(Frame(rgb, k / 25, k, path.name))
            if not faces:
                return "no face", {}
            face = max(faces, key=lambda f: f.box[2] * f.box[3])
            return face.label, face.probs

        return yale_score(read)


def yale_score(read) -> dict:
    """read(index, path, rgb frame) -> (the subject's label, or "no face"; its probabilities by label).
    Beside the decisions, the mean probability given to the true class, per class: 14 or 15 faces
    a class make recall move in steps of 7%, while the probability shows a class drawing nearer
    (Yale's sad faces, read as neutral by every CNN here) before its decisions change."""
    files = yale_files()
    truth, pred, p_true = [], [], []
    for k, path in enumerate(files):
        rgb = cv2.cvtColor(preprocess.read_image(path), cv2.COLOR_GRAY2RGB)
        truth.append(yale_truth(path))
        label, probs = read(k, path, rgb)
        pred.append(label)
        p_true.append(float(probs.get(truth[-1], 0.0)))
    return {
        "images": len(files),
        "faces_found": sum(p != "no face" for p in pred),
        "accuracy": round(float(np.mean([t == p for t, p in zip(truth, pred)])), 4),
        "recall": recall(truth, pred),
        "true_class_probability": per_class_mean(truth, p_true),
        "predictions": {p.name: label for p, label in zip(files, pred)},
    }


DATASETS = {
    "fer2013": ("data/fer2013", "auto"),
    "ferplus": ("data/ferplus", "auto"),
    "ferplus-compound": ("data/ferplus", "ferplus-compound"),
}


def own_test_split(clf: Classifier):
    """(pixels through the model's spec, labels) of the test split of the dataset its card names."""
    folder, kind = DATASETS[clf.card["trained_on"]["dataset"]]
    ds = load_dataset(SHARED / folder, kind)
    x, kept, _ = load_pixels(ds.splits["test"], clf.spec, desc=f"{clf.path.name} test")
    return x, ds.splits["test"].labels[kept]

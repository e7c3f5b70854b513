"""What the benchmarks compare the models with, beside the checks the package itself runs
(edgefer.evaluate.checks, which edgefer-calibrate uses): the `fer` package read the same way, two
models paired on the same faces, and FER-2013's faces re-cropped at the detector's box. Imported by
the benchmarks beside it; nothing in the package depends on it.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgefer.core import metrics, preprocess
from edgefer.core.errors import EdgeferError
from edgefer.data.fer2013 import FER2013_MARGIN, FER2013_OFFSET_Y
from edgefer.evaluate.checks import clear_emotions, ferplus_truths, yale_score, yale_truth


def at_box(image: np.ndarray) -> np.ndarray:
    """FER+ majority again, each FER-2013 face re-cropped tightly at the face detector's box (no margin):
    the crop another tool or dataset makes, where FER-2013's own crop keeps forehead and chin around the
    box. A FER-2013 face cropped at its detector box, no margin (about 1.2x tighter and lower)."""
    n = image.shape[0]
    side = n / (1 + 2 * FER2013_MARGIN)
    cx, cy = n / 2, n / 2 - FER2013_OFFSET_Y * side
    return preprocess.crop_face(image, (cx - side / 2, cy - side / 2, side, side), 0.0)


def paired(first: dict, other: dict, ferplus) -> dict:
    """`other` − `first` on the same faces, each with its 95% paired-bootstrap interval
    (`metrics.paired_difference`; an interval that holds 0 says these faces cannot tell the two
    apart, not what another seed would do): FER+ agreement, its mean per-class recall and FER-2013's label
    on PublicTest and PrivateTest, and Yale's full frames. Images whose FER+ majority either model
    cannot say (contempt, for a basic-7 model) are left out of the FER+ figures."""
    out = {}
    for half in ("val", "test"):
        split = ferplus.splits[half]
        plus, original = (np.array(t) for t in ferplus_truths(split, ferplus.labels))
        a, b = (np.array(m[f"ferplus_{half}"]["predictions"]) for m in (first, other))
        known = np.isin(plus, first["labels"]) & np.isin(plus, other["labels"])
        out[f"ferplus_{half}"] = metrics.paired_difference(plus[known], a[known], b[known])
        out[f"ferplus_{half}_mean_recall"] = metrics.paired_difference(
            plus[known], a[known], b[known], metrics.mean_recall
        )
        out[f"fer2013_label_{half}"] = metrics.paired_difference(original[known], a[known], b[known])
        clear = clear_emotions(split, plus)
        out[f"clear_emotions_{half}"] = metrics.paired_difference(plus[clear], a[clear], b[clear], metrics.mean_recall)
    files = sorted(first["yale"]["predictions"])
    truth = [yale_truth(f) for f in files]
    out["yale"] = metrics.paired_difference(
        truth, *([m["yale"]["predictions"][f] for f in files] for m in (first, other))
    )
    return out


def format_paired(name: str, first: str, diff: dict) -> str:
    def pts(d):
        return f"{100 * d['difference']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"

    return (
        f"{name} − {first}, points [95% paired bootstrap]: PublicTest FER+ majority {pts(diff['ferplus_val'])}, "
        f"mean per-class recall {pts(diff['ferplus_val_mean_recall'])}, FER-2013 label "
        f"{pts(diff['fer2013_label_val'])}  |  PrivateTest FER+ majority {pts(diff['ferplus_test'])}, mean "
        f"per-class recall {pts(diff['ferplus_test_mean_recall'])}, FER-2013 label {pts(diff['fer2013_label_test'])}"
        f"  |  clear emotional faces, mean recall {pts(diff['clear_emotions_val'])} / {pts(diff['clear_emotions_test'])}"
        f"  |  Yale {pts(diff['yale'])}"
    )


class FerMissing(EdgeferError, ImportError):
    pass


def fer_class():
    """The `fer` package's FER class; it is not a dependency, so where it is absent, how to get it."""
    try:
        from fer.fer import FER
    except ImportError:
        raise FerMissing(
            "the fer package is not importable; install it aside, without its heavy extras: "
            "pip install --no-deps --target /tmp/fer_pkg fer, then run with PYTHONPATH=/tmp/fer_pkg"
        ) from None
    return FER


class FerPackage:
    """The `fer` package read the way this file reads a model: `labels`, `prepare`, `run` for a
    FER-2013 image given as the face (offsets 0, so its CNN sees exactly the image: with its default
    10 px it adds a gray border and scores 9-15 points lower on PublicTest), `yale()` for full
    frames through its own Haar detector with its defaults. It rounds its scores to 2 decimals, so a
    tie goes to the first label in its order."""

    def __init__(self):
        FER = fer_class()
        self.fer = FER()  # its defaults: Haar cascade, 10 px offsets, quantised TFLite CNN
        self.crops = FER(offsets=(0, 0))
        self.labels = list(FER._get_labels().values())
        self.card = {"taxonomy": "basic7"}
        self.flip_average = False

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image

    def run(self, bgr: np.ndarray) -> np.ndarray:
        (face,) = self.crops.detect_emotions(bgr, face_rectangles=[(0, 0, bgr.shape[1], bgr.shape[0])])
        return np.array([face["emotions"][c] for c in self.labels])

    def yale(self) -> dict:
        def read(k, path, rgb):
            faces = self.fer.detect_emotions(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if not faces:
                return "no face", {}
            emotions = max(faces, key=lambda f: f["box"][2] * f["box"][3])["emotions"]
            return max(emotions, key=emotions.get), emotions

        return yale_score(read)

"""Calibrate an exported model on what people see, and check it on faces it never saw. Fitted on
the FER+ majority label of the PublicTest images (validation; 10 annotators per image), written
into a copy of the model's card:
- `inference.temperature`: temperature scaling (Guo et al. 2017), the one number that minimises
  the negative log-likelihood; the decision stays, the confidence then means what it says
  (expected calibration error, ECE, before and after, on PrivateTest);
- `inference.uncertain_below`: after that, the top probability below which a face is more often
  wrong than right; edgefer-cam keeps such a face's label and shows it as uncertain;
- with --bias, `inference.logit_bias`: a class-prior adjustment per class, by coordinate ascent on
  the mean per-class recall (it moves decisions; measured on the default and not shipped:
  docs/results/calibration.md); --set-bias LABEL=VALUE gives one instead (e.g. neutral=-1: the
  post-hoc twin of training without the neutral votes on emotion-labelled faces), and with --bias holds
  that class at VALUE while the others are fitted (`ferplus` ships --bias --set-bias sad=0:
  docs/results/calibration.md).
Reported before and after: the FER+ majority and FER-2013 label of the PrivateTest images, and
(with --bias or --set-bias, where decisions move) Yale full frames through the device pipeline.

    edgefer-calibrate --model fer2013-balanced --json calibrate.json
    edgefer-calibrate --model RUN/export/x_int8.tflite --out edgefer/models/x_int8.tflite

The FER+ votes and the FER-2013 images: --votes and --images, by default from $EDGEFER_SHARED, else
the `shared` folder beside the clone, else ../shared.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..core import card as card_mod
from ..core.errors import EdgeferError
from ..core.files import CommandParser, write_bytes, write_json
from ..core.metrics import classification_report
from ..core.spec import adjust
from ..data import load_pixels
from ..data.fer2013 import read_ferplus
from ..device.classifier import Classifier
from ..models import model_path
from .checks import SHARED, ferplus_check, mean_recall, own_test_split, yale_check

GRID = np.round(np.arange(-2.0, 2.01, 0.25), 2)
TEMPERATURES = np.round(np.exp(np.linspace(np.log(0.25), np.log(4.0), 81)), 4)
BARS = np.round(np.arange(0.20, 0.701, 0.05), 2)


def fit_bias(probs: np.ndarray, y: np.ndarray, rounds: int = 3, held: dict[int, float] | None = None) -> np.ndarray:
    """Coordinate ascent over one bias per class on a grid, the first class held at 0, and each
    class in `held` (index -> bias) held at its value while the others are fitted around it."""
    classes = np.unique(y)
    held = held or {}
    bias = np.zeros(probs.shape[1], np.float32)
    for c, value in held.items():
        bias[c] = value
    best = mean_recall(y, adjust(probs, bias).argmax(1), classes)
    for _ in range(rounds):
        for c in range(1, probs.shape[1]):
            if c in held:
                continue
            for value in GRID:
                trial = bias.copy()
                trial[c] = value
                score = mean_recall(y, adjust(probs, trial).argmax(1), classes)
                if score > best + 1e-9:
                    best, bias = score, trial
    return bias


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-6, None))))


def fit_temperature(probs: np.ndarray, y: np.ndarray, bias=0.0) -> float:
    return float(min(TEMPERATURES, key=lambda t: nll(adjust(probs, bias, t), y)))


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: |accuracy - confidence| averaged over confidence bins, by size."""
    conf, right = probs.max(1), probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return float(total)


def uncertain_bar(probs: np.ndarray, y: np.ndarray, width: float = 0.1) -> float:
    """The lowest top probability from which faces are right at least half of the time: the first
    band [bar, bar + width) of BARS holding 20 or more faces whose accuracy reaches 50%."""
    conf, right = probs.max(1), probs.argmax(1) == y
    for bar in BARS:
        band = (conf >= bar) & (conf < bar + width)
        if band.sum() >= 20 and right[band].mean() >= 0.5:
            return float(bar)
    return 0.0


def main(argv=None) -> int:
    p = CommandParser(
        prog="edgefer-calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="fer2013-balanced", help="bundled name or .tflite")
    p.add_argument(
        "--face-model", default=None, help="face detector for the Yale check (default: the one bundled in the package)"
    )
    p.add_argument("--bias", action="store_true", help="fit a class-prior adjustment too (moves decisions)")
    p.add_argument(
        "--set-bias",
        action="append",
        default=[],
        metavar="LABEL=VALUE",
        help="a class-prior adjustment given, not fitted (e.g. neutral=-1; moves decisions); "
        "with --bias, held at that value while the other classes are fitted; repeat",
    )
    p.add_argument(
        "--votes",
        default=str(SHARED / "data" / "ferplus"),
        help="the FER+ folder: fer2013new.csv and ferplus_to_fer2013_folder_mapping.csv (default: $EDGEFER_SHARED/data/ferplus)",
    )
    p.add_argument(
        "--images",
        default=str(SHARED / "data" / "fer2013"),
        help="the FER-2013 image folder the votes refer to (default: $EDGEFER_SHARED/data/fer2013)",
    )
    p.add_argument("--out", help="the calibrated model (default: calibrated_<name>.tflite)")
    p.add_argument("--json", default="calibrate.json", help="the figures before and after")
    args = p.parse_args(argv)
    try:
        calibrate(p, args)
    except EdgeferError as exc:
        print(f"edgefer-calibrate: error: {exc}", file=sys.stderr)
        return 2
    return 0


def calibrate(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    path = model_path(args.model)
    votes = Path(args.votes)
    if not (votes.is_file() or (votes / "fer2013new.csv").is_file()):
        raise EdgeferError(
            f"{votes}: no FER+ votes (fer2013new.csv) here; calibration fits confidence on FER+ faces: "
            "pass --votes (the FER+ folder) and --images (the FER-2013 folder), or set EDGEFER_SHARED"
        )
    if not Path(args.images).exists():
        raise EdgeferError(
            f"{args.images}: no such FER-2013 image folder; pass --images (the folder the FER+ votes refer to)"
        )
    clf = Classifier(path)
    given_bias = {}  # --set-bias, checked before any face is read
    for given in args.set_bias:
        label, _, value = given.partition("=")
        if label not in clf.labels:
            p.error(f"--set-bias {given}: {path.name} has no class {label!r}; its classes are {list(clf.labels)}")
        try:
            given_bias[label] = float(value)
        except ValueError:
            p.error(f"--set-bias {given}: {value!r} is not a number; write it as {label}=-1")
    plain = clf.spec.replace(logit_bias=(), temperature=1.0, uncertain_below=0.0)
    clf.spec = plain
    ferplus = read_ferplus(args.votes, images=args.images)

    def faces_of(split, desc):  # (pixels, FER+ majority as the model's class index) of a split
        truth = np.array(
            [clf.labels.index(ferplus.labels[i]) if ferplus.labels[i] in clf.labels else -1 for i in split.labels]
        )
        keep = np.flatnonzero(truth >= 0)
        x, kept, _ = load_pixels(split.subset(keep), plain, desc=desc)
        return x, truth[keep][kept]

    x, y = faces_of(ferplus.splits["val"], "PublicTest")
    probs = plain.predict(clf.run_batch, x)
    held = {clf.labels.index(label): value for label, value in given_bias.items()}
    bias = fit_bias(probs, y, rounds=3 if args.bias else 0, held=held)  # no rounds: the given values alone
    adjusted = args.bias or bool(given_bias)
    temperature = fit_temperature(probs, y, bias)
    calibrated = adjust(probs, bias, temperature)
    bar = uncertain_bar(calibrated, y)
    spec = plain.replace(
        logit_bias=tuple(bias.tolist()) if adjusted else (), temperature=temperature, uncertain_below=bar
    )
    out = Path(args.out or f"calibrated_{path.stem}.tflite")
    card = card_mod.with_spec(card_mod.read_embedded(path), spec)
    if adjusted:  # decisions moved: the card's test-split figure is measured again, as the new card decides
        x_own, y_own = own_test_split(clf)
        report = classification_report(y_own, spec.predict(clf.run_batch, x_own).argmax(1), clf.labels)
        card["metrics"] = dict(
            card.get("metrics", {}), tflite_test={"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}
        )
        print(
            f"{out.name}: its own test split with the bias {report['accuracy']:.2%} (macro-F1 "
            f"{report['macro_f1']:.3f}), written into its card",
            flush=True,
        )
    write_bytes(out, card_mod.embed(card_mod.model_bytes(path.read_bytes()), card))

    xt, yt = faces_of(ferplus.splits["test"], "PrivateTest")
    test_probs = plain.predict(clf.run_batch, xt)
    test_calibrated = adjust(test_probs, bias, temperature)
    below = test_calibrated.max(1) < bar
    result = {
        "model": str(path),
        "calibrated_model": str(out),
        "temperature": temperature,
        "uncertain_below": bar,
        "logit_bias": dict(zip(clf.labels, bias.tolist())) if adjusted else None,
        "publictest_ferplus": {
            "nll": [nll(probs, y), nll(calibrated, y)],
            "ece": [ece(probs, y), ece(calibrated, y)],
            "mean_recall": [
                mean_recall(y, probs.argmax(1), np.unique(y)),
                mean_recall(y, calibrated.argmax(1), np.unique(y)),
            ],
        },
        "privatetest_ferplus": {
            "nll": [nll(test_probs, yt), nll(test_calibrated, yt)],
            "ece": [ece(test_probs, yt), ece(test_calibrated, yt)],
            "uncertain_share": float(below.mean()),
            "accuracy_uncertain": float((test_calibrated.argmax(1) == yt)[below].mean()) if below.any() else None,
            "accuracy_rest": float((test_calibrated.argmax(1) == yt)[~below].mean()),
        },
    }
    pt = result["privatetest_ferplus"]
    print(
        f"temperature {temperature:g}; PrivateTest FER+ ECE {pt['ece'][0]:.3f} -> {pt['ece'][1]:.3f}, "
        f"NLL {pt['nll'][0]:.3f} -> {pt['nll'][1]:.3f}; uncertain below {bar:g}: {pt['uncertain_share']:.1%} of "
        f"faces, right {pt['accuracy_uncertain'] or 0:.1%} of the time (the rest {pt['accuracy_rest']:.1%})",
        flush=True,
    )
    if adjusted:  # decisions move: the whole check, before and after
        for which, model in (("before", path), ("after", out)):
            c = Classifier(model)
            c.spec = plain if which == "before" else c.spec
            result[which] = {
                "ferplus_test": ferplus_check(c, ferplus.splits["test"], ferplus.labels),
                "yale": yale_check(model, args.face_model),
            }
            f, yl = result[which]["ferplus_test"], result[which]["yale"]
            print(
                f"{which:6s} PrivateTest: FER+ majority {f['agrees_with_ferplus_majority']:.2%}, FER-2013 label "
                f"{f['agrees_with_fer2013_label']:.2%}, FER+ recall {f['ferplus_recall']}  |  Yale "
                f"{yl['accuracy']:.2%} {yl['recall']}",
                flush=True,
            )
        print(f"bias {result['logit_bias']}")
    write_json(args.json, result)
    print(f"wrote {out} (edgefer-cam --model {out}); figures before and after: {args.json}")


if __name__ == "__main__":
    sys.exit(main())

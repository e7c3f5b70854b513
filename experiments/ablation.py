"""One row per generalisation lever, same seed and epochs: train, full-integer int8 (PTQ, flip
averaging), then the figures choices are made on — PublicTest (validation), the FER+ majority
label of the PrivateTest images, Yale full frames through the device pipeline — and PrivateTest
reported beside them, never chosen on.

    python experiments/ablation.py --config recipes/fer2013_default.toml --size 64 --epochs 5 --json runs/ablation.json
    python experiments/ablation.py ... --only votes,camera        # some rows
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from framing import reframed

from edgefer.core.files import write_json
from edgefer.core.spec import FaceCrop
from edgefer.data.fer2013 import FER2013_MARGIN, FER2013_OFFSET_Y, read_ferplus
from edgefer.device.classifier import Classifier
from edgefer.evaluate.checks import SHARED, ferplus_check, yale_check
from edgefer.export.exporter import export
from edgefer.train import make_config, train

VOTES = str(SHARED / "data" / "ferplus")
# the crop framing measured on FER-2013 faces (experiments/framing.py)
FRAMED = {"margin": FER2013_MARGIN, "offset_y": FER2013_OFFSET_Y}
LEVERS = {
    "baseline": {},
    "framing": FRAMED,
    "votes": dict(FRAMED, votes=VOTES),
    "camera": dict(FRAMED, camera=True),
    "votes+camera": dict(FRAMED, votes=VOTES, camera=True),
}
# the crop the cards had before the framing was measured
BASE_CROP = {"margin": 0.2, "offset_y": 0.0}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="recipes/fer2013_default.toml")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--size", type=int, default=None, help="input side (default: the config's); smaller is faster")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--only", help="comma-separated rows of " + ", ".join(LEVERS))
    p.add_argument("--face-model", default=str(SHARED / "models" / "blaze_face_short_range.tflite"))
    p.add_argument("--json", default="runs/ablation.json")
    args = p.parse_args()
    ferplus_test = read_ferplus(SHARED / "data" / "ferplus")
    rows = {}
    for name in args.only.split(",") if args.only else LEVERS:
        levers = LEVERS[name]
        # framing is a device setting (the card's face crop): the baseline run serves the framing row
        trained = {k: v for k, v in levers.items() if k not in FRAMED}
        levers = dict(BASE_CROP, **levers)
        run = Path(args.out) / ("baseline" if name == "framing" else name.replace("+", "_"))
        started = time.time()
        if (run / "metrics.json").exists():  # trained already (the framing row reuses the baseline)
            metrics = json.loads((run / "metrics.json").read_text())
        else:
            metrics = train(
                make_config(args.config, out=str(run), epochs=args.epochs, size=args.size, resume=True, **trained)
            ).metrics
        model = run / "export" / "model_int8.tflite"
        if not model.exists():
            export(run, model, mode="ptq", flip_average=True, compare_float=False, invokes=20, threads=(1,))
        # every row gets its crop set explicitly (the recipe's own may already be the measured one)
        model = reframed(
            model,
            FaceCrop(levers["margin"], levers["offset_y"]),
            run / "export" / f"model_int8_{name.replace('+', '_')}.tflite",
        )
        clf = Classifier(model)
        f = ferplus_check(clf, ferplus_test.splits["test"], ferplus_test.labels)
        y = yale_check(model, args.face_model)
        rows[name] = {
            "levers": LEVERS[name],
            "val_accuracy_keras": metrics["val"]["accuracy"],
            "test_accuracy_keras": metrics["accuracy"],
            "ferplus_majority": f["agrees_with_ferplus_majority"],
            "yale_accuracy": y["accuracy"],
            "yale_recall": y["recall"],
            "seconds": round(time.time() - started),
        }
        r = rows[name]
        print(
            f"ABLATION {name:14s} PublicTest {r['val_accuracy_keras']:.2%}  FER+ majority {r['ferplus_majority']:.2%}  "
            f"Yale {r['yale_accuracy']:.2%} {r['yale_recall']}  | PrivateTest {r['test_accuracy_keras']:.2%}  "
            f"({r['seconds']} s)",
            flush=True,
        )
        write_json(args.json, {"config": args.config, "epochs": args.epochs, "size": args.size, "rows": rows})


if __name__ == "__main__":
    main()

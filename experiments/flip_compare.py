"""Single pass against flip averaging (a face and its mirror image, probabilities averaged) for
exported models, on the validation split (where the choice is made) and the test split, with the
LiteRT interpreter. Each model is scored on the data of the run it was trained in.

    python experiments/flip_compare.py runs/recipe_fer2013 edgefer/models/fer2013_int8.tflite \\
        runs/recipe_ferplus edgefer/models/ferplus_int8.tflite --json runs/flip_val.json
"""

from __future__ import annotations

import argparse

from edgefer.core.files import write_json
from edgefer.export.exporter import evaluate_tflite
from edgefer.train import run as run_mod


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pairs", nargs="+", help="RUN MODEL.tflite [RUN MODEL.tflite ...]")
    p.add_argument("--json", default="runs/flip_val.json")
    args = p.parse_args()
    if len(args.pairs) % 2:
        p.error("give run directories and models in pairs")
    results = {}
    for run, model in zip(args.pairs[::2], args.pairs[1::2]):
        arrays = run_mod.load(run, model=False).arrays(["val", "test"])
        for split in ("val", "test"):
            flipped, single = evaluate_tflite(model, arrays[split].x, arrays[split].y, flip_average=True)
            results[f"{model} {split}"] = {
                "single_pass": round(single["accuracy"], 4),
                "flip_average": round(flipped["accuracy"], 4),
            }
            print(model, split, results[f"{model} {split}"], flush=True)
    write_json(args.json, results)


if __name__ == "__main__":
    main()

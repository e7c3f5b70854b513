"""Single pass against flip averaging (a face and its mirror image, probabilities averaged) for
exported models, on the validation split (where the choice is made) and the test split, with the
LiteRT interpreter. Each model is scored on the data of the run it was trained in.

    python benchmarks/flip_compare.py runs/recipe_fer2013 edgefer/models/fer2013_int8.tflite \\
        runs/recipe_ferplus edgefer/models/ferplus_int8.tflite --json runs/flip_val.json
"""
from __future__ import annotations

import argparse

from edgefer.core.files import write_json
from edgefer.export.exporter import evaluate_flip, load_run
from edgefer.train.trainer import dataset_for, prepare_arrays


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pairs", nargs="+", help="RUN MODEL.tflite [RUN MODEL.tflite ...]")
    p.add_argument("--json", default="runs/flip_val.json")
    args = p.parse_args()
    if len(args.pairs) % 2:
        p.error("give run directories and models in pairs")
    results = {}
    for run, model in zip(args.pairs[::2], args.pairs[1::2]):
        cfg = load_run(run)[2]
        arrays, _ = prepare_arrays(dataset_for(cfg), cfg)
        for split in ("val", "test"):
            single, flipped = evaluate_flip(model, arrays[split].x, arrays[split].y)
            results[f"{model} {split}"] = {"single_pass": round(single["accuracy"], 4),
                                           "flip_average": round(flipped["accuracy"], 4)}
            print(model, split, results[f"{model} {split}"], flush=True)
    write_json(args.json, results)


if __name__ == "__main__":
    main()

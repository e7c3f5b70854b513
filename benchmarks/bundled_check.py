"""The bundled models on their own test splits with the LiteRT interpreter, through the spec their
card carries, beside the figure the export measured and wrote into the card (tflite_test).

    python benchmarks/bundled_check.py --json results/bundled_check.json
"""

from __future__ import annotations

import argparse

from edgefer.core.files import write_json
from edgefer.device.classifier import Classifier
from edgefer.evaluate.checks import own_test_split
from edgefer.export.exporter import evaluate_tflite
from edgefer.models import BUNDLED, model_path


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default="results/bundled_check.json")
    args = p.parse_args()
    results = {}
    for name in BUNDLED:
        clf = Classifier(model_path(name))
        x, y = own_test_split(clf)
        report, single = evaluate_tflite(model_path(name), x, y)
        card_figure = clf.card["metrics"]["tflite_test"]["accuracy"]
        results[name] = {
            "dataset": clf.card["trained_on"]["dataset"],
            "test_images": int(len(y)),
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
            "single_pass_accuracy": single and single["accuracy"],
            "card_tflite_test": card_figure,
        }
        print(
            f"{name:18s} test {report['accuracy']:.2%} (macro-F1 {report['macro_f1']:.3f}) on {len(y)} images; "
            f"the card says {card_figure:.2%}",
            flush=True,
        )
    write_json(args.json, results)


if __name__ == "__main__":
    main()

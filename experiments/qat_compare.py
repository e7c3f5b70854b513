"""Post-training quantization against quantization-aware training on one trained run, all
full-integer int8, scored with the LiteRT interpreter on val (PublicTest, where choices are made)
and test (PrivateTest, reported).

    python experiments/qat_compare.py runs/fer2013_default --qat-epochs 1,2 --tfmot-init \\
        --json runs/qat_compare.json

Variants: ptq; qat-N (activation ranges started from calibration, as edgefer-export does, then N
epochs); with --tfmot-init also qat-N-tfmot-init (tfmot's own [-6, 6] starting ranges). N = 0 is
allowed here to show why edgefer-export refuses it: the weights' ranges are set on the first
training step, so with none the converted model is noise.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from edgefer.core.files import write_json
from edgefer.export import exporter
from edgefer.train import run as run_mod


def score(model_bytes: bytes, card: dict, arrays) -> dict:
    from edgefer.core import card as card_mod

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.tflite"
        path.write_bytes(card_mod.embed(model_bytes, dict(card, quantization={})))
        out = {}
        for split in ("val", "test"):
            r = exporter.evaluate_tflite(path, arrays[split].x, arrays[split].y, flip_average=False)[0]
            out[split] = {"accuracy": round(r["accuracy"], 4), "macro_f1": round(r["macro_f1"], 4)}
        return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--qat-epochs", default="1,2")
    p.add_argument("--qat-lr", type=float, default=1e-5)
    p.add_argument("--tfmot-init", action="store_true", help="also run tfmot's own range start")
    p.add_argument("--representative", type=int, default=1000)
    p.add_argument("--json", default="runs/qat_compare.json")
    args = p.parse_args()

    run = run_mod.load(args.run)
    model, card, cfg = run.model, run.card, run.config
    arrays = run.arrays()
    rep = exporter.representative(arrays["train"].x, args.representative, cfg.seed)
    calibration = np.stack([x[0][0] for x in rep()])
    n = len(run.spec.labels)
    rows = {}

    def record(name, source, started):
        rows[name] = score(exporter.convert(source, "int8", rep), card, arrays)
        rows[name]["seconds"] = round(time.perf_counter() - started, 1)
        print(
            f"{name:22s} val {rows[name]['val']['accuracy']:.2%}  test {rows[name]['test']['accuracy']:.2%}  "
            f"({rows[name]['seconds']} s)",
            flush=True,
        )

    t = time.perf_counter()
    record("ptq", model, t)
    for epochs in [int(e) for e in args.qat_epochs.split(",")]:
        variants = [(f"qat-{epochs}", calibration)]
        if args.tfmot_init:
            variants.append((f"qat-{epochs}-tfmot-init", None))  # no calibration: tfmot's own start
        for name, images in variants:
            t = time.perf_counter()
            record(name, exporter.quantization_aware(model, arrays, cfg, n, epochs, args.qat_lr, images), t)
    write_json(
        args.json, {"run": args.run, "qat_lr": args.qat_lr, "representative": args.representative, "results": rows}
    )
    print("wrote", args.json)


if __name__ == "__main__":
    main()

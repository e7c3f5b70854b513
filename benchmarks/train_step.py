"""How fast a recipe trains on this machine: the training loop's steady-state time per step (the
recipe's model, batch size and augmentation pipeline, `model.fit` as the trainer runs it), the CPU
it keeps busy, and the augmentation pipeline alone. Pixels are random: speed does not depend on
what the faces show, so no dataset is needed. Several rounds, so that a noisy machine shows.

    python benchmarks/train_step.py --config recipes/fer2013_oversample.toml --json runs/train_step.json

To compare with another version of the trainer, run the same command with that version first on
the path (`git worktree add /tmp/old COMMIT`, then `PYTHONPATH=/tmp/old python benchmarks/...`).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from edgefer._tf import keras
from edgefer.core.files import write_json
from edgefer.core.preprocess import channels as color_channels
from edgefer.device.bench import machine, machine_line
from edgefer.train import arrays as train_arrays
from edgefer.train import batches, trainer
from edgefer.train.backbones import build_model
from edgefer.train.config import make_config


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class StepClock(keras.callbacks.Callback):
    """Wall and CPU time of steps warmup..warmup+steps of one epoch (tracing and the shuffle
    buffer's first fill fall before it)."""

    def __init__(self, warmup: int, steps: int):
        super().__init__()
        self.warmup, self.steps = warmup, steps

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.warmup:
            self.cpu0, self.wall0 = cpu_seconds(), time.perf_counter()
        elif batch == self.warmup + self.steps:
            wall = time.perf_counter() - self.wall0
            self.ms_per_step = 1000 * wall / self.steps
            self.cpu_busy = (cpu_seconds() - self.cpu0) / wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="recipes/fer2013_oversample.toml")
    ap.add_argument("--size", type=int, help="input size instead of the recipe's")
    ap.add_argument(
        "--freeze",
        help="freeze the backbone up to this layer instead of as the recipe says (e.g. block_2_add; '' for none)",
    )
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--steps", type=int, default=90)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--jit", action="store_true", help="compile the training step with XLA (jit_compile=True)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    overrides = (
        {"balance": "none"}
        | ({"size": args.size} if args.size else {})
        | ({"freeze": args.freeze} if args.freeze is not None else {})
    )
    cfg = make_config(args.config, **overrides)
    channels = color_channels(cfg.color)
    n = cfg.batch_size * (args.warmup + args.steps + 1)
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (n, cfg.size, cfg.size, 1), dtype=np.uint8)
    faces = np.repeat(gray, channels, axis=-1)  # gray3: one gray channel three times, as prepared
    targets = np.eye(7, dtype=np.float32)[rng.integers(0, 7, n)]
    arrays = {"train": train_arrays.Arrays(faces, targets.argmax(1), targets)}
    examples, count = batches.training_examples(arrays, cfg, 7)

    m = machine()
    print(machine_line(m))
    print(
        f"{args.config}: {cfg.arch} alpha {cfg.alpha}, {cfg.size} px, batch {cfg.batch_size}, "
        f"camera conditions {'on' if cfg.camera else 'off'}, frozen through {cfg.freeze or 'nothing'}, "
        f"XLA {'on' if args.jit else 'off'}"
    )
    # no ImageNet weights: random pixels train as fast on random weights, and no file is needed
    model = build_model(cfg.arch, 7, cfg.size, channels, cfg.alpha, "none", cfg.dropout, cfg.bn_momentum, cfg.freeze)
    trainer.compile_for_training(model, cfg, args.warmup + args.steps + 1, jit_compile=args.jit)
    rounds = []
    for r in range(args.rounds):
        pipeline = batches.epoch_batches(examples, count, cfg, r)
        start = time.perf_counter()
        for _ in pipeline.take(args.warmup + args.steps):
            pass
        pipeline_ms = 1000 * (time.perf_counter() - start) / (args.warmup + args.steps)
        clock = StepClock(args.warmup, args.steps)
        model.fit(batches.epoch_batches(examples, count, cfg, r), epochs=1, verbose=0, callbacks=[clock])
        rounds.append(
            {
                "ms_per_step": round(clock.ms_per_step, 1),
                "cpu_busy": round(clock.cpu_busy, 2),
                "pipeline_ms_per_batch": round(pipeline_ms, 1),
            }
        )
        print(
            f"round {r + 1}: training step {clock.ms_per_step:.0f} ms (CPU busy {clock.cpu_busy:.2f} of "
            f"{m['cores']} cores); augmentation pipeline alone {pipeline_ms:.0f} ms a batch"
        )
    if args.json:
        write_json(
            args.json,
            {
                "machine": m,
                "config": args.config,
                "size": cfg.size,
                "batch_size": cfg.batch_size,
                "camera": cfg.camera,
                "freeze": cfg.freeze,
                "jit_compile": args.jit,
                "warmup": args.warmup,
                "steps": args.steps,
                "rounds": rounds,
            },
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What two workers buy on one machine: the same training run as one process, then as two worker
processes on loopback (--strategy multiworker, TF_CONFIG per worker), timed by the run's own clock
(train_seconds over the steps it trained; the global batch, and so the steps, are the same).

    python benchmarks/multiworker.py --json results/multiworker.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from edgefer.core.files import write_json
from edgefer.device.bench import machine, machine_line
from edgefer.evaluate.checks import SHARED


def train_args(out, a):
    return [
        "--data",
        str(SHARED / "data" / "fer2013"),
        "--max-per-class",
        str(a.per_class),
        "--arch",
        "mobilenetv2",
        "--alpha",
        "0.35",
        "--weights",
        str(SHARED / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"),
        "--size",
        str(a.size),
        "--epochs",
        str(a.epochs),
        "--batch-size",
        str(a.batch_size),
        "--verbose",
        "0",
        "--out",
        str(out),
    ]


def seconds_per_step(run: Path, batch_size: int) -> tuple[float, int]:
    """(training seconds a step, steps) of a finished run, from its own metrics and balance files."""
    metrics = json.loads((run / "metrics.json").read_text())
    images = json.loads((run / "balance.json").read_text())["sizes"]["train"]
    steps = -(-images // batch_size) * metrics["epochs_run"]
    return metrics["train_seconds"] / steps, steps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=150, help="FER-2013 training images per class")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32, help="the global batch: all workers together")
    p.add_argument("--json")
    a = p.parse_args()
    m = machine()
    print(machine_line(m))
    work = Path(tempfile.mkdtemp(prefix="edgefer-multiworker-"))
    subprocess.run([sys.executable, "-m", "edgefer.train.cli", *train_args(work / "one", a)], check=True)
    one, steps = seconds_per_step(work / "one", a.batch_size)
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    procs = []
    for index in range(2):
        config = {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "edgefer.train.cli", *train_args(work / "two", a), "--strategy", "multiworker"],
                env=dict(os.environ, TF_CONFIG=json.dumps(config)),
            )
        )
    if any(proc.wait(timeout=3600) for proc in procs):
        raise SystemExit("multiworker.py: a worker failed")
    two, _ = seconds_per_step(work / "two", a.batch_size)
    result = {
        "machine": m,
        "images_per_class": a.per_class,
        "size": a.size,
        "epochs": a.epochs,
        "global_batch": a.batch_size,
        "steps": steps,
        "tables": {
            "step_time": {
                "columns": ["processes", f"seconds a step (global batch of {a.batch_size})", "relative to one process"],
                "rows": [["one", f"{one:.3f}", "1.00"], ["two workers on loopback", f"{two:.3f}", f"{two / one:.2f}"]],
            }
        },
    }
    print(f"one process {one:.3f} s a step, two workers {two:.3f} s a step ({two / one:.2f}x), {steps} steps")
    if a.json:
        write_json(a.json, result)


if __name__ == "__main__":
    main()

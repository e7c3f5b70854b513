"""Training one model on several machines (`--strategy multiworker`, TensorFlow's
MultiWorkerMirroredStrategy; each host runs the same command with its own TF_CONFIG).

- One run folder: the chief (task `chief`, else worker 0) writes `--out`; every other worker writes
  the same files into a temporary folder of its own, removed when it ends, so no two processes
  write one file. A resumed worker starts from a copy of the chief's checkpoints, which `--resume`
  therefore needs at the same path on every host (a shared disk, or a copy).
- Every worker takes the same decisions (early stopping, the best epoch) from the same numbers:
  the strategy sums the losses and metrics over the workers each step.
- A watchdog: a worker that waits longer than `--worker-timeout` for a step (a peer died, or never
  started) says so in one line and is ended, where TensorFlow would wait for ever.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._tf import keras, tf
from ..core.errors import EdgeferError
from .config import ConfigError


class WorkerLost(EdgeferError, RuntimeError):
    pass


@contextlib.contextmanager
def peers_answer(who: Role | None):
    """A peer that stops mid-step is one line (TensorFlow raises its gRPC error with a page of text)."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError) as exc:
        if who is None:
            raise
        reason = re.sub(r"^\{\{.*?\}\}\s*", "", str(getattr(exc, "message", exc)).split("\n")[0])
        raise WorkerLost(
            f"{who}: a worker of the cluster stopped answering ({reason[:120]}); start every worker again with --resume"
        ) from None


@dataclass(frozen=True)
class Role:
    chief: bool
    index: int  # this worker's place in the cluster
    workers: int

    def __str__(self):
        return f"worker {self.index + 1} of {self.workers}" + (" (chief)" if self.chief else "")


def role() -> Role:
    """This process's place in the cluster TF_CONFIG describes."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG", ""))
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            "--strategy multiworker reads the cluster from TF_CONFIG, which is missing or not JSON like "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    order = [
        *(("chief", i) for i in range(len(cluster.get("chief", [])))),
        *(("worker", i) for i in range(len(cluster.get("worker", [])))),
    ]
    if (kind, index) not in order:
        raise ConfigError(f"TF_CONFIG: task {kind} {index} is not in its cluster {cluster}")
    chief = kind == "chief" or ("chief" not in cluster and kind == "worker" and index == 0)
    return Role(chief, order.index((kind, index)), len(order))


def worker_folder(out: Path) -> Path:
    """A non-chief worker's run folder: temporary, seeded with the chief's checkpoints when there are
    any, so that `--resume` restores every worker to the same epoch."""
    folder = Path(tempfile.mkdtemp(prefix="edgefer-worker-"))
    if (out / "checkpoints" / "state.json").exists():  # the run so far, best model included
        shutil.copytree(out, folder, dirs_exist_ok=True)
    return folder


# the watchdog's own process: it waits on a pipe for the trainer's beats; at the end of the pipe it
# ends, and after `timeout` seconds without a beat it says why and ends the trainer
WATCHER = """
import os, select, shutil, signal, sys
parent, timeout, message, folder, always = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
while True:
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        print(message, file=sys.stderr, flush=True)
        os.kill(parent, signal.SIGKILL)
        # as after any failure: a temporary folder goes, and so does a new run folder without a checkpoint
        if folder and (always == "1" or not os.path.exists(os.path.join(folder, "checkpoints", "state.json"))):
            shutil.rmtree(folder, ignore_errors=True)
        break
    if not os.read(sys.stdin.fileno(), 4096):
        break
"""


class Watchdog:
    """Ends the trainer with one line when no step has ended for `timeout` seconds. It is a small
    process of its own: while TensorFlow waits for a peer it holds the interpreter, so no thread of
    the trainer could run, and it ignores SIGTERM (its preemption handler takes it)."""

    def __init__(self, timeout: float, who: Role, folder: Path | None, temporary: bool):
        message = (
            f"edgefer-train: error: {who}: nothing moved for {timeout:g} s: a worker of the cluster stopped or "
            "never started (check TF_CONFIG, and that every host runs the command); start every worker again "
            "with --resume"
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WATCHER,
                str(os.getpid()),
                str(timeout),
                message,
                str(folder or ""),
                "1" if temporary else "0",
            ],
            stdin=subprocess.PIPE,
        )

    def beat(self):
        try:
            self.process.stdin.write(b".")
            self.process.stdin.flush()
        except OSError:  # the watchdog is gone: nothing to tell
            pass

    def stop(self):
        try:
            self.process.stdin.close()
        except OSError:
            pass
        self.process.wait(timeout=10)


class Heartbeat(keras.callbacks.Callback):
    """Tells the watchdog that training moves: every step, validation step and epoch end."""

    def __init__(self, watchdog: Watchdog):
        super().__init__()
        self.watchdog = watchdog

    def on_train_batch_end(self, batch, logs=None):
        self.watchdog.beat()

    on_test_batch_end = on_epoch_begin = on_epoch_end = on_train_batch_end

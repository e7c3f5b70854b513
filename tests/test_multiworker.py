"""Two real worker processes on loopback training one model under --strategy multiworker
(TensorFlow's MultiWorkerMirroredStrategy, TF_CONFIG per worker): one run folder written by the
chief only, the same weights on both workers, the files a single-process run writes, --resume after
the chief is killed, and a worker that is alone says so instead of waiting for ever. Every process
is bounded in time and stopped by the test."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from importlib.util import find_spec

import pytest

from conftest import FER2013, REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_spec("tensorflow") is None, reason="the train extra (TensorFlow) is not installed"),
    pytest.mark.skipif(not FER2013.is_dir(), reason=f"needs FER-2013 under {FER2013} (the shared data)"),
]


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def args(out, epochs, *extra):
    return [
        "--data",
        str(FER2013),
        "--max-per-class",
        "12",
        "--arch",
        "smallcnn",
        "--weights",
        "none",
        "--size",
        "32",
        "--epochs",
        str(epochs),
        "--batch-size",
        "16",
        "--verbose",
        "2",
        "--out",
        str(out),
        *extra,
    ]


class Cluster:
    """Worker processes of one cluster on loopback; `stop()` kills whatever still runs."""

    def __init__(self, tmp_path, workers=2):
        self.ports, self.tmp, self.procs = free_ports(workers), tmp_path, []

    def start(self, index, argv, name):
        config = {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in self.ports]},
            "task": {"type": "worker", "index": index},
        }
        env = dict(os.environ, TF_CONFIG=json.dumps(config), TMPDIR=str(self.tmp / "worker_tmp"))
        (self.tmp / "worker_tmp").mkdir(exist_ok=True)
        out, err = open(self.tmp / f"{name}.out", "w"), open(self.tmp / f"{name}.err", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgefer.train.cli", *argv, "--strategy", "multiworker"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=err,
        )
        proc.name = name
        self.procs.append(proc)
        return proc

    def wait(self, proc, timeout=240):
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"{proc.name} still running after {timeout} s") from None

    def text(self, name, stream="out"):
        return (self.tmp / f"{name}.{stream}").read_text()

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def fingerprint(text):
    return next(line.split("fingerprint ")[1].split(",")[0] for line in text.splitlines() if "fingerprint" in line)


def test_two_workers_train_one_model_into_one_folder_and_resume_after_the_chief_is_killed(tmp_path):
    cluster = Cluster(tmp_path)
    run = tmp_path / "run"
    try:
        chief, worker = cluster.start(0, args(run, 2), "chief"), cluster.start(1, args(run, 2), "worker")
        assert cluster.wait(chief) == 0 and cluster.wait(worker) == 0, cluster.text("chief", "err")[-3000:]
        # the same model on both, the run folder written once, the worker's own folder gone
        assert fingerprint(cluster.text("chief")) == fingerprint(cluster.text("worker"))
        assert f"the chief writes {run}" in cluster.text("worker")
        assert not list((tmp_path / "worker_tmp").glob("edgefer-worker-*"))
        # the files, metrics and card a single-process run writes
        single = tmp_path / "single"
        done = subprocess.run(
            [sys.executable, "-m", "edgefer.train.cli", *args(single, 2)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert sorted(p.name for p in run.rglob("*")) == sorted(p.name for p in single.rglob("*"))
        for name in ("metrics.json", "card.json"):
            a, b = (json.loads((folder / name).read_text()) for folder in (run, single))
            assert a.keys() == b.keys(), name
        assert (
            json.loads((run / "card.json").read_text())["labels"]
            == json.loads((single / "card.json").read_text())["labels"]
        )

        # killed mid-run: the chief after its first epoch; the other worker ends with one line
        resumed = tmp_path / "resumed"
        chief, worker = cluster.start(0, args(resumed, 3), "chief_a"), cluster.start(1, args(resumed, 3), "worker_a")
        state = resumed / "checkpoints" / "state.json"
        deadline = time.monotonic() + 240
        while not (state.exists() and json.loads(state.read_text())["epoch"] >= 1) and time.monotonic() < deadline:
            time.sleep(0.1)
        chief.send_signal(signal.SIGKILL)
        assert cluster.wait(worker, timeout=120) != 0
        lines = [line for line in cluster.text("worker_a", "err").splitlines() if line.startswith("edgefer-train")]
        assert len(lines) == 1 and "start every worker again with --resume" in lines[0]
        # both again with --resume: each continues from the chief's last epoch to the end
        chief = cluster.start(0, args(resumed, 3, "--resume"), "chief_b")
        worker = cluster.start(1, args(resumed, 3, "--resume"), "worker_b")
        assert cluster.wait(chief) == 0 and cluster.wait(worker) == 0, cluster.text("worker_b", "err")[-3000:]
        epoch = json.loads(
            (tmp_path / "chief_b.out").read_text().split("resuming ")[1].split(" after epoch ")[1].split()[0]
        )
        assert epoch >= 1 and "resuming" in cluster.text("worker_b")
        assert fingerprint(cluster.text("chief_b")) == fingerprint(cluster.text("worker_b"))
        assert len(json.loads(state.read_text())["history"]["loss"]) == 3
        assert not list((tmp_path / "worker_tmp").glob("edgefer-worker-*"))
    finally:
        cluster.stop()


def test_a_worker_whose_peer_never_starts_says_so_in_bounded_time(tmp_path):
    cluster = Cluster(tmp_path)
    run = tmp_path / "alone"
    try:
        started = time.monotonic()
        alone = cluster.start(0, args(run, 2, "--worker-timeout", "15"), "alone")
        assert cluster.wait(alone, timeout=120) != 0 and time.monotonic() - started < 120
        lines = [line for line in cluster.text("alone", "err").splitlines() if line.startswith("edgefer-train")]
        assert len(lines) == 1 and "worker 1 of 2 (chief): nothing moved for 15 s" in lines[0]
        assert not run.exists()  # a run that never reached its first epoch leaves no folder
    finally:
        cluster.stop()

"""Native libraries (TensorFlow, MediaPipe, LiteRT) print a dozen lines of C++ log to stderr while
they load — CUDA probes, EGL, XNNPACK — before a user sees anything of ours. They are silenced
while loading unless EDGEFER_VERBOSE=1 (or a CLI's --verbose) asks for them. Python exceptions
are not affected: they propagate and print after stderr is restored."""

from __future__ import annotations

import contextlib
import os
import sys

VERBOSE_ENV = "EDGEFER_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextlib.contextmanager
def quiet_native():
    if verbose():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "3")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

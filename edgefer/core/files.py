"""Atomic writes: an artifact is either the old complete file or the new complete file, never half."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path

from .errors import NotWritable, OutputFailed

# a disk that fills up (or a quota, or a file past the file system's size) while an output is written
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def output_failed(path, exc: OSError, kept: str = "the file there before is unchanged") -> OutputFailed:
    """The one line for an output that could not be written: which, why, what is kept, what to do."""
    why = "the disk is full" if exc.errno in FULL else "it could not be written"
    return OutputFailed(
        f"{path}: {why} ({exc.strerror or exc}); {kept}; free space there (or pass another path), then run again"
    )


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside `path`; on success rename it over `path`.

    `suffix` keeps the extension for writers that insist on one (Keras wants `.keras`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in FULL:
            raise output_failed(path, exc) from None
        raise


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, default=_jsonable) + "\n").encode())


def _jsonable(value):
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _number(text: str, cast=float):
    """`text` as an int or float for an argparse type, or the one line argparse prints with the flag."""
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if cast is int else 'number'}") from None


def _within(value, ok: bool, what: str):
    if not ok:
        raise argparse.ArgumentTypeError(f"{value} {what}")
    return value


def positive_int(text: str) -> int:
    """argparse type for counts such as --threads: argparse names the flag when it fails."""
    value = _number(text, int)
    return _within(value, value >= 1, "is below 1")


MAX_THREADS = 64  # LiteRT crashes outright when asked for far more threads than any machine has


def thread_count(text: str) -> int:
    """argparse type for --threads: 1 to MAX_THREADS."""
    value = positive_int(text)
    return _within(value, value <= MAX_THREADS, f"is above {MAX_THREADS}")


def whole_number(text: str) -> int:
    """argparse type for counts where 0 means none or no bound (--max-frames)."""
    value = _number(text, int)
    return _within(value, value >= 0, "is below 0")


def score(text: str) -> float:
    """argparse type for a detector's bar such as --min-score 0.5: above 0, up to 1."""
    value = _number(text)
    return _within(value, 0 < value <= 1, "is not a score above 0 and up to 1")


def probability(text: str) -> float:
    """argparse type for thresholds such as --uncertain 0.4: 0 up to below 1."""
    value = _number(text)
    return _within(value, 0 <= value < 1, "is not a probability from 0 up to below 1")


def size_mb(text: str) -> float:
    """argparse type for a size bound such as --rotate-mb 50: megabytes, 0 for none."""
    value = _number(text)
    return _within(value, value >= 0, "is below 0 (0: no bound)")


def thread_list(text: str) -> list[int]:
    """argparse type for --threads 1,2."""
    return [thread_count(t) for t in text.split(",")]


def check_file_writable(path, option: str) -> Path:
    """Fail before any work, in one line naming `option`, if a file cannot be written at `path`."""
    path = Path(path)
    if path.is_dir():
        raise NotWritable(f"{path}: is a folder; pass {option} a file path")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise NotWritable(f"{path}: {blocker} is a file, not a folder; pass {option} a path in a writable folder")
    try:
        check_writable(path.parent)
    except NotWritable as exc:
        raise NotWritable(
            f"{path}: cannot write there ({str(exc).split('(', 1)[-1].split(')')[0]}); "
            f"pass {option} a path in a writable folder"
        ) from None
    return path


def check_writable(directory) -> Path:
    """Create `directory` or fail with one line saying which and what to do."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".edgefer-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise NotWritable(f"{directory}: cannot write there ({exc.strerror}); pass --out a writable folder") from exc
    return directory


class OneDefault(argparse.ArgumentDefaultsHelpFormatter):
    """Says an option's default once: not where its help already says it, nor for a switch that
    is off or a value left unset."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    """A command's parser whose usage errors are one line, naming the option and where the rest is
    (argparse's own prints the whole usage first, forty lines for edgefer-cam)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help lists every option)\n")

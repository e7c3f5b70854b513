"""What edgefer-cam writes and shows besides its report: the annotated video (`--record`), one CSV
row per face per frame (`--csv`), and a window on a desktop.

The window is Tk (the standard library) showing frames through Pillow: it works whichever OpenCV
wheel won the shared `cv2/` folder (`opencv-python-headless`, which the kit depends on, has no GUI;
mediapipe's `opencv-contrib-python` has one), so the kit uses no OpenCV GUI at all.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import EdgeferError
from ..core.files import output_failed

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi")  # containers OpenCV writes MPEG-4 video into


def check_record_path(path) -> Path:
    """Before any model loads: a video container OpenCV writes, and no file already there (a
    recording is never replaced; --csv and --jsonl append instead)."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise RecordError(
            f"--record {path}: OpenCV writes video as {', '.join(VIDEO_SUFFIXES)}; pass --record a .mp4 path"
        )
    if path.exists():
        raise RecordError(f"--record {path}: the file exists and would be replaced; pass --record a new name")
    return path


class Recorder:
    """The annotated video. Every frame is written: one of another size (an image folder) is fitted
    into the first frame's size with black bars, and the run says so once. It is written under a
    hidden name beside the path and moved into place when the run ends, so a run killed outright
    leaves no half-written file where the video should be."""

    def __init__(self, path):
        self.path, self.writer, self.size, self.fitted = Path(path), None, None, 0
        self.partial = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        try:  # claimed at once: two runs recording to one new path would otherwise both write it
            os.close(os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise RecordError(
                f"--record {self.path}: another run is recording to it ({self.partial} exists); pass --record "
                f"another name, or delete {self.partial.name} if no run is"
            ) from None
        self.claimed = True

    def write(self, bgr):
        if self.writer is None:
            self.size = bgr.shape[1::-1]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"mp4v"), 25, self.size)
            if not self.writer.isOpened():
                raise RecordError(f"{self.path}: OpenCV cannot write an mp4v video there; pass --record a .mp4 path")
        if bgr.shape[1::-1] != self.size:
            if not self.fitted:
                print(
                    f"--record: frames of another size than the first {self.size[0]}x{self.size[1]} are "
                    "fitted into it with black bars",
                    file=sys.stderr,
                )
            self.fitted += 1
            bgr = letterbox(bgr, self.size)
        self.writer.write(bgr)

    def close(self):
        if self.writer is not None:
            self.writer.release()  # the container is finished here: a playable file, if it all fitted
            self.writer = None
            if not playable(self.partial):  # OpenCV's writer fails silently on a full disk
                self.partial.unlink(missing_ok=True)
                raise RecordError(
                    f"--record {self.path}: the video could not be finished (is the disk full?); no half-written "
                    "file is left; free space there (or pass another path), then run again"
                )
            os.replace(self.partial, self.path)
        elif self.claimed:  # no frame came: nothing to keep
            self.partial.unlink(missing_ok=True)
        self.claimed = False


def playable(path) -> bool:
    """A video whose first frame decodes."""
    cap = cv2.VideoCapture(str(path))
    try:
        return cap.isOpened() and cap.read()[0]
    finally:
        cap.release()


class RecordError(EdgeferError, OSError):
    pass


def letterbox(image, size):
    """`image` scaled to fit (width, height) `size`, centred on black."""
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    resized = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))))
    out = np.zeros((h, w, 3), image.dtype)
    y, x = (h - resized.shape[0]) // 2, (w - resized.shape[1]) // 2
    out[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return out


class Appender:
    """A text file appended line by line, each line handed to the OS whole when written (a power cut,
    the usual way a Pi appliance stops, loses at most the line in progress). A line that does not fit
    (a full disk) is taken back, so the file never ends in a torn row, and the run ends with one line
    saying so. With `max_bytes`, a file that reaches it is renamed NAME.1 (replacing the one before)
    and a new one begun, as logging's rotating handler does: a service that runs for months keeps at
    most twice that on its SD card."""

    def __init__(self, path, max_bytes: int = 0, header: str = ""):
        self.path, self.max_bytes, self.header = Path(path), max_bytes, header
        self._open()

    def _open(self):
        """Append to the file, starting an empty one with the header."""
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        if self.header and os.fstat(self.fd).st_size == 0:
            self._append(self.header)

    def _append(self, text: str):
        data, end = text.encode("utf-8"), os.lseek(self.fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, end)  # the part of the line that fitted is taken back
            raise output_failed(self.path, exc, "every line before this one is kept whole") from None
        return end + len(data)

    def write(self, text: str):
        size = self._append(text)
        if self.max_bytes and size >= self.max_bytes:
            os.close(self.fd)
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self._open()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class FaceCsv:
    """One row per face per frame: time, frame, file, track, box, score, label, uncertain (1 where the
    top probability is below the card's bar, as the screen's "uncertain (sad 0.38)") and every
    probability. Stills (an image folder) have no time and no track: those cells are empty, and
    `frame` is the image's place in the folder's name order.
    Appended: a run restarted (systemd, a crash) keeps the rows it wrote; a file with another
    header (another model's classes) is refused rather than mixed."""

    def __init__(self, path, labels, pairs: bool = False, max_bytes: int = 0):
        self.path, self.labels, self.pairs = str(path), list(labels), pairs
        header = ["t", "frame", "file", "track", "x", "y", "w", "h", "score", "label", "uncertain", *self.labels]
        if pairs:  # edgefer-cam --pairs: the compound read from the two most probable emotions
            header.append("pair")
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            try:
                with open(self.path, newline="", encoding="utf-8") as f:
                    existing = next(csv.reader(f), [])
            except (UnicodeDecodeError, csv.Error):
                raise CsvMismatch(
                    f"{self.path}: not a CSV file edgefer wrote (not UTF-8 text); pass --csv a new file"
                ) from None
            if existing != header:
                raise CsvMismatch(
                    f"{self.path}: holds rows of another model or option (columns {existing[11:]}, "
                    f"this run writes {header[11:]}); pass --csv a new file"
                )
        self.file = Appender(self.path, max_bytes, header=line_of(header))

    def write(self, frame, faces, still: bool = False):
        for f in faces:
            row = [
                "" if still else f"{frame.t:.3f}",
                frame.index,
                inert(frame.name),
                "" if f.track is None else f.track,
                *f.box,
                f.score,
                inert(f.label),
                int(f.uncertain),
                *(f.probs[c] for c in self.labels),
            ]
            self.file.write(line_of(row + [inert(f.pair or "")] if self.pairs else row))

    def close(self):
        self.file.close()


class CsvMismatch(EdgeferError, ValueError):
    pass


def line_of(cells) -> str:
    """One CSV line, as csv.writer writes it."""
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue()


def inert(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula: one starting with = + - @ (or a tab or
    carriage return) gets a leading apostrophe, as OWASP advises against CSV injection; an image
    named `=HYPERLINK(...).jpg` is then shown as its name."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class Window:
    """A desktop window showing the annotated frames; `q`, Escape or closing it ends the run."""

    def __init__(self, title="edgefer"):
        import tkinter

        from PIL import ImageTk

        self._photo = ImageTk.PhotoImage
        self.root = tkinter.Tk()
        self.root.title(title)
        self.label = tkinter.Label(self.root)
        self.label.pack()
        self.open = True
        self.root.protocol("WM_DELETE_WINDOW", self.close)
        for key in ("q", "<Escape>"):
            self.root.bind(key, lambda _event: self.close())

    def show(self, bgr: np.ndarray) -> bool:
        """Show one frame; False once the window was closed."""
        from PIL import Image

        if self.open:
            image = self._photo(Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])))
            self.label.configure(image=image)
            self.label.image = image  # Tk keeps no reference of its own
            self.root.update()
        return self.open

    def close(self):
        if self.open:
            self.open = False
            self.root.destroy()


def open_window(title="edgefer", serving: bool = False):
    """A Window where there is a display and Tk, else None and one line saying what to do (none with
    `serving`: the live view is the window then)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        if serving:
            return None
        print(
            "no window: no display (DISPLAY is not set); continuing headless (--headless says so, "
            "--serve shows the live view in a browser)",
            file=sys.stderr,
        )
        return None
    try:
        return Window(title)
    except ImportError:
        print(
            "no window: this Python has no Tk (sudo apt install python3-tk); continuing headless "
            "(--serve shows the live view in a browser)",
            file=sys.stderr,
        )
    except Exception as exc:  # tkinter.TclError: a display that cannot be opened
        print(
            f"no window: the display cannot be opened ({exc}); continuing headless "
            "(--serve shows the live view in a browser)",
            file=sys.stderr,
        )
    return None

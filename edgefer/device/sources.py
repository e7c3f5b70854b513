"""Frame sources behind one small interface: iterate and get RGB frames with timestamps.

open_source("0")             webcam index 0 (OpenCV)
open_source("clip.mp4")      a video file, or an rtsp:// / http:// stream
open_source("faces/")        a folder of images, in name order
open_source("picamera")      the Raspberry Pi camera (picamera2, imported only here)
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import EdgeferError
from ..core.preprocess import IMAGE_EXTENSIONS, BadImage, list_images, read_image
from ..core.quiet import verbose
from .bitstream import DeclaredSizes


class SourceError(EdgeferError, RuntimeError):
    pass


@dataclass
class Frame:
    rgb: np.ndarray
    t: float  # seconds: the video's own clock for files, capture time for live sources
    index: int
    name: str = ""


class VideoSource:
    stills = False  # frames of one scene: faces are tracked and smoothed

    def __init__(self, spec: str, reconnect: bool = False, loop: bool = False, realtime: bool = False):
        # realtime: a file is read at its own frame rate, as a camera would deliver it (the live view)
        self.spec, self.reconnect, self.loop, self.realtime = spec, reconnect, loop, realtime
        self.camera = spec.isdigit()
        self.is_file = not self.camera and "://" not in spec
        if self.is_file and not Path(spec).exists():
            raise SourceError(f"{spec}: no such video file")
        if self.is_file and not Path(spec).is_file():
            raise SourceError(
                f"{spec}: not a regular file (a device or FIFO); pass --source a video file, a folder or a camera index"
            )
        self.cap = self._open()
        self.declared = DeclaredSizes(spec) if self.is_file else None  # the size the stream itself names
        self.dropped, self.undecoded = 0, 0
        self.size, self.resized = None, False  # the first frame's (width, height); said once if it changes

    def _open(self):
        cap = cv2.VideoCapture(int(self.spec) if self.camera else self.spec)
        if not cap.isOpened():
            raise SourceError(self._cannot_open())
        return cap

    def _cannot_open(self) -> str:
        """Advice for what the source is: a camera, a video file or a network stream."""
        if self.camera:
            return (
                f"no camera at index {self.spec}; check the device (ls /dev/video*), or pass --source "
                "a video file, an image folder or picamera"
            )
        if self.is_file:
            return (
                f"{self.spec}: cannot decode this video (corrupt, truncated, or a codec OpenCV lacks); "
                f"re-encode it, e.g. ffmpeg -i {self.spec} -c:v libx264 out.mp4"
            )
        return (
            f"{self.spec}: cannot open this stream; check that the server is up, the address, port "
            "and path are right, and that it accepts the connection"
        )

    def __iter__(self):
        index, start = 0, time.monotonic()
        failures, offset, t = 0, 0.0, 0.0  # offset: the clock runs on across loops of a file
        while True:
            ok, bgr = self.cap.read()
            if not ok or bgr is None:
                if self.is_file and self.loop and index > 0:
                    self.cap.release()
                    self.cap = self._open()
                    if self.declared:  # the whole file was read once without a change of size
                        self.declared.close()
                        self.declared = None
                    offset = t + 1.0 / (self.cap.get(cv2.CAP_PROP_FPS) or 25.0)
                    continue
                if self.is_file and index == 0:
                    raise SourceError(self._cannot_open())  # opened, but not one frame decodes
                if self.is_file:  # the video ended: every frame its container holds, or fewer
                    self._count_undecoded(index)
                    return
                failures += 1
                if not try_again(self, failures, self.spec, SourceError):
                    return
                continue
            failures = 0
            self._check_size(bgr, index)
            if self._garbled(bgr, index):
                return
            t = offset + self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if self.is_file else time.monotonic() - start
            if self.realtime and self.is_file:
                time.sleep(max(0.0, start + t - time.monotonic()))
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t, index)
            index += 1

    def _check_size(self, bgr, index: int):
        """A video whose frames change size midway (streams spliced together) says so once: each
        frame is read at its own size, and a decoder that kept the old size shows a garbled picture."""
        size = bgr.shape[1::-1]
        if index == 0 or self.size is None:
            self.size = size
        elif size != self.size and not self.resized:
            self.resized = True
            print(
                f"{self.spec}: frame {index} is {size[0]}x{size[1]} where the video began at {self.size[0]}x"
                f"{self.size[1]}; frames are read at their own size (re-encode it at one size, e.g. ffmpeg -i "
                f"{self.spec} -vf scale={self.size[0]}:{self.size[1]} out.mp4)",
                file=sys.stderr,
            )

    def _garbled(self, bgr, index: int) -> bool:
        """A stream that names a new picture size while OpenCV goes on decoding at the old one
        (clips of two sizes joined without re-encoding) ends there, saying so: every picture from
        there on is the new one pasted into a corner of the old, and its readings would be wrong."""
        declared = self.declared.next() if self.declared else None
        first = self.declared.first if self.declared else None
        if declared is None or first is None or declared == first or bgr.shape[1::-1] == declared:
            return False
        (w, h), (w0, h0) = declared, first
        print(
            f"{self.spec}: near frame {index} the video turns {w}x{h} where it began at {w0}x{h0} (clips of two "
            f"sizes joined without re-encoding); OpenCV reads on at the first size, garbled, so the run ends "
            f"here; re-encode it at one size, e.g. ffmpeg -i {self.spec} -vf scale={w0}:{h0} out.mp4",
            file=sys.stderr,
        )
        return True

    def _count_undecoded(self, decoded: int):
        """A file that ends before its container's frame count says so, once: a damaged middle stops
        OpenCV's decoder for good, and the run would otherwise end as if the video were short."""
        expected = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if expected - decoded > max(1, expected // 100) and not self.undecoded:
            self.undecoded = expected - decoded
            print(
                f"{self.spec}: {self.undecoded} of its {expected} frames could not be decoded (damaged or "
                f"truncated); re-encode it, e.g. ffmpeg -i {self.spec} -c:v libx264 out.mp4",
                file=sys.stderr,
            )

    def close(self):
        self.cap.release()
        if self.declared:
            self.declared.close()

    def reopen(self):
        self.cap = self._open()


def try_again(source, failures: int, what: str, errors, reason: str = "") -> bool:
    """After a camera's failed read: with --reconnect, close it, wait and open it again (True: read
    on); without, or after MAX_RETRIES failures in a row, say so and end the run (False)."""
    if not source.reconnect or failures > MAX_RETRIES:
        print(
            f"{what}: the camera stopped delivering frames{f' ({reason})' if reason else ''}; ending "
            "(use --reconnect to wait for it)",
            file=sys.stderr,
        )
        return False
    source.close()
    time.sleep(0.2)
    try:
        source.reopen()
    except errors:
        pass  # not back yet: the next read fails and the next try comes
    return True


MAX_RETRIES = 50  # reads in a row a reconnecting camera may fail, 0.2 s apart, before the run ends


class ImageFolderSource:
    """A folder of images (or one image): stills, each its own face set, never smoothed together."""

    stills = True

    def __init__(self, folder: str, fps: float = 25.0):
        path = Path(folder)
        if not path.exists():
            raise SourceError(
                f"{folder}: no such image or folder; pass --source an image, a folder of images, a video or a camera index"
            )
        self.folder = path if path.is_dir() else None
        self.paths = list_images(path) if self.folder else [str(path)]
        if not self.paths:
            raise SourceError(f"{folder}: no images in this folder")
        self.fps, self.dropped = fps, 0

    def __iter__(self):
        for index, path in enumerate(self.paths):
            try:
                image = read_image(path)
            except BadImage as exc:
                if self.folder and not self.folder.is_dir():  # moved or unmounted: every file after fails
                    raise SourceError(
                        f"{self.folder}: the folder went away during the run, after {index} of its "
                        f"{len(self.paths)} images; what was read is kept"
                    ) from None
                self.dropped += 1
                print(f"skipping {exc}", file=sys.stderr)
                continue
            rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image
            yield Frame(rgb, index / self.fps, index, Path(path).name)
        if self.dropped == len(self.paths):
            what = "its one image" if len(self.paths) == 1 else f"any of its {len(self.paths)} images"
            raise SourceError(
                f"{self.paths[0] if len(self.paths) == 1 else self.folder}: could not read {what} (see above)"
            )

    def close(self):
        pass


class PicameraSource:
    stills = False

    def __init__(self, size=(640, 480), reconnect: bool = False):
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            if exc.name == "picamera2":
                raise SourceError(
                    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
                    "and create the venv with --system-site-packages (see deploy/pi/README.md)"
                ) from None
            # installed, but its compiled parts do not load: most often a numpy in the venv shadowing
            # the system numpy they were built against
            raise SourceError(
                f"picamera2 is installed but does not import ({exc}); if the venv has its own "
                "numpy, remove it (pip uninstall numpy) so the system one is used (deploy/pi/README.md)"
            ) from None
        self._make, self.size, self.reconnect, self.dropped = Picamera2, size, reconnect, 0
        self.camera = self._open()

    def _open(self):
        camera = self._make()
        camera.configure(camera.create_video_configuration(main={"size": self.size, "format": "RGB888"}))
        camera.start()
        return camera

    def __iter__(self):
        index, start, failures = 0, time.monotonic(), 0
        while True:
            try:
                # Picamera2's "RGB888" is BGR in memory (libcamera naming); convert to RGB
                rgb = self.camera.capture_array()[..., ::-1].copy()
            except (RuntimeError, OSError) as exc:  # a ribbon cable knocked loose, the camera reset
                failures += 1
                if not try_again(self, failures, "picamera", (RuntimeError, OSError), str(exc)):
                    return
                continue
            failures = 0
            yield Frame(rgb, time.monotonic() - start, index)
            index += 1

    def reopen(self):
        self.camera = self._open()

    def close(self):
        try:
            self.camera.stop()
            self.camera.close()
        except (RuntimeError, OSError):
            pass


def quiet_opencv():
    """OpenCV's and FFmpeg's own log lines (a camera index that is not there, a damaged frame) would
    come before edgefer's one line and say less; they are hidden unless --verbose."""
    if not verbose():
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when a video opens
        if hasattr(cv2, "setLogLevel"):  # OpenCV 4
            cv2.setLogLevel(0)  # silent
        else:  # OpenCV 5 keeps it in cv2.utils.logging only
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def open_source(spec, reconnect: bool = False, loop: bool = False, realtime: bool = False):
    quiet_opencv()
    spec = str(spec)
    if spec in ("picamera", "pi", "picamera2"):
        return PicameraSource(reconnect=reconnect)
    if Path(spec).is_dir() or Path(spec).suffix.lower() in IMAGE_EXTENSIONS:
        return ImageFolderSource(spec)
    return VideoSource(spec, reconnect=reconnect, loop=loop, realtime=realtime)

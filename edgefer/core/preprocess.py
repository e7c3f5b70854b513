"""Image preprocessing that training and the device must do identically.

`prepare()` turns a face image into the uint8 pixels a model sees (colour mode, equalisation,
size) and `to_model_input()` maps them into the model's input range. The training pipeline and
the device runtime both call these two functions with the values from the model card, so a model
never sees pixels prepared differently from the ones it was trained on.
"""

from __future__ import annotations

import os
import stat

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import EdgeferError

COLOR_MODES = ("gray", "gray3", "rgb")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
EQUALIZE = ("none", "hist", "bihist", "clahe")
# a decoded image larger than this is refused before it is decoded: 50 megapixels is about 150 MB as
# RGB, what a phone's largest photos reach and a Raspberry Pi with 1 GB can still hold
MAX_PIXELS = 50_000_000


class BadImage(EdgeferError, ValueError):
    """An image file that cannot be used; the message names the file and the reason."""


def read_image(path) -> np.ndarray:
    """Decode any image file into uint8 gray (H, W) or RGB (H, W, 3).

    Handles what real folders hold: palette, RGBA/LA (alpha dropped), 16-bit and 32-bit
    integer images (rescaled, not clipped). Truncated or non-image files, a missing file, a FIFO or
    device (which would block or never end), and images over MAX_PIXELS raise BadImage.
    """
    try:
        kind = os.stat(path).st_mode
    except FileNotFoundError:
        raise BadImage(f"{path}: no such file") from None
    except OSError as exc:
        raise BadImage(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(kind):
        raise BadImage(f"{path}: not a regular file (a folder, FIFO or device); pass an image file")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise BadImage(
                    f"{path}: {im.width}x{im.height} pixels is over the {MAX_PIXELS / 1e6:g}-megapixel bound "
                    f"(about {im.width * im.height * 3 / 1e6:,.0f} MB decoded); scale it down"
                )
            im.load()  # forces a full decode: truncated files fail here, not later
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = np.asarray(im, dtype=np.float64)
                top = arr.max()
                scale = 255.0 / (65535.0 if top > 255 and mode != "F" else max(top, 1.0))
                return np.clip(arr * scale, 0, 255).astype(np.uint8)
            if mode in ("L", "1"):
                return np.asarray(im.convert("L"))
            if mode == "LA":
                return np.asarray(im.convert("L"))
            return np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError:
        raise BadImage(
            f"{path}: too large to decode safely (more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, Pillow's guard "
            "against decompression bombs); scale it down or delete it"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"{path}: unreadable image ({exc}); re-export it as PNG/JPEG or delete it") from exc


def list_images(folder) -> list[str]:
    """The image files of a folder, in name order (hidden files left out)."""
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS and not f.startswith(".")
    )


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def equalize(gray: np.ndarray, method: str) -> np.ndarray:
    """Histogram equalisation of a uint8 gray image.

    `bihist` is brightness-preserving bi-histogram equalisation (Kim 1997, used by one of the FER
    papers this kit follows): the histogram is split at the mean and each half equalised within
    its own range, so equalising does not shift the face's overall brightness.
    """
    if method == "none":
        return gray
    if method == "hist":
        return cv2.equalizeHist(gray)
    if method == "clahe":
        return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(gray)
    if method == "bihist":
        mean = int(gray.mean())
        hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
        lut = np.zeros(256, np.float64)
        for lo, hi in ((0, mean), (mean + 1, 255)):
            part = hist[lo : hi + 1]
            if part.sum() == 0:
                lut[lo : hi + 1] = np.arange(lo, hi + 1)
                continue
            cdf = np.cumsum(part) / part.sum()
            lut[lo : hi + 1] = lo + cdf * (hi - lo)
        return lut.round().astype(np.uint8)[gray]
    raise ValueError(f"equalize must be one of {EQUALIZE}, not {method!r}")


def prepare(image: np.ndarray, size: int, color: str = "gray3", equalization: str = "none") -> np.ndarray:
    """A face image (any size, gray or RGB uint8) -> uint8 (size, size, C) as the model sees it."""
    if color not in COLOR_MODES:
        raise ValueError(f"color must be one of {COLOR_MODES}, not {color!r}")
    if color == "rgb" and image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if color == "rgb":
        if equalization != "none":  # equalise brightness only, keep the colours
            ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
            ycc[..., 0] = equalize(ycc[..., 0], equalization)
            image = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
    else:
        image = equalize(to_gray(image), equalization)
    h, w = image.shape[:2]
    if (h, w) != (size, size):
        # INTER_AREA averages when shrinking; INTER_LINEAR when enlarging (48 px FER -> 96 px).
        interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
        image = cv2.resize(image, (size, size), interpolation=interp)
    if image.ndim == 2:
        image = image[..., None]
    if color == "gray3":
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image)


def channels(color: str) -> int:
    return 1 if color == "gray" else 3


def to_model_input(pixels: np.ndarray, value_range=(0.0, 255.0)) -> np.ndarray:
    """uint8 pixels -> float32 in the card's input range (edgefer models take 0..255 and
    normalise inside the graph, so the default is the identity)."""
    lo, hi = value_range
    return (pixels.astype(np.float32) * ((hi - lo) / 255.0) + lo).astype(np.float32)


def crop_square(box, margin: float, offset_y: float = 0.0) -> tuple[int, int, int, int]:
    """The pixel square (x0, y0, x1, y1) `crop_face` cuts around a face box (x, y, w, h); it may
    reach past the frame."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0 + offset_y * max(w, h)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    return x0, y0, x0 + int(round(side)), y0 + int(round(side))


def crop_face(frame: np.ndarray, box, margin: float, eyes=None, offset_y: float = 0.0) -> np.ndarray:
    """Square crop around a face box (x, y, w, h) grown by `margin` on each side, its centre moved
    down by `offset_y` box sides (negative: up), clamped at the frame border (a face cut by the
    border is padded by edge replication, not skipped).

    `eyes` ((right_x, right_y), (left_x, left_y)) levels the eye line first (card align "eyes")."""
    if eyes is not None:
        (rx, ry), (lx, ly) = eyes
        angle = np.degrees(np.arctan2(ly - ry, lx - rx))
        x, y, w, h = box
        wide = crop_face(frame, box, margin + 0.25, offset_y=offset_y)  # room for the corners to rotate into
        c = wide.shape[0] / 2.0
        wide = cv2.warpAffine(
            wide, cv2.getRotationMatrix2D((c, c), angle, 1.0), wide.shape[1::-1], borderMode=cv2.BORDER_REPLICATE
        )
        side = wide.shape[0] * (1 + 2 * margin) / (1 + 2 * (margin + 0.25))
        o = int(round(c - side / 2))
        return wide[o : o + int(round(side)), o : o + int(round(side))]
    x0, y0, x1, y1 = crop_square(box, margin, offset_y)
    H, W = frame.shape[:2]
    pad = [max(0, -y0), max(0, y1 - H), max(0, -x0), max(0, x1 - W)]
    crop = frame[max(0, y0) : min(H, y1), max(0, x0) : min(W, x1)]
    if crop.size == 0:
        raise ValueError(f"face box {box} lies outside the {W}x{H} frame")
    if any(pad):
        crop = cv2.copyMakeBorder(crop, *pad, cv2.BORDER_REPLICATE)
    return crop

"""The options edgefer-cam and edgefer-bench share: which face detector runs, and how much of the
work a video frame gets (the shortcuts of `pipeline.py`). Declared once, read back with `chosen`
(--verbose is the command's to act on, before anything is loaded)."""

from __future__ import annotations

import argparse

from ..core.files import positive_int
from .pipeline import CLASSIFY_EVERY, DETECT_EVERY


def add_pipeline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--face-model",
        default=None,
        help="BlazeFace short- or full-range .tflite (default: $EDGEFER_FACE_MODEL, else the package's, as --faces says)",
    )
    p.add_argument(
        "--flip-average",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each face with its mirror image; default: as the model's card says",
    )
    p.add_argument(
        "--detect-every",
        type=positive_int,
        default=DETECT_EVERY,
        metavar="N",
        help="detect faces every N frames of a video, carrying the boxes in between; at once when a face "
        "nears the edge or its reading turns uncertain (1: every frame)",
    )
    p.add_argument(
        "--classify-every",
        type=positive_int,
        default=CLASSIFY_EVERY,
        metavar="N",
        help="read a steady face from the model every N frames of a video, its smoothed reading in "
        "between; a new face, or one near a change of expression, every frame (1: every frame)",
    )
    p.add_argument(
        "--alternate-sides",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with flip averaging, read a tracked face in a video on one side a frame (the face, then "
        "its mirror image), its smoothed reading joining the two; a new face, or one below the "
        "uncertain bar, on both at once (default: on; --detect-every 1 --classify-every 1 "
        "--no-alternate-sides does all the work on every frame)",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show what LiteRT (and TensorFlow, where installed) log while they start (hidden otherwise)",
    )


def chosen(args: argparse.Namespace) -> dict:
    """The options above, but --verbose, as Pipeline's keyword arguments."""
    return {
        "face_model": args.face_model,
        "flip_average": args.flip_average,
        "detect_every": args.detect_every,
        "classify_every": args.classify_every,
        "alternate_sides": args.alternate_sides,
    }

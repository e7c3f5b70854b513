"""`edgefer-cam`: expressions on a webcam, a video file, a folder of images or the Pi camera."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from ..core import card as card_mod
from ..core.errors import EdgeferError
from ..core.quiet import VERBOSE_ENV
from ..core.files import check_file_writable, positive_int, write_json
from ..models import model_path
from .latency import Latency
from .pipeline import Pipeline, draw
from .sources import open_source


def parser():
    p = argparse.ArgumentParser(prog="edgefer-cam", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--source", default="0", help="webcam index, video file, rtsp/http URL, image folder, or 'picamera'")
    p.add_argument("--model", default=None, help="int8 .tflite with its card, or a bundled model by name: fer2013-balanced (default), fer2013, ferplus (8 classes with contempt)")
    p.add_argument("--face-model", default=None, help="BlazeFace short-range .tflite (default: $EDGEFER_FACE_MODEL, else the one in the package)")
    p.add_argument("--threads", type=positive_int, default=1, help="LiteRT threads for the expression model")
    p.add_argument("--min-score", type=float, default=0.5, help="face detection threshold")
    p.add_argument("--smoothing", type=float, default=0.6, help="EMA weight of past probabilities per face (0: off)")
    p.add_argument("--headless", action="store_true", help="no window")
    p.add_argument("--record", help="write the annotated video to this .mp4")
    p.add_argument("--jsonl", help="append one JSON line per frame: time, faces, box, label, probabilities")
    p.add_argument("--latency-json", help="write the latency report here at exit")
    p.add_argument("--report-every", type=float, default=10.0, help="print the latency table every N seconds (0: only at exit)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: at the source's end)")
    p.add_argument("--reconnect", action="store_true", help="wait for a camera that disappears instead of exiting")
    p.add_argument("--allow-float", action="store_true", help="run a float (non-int8) model too")
    p.add_argument("--verbose", action="store_true",
                   help="show what LiteRT (and TensorFlow, where installed) log while they start (hidden otherwise)")
    p.add_argument("--flip-average", action=argparse.BooleanOptionalAction, default=None,
                   help="average each face with its mirror image (two invokes); default: as the model's card says")
    return p


def run(args) -> dict:
    model = model_path(args.model)  # a bad --model or output is reported before any camera is opened
    card_mod.read_embedded(model)
    for option in ("record", "jsonl", "latency_json"):
        if getattr(args, option):
            check_file_writable(getattr(args, option), "--" + option.replace("_", "-"))
    latency = Latency()
    source = open_source(args.source, reconnect=args.reconnect)
    # stills (an image folder, one image) are separate faces: no tracking, no smoothing across them
    stills = source.stills
    # appended: a service restarted by systemd keeps the lines it wrote before
    jsonl = open(args.jsonl, "a") if args.jsonl else None
    recorder = Recorder(args.record) if args.record else None
    show = not args.headless and bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    frames_with_faces, last_report = 0, None
    try:
        with Pipeline(model, args.face_model, args.threads, args.min_score, video=not stills,
                      smoothing=args.smoothing, allow_float=args.allow_float,
                      flip_average=args.flip_average, track=not stills) as pipeline:
            print(pipeline.describe() + (" (stills: each image on its own)" if stills else ""), flush=True)
            for frame, _ in latency.frames_of(source, limit=args.max_frames):
                faces = pipeline.process(frame, latency)
                frames_with_faces += bool(faces)
                if show or recorder:
                    t = time.perf_counter()
                    image = draw(frame.rgb, faces)
                    if recorder:
                        recorder.write(image)
                    if show:
                        show = _show(image)
                    latency.add("draw", time.perf_counter() - t)
                if jsonl:
                    line = {"t": round(frame.t, 3), "frame": frame.index, "faces": faces}
                    jsonl.write(json.dumps(dict(line, file=frame.name) if stills else line) + "\n")
                # the periodic table counts from the first frame, not from the model's cold start
                last_report = last_report or time.perf_counter()
                if args.report_every and time.perf_counter() - last_report > args.report_every:
                    print(Latency.table(latency.summary()), flush=True)
                    last_report = time.perf_counter()
    except KeyboardInterrupt:
        pass
    finally:
        source.close()
        if jsonl:
            jsonl.close()
        if recorder:
            recorder.close()
    summary = latency.summary()
    summary["frames_with_faces"] = frames_with_faces
    summary["dropped_frames"] = getattr(source, "dropped", 0)
    return summary


class Recorder:
    """The annotated video. Every frame is written: one of another size (an image folder) is fitted
    into the first frame's size with black bars, and the run says so once."""

    def __init__(self, path):
        self.path, self.writer, self.size, self.fitted = str(path), None, None, 0

    def write(self, bgr):
        import cv2
        if self.writer is None:
            self.size = bgr.shape[1::-1]
            self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), 25, self.size)
            if not self.writer.isOpened():
                raise RecordError(f"{self.path}: OpenCV cannot write an mp4v video there; pass --record a .mp4 path")
        if bgr.shape[1::-1] != self.size:
            if not self.fitted:
                print(f"--record: frames of another size than the first {self.size[0]}x{self.size[1]} are "
                      "fitted into it with black bars")
            self.fitted += 1
            bgr = letterbox(bgr, self.size)
        self.writer.write(bgr)

    def close(self):
        if self.writer is not None:
            self.writer.release()


class RecordError(EdgeferError, OSError):
    pass


def letterbox(image, size):
    """`image` scaled to fit (width, height) `size`, centred on black."""
    import cv2
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    resized = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))))
    out = np.zeros((h, w, 3), image.dtype)
    y, x = (h - resized.shape[0]) // 2, (w - resized.shape[1]) // 2
    out[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return out


def _show(image) -> bool:
    import cv2
    try:
        cv2.imshow("edgefer", image)
        return cv2.waitKey(1) & 0xFF != ord("q")
    except cv2.error:
        print("no window support in this OpenCV build (opencv-python-headless); continuing headless")
        return False


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"
    try:
        summary = run(args)
    except EdgeferError as exc:
        print(f"edgefer-cam: error: {exc}", file=sys.stderr)
        return 2
    print(Latency.table(summary))
    print(f"faces found in {summary['frames_with_faces']} of {summary['frames']} frames")
    if args.latency_json:
        write_json(args.latency_json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())

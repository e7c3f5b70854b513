"""edgefer's device pipeline against the `fer` package (Haar cascade + its Keras CNN) on the same
frames of one clip, in one process, one after the other.

`fer` is not a dependency: install it aside, without its heavy extras, and point --fer-path at it:
    pip install --no-deps --target /tmp/fer_pkg fer
    PYTHONPATH=/tmp/fer_pkg python benchmarks/fer_compare.py --json runs/fer_compare.json
(it needs tensorflow, opencv and requests, which the train+device environment has).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edgefer.device.latency import Latency
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import open_source
from edgefer.models import model_path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def frames_of(source, count):
    frames = []
    for frame in open_source(source, loop=True):
        frames.append(frame)
        if len(frames) >= count:
            return frames
    return frames


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=str(SHARED / "media" / "talking_face_640x360.mp4"))
    p.add_argument("--face-model", default=str(SHARED / "models" / "blaze_face_short_range.tflite"))
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--json")
    args = p.parse_args()
    frames = frames_of(args.source, args.frames + args.warmup)

    latency, found = Latency(), 0
    with Pipeline(model_path(None), args.face_model, threads=1) as pipeline:
        for frame, measured in latency.frames_of(frames, warmup=args.warmup):
            faces = pipeline.process(frame, measured)
            found += bool(faces) and measured is not None
    ours = latency.summary()

    from fer.fer import FER  # Haar cascade face detector + the fer CNN, on one thread like ours
    import cv2
    detector = FER(mtcnn=False)
    times, fer_found = [], 0
    for i, frame in enumerate(frames):
        bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
        t = time.perf_counter()
        result = detector.detect_emotions(bgr)
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
            fer_found += bool(result)
    fer = {"p50_ms": round(float(np.median(times)) * 1e3, 3), "p90_ms": round(float(np.percentile(times, 90)) * 1e3, 3),
           "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3), "frames_with_faces": fer_found}
    result = {"frames": args.frames, "edgefer": {"stages": ours["stages"], "frames_with_faces": found},
              "fer": fer, "ratio_p50": round(fer["p50_ms"] / ours["stages"]["total"]["p50_ms"], 1)}
    print(f"edgefer total p50 {ours['stages']['total']['p50_ms']:.3f} ms (faces in {found}/{args.frames})   "
          f"fer p50 {fer['p50_ms']:.3f} ms (faces in {fer_found}/{args.frames})   fer/edgefer {result['ratio_p50']}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

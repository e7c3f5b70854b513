"""edgefer's device pipeline (each bundled model, or those given) against the `fer` package (Haar
cascade + its CNN) on the same frames of one clip, in one process, one after the other, each as it
sets itself up by default: edgefer on its one LiteRT thread; `fer` as it comes, its CNN on TFLite
and its cascade on OpenCV, which may take a second core. The CPU and its SIMD flags are written
beside the times.

`fer` is not a dependency: install it aside, without its heavy extras, and put it on PYTHONPATH:
    pip install --no-deps --target /tmp/fer_pkg fer
    PYTHONPATH=/tmp/fer_pkg python benchmarks/fer_compare.py --json results/fer_compare.json
(it needs tensorflow, opencv and requests, which the train+device environment has).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from peers import fer_class

from edgefer.core.errors import EdgeferError
from edgefer.core.files import write_json
from edgefer.device.bench import machine, machine_line
from edgefer.device.latency import Latency
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import open_source
from edgefer.models import BUNDLED, DEFAULT, model_path

CLIP = Path(__file__).resolve().parents[1] / "media" / "talking_face_640x360.mp4"


def frames_of(source, count):
    frames = []
    for frame in open_source(source, loop=True):
        frames.append(frame)
        if len(frames) >= count:
            return frames
    return frames


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=str(CLIP), help="a video (default: the clip that ships in media/)")
    p.add_argument("--model", action="append", help="bundled name or .tflite; repeat (default: every bundled model)")
    p.add_argument("--face-model", default=None, help="BlazeFace .tflite (default: the package's)")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--json")
    args = p.parse_args()
    try:
        FER = fer_class()  # the fer package is asked for before anything is measured
    except EdgeferError as exc:
        sys.exit(f"fer_compare: {exc}")
    frames = frames_of(args.source, args.frames + args.warmup)
    models = args.model or [DEFAULT] + [name for name in BUNDLED if name != DEFAULT]

    ours = {}
    for name in models:
        latency, found = Latency(), 0
        with Pipeline(model_path(name), args.face_model, threads=1) as pipeline:
            for frame, measured in latency.frames_of(frames, warmup=args.warmup):
                faces = pipeline.process(frame, measured)
                found += bool(faces) and measured is not None
        ours[name] = {
            "stages": latency.summary()["stages"],
            "frames_with_faces": found,
            "size_bytes": model_path(name).stat().st_size,
        }

    import cv2

    detector = FER(mtcnn=False)  # its Haar cascade face detector and its CNN
    times, fer_found = [], 0
    for i, frame in enumerate(frames):
        bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
        t = time.perf_counter()
        result = detector.detect_emotions(bgr)
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
            fer_found += bool(result)
    fer = {
        "p50_ms": round(float(np.median(times)) * 1e3, 3),
        "p90_ms": round(float(np.percentile(times, 90)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3),
        "mean_ms": round(float(np.mean(times)) * 1e3, 3),
        "frames_with_faces": fer_found,
    }
    first = ours[models[0]]
    result = {
        "source": Path(args.source).name,
        "frames": args.frames,
        "machine": machine(),
        "edgefer": ours,
        "fer": fer,
        "ratio_p50": round(fer["p50_ms"] / first["stages"]["total"]["p50_ms"], 1),
        # the p50 is a typical frame; the mean counts the frames that detect, and so the whole clip's time
        "ratio_mean": round(fer["mean_ms"] / first["stages"]["total"]["mean_ms"], 1),
    }
    print(machine_line(result["machine"]))
    for name, one in ours.items():
        print(
            f"edgefer {name:18s} total p50 {one['stages']['total']['p50_ms']:.3f} ms, "
            f"mean {one['stages']['total']['mean_ms']:.3f} ms "
            f"(faces in {one['frames_with_faces']}/{args.frames})"
        )
    print(
        f"fer package                total p50 {fer['p50_ms']:.3f} ms, mean {fer['mean_ms']:.3f} ms "
        f"(faces in {fer_found}/{args.frames})   fer/edgefer ({models[0]}) p50 {result['ratio_p50']}x, "
        f"mean {result['ratio_mean']}x"
    )
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()

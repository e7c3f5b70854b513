"""The shared clip as if the speaker stood K times farther away: each frame shrunk K times into the
corner of a black frame of the same size (faces of about 100 px become about 100/K px). For
measuring `--faces far` against `--faces near` with edgefer-bench:

    python benchmarks/far_clip.py --times 3 --out runs/clip_far3.mp4
    edgefer-bench --source runs/clip_far3.mp4 --faces near,far --threads 1 --json runs/bench_far3.json
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from edgefer.evaluate.checks import SHARED


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=str(SHARED / "media" / "talking_face_640x360.mp4"))
    p.add_argument("--times", type=int, default=3, help="how many times farther away")
    p.add_argument("--out", default="runs/clip_far3.mp4")
    args = p.parse_args()
    cap = cv2.VideoCapture(args.source)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25
    writer, frames = None, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        if writer is None:
            writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        canvas = np.zeros_like(frame)
        canvas[: h // args.times, : w // args.times] = cv2.resize(
            frame, (w // args.times, h // args.times), interpolation=cv2.INTER_AREA
        )
        writer.write(canvas)
        frames += 1
    writer.release()
    print(f"wrote {args.out}: {frames} frames, faces {args.times}x smaller")


if __name__ == "__main__":
    main()

"""Soak: run the device pipeline over many frames (the clip, looped) and report RSS at start and end.

python benchmarks/soak.py --frames 10000 --json runs/soak.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from edgefer.device.latency import Latency
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import open_source
from edgefer.models import model_path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--source", default=str(SHARED / "media" / "talking_face_640x360.mp4"))
    p.add_argument("--model", default=None)
    p.add_argument("--face-model", default=str(SHARED / "models" / "blaze_face_short_range.tflite"))
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    latency = Latency()
    samples = []
    source = open_source(args.source, loop=True)
    started = time.time()
    with Pipeline(model_path(args.model), args.face_model) as pipeline:
        for n, (frame, _) in enumerate(latency.frames_of(source, limit=args.frames)):
            pipeline.process(frame, latency)
            if n == 100 or n % 1000 == 0 or n == args.frames - 1:
                samples.append({"frame": n, "rss_mb": round(rss_mb(), 1)})
    source.close()
    start = next(s for s in samples if s["frame"] == 100)["rss_mb"]
    end = samples[-1]["rss_mb"]
    result = {
        "frames": args.frames,
        "wall_s": round(time.time() - started, 1),
        "rss_mb_after_100_frames": start,
        "rss_mb_end": end,
        "rss_growth_mb": round(end - start, 1),
        "rss_samples": samples,
        "latency": latency.summary(),
    }
    print(Latency.table(result["latency"]))
    print(f"RSS after 100 frames {start} MB, after {args.frames} frames {end} MB ({end - start:+.1f} MB)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

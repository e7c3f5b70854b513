"""What the video shortcuts cost in labels and save in work: the clip through the pipeline with
every setting of detect-every-N, read-a-steady-face-every-M frames and alternating sides, each
frame's label against the pipeline that does everything on every frame (1, 1, both sides), with
the faces found, the interpreter invokes and multiply-accumulates per frame, and the time per frame
(one run, the CPU recorded).

    python benchmarks/shortcuts.py --json results/shortcuts.json
    python benchmarks/shortcuts.py --model ferplus --detect-every 1,4 --classify-every 1,2 --json ferplus.json
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from edgefer.core.files import write_json
from edgefer.device.bench import machine, machine_line
from edgefer.device.latency import Latency
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import open_source
from edgefer.models import model_path

CLIP = Path(__file__).resolve().parents[1] / "media" / "talking_face_640x360.mp4"


def run(model, source, rounds, **shortcuts):
    """Labels of the first pass (the clip once, from the start), and timings over `rounds` passes."""
    frames = list(open_source(source))
    labels = []
    with Pipeline(model_path(model), **shortcuts) as pipeline:
        for frame in frames:
            faces = pipeline.process(frame)
            labels.append(faces[0].label if faces else None)
        cost = pipeline.cost()
    timed = Latency()
    for _ in range(rounds):  # fresh pipelines, the same frames: the time of the whole clip as a user runs it
        with Pipeline(model_path(model), **shortcuts) as pipeline:
            for frame, measured in timed.frames_of(frames):
                pipeline.process(frame, measured)
    return labels, cost, timed.summary()["stages"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=str(CLIP))
    p.add_argument("--model", default="fer2013-balanced")
    p.add_argument("--detect-every", default="1,2,4,8")
    p.add_argument("--classify-every", default="1,2,3")
    p.add_argument("--alternate-sides", default="off,on", help="off, on, or both (off,on)")
    p.add_argument("--rounds", type=int, default=3, help="timed passes over the clip per setting (at least 1)")
    p.add_argument("--json")
    args = p.parse_args()
    m = machine()
    print(machine_line(m))
    base, _, _ = run(args.model, args.source, 0, detect_every=1, classify_every=1, alternate_sides=False)
    rows = []
    grid = itertools.product(
        map(int, args.detect_every.split(",")),
        map(int, args.classify_every.split(",")),
        [side == "on" for side in args.alternate_sides.split(",")],
    )
    for d, c, alternate in grid:
        labels, cost, stages = run(
            args.model, args.source, max(args.rounds, 1), detect_every=d, classify_every=c, alternate_sides=alternate
        )
        same = sum(a == b for a, b in zip(labels, base)) / len(base)
        rows.append(
            {
                "detect_every": d,
                "classify_every": c,
                "alternate_sides": alternate,
                "frames": len(labels),
                "faces_found": sum(label is not None for label in labels),
                "same_label": round(same, 4),
                **cost,
                "ms_p50": {k: v["p50_ms"] for k, v in stages.items()},
                "ms_mean": {k: v["mean_ms"] for k, v in stages.items()},
            }
        )
        r = rows[-1]
        print(
            f"detect every {d}, read every {c}, sides {'alternating' if alternate else 'both'}: "
            f"same label {same:.2%}, faces {r['faces_found']}/{len(labels)}, "
            f"{r['mmacs_per_frame']['total']} MMACs and {r['invokes_per_frame']['total']} invokes a frame, "
            f"total p50 {r['ms_p50']['total']:.3f} ms, mean {r['ms_mean']['total']:.3f} ms",
            flush=True,
        )
    if args.json:
        write_json(args.json, {"source": Path(args.source).name, "model": args.model, "machine": m, "rows": rows})


if __name__ == "__main__":
    main()

"""What the video shortcuts cost in labels and save in work: the clip through the pipeline with
every pairing of detect-every-N and read-a-steady-face-every-M frames, each frame's label against
the pipeline that does everything on every frame (1, 1), with the faces found, the interpreter
invokes and multiply-accumulates per frame, and the time per frame (one run, the CPU recorded).

    python benchmarks/shortcuts.py --json results/shortcuts.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgefer.core.files import write_json
from edgefer.device.bench import machine, machine_line
from edgefer.device.latency import Latency
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import open_source
from edgefer.models import model_path

CLIP = Path(__file__).resolve().parents[1] / "media" / "talking_face_640x360.mp4"


def run(model, source, detect_every, classify_every, rounds):
    """Labels of the first pass (the clip once, from the start), and timings over `rounds` passes."""
    frames = list(open_source(source))
    labels = []
    with Pipeline(model_path(model), detect_every=detect_every, classify_every=classify_every) as pipeline:
        for frame in frames:
            faces = pipeline.process(frame)
            labels.append(faces[0]["label"] if faces else None)
        cost = pipeline.cost()
    timed = Latency()
    for _ in range(rounds):  # fresh pipelines, the same frames: the time of the whole clip as a user runs it
        with Pipeline(model_path(model), detect_every=detect_every, classify_every=classify_every) as pipeline:
            for frame, measured in timed.frames_of(frames):
                pipeline.process(frame, measured)
    return labels, cost, timed.summary()["stages"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=str(CLIP))
    p.add_argument("--model", default="fer2013-balanced")
    p.add_argument("--detect-every", default="1,2,4,8")
    p.add_argument("--classify-every", default="1,2,3")
    p.add_argument("--rounds", type=int, default=3, help="timed passes over the clip per setting (at least 1)")
    p.add_argument("--json")
    args = p.parse_args()
    m = machine()
    print(machine_line(m))
    base, _, _ = run(args.model, args.source, 1, 1, 0)
    rows = []
    for d in map(int, args.detect_every.split(",")):
        for c in map(int, args.classify_every.split(",")):
            labels, cost, stages = run(args.model, args.source, d, c, max(args.rounds, 1))
            same = sum(a == b for a, b in zip(labels, base)) / len(base)
            rows.append(
                {
                    "detect_every": d,
                    "classify_every": c,
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
                f"detect every {d}, read every {c}: same label {same:.2%}, faces {r['faces_found']}/{len(labels)}, "
                f"{r['mmacs_per_frame']['total']} MMACs and {r['invokes_per_frame']['total']} invokes a frame, "
                f"total p50 {r['ms_p50']['total']:.3f} ms, mean {r['ms_mean']['total']:.3f} ms",
                flush=True,
            )
    if args.json:
        write_json(args.json, {"source": Path(args.source).name, "model": args.model, "machine": m, "rows": rows})


if __name__ == "__main__":
    main()

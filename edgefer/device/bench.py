"""`edgefer-bench`: per-frame latency of the whole device pipeline, one row per model x faces x threads.

Each run warms up, then measures at least --frames frames (a short video is looped), stage by
stage: capture (decode), detect, preprocess, classify, total."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

from ..core.errors import EdgeferError
from ..core.faces import FACE_MODELS
from ..core.files import CommandParser, OneDefault, check_file_writable, positive_int, thread_list, write_json
from ..core.quiet import VERBOSE_ENV
from ..models import model_path
from .latency import Latency
from .options import add_pipeline_options, chosen
from .pipeline import Pipeline
from .sources import open_source


class TooFewFrames(EdgeferError, RuntimeError):
    pass


def bench_one(source_spec, model, threads: int, frames: int, warmup: int, faces: str = "near", **options) -> dict:
    """One row: `options` are Pipeline's (face_model, flip_average and the video shortcuts)."""
    latency = Latency()
    source = open_source(source_spec, loop=True)
    found = 0
    try:
        with Pipeline(model, threads=threads, faces=faces, **options) as pipeline:
            flip = pipeline.spec.flip_average
            for frame, measured in latency.frames_of(source, warmup=warmup, limit=frames):
                seen = pipeline.process(frame, measured)
                found += bool(seen) and measured is not None
            cost = pipeline.cost()
    finally:
        source.close()
    if latency.frames < frames:
        raise TooFewFrames(f"{source_spec}: only {latency.frames} frames after the warm-up; need {frames}")
    summary = latency.summary()
    return {
        "model": str(model),
        "faces": faces,
        "threads": threads,
        "flip_average": flip,
        "frames": summary["frames"],
        "stages": summary["stages"],
        "fps": summary["fps"],
        "frames_with_faces": found,
        "detect_every": pipeline.detect_every,
        "classify_every": pipeline.classify_every,
        "alternate_sides": pipeline.alternate_sides,
        # the same on every machine: what the pipeline asked of the interpreters, per frame
        "invokes_per_frame": cost["invokes_per_frame"],
        "mmacs_per_frame": cost["mmacs_per_frame"],
    }


def main(argv=None) -> int:
    p = CommandParser(prog="edgefer-bench", description=__doc__, formatter_class=OneDefault)
    p.add_argument("--source", required=True, help="video file or image folder")
    p.add_argument("--model", action="append", help="model file or bundled name; repeat to compare (default: bundled)")
    p.add_argument(
        "--faces",
        type=face_ranges,
        default="near",
        help="face detectors to measure, comma-separated: near (short-range), far (full-range)",
    )
    add_pipeline_options(p)
    p.add_argument(
        "--threads", type=thread_list, default="1,2", help="LiteRT thread counts to measure, comma-separated"
    )
    p.add_argument("--frames", type=positive_int, default=300, help="frames measured per run (the source is looped)")
    p.add_argument("--warmup", type=int, default=30, help="frames run before measuring")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"
    runs = []
    m = machine()
    print(machine_line(m), flush=True)
    try:
        if args.json:
            check_file_writable(args.json, "--json")
        for model, faces, threads in itertools.product(args.model or [None], args.faces, args.threads):
            run = bench_one(args.source, model_path(model), threads, args.frames, args.warmup, faces, **chosen(args))
            runs.append(run)
            s = run["stages"]
            print(
                f"{Path(run['model']).name}  faces={faces}  threads={threads}  flip_average={run['flip_average']}  "
                f"measured {run['frames']} frames after {args.warmup} warm-up (a short source is looped)  "
                + "  ".join(
                    f"{k} p50 {v['p50_ms']:.3f}/p90 {v['p90_ms']:.3f}/mean {v['mean_ms']:.3f} ms" for k, v in s.items()
                )
                + f"  fps={run['fps']}  faces in {run['frames_with_faces']}/{run['frames']}"
                + f"  per frame: {run['mmacs_per_frame']['total']} MMACs "
                f"(detect {run['mmacs_per_frame']['detect']}, classify {run['mmacs_per_frame']['classify']}), "
                f"{run['invokes_per_frame']['total']} invokes",
                flush=True,
            )
    except EdgeferError as exc:
        print(f"edgefer-bench: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        write_json(args.json, {"source": args.source, "machine": m, "runs": runs})
    return 0


def face_ranges(text: str) -> list[str]:
    ranges = [r.strip() for r in text.split(",") if r.strip()]
    if not ranges or any(r not in FACE_MODELS for r in ranges):
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more of {','.join(FACE_MODELS)}")
    return ranges


def machine() -> dict:
    """The CPU the figures were measured on, and the SIMD extensions that decide int8 speed
    (AVX-512 VNNI on x86, dot-product on Arm): the same model is several times slower without them."""
    import platform

    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu part") and cpu in ("", platform.machine()):
                    cpu = value.strip()
                elif key in ("flags", "features"):
                    flags.update(value.split())
    except OSError:
        pass
    simd = sorted(
        f
        for f in flags
        if f.startswith(("avx", "sse4", "fma", "asimd", "neon", "sve", "i8mm")) or "vnni" in f or f == "dotprod"
    )
    return {"cpu": cpu, "arch": platform.machine(), "cores": os.cpu_count(), "simd": simd}


def machine_line(m: dict) -> str:
    """`machine()` as the one line a benchmark prints above its figures."""
    return f"machine: {m['cpu']} ({m['arch']}, {m['cores']} cores), SIMD {' '.join(m['simd']) or 'unknown'}"


if __name__ == "__main__":
    sys.exit(main())

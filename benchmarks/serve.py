"""The live view under load: pipeline latency with 0, 1 and 4 viewers of the MJPEG stream, as ratios
in one run, and RSS over many frames with a viewer attached.

    python benchmarks/serve.py --json runs/serve.json

Latency: the clip is read at its own frame rate (as a camera delivers frames) and the three viewer
counts take turns in rounds, so drift of a noisy machine falls on all three alike. "work" is a
frame's time in the pipeline and the hand-over to the view (total minus the wait for the frame).
RSS: the clip as fast as it decodes (the encoder is busiest), one viewer reading all along;
growth is measured from the end of the warm-up to the last frame.
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time

import numpy as np
from soak import SHARED, rss_mb

from edgefer.core.files import write_json
from edgefer.device.bench import machine
from edgefer.device.latency import Latency
from edgefer.device.pipeline import Pipeline
from edgefer.device.serve import LiveView, ViewServer
from edgefer.device.sources import open_source
from edgefer.models import model_path


class Viewer(threading.Thread):
    """Reads the MJPEG stream and counts JPEGs until stopped."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.frames, self.stop = port, 0, False

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        conn.request("GET", "/stream.mjpg")
        response = conn.getresponse()
        while not self.stop:
            line = response.fp.readline()
            if not line:
                return
            if line.lower().startswith(b"content-length:"):
                response.fp.readline()
                response.fp.read(int(line.split(b":")[1]))
                self.frames += 1
        conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=str(SHARED / "media" / "talking_face_640x360.mp4"))
    p.add_argument("--model", default=None)
    p.add_argument("--rounds", type=int, default=4, help="rounds of the three viewer counts")
    p.add_argument("--round-frames", type=int, default=150, help="frames per viewer count per round")
    p.add_argument("--rss-frames", type=int, default=10000)
    p.add_argument("--json", default="runs/serve.json")
    args = p.parse_args()

    counts = (0, 1, 4)
    work = {n: [] for n in counts}
    stages = {n: Latency() for n in counts}
    received = {n: 0 for n in counts}
    with Pipeline(model_path(args.model)) as pipeline:
        view = LiveView(pipeline.about(), pipeline.classifier.labels, Latency())
        server = ViewServer(view, "127.0.0.1:0", token=None)
        try:
            source = iter(open_source(args.source, loop=True, realtime=True))
            for r in range(args.rounds):
                for n in counts:
                    viewers = [Viewer(server.port) for _ in range(n)]
                    for v in viewers:
                        v.start()
                    while view.viewers < n:
                        time.sleep(0.01)
                    for _ in range(args.round_frames):
                        frame = next(source)
                        t0 = time.perf_counter()
                        faces = pipeline.process(frame, stages[n])
                        view.publish(frame, faces)
                        work[n].append((time.perf_counter() - t0) * 1e3)
                    for v in viewers:
                        v.stop = True
                    for v in viewers:
                        v.join(timeout=5)
                        received[n] += v.frames
                    print(
                        f"round {r + 1}/{args.rounds}, {n} viewer(s): work p50 {np.median(work[n][-args.round_frames :]):.2f} ms"
                    )
            rows = []
            base = float(np.median(work[0]))
            for n in counts:
                p50 = float(np.median(work[n]))
                rows.append(
                    {
                        "viewers": n,
                        "frames": len(work[n]),
                        "work_p50_ms": round(p50, 3),
                        "work_p90_ms": round(float(np.percentile(work[n], 90)), 3),
                        "ratio_to_0_viewers": round(p50 / base, 3),
                        "jpegs_per_viewer": round(received[n] / max(1, n) / args.rounds),
                        "stages_p50_ms": {s: v["p50_ms"] for s, v in stages[n].summary()["stages"].items()},
                    }
                )

            # RSS: as fast as the clip decodes, one viewer all along
            viewer = Viewer(server.port)
            viewer.start()
            source = open_source(args.source, loop=True)
            samples, start_rss, t0 = [], None, time.time()
            latency = Latency()
            warmup = min(1000, args.rss_frames // 10)
            for i, (frame, _) in enumerate(latency.frames_of(source, limit=args.rss_frames + warmup)):
                view.publish(frame, pipeline.process(frame, latency))
                if i == warmup:
                    start_rss = rss_mb()
                if i % 1000 == 0:
                    samples.append((i, round(rss_mb(), 1)))
            end_rss = rss_mb()
            viewer.stop = True
            rss = {
                "frames": args.rss_frames,
                "warmup_frames": warmup,
                "start_mb": round(start_rss, 1),
                "end_mb": round(end_rss, 1),
                "growth_pct": round(100 * (end_rss / start_rss - 1), 2),
                "jpegs_received": viewer.frames,
                "jpegs_encoded": view.encoded,
                "seconds": round(time.time() - t0, 1),
                "samples": samples,
            }
        finally:
            server.close()

    print("| viewers | work p50 ms | work p90 ms | ratio to 0 viewers | JPEGs per viewer per round |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['viewers']} | {row['work_p50_ms']:.2f} | {row['work_p90_ms']:.2f} | "
            f"{row['ratio_to_0_viewers']:.3f} | {row['jpegs_per_viewer']} |"
        )
    print(
        f"RSS over {rss['frames']} frames with a viewer: {rss['start_mb']} -> {rss['end_mb']} MB "
        f"({rss['growth_pct']:+.2f}%), {rss['jpegs_received']} JPEGs received of {rss['jpegs_encoded']} encoded"
    )
    write_json(
        args.json,
        {
            "machine": machine(),
            "source": args.source,
            "rounds": args.rounds,
            "round_frames": args.round_frames,
            "latency": rows,
            "rss": rss,
        },
    )


if __name__ == "__main__":
    main()

"""Per-stage latency with fixed memory: a log-spaced histogram per stage, so a run of days keeps
the same footprint as a run of seconds (percentiles exact to within one bin, 0.5%)."""

from __future__ import annotations

import time

import numpy as np

STAGES = ("capture", "detect", "preprocess", "classify", "draw", "total")
_EDGES = np.geomspace(1e-6, 100.0, 3700)  # 1 us .. 100 s, ~0.5% per bin


class Latency:
    def __init__(self, stages=STAGES):
        self.stages = stages
        self.counts = {s: np.zeros(len(_EDGES) + 1, np.int64) for s in stages}
        self.sums = dict.fromkeys(stages, 0.0)
        self.frames = 0
        self.started = None  # the first measurement, so model loading is not counted

    def add(self, stage: str, seconds: float):
        if self.started is None:
            self.started = time.perf_counter() - seconds
        self.counts[stage][np.searchsorted(_EDGES, seconds)] += 1
        self.sums[stage] += seconds

    def frames_of(self, source, warmup: int = 0, limit: int = 0):
        """The one timing loop (edgefer-cam, edgefer-bench, the benchmarks): iterate `source`,
        yielding (frame, this Latency, or None during the first `warmup` frames) and timing each
        measured frame's capture (the wait for it) and total (capture plus the loop body). Stops
        after `limit` measured frames (0: at the source's end)."""
        lap = time.perf_counter()
        for n, frame in enumerate(source):
            measuring = n >= warmup
            if measuring:
                self.add("capture", time.perf_counter() - lap)
            yield frame, (self if measuring else None)
            if measuring:
                self.add("total", time.perf_counter() - lap)
                self.frames += 1
                if limit and self.frames >= limit:
                    return
            lap = time.perf_counter()

    def percentile(self, stage: str, q: float) -> float:
        counts = self.counts[stage]
        n = counts.sum()
        if n == 0:
            return 0.0
        i = int(np.searchsorted(np.cumsum(counts), q / 100.0 * n))
        return float(_EDGES[min(i, len(_EDGES) - 1)])

    def summary(self) -> dict:
        elapsed = time.perf_counter() - self.started if self.started else 0.0
        stages = {}
        for s in self.stages:
            n = int(self.counts[s].sum())
            if n:
                stages[s] = {
                    "p50_ms": round(self.percentile(s, 50) * 1e3, 3),
                    "p90_ms": round(self.percentile(s, 90) * 1e3, 3),
                    "p99_ms": round(self.percentile(s, 99) * 1e3, 3),
                    "mean_ms": round(self.sums[s] / n * 1e3, 3),
                    "count": n,
                }
        total_mean = self.sums.get("total", 0.0) / max(1, self.frames)
        return {
            "frames": self.frames,
            "stages": stages,
            "fps": round(1.0 / total_mean, 1) if total_mean else 0.0,
            "wall_fps": round(self.frames / elapsed, 1) if elapsed else 0.0,
        }

    @staticmethod
    def table(summary: dict) -> str:
        lines = [f"{'stage':<12}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'mean ms':>9}"]
        for s, v in summary["stages"].items():
            lines.append(f"{s:<12}{v['p50_ms']:>9.3f}{v['p90_ms']:>9.3f}{v['p99_ms']:>9.3f}{v['mean_ms']:>9.3f}")
        lines.append(
            f"{summary['frames']} frames, {summary['fps']} FPS from total latency "
            f"({summary['wall_fps']} FPS wall clock)"
        )
        return "\n".join(lines)

"""Per-face smoothing: a greedy IoU tracker keeps each face's identity between frames, and an
exponential moving average of its probabilities keeps labels from flickering. A face that was not
read again this frame (the pipeline reads a steady track every few frames) keeps its average."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SMOOTHING = 0.6  # weight of a face's past in its moving average (edgefer-cam --smoothing)
MIN_IOU = 0.3  # a box overlapping a face's last box this much continues that face
MAX_MISSED = 5  # frames a face may go unseen before it is forgotten


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: tuple
    probs: np.ndarray
    missed: int = 0
    unread: int = 0  # frames since its probabilities were last read from the model
    reads: int = 0  # times it was read from the model


class Tracker:
    def __init__(self, smoothing: float = SMOOTHING, min_iou: float = MIN_IOU, max_missed: int = MAX_MISSED):
        """smoothing: weight of the past in the EMA (0 = no smoothing)."""
        self.smoothing, self.min_iou, self.max_missed = smoothing, min_iou, max_missed
        self.tracks: list[Track] = []
        self._next_id = 0

    def match(self, boxes) -> list[Track | None]:
        """The track each box continues (greedy, best overlap first), or None for a new face."""
        pairs = sorted(
            ((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks) for bi, b in enumerate(boxes)), reverse=True
        )
        matched_tracks, assigned = set(), {}
        for overlap, ti, bi in pairs:
            if overlap < self.min_iou:
                break
            if ti in matched_tracks or bi in assigned:
                continue
            matched_tracks.add(ti)
            assigned[bi] = self.tracks[ti]
        return [assigned.get(bi) for bi in range(len(boxes))]

    def update(self, boxes, probs) -> list[Track]:
        """Match this frame's faces to tracks; returns the track of each face, in input order. A
        face's probabilities may be None: not read this frame, its track keeps its average."""
        out = []
        for box, p, track in zip(boxes, probs, self.match(boxes)):
            if track is None:
                track = Track(self._next_id, box, np.asarray(p, dtype=np.float32), reads=1)
                self._next_id += 1
                self.tracks.append(track)
            elif p is None:
                track.box, track.missed, track.unread = box, 0, track.unread + 1
            else:
                track.box, track.missed, track.unread, track.reads = box, 0, 0, track.reads + 1
                track.probs = self.smoothing * track.probs + (1 - self.smoothing) * np.asarray(p, dtype=np.float32)
            out.append(track)
        seen = {id(t) for t in out}
        for t in self.tracks:
            if id(t) not in seen:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out

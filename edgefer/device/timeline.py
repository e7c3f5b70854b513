"""Each tracked face's expression probabilities over time: the rolling view of the live page and
the PNG report of a run (`edgefer-cam --timeline`).

Probabilities are averaged into fixed time bins, so memory grows with the run's duration and the
number of faces, never with the frame rate; the live view keeps only its last `keep` seconds.
"""

from __future__ import annotations

import numpy as np

from ..core.files import atomic_path

# one colour per class, in label order (colour-blind friendly: Okabe-Ito, then grays)
COLORS = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#999999",
    "#555555",
    "#BBBBBB",
    "#000000",
)


class Timeline:
    def __init__(self, labels, bin_seconds: float = 0.2, keep: float | None = None):
        self.labels, self.bin, self.keep = list(labels), bin_seconds, keep
        self.tracks: dict[int, dict[int, np.ndarray]] = {}  # track -> bin index -> (sum of probs..., count)

    def add(self, t: float, faces: list):
        b = int(t // self.bin)
        for f in faces:
            bins = self.tracks.setdefault(f.track, {})
            acc = bins.get(b)
            if acc is None:
                acc = bins[b] = np.zeros(len(self.labels) + 1)
            acc[:-1] += [f.probs[c] for c in self.labels]
            acc[-1] += 1
        if self.keep is not None:
            self._forget(b - int(self.keep / self.bin))

    def _forget(self, first_bin: int):
        for track in list(self.tracks):
            bins = self.tracks[track]
            for b in [b for b in bins if b < first_bin]:
                del bins[b]
            if not bins:
                del self.tracks[track]

    def series(self, track: int) -> tuple[np.ndarray, np.ndarray]:
        """(bin start times (T,), mean probabilities (T, classes)) of one track, in time order."""
        bins = self.tracks[track]
        keys = sorted(bins)
        acc = np.array([bins[b] for b in keys])
        return np.array(keys) * self.bin, acc[:, :-1] / acc[:, -1:]

    def to_json(self) -> dict:
        """The live page's timelines: per track, times and probabilities rounded for the wire."""
        out = {}
        for track in self.tracks:
            t, p = self.series(track)
            out[str(track)] = {"t": np.round(t, 2).tolist(), "p": np.round(p, 3).tolist()}
        return out

    def dominant_share(self, track: int) -> dict[str, float]:
        """Share of the track's time each expression was the most probable one."""
        _, p = self.series(track)
        counts = np.bincount(p.argmax(axis=1), minlength=len(self.labels)) / len(p)
        return {c: float(s) for c, s in zip(self.labels, counts) if s > 0}

    def save_png(self, path, title: str = "", min_seconds: float = 1.0):
        """One band per track (tracks seen for at least `min_seconds`): stacked probabilities over
        the run's time axis, and the share of time each expression dominated. Drawn with Pillow, so
        a device without matplotlib can write it."""
        from PIL import Image, ImageDraw, ImageFont

        tracks = [k for k in sorted(self.tracks) if len(self.tracks[k]) * self.bin >= min_seconds]
        width, band, left, top, gap = 1100, 110, 70, 48, 34
        end = max((max(bins) + 1) * self.bin for bins in self.tracks.values()) if self.tracks else 1.0
        height = top + max(1, len(tracks)) * (band + gap) + 40
        image = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(image)
        try:
            draw.font = ImageFont.load_default(size=13)  # Pillow >= 10.1: a scalable font
        except TypeError:
            pass
        draw.text((left, 8), title or "expressions per tracked face", fill="black")
        x = left  # legend
        for c, color in zip(self.labels, COLORS):
            draw.rectangle((x, 26, x + 10, 36), fill=color)
            draw.text((x + 14, 25), c, fill="black")
            x += 18 + int(draw.textlength(c)) + 14
        plot_w = width - left - 20
        for row, track in enumerate(tracks):
            y0 = top + row * (band + gap) + 14
            t, p = self.series(track)
            share = self.dominant_share(track)
            summary = ", ".join(f"{c} {s:.0%}" for c, s in sorted(share.items(), key=lambda kv: -kv[1])[:4])
            draw.text(
                (left, y0 - 16), f"face {track}: {len(t) * self.bin:.0f} s seen; most probable: {summary}", fill="black"
            )
            draw.rectangle((left, y0, left + plot_w, y0 + band), outline="#cccccc")
            for share in (0.0, 0.5, 1.0):  # the probability scale: a band's height is probability 1
                ys = y0 + band - int(share * band)
                draw.line((left - 4, ys, left, ys), fill="black")
                draw.text((left - 32, ys - 7), f"{share:.1f}", fill="black")
            for ti, probs in zip(t, p):
                xa = left + int(ti / end * plot_w)
                xb = max(xa + 1, left + int((ti + self.bin) / end * plot_w))
                y = y0 + band
                for prob, color in zip(probs, COLORS):
                    h = prob * band
                    draw.rectangle((xa, y - h, xb, y), fill=color)
                    y -= h
        if not tracks:
            draw.text((left, top + 20), "no face was tracked for a second or more", fill="black")
        y_axis = height - 30
        step = (
            next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400) if end / s <= 10)
            if end <= 864000
            else end / 10
        )
        for s in np.arange(0, end + 1e-9, step):
            xs = left + int(s / end * plot_w)
            draw.line((xs, y_axis, xs, y_axis + 4), fill="black")
            draw.text((xs - 8, y_axis + 6), f"{s:.0f} s", fill="black")
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")

"""What edgefer-cam says about the faces it read: a line per image as each still is read, and at the
end of a video each tracked face's expressions over the run (the share of its frames each label led)."""

from __future__ import annotations

BRIEF_SECONDS = 1.0  # a face seen for less (a false detection, someone passing) is counted, not listed
MAX_TRACKS = 1000  # a service that runs for months keeps the longest-seen faces only


def reading(face) -> str:
    """A face's reading (pipeline.Face) as the screen shows it: "happy 0.91", "uncertain (sad 0.38)",
    a compound pair."""
    text = f"{face.label} {face.probs[face.label]:.2f}"
    return (face.pair or (f"uncertain ({text})" if face.uncertain else text)).replace("_", " ")


def still_line(frame, faces: list) -> str:
    """file: each face's reading and box (x, y, width, height in pixels), or that none was found."""
    if not faces:
        return f"{frame.name}: no face found"
    found = "; ".join(f"{reading(f)} at ({', '.join(str(v) for v in f.box)})" for f in faces)
    return f"{frame.name}: {found}" if len(faces) == 1 else f"{frame.name}: {len(faces)} faces: {found}"


class TrackSummary:
    """Per tracked face: when it was first and last seen, in how many frames, and how often each
    label led (an uncertain reading counts as "uncertain")."""

    def __init__(self):
        self.tracks: dict[int, dict] = {}

    def add(self, frame, faces: list) -> None:
        for f in faces:
            if f.track is None:
                continue
            track = self.tracks.setdefault(f.track, {"first": frame.t, "frames": 0, "labels": {}})
            track["last"] = frame.t
            track["frames"] += 1
            label = "uncertain" if f.uncertain else (f.pair or f.label).replace("_", " ")
            track["labels"][label] = track["labels"].get(label, 0) + 1
        if len(self.tracks) > MAX_TRACKS:
            shortest = sorted(self.tracks, key=lambda k: self.tracks[k]["frames"])[: len(self.tracks) - MAX_TRACKS]
            for k in shortest:
                del self.tracks[k]

    def lines(self) -> list[str]:
        listed = {k: t for k, t in self.tracks.items() if t["last"] - t["first"] >= BRIEF_SECONDS}
        if not self.tracks:
            return ["expressions: no face was found"]
        out = ["expressions over the run (each face: the share of its frames each label led):"]
        for k, t in sorted(listed.items(), key=lambda kv: kv[1]["first"]):
            shares = sorted(t["labels"].items(), key=lambda kv: -kv[1])
            text = ", ".join(f"{label} {100 * n / t['frames']:.0f}%" for label, n in shares if n / t["frames"] >= 0.01)
            out.append(f"  face {k}, {t['first']:.1f}-{t['last']:.1f} s ({t['frames']} frames): {text}")
        brief = len(self.tracks) - len(listed)
        if brief:
            out.append(f"  and {brief} face{'s' if brief > 1 else ''} seen for under {BRIEF_SECONDS:g} s")
        return out

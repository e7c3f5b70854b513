"""Canonical label orders and the aliases datasets use for them.

Every dataset reader maps its class names through `canonical()` so that "anger", "Angry" and
"angry" are one class, and orders labels by a taxonomy so a model's output index means the same
thing whatever folder it was trained from.
"""

from __future__ import annotations

from .errors import EdgeferError

# FER-2013's own order (its csv `emotion` column is an index into this).
BASIC7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# FER+'s order (the vote columns of fer2013new.csv), contempt added.
FERPLUS8 = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt")
# RAF-DB compound order (labels 1..11 of its list_patition_label.txt).
COMPOUND11 = (
    "happily_surprised",
    "happily_disgusted",
    "sadly_fearful",
    "sadly_angry",
    "sadly_surprised",
    "sadly_disgusted",
    "fearfully_angry",
    "fearfully_surprised",
    "angrily_surprised",
    "angrily_disgusted",
    "disgustedly_surprised",
)

# the basic emotions a compound is made of (neutral and contempt are no part of one)
COMPOUND_EMOTIONS = ("happy", "surprise", "sad", "angry", "disgust", "fear")
_ADVERB = {"happy": "happily", "sad": "sadly", "fear": "fearfully", "angry": "angrily", "disgust": "disgustedly"}
_ADJECTIVE = {"surprise": "surprised", "fear": "fearful", "angry": "angry", "disgust": "disgusted"}

TAXONOMIES = {"basic7": BASIC7, "ferplus8": FERPLUS8, "compound11": COMPOUND11}

ALIASES = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "normal": "neutral",
    "contempt": "contempt",
}


class UnknownLabel(EdgeferError, ValueError):
    pass


def canonical(name: str) -> str:
    """Canonical class name for `name` ("Happiness" -> "happy"); raises UnknownLabel."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in ALIASES:
        return ALIASES[key]
    if key in COMPOUND11:
        return key
    raise UnknownLabel(
        f"'{name}' is not a known expression; use one of {sorted(set(ALIASES))} or a compound class {list(COMPOUND11)}"
    )


def taxonomy_for(classes) -> tuple[str, list[str]]:
    """The smallest taxonomy holding every class, and those classes in its order."""
    present = {canonical(c) for c in classes}
    for name, order in TAXONOMIES.items():
        if present <= set(order):
            return name, [c for c in order if c in present]
    raise UnknownLabel(f"classes {sorted(present)} mix taxonomies; keep one of {list(TAXONOMIES)}")


def compound_name(a: str, b: str) -> str | None:
    """The RAF-DB compound class of two basic emotions ("happy", "surprise" -> "happily_surprised"),
    or None for a pair RAF-DB has no class for (happy with sad, fear or anger; fear with disgust)."""
    for first, second in ((a, b), (b, a)):
        name = f"{_ADVERB.get(first)}_{_ADJECTIVE.get(second)}"
        if name in COMPOUND11:
            return name
    return None


def top_two_compound(probs: dict[str, float], threshold: float) -> str | None:
    """A compound read from a basic-emotion model: its two most probable emotions (neutral and
    contempt aside) when both reach `threshold`, named as RAF-DB names the pair; else None."""
    ranked = sorted((e for e in COMPOUND_EMOTIONS if e in probs), key=lambda e: -probs[e])
    if len(ranked) < 2 or probs[ranked[1]] < threshold:
        return None
    return compound_name(ranked[0], ranked[1])

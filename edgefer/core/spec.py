"""The input spec: how a face becomes a model's input. One object, resolved once when training
starts, carried inside the model (its card), and the only place any stage takes its pixels from.

    frame ──crop (FaceCrop: margin, offset, alignment)──> face ──pixels()──> uint8 (S, S, C)
          ──model_input()──> float in the model's range ──predict() (flip averaging)──> probabilities

The training loader, evaluation, export's calibration and evaluation, and the device `Classifier`
all call these methods, so there is one implementation of each step. Values the code does not
implement are refused when the spec is made, and so never written into a card.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from . import preprocess
from .errors import EdgeferError
from .taxonomy import TAXONOMIES

SPEC_VERSION = 1
ALIGN = ("none", "eyes")
# what the training images were: faces already cropped by their dataset (FER-2013), so the device
# crop should reproduce that framing; or full frames that training cropped with this spec's crop
FRAMING = ("crops", "frames")


class BadSpec(EdgeferError, ValueError):
    """A spec (or card) the code cannot honour; the message says which field and why."""


def _need(cond, what: str, source: str):
    if not cond:
        raise BadSpec(f"{source}: {what}")


@dataclass(frozen=True)
class FaceCrop:
    """The square around a detected face box that the model sees."""

    margin: float = 0.2  # grown by this share of the box on every side
    offset_y: float = 0.0  # centre moved down by this share of the box side (negative: up)
    align: str = "none"  # "eyes": level the eye line first (needs the detector's eye keypoints)

    def check(self, source: str = "face crop") -> FaceCrop:
        _need(isinstance(self.margin, (int, float)) and 0 <= self.margin <= 1, "'margin' must be 0..1", source)
        _need(
            isinstance(self.offset_y, (int, float)) and -0.5 <= self.offset_y <= 0.5,
            "'offset_y' must be -0.5..0.5",
            source,
        )
        _need(self.align in ALIGN, f"'align' must be one of {list(ALIGN)}", source)
        return self

    def region(self, box, width: int, height: int) -> tuple[float, float, float, float]:
        """The crop as a region of interest in a width x height frame: (left, top, right, bottom),
        0..1, MediaPipe's `region_of_interest` for the phone form. MediaPipe takes regions inside
        the frame only, so a crop reaching past the border is cut there, where this crop pads."""
        x0, y0, x1, y1 = preprocess.crop_square(box, self.margin, self.offset_y)
        return (max(x0, 0) / width, max(y0, 0) / height, min(x1, width) / width, min(y1, height) / height)

    def __call__(self, frame: np.ndarray, box, eyes=None) -> np.ndarray:
        """The face crop of one detected box; `eyes` ((right x, y), (left x, y)) when aligning."""
        return preprocess.crop_face(frame, box, self.margin, eyes if self.align == "eyes" else None, self.offset_y)


@dataclass(frozen=True)
class InputSpec:
    labels: tuple[str, ...]
    taxonomy: str
    size: int
    color: str = "gray3"
    equalize: str = "none"
    value_range: tuple[float, float] = (0.0, 255.0)
    crop: FaceCrop = field(default_factory=FaceCrop)
    framing: str = "crops"
    flip_average: bool = False  # average each face's probabilities with its mirror image's
    logit_bias: tuple[float, ...] = ()  # per class, added to log-probabilities (class-prior adjustment)
    temperature: float = 1.0  # log-probabilities divided by it: confidence that means what it says
    uncertain_below: float = 0.0  # a face whose top probability is lower is shown as uncertain

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))
        object.__setattr__(self, "logit_bias", tuple(float(v) for v in self.logit_bias))
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "uncertain_below", float(self.uncertain_below))
        self.check()

    def check(self, source: str = "input spec") -> InputSpec:
        _need(
            len(self.labels) >= 2
            and all(isinstance(x, str) for x in self.labels)
            and len(set(self.labels)) == len(self.labels),
            "'labels' must list at least two class names, each once",
            source,
        )
        _need(self.taxonomy in TAXONOMIES, f"'taxonomy' must be one of {list(TAXONOMIES)}", source)
        _need(
            set(self.labels) <= set(TAXONOMIES.get(self.taxonomy, ())),
            f"labels {list(self.labels)} are not all in taxonomy {self.taxonomy}",
            source,
        )
        _need(isinstance(self.size, int) and 8 <= self.size <= 1024, "'input.size' must be an integer 8..1024", source)
        _need(
            self.color in preprocess.COLOR_MODES, f"'input.color' must be one of {list(preprocess.COLOR_MODES)}", source
        )
        _need(
            self.equalize in preprocess.EQUALIZE, f"'input.equalize' must be one of {list(preprocess.EQUALIZE)}", source
        )
        _need(
            self.value_range == (0.0, 255.0),
            "'input.range' must be [0, 255]: edgefer models take pixels and normalise inside the graph",
            source,
        )
        _need(self.framing in FRAMING, f"'face_crop.framing' must be one of {list(FRAMING)}", source)
        _need(isinstance(self.flip_average, bool), "'inference.flip_average' must be true or false", source)
        _need(
            len(self.logit_bias) in (0, len(self.labels)) and all(abs(b) <= 10 for b in self.logit_bias),
            "'inference.logit_bias' must give one number (|b| <= 10) per label, or be absent",
            source,
        )
        _need(0.05 <= self.temperature <= 20, "'inference.temperature' must be 0.05..20 (1: none)", source)
        _need(0 <= self.uncertain_below < 1, "'inference.uncertain_below' must be 0 (off) up to below 1", source)
        self.crop.check(source)
        return self

    def replace(self, **changes) -> InputSpec:
        return dataclasses.replace(self, **changes)

    @property
    def channels(self) -> int:
        return preprocess.channels(self.color)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, self.channels)

    # --- the pixel path -------------------------------------------------------------------------
    def pixels(self, face: np.ndarray) -> np.ndarray:
        """A face image (any size, gray or RGB uint8) -> uint8 (size, size, C)."""
        return preprocess.prepare(face, self.size, self.color, self.equalize)

    def face_pixels(self, frame: np.ndarray, box, eyes=None) -> np.ndarray:
        """A detected face in a frame -> uint8 (size, size, C): crop, then pixels."""
        return self.pixels(self.crop(frame, box, eyes))

    def model_input(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels -> float32 in the model's input range."""
        return preprocess.to_model_input(pixels, self.value_range)

    def predict(self, run, pixels: np.ndarray) -> np.ndarray:
        """Probabilities of a batch (N, S, S, C): `run(batch)` -> (N, classes), averaged with the
        mirror images' when the spec says so (the one implementation of flip averaging)."""
        plain, mirrored = flip_passes(run, pixels) if self.flip_average else (run(pixels), None)
        return self.calibrated(plain if mirrored is None else (plain + mirrored) / 2)

    def calibrated(self, probs: np.ndarray) -> np.ndarray:
        """Probabilities as the card has them read: its temperature and class-prior adjustment
        (which moves decisions) applied, when it has them."""
        if self.logit_bias or self.temperature != 1.0:
            return adjust(probs, self.logit_bias or 0.0, self.temperature)
        return probs

    def uncertain(self, probs) -> bool:
        """Whether the most probable class is below the card's bar: at such confidence the model was
        more often wrong than right on validation faces. The decision stays; the device says so."""
        return bool(np.max(probs) < self.uncertain_below)

    # --- the card -------------------------------------------------------------------------------
    def to_card(self) -> dict:
        return {
            "card_version": SPEC_VERSION,
            "taxonomy": self.taxonomy,
            "labels": list(self.labels),
            "input": {
                "size": self.size,
                "color": self.color,
                "range": list(self.value_range),
                "equalize": self.equalize,
            },
            "face_crop": {
                "margin": float(self.crop.margin),
                "offset_y": float(self.crop.offset_y),
                "align": self.crop.align,
                "framing": self.framing,
            },
            # written only when set: older cards round-trip unchanged
            "inference": dict(
                {"flip_average": self.flip_average},
                **({"logit_bias": list(self.logit_bias)} if self.logit_bias else {}),
                **({"temperature": self.temperature} if self.temperature != 1.0 else {}),
                **({"uncertain_below": self.uncertain_below} if self.uncertain_below else {}),
            ),
        }

    @classmethod
    def from_card(cls, card: dict, source: str = "model card") -> InputSpec:
        """The spec a card describes; BadSpec naming the field when the code cannot honour it.
        Cards written before framing and offsets existed load unchanged (crops, no offset)."""
        _need(isinstance(card, dict), "not a JSON object", source)
        _need(
            card.get("card_version") == SPEC_VERSION,
            f"card_version must be {SPEC_VERSION}, got {card.get('card_version')!r}",
            source,
        )
        inp, crop, inference = card.get("input") or {}, card.get("face_crop") or {}, card.get("inference") or {}
        _need(
            isinstance(inp, dict) and isinstance(crop, dict) and isinstance(inference, dict),
            "'input', 'face_crop' and 'inference' must be objects",
            source,
        )
        # fields older cards wrote: accepted only with the one value the code implements
        _need(inp.get("normalization", "in-model") == "in-model", "'input.normalization' must be 'in-model'", source)
        _need(crop.get("square", True) is True, "'face_crop.square' must be true", source)
        _need(isinstance(card.get("labels"), list), "'labels' must list the class names", source)
        _need(isinstance(inp.get("range", [0, 255]), list), "'input.range' must be [low, high]", source)
        try:
            return cls(
                labels=tuple(card["labels"]),
                taxonomy=card.get("taxonomy"),
                size=inp.get("size"),
                color=inp.get("color"),
                equalize=inp.get("equalize"),
                value_range=tuple(inp.get("range", (0, 255))),
                crop=FaceCrop(crop.get("margin"), crop.get("offset_y", 0.0), crop.get("align", "none")),
                framing=crop.get("framing", "crops"),
                flip_average=inference.get("flip_average", False),
                logit_bias=tuple(inference.get("logit_bias", ())),
                temperature=inference.get("temperature", 1.0),
                uncertain_below=inference.get("uncertain_below", 0.0),
            )
        except BadSpec as exc:
            raise BadSpec(f"{source}: {str(exc).split(': ', 1)[-1]}") from None
        except (TypeError, ValueError) as exc:
            raise BadSpec(f"{source}: malformed ({exc})") from None


def adjust(probs: np.ndarray, logit_bias=0.0, temperature: float = 1.0) -> np.ndarray:
    """Probabilities with their logarithms divided by `temperature` (temperature scaling: the
    decision stays, the confidence is calibrated) and `logit_bias` added (a class-prior adjustment
    that moves the decision without retraining), renormalised."""
    logits = np.log(np.clip(probs, 1e-6, None)) / temperature + np.asarray(logit_bias, np.float32)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def ensemble(members, labels) -> np.ndarray:
    """The geometric mean of several models' (N, their labels) probabilities over `labels`: each
    model's columns for those labels renormalised first (a label it has and `labels` lack, FER+'s
    contempt, drops out), then averaged in log space and renormalised. `members`: (labels, probs)
    pairs. Distillation teachers (recipes/teacher_targets.py) and ensemble scores (experiments/teachers.py)."""
    logp = 0.0
    for names, probs in members:
        p = np.asarray(probs, np.float64)[..., [list(names).index(c) for c in labels]]
        logp = logp + np.log(np.clip(p / p.sum(axis=-1, keepdims=True), 1e-6, 1.0))
    mean = np.exp(logp / len(members))
    return (mean / mean.sum(axis=-1, keepdims=True)).astype(np.float32)


def mirror(pixels: np.ndarray) -> np.ndarray:
    """Left-right mirror image of (H, W, C) pixels or a (N, H, W, C) batch."""
    return np.ascontiguousarray(np.flip(pixels, axis=-2))


def flip_passes(run, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities of the faces, of their mirror images): both passes that flip averaging needs,
    for callers that report the single pass and the average from the same work. A runner that
    takes a batch in one invoke (`run.whole_batches`, the device's Classifier) gets the faces and
    their mirror images together: one invoke where there were two."""
    if getattr(run, "whole_batches", False):
        both = run(np.concatenate([pixels, mirror(pixels)]))
        return both[: len(pixels)], both[len(pixels) :]
    return run(pixels), run(mirror(pixels))

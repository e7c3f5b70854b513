"""The model card: the preprocessing contract written at training time and read back everywhere.

A card is plain JSON. `make_card()` builds one from training settings, `validate()` refuses one
that is missing something the device needs, and `face_input()` turns a face crop into the model's
input pixels with exactly the card's settings.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from . import preprocess
from .taxonomy import TAXONOMIES

CARD_VERSION = 1


class BadCard(ValueError):
    pass


def make_card(*, labels, taxonomy, size, color, equalization, margin, arch, alpha, weights,
              dataset, splits, value_range=(0, 255), normalization="in-model", metrics=None,
              flip_average: bool = False) -> dict:
    return {
        "card_version": CARD_VERSION,
        "task": "facial-expression",
        "taxonomy": taxonomy,
        "labels": list(labels),
        "input": {"size": int(size), "color": color, "range": list(value_range),
                  "equalize": equalization, "normalization": normalization},
        "face_crop": {"margin": float(margin), "square": True, "align": "none"},
        # the device averages a face with its mirror image (two invokes)
        "inference": {"flip_average": bool(flip_average)},
        "backbone": {"arch": arch, "alpha": alpha, "weights": weights},
        "trained_on": {"dataset": dataset, "splits": dict(splits)},
        "metrics": metrics or {},
    }


def validate(card, source="model card") -> dict:
    """Return the card if the device can use it, else raise BadCard naming what is wrong."""
    def need(cond, what):
        if not cond:
            raise BadCard(f"{source}: {what}; re-export the model with edgefer-export (or retrain) to get a valid card")
    need(isinstance(card, dict), "not a JSON object")
    need(card.get("card_version") == CARD_VERSION, f"card_version must be {CARD_VERSION}, got {card.get('card_version')!r}")
    labels = card.get("labels")
    need(isinstance(labels, list) and len(labels) >= 2 and all(isinstance(x, str) for x in labels),
         "'labels' must list at least two class names")
    need(card.get("taxonomy") in TAXONOMIES, f"'taxonomy' must be one of {list(TAXONOMIES)}")
    need(set(labels) <= set(TAXONOMIES[card["taxonomy"]]), f"labels {labels} are not all in taxonomy {card['taxonomy']}")
    inp = card.get("input") or {}
    need(isinstance(inp.get("size"), int) and 8 <= inp["size"] <= 1024, "'input.size' must be an integer 8..1024")
    need(inp.get("color") in preprocess.COLOR_MODES, f"'input.color' must be one of {preprocess.COLOR_MODES}")
    need(inp.get("equalize") in preprocess.EQUALIZE, f"'input.equalize' must be one of {preprocess.EQUALIZE}")
    need(isinstance(inp.get("range"), list) and len(inp["range"]) == 2, "'input.range' must be [low, high]")
    crop = card.get("face_crop") or {}
    need(isinstance(crop.get("margin"), (int, float)) and 0 <= crop["margin"] <= 1, "'face_crop.margin' must be 0..1")
    inference = card.get("inference", {})
    need(isinstance(inference, dict) and isinstance(inference.get("flip_average", False), bool),
         "'inference.flip_average' must be true or false")
    return card


def load(path) -> dict:
    path = Path(path)
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadCard(f"{path}: no model card; train with edgefer-train, which writes card.json") from None
    except json.JSONDecodeError as exc:
        raise BadCard(f"{path}: not valid JSON ({exc})") from None
    return validate(card, str(path))


# The card travels inside the .tflite the way TFLite metadata carries associated files: a zip
# appended to the flatbuffer. Interpreters ignore the trailing bytes; zipfile reads the archive from
# its end, so one file holds both the model and its contract.
CARD_MEMBER = "edgefer_card.json"


def embed(model_bytes: bytes, card: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(CARD_MEMBER, json.dumps(validate(card), indent=2))
    return bytes(model_bytes) + buffer.getvalue()


def read_embedded(path) -> dict:
    """The card inside a .tflite file; BadCard when there is none or it is invalid."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            text = z.read(CARD_MEMBER)
    except FileNotFoundError:
        raise BadCard(f"{path}: no such model file") from None
    except (zipfile.BadZipFile, KeyError):
        raise BadCard(f"{path}: this model carries no edgefer card (labels and preprocessing); "
                      "export it with edgefer-export, which embeds the card") from None
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadCard(f"{path}: embedded card is not valid JSON ({exc})") from None
    return validate(card, f"{path} (embedded card)")


def face_input(face: np.ndarray, card: dict) -> np.ndarray:
    """A face crop -> the float32 (size, size, C) input the card's model expects."""
    inp = card["input"]
    pixels = preprocess.prepare(face, inp["size"], inp["color"], inp["equalize"])
    return preprocess.to_model_input(pixels, inp["range"])

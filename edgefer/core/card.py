"""The model card: an `InputSpec` serialised as JSON, plus provenance (backbone, dataset, metrics,
quantization). Training writes it as `card.json`, export embeds it in the `.tflite`, the device
reads it back; every stage turns it into the same `InputSpec` with `spec()`.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

from .spec import BadSpec, InputSpec

BadCard = BadSpec  # a card is a serialised spec: one error for both
PROVENANCE = ("task", "backbone", "trained_on", "metrics", "quantization")


def make_card(spec: InputSpec, *, arch, alpha, weights, dataset, splits, metrics=None) -> dict:
    return dict(
        spec.to_card(),
        task="facial-expression",
        backbone={"arch": arch, "alpha": alpha, "weights": weights},
        trained_on={"dataset": dataset, "splits": dict(splits)},
        metrics=metrics or {},
    )


def spec(card: dict, source: str = "model card") -> InputSpec:
    """The card's InputSpec; BadCard (naming `source`, the field and the fix) when unusable."""
    try:
        return InputSpec.from_card(card, source)
    except BadSpec as exc:
        raise BadCard(f"{exc}; re-export the model with edgefer-export (or retrain) to get a valid card") from None


def with_spec(card: dict, new_spec: InputSpec) -> dict:
    """The card with its spec part replaced (provenance kept): e.g. a device framing measured later."""
    return dict({k: v for k, v in card.items() if k in PROVENANCE}, **new_spec.to_card())


def validate(card, source: str = "model card") -> dict:
    """Return the card if the device can use it, else raise BadCard naming what is wrong."""
    spec(card, source)
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
TFLITE_MAGIC = b"TFL3"  # a TFLite flatbuffer's file identifier, at bytes 4..8
MAX_CARD_BYTES = 1_000_000  # a card is a few KB; one that inflates past this is refused unread
CHECKSUM = "model_sha256"  # the flatbuffer's digest, in the card: flipped weights are caught at load


def embed(model_bytes: bytes, card: dict) -> bytes:
    card = dict(card, **{CHECKSUM: hashlib.sha256(bytes(model_bytes)).hexdigest()})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        # a fixed date in the zip entry: the same card on the same flatbuffer is the same file,
        # whenever it is written (a re-run of a recipe can be checked with cmp)
        member = zipfile.ZipInfo(CARD_MEMBER, date_time=(1980, 1, 1, 0, 0, 0))
        z.writestr(member, json.dumps(validate(card), indent=2), compress_type=zipfile.ZIP_DEFLATED)
    return bytes(model_bytes) + buffer.getvalue()


def model_bytes(data: bytes) -> bytes:
    """The bare flatbuffer of a .tflite that may carry a card: the bytes before the appended zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return data[: z.getinfo(CARD_MEMBER).header_offset]  # zipfile counts from the file's start
    except (zipfile.BadZipFile, KeyError):
        return data


def read_embedded(path) -> dict:
    """The card inside a .tflite file; BadCard when there is none or it is invalid."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(CARD_MEMBER)
            with z.open(info) as member:  # read to the bound, whatever the header claims
                text = member.read(MAX_CARD_BYTES + 1)
            offset = info.header_offset
    except FileNotFoundError:
        raise BadCard(f"{path}: no such model file") from None
    except (zipfile.BadZipFile, KeyError, OSError):
        if head[4:8] != TFLITE_MAGIC:
            raise BadCard(
                f"{path}: not a TFLite model (corrupt, truncated or another format); "
                "export it again with edgefer-export, or copy it again"
            ) from None
        raise BadCard(
            f"{path}: this model carries no edgefer card (labels and preprocessing), or the file "
            "was cut short; export it with edgefer-export, which embeds the card"
        ) from None
    if len(text) > MAX_CARD_BYTES:
        raise BadCard(
            f"{path}: its embedded card is over {MAX_CARD_BYTES:,} bytes (a card is a few KB); export the model again"
        )
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadCard(f"{path}: embedded card is not valid JSON ({exc})") from None
    except RecursionError:
        raise BadCard(f"{path}: embedded card is nested too deep to be a card; export the model again") from None
    if not isinstance(card, dict):
        raise BadCard(f"{path}: embedded card is not a JSON object; export the model again")
    if CHECKSUM in card:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read(offset)).hexdigest()
        if digest != card[CHECKSUM]:
            raise BadCard(
                f"{path}: the model's weights are not those its card was written for (damaged or altered); "
                "export it again with edgefer-export, or copy it again"
            )
    return validate(card, f"{path} (embedded card)")

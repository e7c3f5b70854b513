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


def embed(model_bytes: bytes, card: dict, others: dict[str, bytes] | None = None) -> bytes:
    """The flatbuffer with its card appended; `others` are associated files (TFLite metadata's labels
    file) written into the same zip before the card."""
    card = dict(card, **{CHECKSUM: hashlib.sha256(bytes(model_bytes)).hexdigest()})
    # MediaPipe maps associated files straight from the file, so beside them nothing is compressed
    method = zipfile.ZIP_STORED if others else zipfile.ZIP_DEFLATED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as z:
        # a fixed date in the zip entries: the same card on the same flatbuffer is the same file,
        # whenever it is written (a re-run of a recipe can be checked with cmp)
        for name, data in [*(others or {}).items(), (CARD_MEMBER, json.dumps(validate(card), indent=2).encode())]:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
    return bytes(model_bytes) + buffer.getvalue()


def _zip_start(z: zipfile.ZipFile) -> int:
    """Where the appended zip begins: its first member (zipfile counts from the file's start)."""
    return min(info.header_offset for info in z.infolist())


def model_bytes(data: bytes) -> bytes:
    """The bare flatbuffer of a .tflite that may carry a card or metadata's associated files: the
    bytes before the appended zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return data[: _zip_start(z)] if z.infolist() else data
    except zipfile.BadZipFile:
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
            offset = _zip_start(z)
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

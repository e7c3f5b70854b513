"""FER-2013 as its original csv, and FER+ (Barsoum et al. 2016) votes on the FER-2013 images."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..core.taxonomy import BASIC7, COMPOUND11, COMPOUND_EMOTIONS, FERPLUS8, compound_name
from .base import DatasetError, FaceDataset, Split
from .folders import FER2013_PREFIX

# Where BlazeFace's box sits in a FER-2013 face (experiments/framing.py, 1,490 training faces): the image
# is the box grown by FER2013_MARGIN of its side each way, centred FER2013_OFFSET_Y box sides below the
# box's centre (negative: above). The device crops camera faces so, to frame them as training did.
FER2013_MARGIN, FER2013_OFFSET_Y = 0.09, -0.11

FERPLUS_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)


def _pixels(text: str, where: str) -> np.ndarray:
    try:
        values = np.array(text.split(), dtype=np.int64) if text else np.zeros(0, np.int64)
    except ValueError:
        word = next(w for w in text.split() if not w.lstrip("-").isdigit())
        raise DatasetError(
            f"{where}: 'pixels' holds {word[:20]!r}, not a number from 0 to 255; fix or delete the row"
        ) from None
    side = int(round(np.sqrt(values.size)))
    if values.size == 0 or side * side != values.size or values.min() < 0 or values.max() > 255:
        raise DatasetError(
            f"{where}: 'pixels' must be a square image of 0..255 values "
            f"(got {values.size} values); fix or delete the row"
        )
    return values.reshape(side, side).astype(np.uint8)


def read_fer2013_rows(csv_path) -> list[tuple[int, np.ndarray, str]]:
    """(emotion, pixels, usage) per row of an `emotion,pixels,Usage` csv."""
    csv_path = Path(csv_path)
    rows = []
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{csv_path}: missing column(s) {sorted(missing)}; expected emotion,pixels,Usage")
        for n, row in enumerate(reader, start=2):
            where = f"{csv_path}:{n}"
            try:
                emotion = int(row["emotion"])
            except (TypeError, ValueError):
                raise DatasetError(f"{where}: emotion {row['emotion']!r} is not an integer 0..6") from None
            if not 0 <= emotion < len(BASIC7):
                raise DatasetError(f"{where}: emotion {emotion} outside 0..6")
            if row["Usage"] not in FER2013_PREFIX:
                raise DatasetError(f"{where}: Usage {row['Usage']!r} is not Training/PublicTest/PrivateTest")
            rows.append((emotion, _pixels(row["pixels"], where), row["Usage"]))
    if not rows:
        raise DatasetError(f"{csv_path}: no rows")
    return rows


def read_fer2013_csv(path, **_) -> FaceDataset:
    rows = read_fer2013_rows(path)
    splits = {}
    for usage, split in FER2013_PREFIX.items():
        chosen = [r for r in rows if r[2] == usage]
        splits[split] = Split([r[1] for r in chosen], np.array([r[0] for r in chosen], dtype=int))
    return FaceDataset(
        "fer2013",
        list(BASIC7),
        "basic7",
        splits,
        str(path),
        ["official split: Training=train, PublicTest=val, PrivateTest=test"],
    )


def ferplus_targets(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FER+ votes (N, 10) -> (majority label or -1 to drop, soft targets over the 8 emotions).

    As in the FER+ paper's reference code: single votes are treated as annotator noise and
    removed; a row whose top vote is `unknown` or `NF` (not a face), or whose top emotion is tied,
    is dropped."""
    votes = votes.astype(np.float64).copy()
    votes[votes <= 1] = 0
    emotions = votes[:, :8]
    top = emotions.max(axis=1)
    label = emotions.argmax(axis=1)
    tied = (emotions == top[:, None]).sum(axis=1) > 1
    not_face = votes[:, 8:].max(axis=1) >= top
    label[(top == 0) | tied | not_face] = -1
    total = emotions.sum(axis=1, keepdims=True)
    soft = np.divide(emotions, total, out=np.zeros_like(emotions), where=total > 0)
    return label, soft.astype(np.float32)


def read_ferplus(path, images=None, mapping=None, **_) -> FaceDataset:
    """FER+ votes (`fer2013new.csv`, or a folder holding it) on FER-2013 images.

    Images come from `mapping` (a csv with `fer2013_row,fer2013_folder_path` relative to `images`,
    a FER-2013 image folder) or, without one, row by row from `images` = the FER-2013 csv.
    Defaults follow the shared layout: `<dir>/ferplus_to_fer2013_folder_mapping.csv` and
    `<dir>/../fer2013`."""
    votes_csv, images, mapping = _locate(path, images, mapping)
    votes, usage = read_votes(votes_csv)
    source = _image_sources(votes_csv, images, mapping, len(usage))
    label, soft = ferplus_targets(votes)
    # FER+ order with "happiness"/"sadness"/"anger" renamed to the kit's canonical names
    splits, dropped = _official_splits(usage, label, source, soft)
    notes = [f"FER+ majority labels; {dropped} rows dropped (unknown, not a face, tied or unmapped)"]
    return FaceDataset("ferplus", list(FERPLUS8), "ferplus8", splits, str(votes_csv), notes)


def _locate(path, images, mapping):
    """(votes csv, FER-2013 images, mapping csv) with the shared layout's defaults filled in."""
    path = Path(path)
    votes_csv = path / "fer2013new.csv" if path.is_dir() else path
    base = votes_csv.parent
    if mapping is None and (base / "ferplus_to_fer2013_folder_mapping.csv").exists():
        mapping = base / "ferplus_to_fer2013_folder_mapping.csv"
    if images is None and (base.parent / "fer2013").is_dir():
        images = base.parent / "fer2013"
    if images is None:
        raise DatasetError(
            f"{votes_csv}: FER+ votes need the FER-2013 images; pass --images (the FER-2013 folder or csv)"
        )
    if not votes_csv.exists():
        raise DatasetError(f"{votes_csv}: no such file; pass the FER+ fer2013new.csv")
    return votes_csv, Path(images), mapping


def read_votes(votes_csv) -> tuple[np.ndarray, list[str]]:
    """FER+ votes (N, 10) in FERPLUS_COLUMNS order, and each row's FER-2013 usage."""
    with open(votes_csv, newline="") as f:
        reader = csv.DictReader(f)
        if not set(FERPLUS_COLUMNS) <= set(reader.fieldnames or ()):
            raise DatasetError(f"{votes_csv}: expected FER+ columns {FERPLUS_COLUMNS}")
        rows = list(reader)
    return np.array([[float(r[c] or 0) for c in FERPLUS_COLUMNS] for r in rows]), [r["Usage"] for r in rows]


def _official_splits(usage, label, source, soft=None) -> tuple[dict, int]:
    """Rows with a label (>= 0) and an image, in FER-2013's official split; and how many were dropped."""
    splits, dropped = {}, 0
    for fer_usage, split in FER2013_PREFIX.items():
        idx = [i for i, u in enumerate(usage) if u == fer_usage and label[i] >= 0 and i in source]
        dropped += sum(1 for u in usage if u == fer_usage) - len(idx)
        splits[split] = Split([source[i] for i in idx], np.asarray(label)[idx], None if soft is None else soft[idx])
    return splits, dropped


def _image_sources(votes_csv, images, mapping, rows: int) -> dict[int, object]:
    """Each votes row's image: a FER-2013 file through the mapping csv, or a row of the FER-2013 csv."""
    source: dict[int, object] = {}
    if mapping is not None:
        with open(mapping, newline="") as f:
            for m in csv.DictReader(f):
                p = images / m["fer2013_folder_path"]
                source[int(m["fer2013_row"])] = str(p)
        missing = [p for p in source.values() if not Path(p).exists()]
        if missing:
            raise DatasetError(
                f"{mapping} names {missing[0]}, which does not exist; "
                f"pass --images the FER-2013 folder the mapping refers to"
            )
    elif images.is_file():
        fer_rows = read_fer2013_rows(images)
        if len(fer_rows) != rows:
            raise DatasetError(f"{images} has {len(fer_rows)} rows but {votes_csv} has {rows}; FER+ maps row by row")
        source = {i: r[1] for i, r in enumerate(fer_rows)}
    else:
        raise DatasetError(f"{images}: a FER-2013 folder needs a mapping csv (pass --mapping)")
    return source


def compound_labels(votes: np.ndarray, min_votes: int) -> list[str | None]:
    """Per FER+ row, the compound its annotators saw, or None.

    RAF-DB derived its compound labels from annotators' distributions over the basic emotions; the
    same rule on FER+'s 10 votes per image: the two leading basic emotions (neutral and contempt
    aside) each got at least `min_votes` votes, and no third emotion ties the second."""
    columns = [
        FERPLUS_COLUMNS.index({"happy": "happiness", "sad": "sadness", "angry": "anger"}.get(e, e))
        for e in COMPOUND_EMOTIONS
    ]
    out = []
    for row in votes[:, columns]:
        order = np.argsort(-row, kind="stable")
        first, second, third = row[order[:3]]
        if second >= min_votes and third < second:
            out.append(compound_name(COMPOUND_EMOTIONS[order[0]], COMPOUND_EMOTIONS[order[1]]))
        else:
            out.append(None)
    return out


def read_ferplus_compound(path, images=None, mapping=None, compound_votes=3, compound_min=40, **_) -> FaceDataset:
    """Compound expressions from FER+ votes: a FER-2013 image is "happily surprised" when at least
    `compound_votes` of its 10 annotators chose happy and as many chose surprise (`compound_labels`).
    The official FER-2013 split is kept; classes with fewer than `compound_min` training images are
    dropped and reported. Classes are RAF-DB's compound names, in RAF-DB's order (taxonomy compound11).

    Defaults: 3 votes (2,302 rows over the RAF-DB pairs; 2 votes give 5,125 but let in images
    where 2 of 10 people saw the second emotion, 4 leave 749); 40 training images (below it a class
    has 1 or 2 test images, too few to measure)."""
    votes_csv, images, mapping = _locate(path, images, mapping)
    votes, usage = read_votes(votes_csv)
    if not 1 <= compound_votes <= 5:
        raise DatasetError(f"compound_votes {compound_votes}: two emotions of 10 votes each need 1..5 votes")
    names = compound_labels(votes, compound_votes)
    train_counts = {c: sum(1 for n, u in zip(names, usage) if n == c and u == "Training") for c in COMPOUND11}
    labels = [c for c in COMPOUND11 if train_counts[c] >= compound_min]
    if len(labels) < 2:
        raise DatasetError(
            f"{votes_csv}: fewer than 2 compound classes have {compound_min} training images "
            f"at {compound_votes} votes; lower --compound-min or --compound-votes"
        )
    label = np.array([labels.index(n) if n in labels else -1 for n in names])
    splits, _ = _official_splits(usage, label, _image_sources(votes_csv, images, mapping, len(usage)))
    dropped = {c: n for c, n in train_counts.items() if c not in labels}
    notes = [
        f"FER+ compound: the two leading basic emotions with >= {compound_votes} of 10 votes each; "
        f"official FER-2013 split",
        f"dropped (fewer than {compound_min} training images): "
        + (", ".join(f"{c} ({n})" for c, n in dropped.items()) or "none"),
    ]
    return FaceDataset("ferplus-compound", labels, "compound11", splits, str(votes_csv), notes)


def mix_votes(ds: FaceDataset, votes_csv, weight: float, mapping=None) -> FaceDataset:
    """Soft targets for a FER-2013 dataset: `weight` x the FER+ vote distribution of each image
    (mapped onto the dataset's labels; contempt, unknown and not-a-face votes left out) plus
    (1 - weight) x its own FER-2013 label. FER-2013's single labels are noisy; ten annotators'
    votes are what people see in a face. Images without usable votes keep their own label.
    Images are matched by FER-2013 file name (`Training_123.jpg`) through the FER+ mapping csv."""
    votes_csv = Path(votes_csv)
    votes_csv = votes_csv / "fer2013new.csv" if votes_csv.is_dir() else votes_csv
    mapping = Path(mapping) if mapping else votes_csv.parent / "ferplus_to_fer2013_folder_mapping.csv"
    for f, what in ((votes_csv, "the FER+ fer2013new.csv"), (mapping, "the FER+ to FER-2013 mapping csv")):
        if not f.is_file():
            raise DatasetError(f"{f}: no such file; --votes needs {what}")
    if not 0.0 <= weight <= 1.0:
        raise DatasetError(f"votes weight {weight} must be within 0..1")
    with open(votes_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    _, soft8 = ferplus_targets(np.array([[float(r[c] or 0) for c in FERPLUS_COLUMNS] for r in rows]))
    columns = [ds.labels.index(label) if label in ds.labels else -1 for label in FERPLUS8]
    by_name = {}
    with open(mapping, newline="") as f:
        for m in csv.DictReader(f):
            by_name[Path(m["fer2013_folder_path"]).name] = int(m["fer2013_row"])
    n, matched = len(ds.labels), 0
    for split in ds.splits.values():
        soft = np.eye(n, dtype=np.float32)[split.labels]
        for i, item in enumerate(split.images):
            row = by_name.get(Path(item).name) if isinstance(item, str) else None
            if row is None:
                continue
            people = np.zeros(n, np.float32)
            for src, dst in enumerate(columns):
                if dst >= 0:
                    people[dst] += soft8[row, src]
            if people.sum() > 0:
                soft[i] = weight * people / people.sum() + (1 - weight) * soft[i]
                matched += 1
        split.soft = soft
    ds.notes.append(
        f"FER+ votes mixed into the labels (weight {weight}) for {matched} of "
        f"{sum(len(s) for s in ds.splits.values())} images"
    )
    return ds

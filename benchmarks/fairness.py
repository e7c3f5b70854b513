"""Does each model read smiles and neutral faces equally well for everyone? The London faces (102
adults, each photographed neutral and smiling, frontal, with age, gender and ethnicity; DeBruine &
Jones 2017, CC BY 4.0) through the whole device pipeline, as `edgefer-cam --source` reads a photo:
per group, how many faces the detector found, and the recall of neutral and of happy (a face not
found counts as not read right). With `--model fer`, the `fer` package through its own detector
(install it aside: pip install --no-deps --target /tmp/fer_pkg fer; PYTHONPATH=/tmp/fer_pkg ...).

A group of fewer than MIN_FACES people is reported but not compared: one face there moves its recall
by more than 10 points. Each recall carries its 95% Wilson interval.

    python benchmarks/fairness.py --model fer2013-balanced --model fer2013 --model ferplus --model fer \\
        --json results/fairness.json
"""

from __future__ import annotations

import argparse
import csv
import math
import sys

import cv2
from peers import FerPackage, fer_class

from edgefer.core.errors import EdgeferError
from edgefer.core.files import write_json
from edgefer.core.preprocess import read_image
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import Frame
from edgefer.evaluate.checks import SHARED
from edgefer.models import model_path

LONDON = SHARED / "data" / "london_faces"
MIN_FACES = 10
EXPRESSIONS = {"neutral": "03", "happy": "08"}  # the set's file suffix for each expression


def age_band(age: str) -> str:
    if not age.isdigit():
        return "unknown"
    a = int(age)
    return "18-24" if a < 25 else "25-34" if a < 35 else "35-54"


def people() -> list[dict]:
    with open(LONDON / "info.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {"id": r["face_id"], "ethnicity": r["face_eth"], "gender": r["face_gender"], "age": age_band(r["face_age"])}
        for r in rows
    ]


def wilson(right: int, n: int) -> list[float]:
    if n == 0:
        return [0.0, 0.0]
    p, z = right / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)]


def readings(name: str) -> dict:
    """(person id, expression) -> the label read, or "no face"."""
    out = {}
    if name == "fer":
        fer = FerPackage().fer
        for person in people():
            for expression, suffix in EXPRESSIONS.items():
                bgr = cv2.cvtColor(read_image(LONDON / expression / f"{person['id']}_{suffix}.jpg"), cv2.COLOR_RGB2BGR)
                faces = fer.detect_emotions(bgr)
                if not faces:
                    out[person["id"], expression] = "no face"
                    continue
                emotions = max(faces, key=lambda f: f["box"][2] * f["box"][3])["emotions"]
                out[person["id"], expression] = max(emotions, key=emotions.get)
        return out
    with Pipeline(model_path(name), video=False, track=False, smoothing=0.0, uncertain=0.0) as pipeline:
        for k, person in enumerate(people()):
            for expression, suffix in EXPRESSIONS.items():
                rgb = read_image(LONDON / expression / f"{person['id']}_{suffix}.jpg")
                faces = pipeline.process(Frame(rgb, 0.0, k))
                out[person["id"], expression] = (
                    max(faces, key=lambda f: f.box[2] * f.box[3]).label if faces else "no face"
                )
    return out


def by_group(read: dict) -> dict:
    groups = {}
    for attribute in ("all", "ethnicity", "gender", "age"):
        for person in people():
            key = "all" if attribute == "all" else f"{attribute}: {person[attribute]}"
            g = groups.setdefault(key, {"people": 0, "faces_found": 0, **{e: 0 for e in EXPRESSIONS}})
            g["people"] += 1
            for expression in EXPRESSIONS:
                label = read[person["id"], expression]
                g["faces_found"] += label != "no face"
                g[expression] += label == expression
    for g in groups.values():
        n = g["people"]
        g["faces_found_of"] = 2 * n
        for expression in EXPRESSIONS:
            g[f"{expression}_recall"] = round(g[expression] / n, 3)
            g[f"{expression}_interval"] = wilson(g[expression], n)
        g["enough_faces"] = n >= MIN_FACES
    return groups


def gaps(groups: dict) -> dict:
    """Per expression: the best group with enough faces, and each such group's distance below it."""
    out = {}
    for expression in EXPRESSIONS:
        enough = {k: g[f"{expression}_recall"] for k, g in groups.items() if g["enough_faces"] and k != "all"}
        best = max(enough, key=enough.get)
        out[expression] = {
            "best": best,
            "below_best_pt": {k: round(100 * (enough[best] - v), 1) for k, v in enough.items() if k != best},
        }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="bundled name, .tflite, or fer (the fer package); repeat")
    p.add_argument("--json", default="runs/fairness.json")
    args = p.parse_args(argv)
    try:
        if not (LONDON / "info.csv").is_file():
            raise EdgeferError(f"{LONDON}: the London faces are not here; set EDGEFER_SHARED to the shared folder")
        if "fer" in (args.model or []):
            fer_class()  # asked for before any face is read
        results = {}
        for name in args.model or ["fer2013-balanced"]:
            groups = by_group(readings(name))
            results[name] = {"groups": groups, "gaps": gaps(groups)}
            a = groups["all"]
            print(
                f"{name}: faces {a['faces_found']}/{a['faces_found_of']}, neutral {a['neutral_recall']:.1%}, happy {a['happy_recall']:.1%}",
                flush=True,
            )
    except EdgeferError as exc:
        sys.exit(f"fairness: {exc}")
    columns = ["group (people)"] + [
        f"`{n}`{' package' if n == 'fer' else ''}: neutral / happy / faces found" for n in results
    ]
    keys = list(next(iter(results.values()))["groups"])
    rows = []
    for key in keys:
        g0 = next(iter(results.values()))["groups"][key]
        label = f"{key} ({g0['people']}{'' if g0['enough_faces'] else ', too few to compare'})"
        rows.append(
            [label]
            + [
                f"{r['groups'][key]['neutral_recall']:.0%} / {r['groups'][key]['happy_recall']:.0%} / "
                f"{r['groups'][key]['faces_found']} of {r['groups'][key]['faces_found_of']}"
                for r in results.values()
            ]
        )
    write_json(
        args.json,
        {
            "set": "London faces (DeBruine & Jones 2017, CC BY 4.0)",
            "min_faces": MIN_FACES,
            "models": results,
            "tables": {"groups": {"columns": columns, "rows": rows}},
        },
    )
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

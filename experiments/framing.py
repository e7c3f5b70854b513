"""Where the device should crop: the framing of the training faces, measured with the device's own
detector, and what matching it does on full frames.

FER-2013 faces come cropped by their dataset. BlazeFace is run on them (upscaled, on a gray border
so the face does not touch the image edge), and the crop that reproduces each image around the
detected box is read off: margin = (image side / box side - 1) / 2, offset_y = (image centre - box
centre) / box side. The medians are the card's `face_crop` for models trained on those faces.

With --model, each model is also run on the Yale full frames (benchmarks/cross_check.py) with its
card's framing and with the measured one (a copy of the model with only its card's crop changed).

    python experiments/framing.py --images 1500 --model fer2013-balanced --model fer2013 --model ferplus \\
        --json runs/framing.json
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from edgefer.core import card as card_mod
from edgefer.core.faces import FaceDetector
from edgefer.core.files import write_bytes, write_json
from edgefer.core.preprocess import list_images, read_image
from edgefer.core.spec import FaceCrop
from edgefer.evaluate.checks import SHARED, yale_check
from edgefer.models import model_path

UPSCALE, BORDER = 4, 96  # 48 px faces -> 192 px, on a 96 px gray border


def measure(paths, face_model) -> dict:
    rows = []
    with FaceDetector(face_model, video=False) as detector:
        for path in paths:
            face = read_image(path)
            side = face.shape[0] * UPSCALE
            big = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)
            big = cv2.copyMakeBorder(big, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT, value=128)
            found = detector.detect(cv2.cvtColor(big, cv2.COLOR_GRAY2RGB))
            if not found:
                continue
            x, y, w, h = max(found, key=lambda f: f.score).box
            box = max(w, h)
            rows.append(((side / box - 1) / 2, (side / 2 - (y - BORDER + h / 2)) / box))
    margin, offset = np.array(rows).T
    q = lambda v: [round(float(p), 3) for p in np.percentile(v, [25, 50, 75])]  # noqa: E731
    return {
        "images": len(paths),
        "faces_found": len(rows),
        "margin_p25_p50_p75": q(margin),
        "offset_y_p25_p50_p75": q(offset),
        "margin": round(float(np.median(margin)), 2),
        "offset_y": round(float(np.median(offset)), 2),
    }


def reframed(model: Path, crop: FaceCrop, out: Path) -> Path:
    """A copy of `model` whose card asks for another face crop; the flatbuffer is untouched."""
    card = card_mod.read_embedded(model)
    spec = card_mod.spec(card).replace(crop=crop)
    write_bytes(out, card_mod.embed(card_mod.model_bytes(model.read_bytes()), card_mod.with_spec(card, spec)))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=1500, help="FER-2013 training images to measure (seeded sample)")
    p.add_argument("--model", action="append", default=[], help="bundled name or .tflite to check on Yale; repeat")
    p.add_argument("--face-model", default=str(SHARED / "models" / "blaze_face_short_range.tflite"))
    p.add_argument("--json", default="runs/framing.json")
    args = p.parse_args()
    train_dir = SHARED / "data" / "fer2013" / "train"
    paths = sorted(
        p for d in sorted(train_dir.iterdir()) for p in list_images(d) if Path(p).name.startswith("Training_")
    )
    paths = random.Random(0).sample(paths, min(args.images, len(paths)))
    framing = measure(paths, args.face_model)
    print(
        f"FER-2013 framing from {framing['faces_found']} of {framing['images']} faces: margin "
        f"{framing['margin']} (quartiles {framing['margin_p25_p50_p75']}), offset_y {framing['offset_y']} "
        f"(quartiles {framing['offset_y_p25_p50_p75']})",
        flush=True,
    )
    measured = FaceCrop(framing["margin"], framing["offset_y"])
    yale = {}
    for name in args.model:
        path = model_path(name)
        card_crop = card_mod.spec(card_mod.read_embedded(path)).crop
        copy = reframed(path, measured, Path(args.json).parent / f"framing_{path.stem}.tflite")
        yale[name] = {
            "card": {"crop": vars(card_crop), **yale_check(path, args.face_model)},
            "measured": {"crop": vars(measured), **yale_check(copy, args.face_model)},
        }
        for which, r in yale[name].items():
            print(
                f"{name:18s} {which:8s} margin {r['crop']['margin']:.2f} offset_y {r['crop']['offset_y']:+.2f}  "
                f"Yale {r['accuracy']:.2%} of {r['images']}  recall {r['recall']}",
                flush=True,
            )
    write_json(args.json, {"framing": framing, "yale": yale})
    print("wrote", args.json)


if __name__ == "__main__":
    main()

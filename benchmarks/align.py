"""Does levelling the eye line (`align = "eyes"`, from BlazeFace's eye keypoints) help a model read
faces it was not trained on? Each model is read twice through the whole device pipeline, as shipped
and with its card's face crop set to align on the eyes (the FER-2013 faces it was trained on come
cropped, so the crop is a device setting and no retraining is needed): Yale full frames (59 with an
expression) and the bundled clip (how each reading of the one face is spread over the labels, and
how often the label changes from one frame to the next).

    python benchmarks/align.py --model fer2013-balanced --model ferplus --json results/align.json
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from edgefer.core import card as card_mod
from edgefer.core.files import write_json
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import open_source
from edgefer.evaluate.checks import yale_check
from edgefer.models import model_path

CLIP = Path(__file__).resolve().parents[1] / "media" / "talking_face_640x360.mp4"


def with_align(model: Path, align: str, folder: Path) -> Path:
    """A copy of the model whose card crops with `align` (the same flatbuffer)."""
    card = card_mod.read_embedded(model)
    spec = card_mod.spec(card)
    out = folder / f"{model.stem}.{align}.tflite"
    out.write_bytes(
        card_mod.embed(
            card_mod.model_bytes(model.read_bytes()),
            card_mod.with_spec(
                card, spec.replace(crop=spec.crop.__class__(spec.crop.margin, spec.crop.offset_y, align))
            ),
        )
    )
    return out


def clip_readings(model: Path) -> dict:
    labels, source = [], open_source(str(CLIP))
    try:
        with Pipeline(model, video=True) as pipeline:
            for frame in source:
                faces = pipeline.process(frame)
                labels.append(faces[0].label if faces else "no face")
    finally:
        source.close()
    shares = {k: round(labels.count(k) / len(labels), 3) for k in sorted(set(labels))}
    changes = sum(a != b for a, b in zip(labels, labels[1:]))
    return {"frames": len(labels), "label_shares": shares, "label_changes": changes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="bundled name or .tflite; repeat")
    p.add_argument("--json", default="runs/align.json")
    args = p.parse_args(argv)
    results, rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.model or ["fer2013-balanced"]:
            results[name] = {}
            for align in ("none", "eyes"):
                model = with_align(model_path(name), align, Path(tmp))
                yale, clip = yale_check(model, None), clip_readings(model)
                results[name][align] = {"yale": yale, "clip": clip}
                right = round(yale["accuracy"] * yale["images"])
                top = max(clip["label_shares"].items(), key=lambda kv: kv[1])
                rows.append(
                    [
                        f"`{name}`",
                        align,
                        f"{right} of {yale['images']}",
                        f"{yale['faces_found']}",
                        f"{top[0]} {top[1]:.0%}",
                        clip["label_changes"],
                    ]
                )
                print(
                    f"{name} align={align}: Yale {right}/{yale['images']} right, faces {yale['faces_found']}; clip {clip['label_shares']}, {clip['label_changes']} label changes",
                    flush=True,
                )
    columns = [
        "model",
        "face crop",
        "Yale full frames right",
        "Yale faces found",
        "clip: most frequent label",
        "clip: label changes in 225 frames",
    ]
    write_json(args.json, {"models": results, "tables": {"align": {"columns": columns, "rows": rows}}})
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

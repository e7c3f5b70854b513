"""Blendshape targets (`edgefer-train --blendshapes FILE.npz`): MediaPipe's face landmarker reads
the 52 blendshapes (brow down, nose sneer, mouth frown ...) of every image of a dataset of face
crops, each upscaled onto a gray border first (a 48 px FER-2013 face is below what its detector
finds). Written once, so training reads them like FER+ votes instead of running the landmarker
every step; faces it does not find get no blendshape loss. Needs mediapipe (the dev extra).
experiments/blendshapes.py reads the same file (every split, in the order train, val, test).

    python recipes/blendshape_targets.py --data ../shared/data/fer2013 \\
        --out runs/blendshapes/fer2013_blendshapes.npz
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgefer.core.errors import EdgeferError
from edgefer.data import load_dataset
from edgefer.data.blendshapes import blendshape_names, read_blendshapes, save_blendshapes

LANDMARKER = Path(__file__).resolve().parents[2] / "shared" / "models" / "face_landmarker.task"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the dataset the model trains on")
    p.add_argument("--dataset", default="auto")
    p.add_argument(
        "--landmarker",
        default=os.environ.get("EDGEFER_LANDMARKER", str(LANDMARKER)),
        help="MediaPipe's face_landmarker.task (default: $EDGEFER_LANDMARKER or ../shared/models/)",
    )
    p.add_argument("--out", required=True, help=".npz to write")
    args = p.parse_args(argv)
    try:
        if not Path(args.landmarker).is_file():
            raise EdgeferError(
                f"{args.landmarker}: no such file; pass --landmarker the face_landmarker.task "
                "bundle from MediaPipe's model page"
            )
        ds = load_dataset(args.data, args.dataset)
        paths = [x for s in ("train", "val", "test") for x in ds.splits[s].images if isinstance(x, str)]
        if not paths:
            raise EdgeferError(f"{args.data}: no image files (a FER-2013 csv has none: use the image folder)")
    except EdgeferError as exc:
        print(f"blendshape_targets.py: error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    scores = read_blendshapes(paths, args.landmarker, progress=lambda xs: tqdm(xs, desc="landmarker", mininterval=10))
    save_blendshapes(args.out, paths, blendshape_names(), scores)
    print(
        f"wrote {args.out}: blendshapes of {int(np.isfinite(scores[:, 0]).sum())} of {len(paths)} faces "
        f"({time.perf_counter() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFER_SHARED", REPO.parent / "shared"))
FER2013 = SHARED / "data" / "fer2013"
MNV2_WEIGHTS = SHARED / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"

needs_shared = pytest.mark.skipif(not FER2013.is_dir(), reason=f"needs the shared datasets at {SHARED} (not present)")


def face(seed: int, size: int = 48, mode: str = "L") -> Image.Image:
    """A small synthetic 'face': a blob whose position depends on the seed, so classes differ."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 60, (size, size), dtype=np.uint8)
    y, x = np.mgrid[:size, :size]
    cx, cy = size / 2 + (seed % 7 - 3) * 3, size / 2
    arr[(x - cx) ** 2 + (y - cy) ** 2 < (size / 4) ** 2] = 200
    im = Image.fromarray(arr, "L")
    return im if mode == "L" else im.convert(mode)


def write_images(folder: Path, names, seed0: int = 0, mode: str = "L", ext: str = ".png"):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        p = folder / (name if Path(name).suffix else name + ext)
        face(seed0 + i, mode=mode).save(p)
        paths.append(p)
    return paths


def tiny_config(folder: Path, data, **kw):
    """A training config small enough to train in a second, writing folder/run: the behaviour, not
    the accuracy, is under test. `kw` changes or adds any TrainConfig field."""
    from edgefer.train import TrainConfig

    base = dict(
        data=str(data),
        out=str(folder / "run"),
        arch="smallcnn",
        weights="none",
        size=32,
        epochs=1,
        batch_size=8,
        verbose=0,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def class_folder(tmp_path):
    """root/<class>/*.png with 3 classes x 10 images (no split folders)."""
    root = tmp_path / "faces"
    for k, cls in enumerate(("Happy", "sadness", "angry")):
        write_images(root / cls, [f"{cls}_{i}" for i in range(10)], seed0=k * 100 + k)
    return root

"""Models shipped inside the package: what edgefer-cam and edgefer-bench use without --model."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import EdgeferError

HERE = Path(__file__).parent


class ModelNotFound(EdgeferError, FileNotFoundError):
    pass


# fer2013-balanced: FER-2013, 7 classes, its labels mixed with the FER+ votes, camera conditions, 96 px,
# classes filled to 4,000; the default, chosen on what people see (FER+ majority of PublicTest) and
# on Yale faces it never saw. fer2013: FER-2013 labels alone, 112 px, no balancing. ferplus: FER+
# vote distributions, 8 classes with contempt, 112 px. Figures: docs/results/shipped-models.md.
# large: EfficientNet-Lite0 from ImageNet weights on FER-2013's faces with the FER+ votes as targets, 64 px,
# 7 classes; six times the default's work a face, for a machine that has it (docs/results/large.md).
# (The compound recipe's model does not ship: reading ferplus's top two beat it; docs/results/compound.md)
BUNDLED = {
    "fer2013": "fer2013_int8.tflite",
    "fer2013-balanced": "fer2013_balanced_int8.tflite",
    "ferplus": "ferplus_int8.tflite",
    "large": "large_int8.tflite",
}
DEFAULT = "fer2013-balanced"


def model_path(name_or_path: str | None = None) -> Path:
    """A bundled model by name (default: fer2013-balanced), or the given file path."""
    name = name_or_path or DEFAULT
    if name in BUNDLED:
        return HERE / BUNDLED[name]
    path = Path(name)
    if path.is_dir() and (path / "model.keras").is_file():
        raise ModelNotFound(
            f"{name}: a training run, not a model file; export it first (edgefer-export {name} --int8 "
            f"--out {path.name}.tflite), then pass --model {path.name}.tflite"
        )
    if not path.is_file():
        raise ModelNotFound(f"{name}: no such model file; pass --model FILE.tflite or one of {', '.join(BUNDLED)}")
    return path

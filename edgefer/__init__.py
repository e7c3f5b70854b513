"""edgefer: facial expression recognition from training to an int8 model on a Raspberry Pi.

    import edgefer
    faces = edgefer.ExpressionReader().read("photo.jpg")   # box, label, probs, score per face

Sides: `edgefer.data` (datasets), `edgefer.train` (fine-tuning, needs TensorFlow),
`edgefer.export` (int8 TFLite), `edgefer.device` (camera runtime, no TensorFlow),
`edgefer.evaluate` (checks on faces a model never saw, calibration), and the shared core
`edgefer.core` (taxonomy, model card, preprocessing).
"""

__version__ = "0.2.0"  # the one version: pyproject.toml reads it from here


def __getattr__(name):
    # the device API loads on first use, so `import edgefer.train` does not open OpenCV or LiteRT
    if name in ("ExpressionReader", "Face"):
        from .device import reader

        return getattr(reader, name)
    raise AttributeError(f"module 'edgefer' has no attribute {name!r}")


__all__ = ["ExpressionReader", "Face", "__version__"]

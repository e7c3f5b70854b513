"""The TFLite interpreter every model here runs in: LiteRT, else tflite-runtime (older Pi images).
Never TensorFlow: the device side installs without it. Imported when a model is opened."""

from __future__ import annotations

from .errors import EdgeferError


class InterpreterMissing(EdgeferError, ImportError):
    pass


def interpreter_class():
    """(Interpreter class, its package name)."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise InterpreterMissing(
            "no TFLite interpreter: pip install ai-edge-litert "
            "(or, where LiteRT has no wheel, pip install tflite-runtime)"
        ) from None

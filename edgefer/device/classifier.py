"""Run an exported edgefer .tflite on face crops with LiteRT, prepared exactly as its card says."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import card as card_mod
from ..core import preprocess


def interpreter_class():
    """LiteRT first, then tflite-runtime (older Pi images), then TensorFlow's own as a last resort."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, "tflite-runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf
        return tf.lite.Interpreter, "tensorflow.lite"
    except ImportError:
        raise ImportError("no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime on a Pi)") from None


class Classifier:
    """An int8 (or float) expression model plus its card.

    >>> clf = Classifier("model.tflite")
    >>> probs = clf.predict(face_crop)      # dict label -> probability
    """

    def __init__(self, model_path, threads: int = 1, flip_average: bool | None = None):
        self.path = Path(model_path)
        self.card = card_mod.read_embedded(self.path)
        # Averaging a face with its mirror image is decided at export (card "inference"); a caller
        # may override it. It costs a second invoke.
        if flip_average is None:
            flip_average = self.card.get("inference", {}).get("flip_average", False)
        self.flip_average = flip_average
        Interpreter, self.backend = interpreter_class()
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        inp = self.card["input"]
        expected = (inp["size"], inp["size"], preprocess.channels(inp["color"]))
        if tuple(self.input["shape"][1:]) != expected:
            raise card_mod.BadCard(f"{self.path}: model input {tuple(self.input['shape'][1:])} disagrees with its card "
                                   f"{expected}; re-export the model so the card matches")
        if self.output["shape"][-1] != len(self.card["labels"]):
            raise card_mod.BadCard(f"{self.path}: model has {self.output['shape'][-1]} outputs but its card "
                                   f"lists {len(self.card['labels'])} labels; re-export the model")
        self.labels = self.card["labels"]

    @property
    def integer(self) -> bool:
        return self.input["dtype"] in (np.int8, np.uint8)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float model input (in the card's range) -> the tensor the model takes."""
        if not self.integer:
            return x.astype(self.input["dtype"])
        scale, zero = self.input["quantization"]
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (size, size, C) pixels prepared per the card -> probabilities (float)."""
        if self.flip_average:
            return (self.run_once(pixels) + self.run_once(pixels[:, ::-1])) / 2
        return self.run_once(pixels)

    def run_once(self, pixels: np.ndarray) -> np.ndarray:
        x = preprocess.to_model_input(pixels, self.card["input"]["range"])
        self.interpreter.set_tensor(self.input["index"], self.quantize(x)[None])
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])[0]
        if self.output["dtype"] in (np.int8, np.uint8):
            scale, zero = self.output["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def prepare(self, face: np.ndarray) -> np.ndarray:
        inp = self.card["input"]
        return preprocess.prepare(face, inp["size"], inp["color"], inp["equalize"])

    def predict(self, face: np.ndarray) -> dict[str, float]:
        """A face crop (any size, gray or RGB) -> {label: probability}."""
        return dict(zip(self.labels, self.run(self.prepare(face)).tolist()))

"""Run an exported edgefer .tflite on face crops with LiteRT, prepared exactly as its spec says."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import card as card_mod
from ..core.interpreter import interpreter_class
from ..core.quiet import quiet_native
from ..core.spec import mirror


class Classifier:
    """An int8 (or float) expression model plus the input spec its card carries.

    >>> clf = Classifier("model.tflite")
    >>> probs = clf.predict(face_crop)      # dict label -> probability
    """

    def __init__(self, model_path, threads: int = 1, flip_average: bool | None = None):
        self.path = Path(model_path)
        self.card = card_mod.read_embedded(self.path)
        self.spec = card_mod.spec(self.card, f"{self.path} (embedded card)")
        # flip averaging is the card's (decided at training); a caller may override it
        if flip_average is not None:
            self.spec = self.spec.replace(flip_average=flip_average)
        Interpreter, self.backend = interpreter_class()
        try:
            with quiet_native():  # LiteRT's start-up line (XNNPACK) on stderr
                self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:  # a card on a damaged flatbuffer
            raise card_mod.BadCard(
                f"{self.path}: the model inside is damaged ({str(exc).splitlines()[0][:100]}); "
                "export it again with edgefer-export, or copy it again"
            ) from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        if tuple(self.input["shape"][1:]) != self.spec.shape:
            raise card_mod.BadCard(
                f"{self.path}: model input {tuple(self.input['shape'][1:])} disagrees with its card "
                f"{self.spec.shape}; re-export the model so the card matches"
            )
        if self.output["shape"][-1] != len(self.spec.labels):
            raise card_mod.BadCard(
                f"{self.path}: model has {self.output['shape'][-1]} outputs but its card "
                f"lists {len(self.spec.labels)} labels; re-export the model"
            )
        self.labels = list(self.spec.labels)
        self.invokes, self.images = 0, 0  # counted for edgefer-bench's machine-independent figures
        # flip averaging's face and mirror image in one invoke: the same graph at batch 2, where the
        # model takes it (a graph with a fixed batch keeps two invokes)
        self._pair = None
        if self.spec.flip_average:
            try:
                with quiet_native():
                    self._pair = Interpreter(model_path=str(self.path), num_threads=threads)
                    self._pair.resize_tensor_input(self.input["index"], [2, *self.spec.shape])
                    self._pair.allocate_tensors()
            except (ValueError, RuntimeError):
                self._pair = None

        def faces(batch):  # a batch of two in one invoke, else one invoke a face
            return self._run_pair(batch) if len(batch) == 2 and self._pair is not None else self.run_batch(batch)

        faces.whole_batches = True
        self._faces = faces

    @property
    def flip_average(self) -> bool:
        return self.spec.flip_average

    @property
    def integer(self) -> bool:
        return self.input["dtype"] in (np.int8, np.uint8)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float model input (in the spec's range) -> the tensor the model takes."""
        if not self.integer:
            return x.astype(self.input["dtype"])
        scale, zero = self.input["quantization"]
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])

    def tensor(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (size, size, C) pixels -> the (1, size, size, C) tensor set on the interpreter."""
        return self.quantize(self.spec.model_input(pixels))[None]

    def run_once(self, pixels: np.ndarray) -> np.ndarray:
        """One invoke: uint8 (size, size, C) pixels -> probabilities (float)."""
        return self._invoke(self.interpreter, self.tensor(pixels))[0]

    def _run_pair(self, pixels: np.ndarray) -> np.ndarray:
        """(2, size, size, C) -> (2, classes) in one invoke of the batch-2 interpreter."""
        return self._invoke(self._pair, self.quantize(self.spec.model_input(pixels)))

    def _invoke(self, interpreter, tensor: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(self.input["index"], tensor)
        interpreter.invoke()
        self.invokes, self.images = self.invokes + 1, self.images + len(tensor)
        y = interpreter.get_tensor(self.output["index"])
        if self.output["dtype"] in (np.int8, np.uint8):
            scale, zero = self.output["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def run_batch(self, pixels: np.ndarray) -> np.ndarray:
        """(N, size, size, C) -> (N, classes), one invoke per face (the models take batch 1)."""
        return (
            np.stack([self.run_once(p) for p in pixels]) if len(pixels) else np.zeros((0, len(self.labels)), np.float32)
        )

    def run(self, pixels: np.ndarray, side: int | None = None) -> np.ndarray:
        """uint8 (size, size, C) pixels -> probabilities, flip-averaged as the spec says (the face and
        its mirror image in one invoke). side 0 or 1 reads only the face or only its mirror image, at
        half the work: a tracked face alternates them, and its average across frames stands in for
        the pair's."""
        if side is None or not self.spec.flip_average:
            return self.spec.predict(self._faces, pixels[None])[0]
        return self.spec.calibrated(self.run_once(mirror(pixels) if side else pixels))

    def prepare(self, face: np.ndarray) -> np.ndarray:
        """A face crop (any size, gray or RGB) -> the uint8 pixels the model takes."""
        return self.spec.pixels(face)

    def predict(self, face: np.ndarray) -> dict[str, float]:
        """A face crop (any size, gray or RGB) -> {label: probability}."""
        return dict(zip(self.labels, self.run(self.prepare(face)).tolist()))

"""The phone form of an edgefer int8 model: a file MediaPipe Tasks' `ImageClassifier` (Android,
iOS, web, Python) loads as it is.

    uint8 RGB face crop ──QUANTIZE──> int8 ──grey (1x1 conv)──> the int8 network ──┐
                                         └──mirror (REVERSE_V2)──> the same network ┴─> card's
                                                   averaging, temperature, class bias ──> float32 scores

What the card asks of a reader (grey conversion, flip averaging, temperature, class-prior bias) is
done inside the graph, so an app only crops the face (the card's crop, given as MediaPipe's region
of interest) and reads the scores. The network itself is the int8 model's own operators, unchanged:
the mirror branch runs a second copy of them on the same weight buffers, so the file is hardly
larger. The tail on the scores (a handful of values) is float: MediaPipe reads float32 or uint8 scores.

Standard TFLite metadata (labels as an associated file, input image properties, normalisation) is
written with MediaPipe's own metadata writers; the edgefer card travels in the same appended zip,
describing the new input (RGB, nothing left for the reader to do), so edgefer-cam runs the file too.
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path

import flatbuffers
import numpy as np

from .._tf import tf  # noqa: F401  (TensorFlow quiet before its schema module loads it)
from ..core import card as card_mod
from ..core.errors import EdgeferError
from ..core.files import check_file_writable, write_bytes

from tensorflow.lite.python import schema_py_generated as fb  # noqa: E402  isort: skip

LABELS_FILE = "labels.txt"
# the grey weights: cv2's RGB->grey (0.299, 0.587, 0.114) in int8 over one scale, 1/217. Their sum
# is 217, so a grey pixel comes out exactly as it went in (a FER crop reads the same as before), and a
# colour pixel at most one grey level from cv2's (the int8 weights round cv2's coefficients)
GREY_WEIGHTS = (65, 127, 25)
IN_GRAPH = ("grey", "flip_average", "temperature", "logit_bias")


class MobileError(EdgeferError, ValueError):
    pass


class _Graph:
    """Appends tensors, buffers and operators to subgraph 0 of a flatbuffer model (object API)."""

    def __init__(self, model: fb.ModelT):
        self.model, self.graph = model, model.subgraphs[0]

    def tensor(self, name, shape, dtype, scale=None, zero=None, data=None, axis=0) -> int:
        t = fb.TensorT()
        t.name, t.shape, t.type = name, list(shape), dtype
        if scale is not None:
            q = fb.QuantizationParametersT()
            q.scale, q.zeroPoint, q.quantizedDimension = list(scale), list(zero), axis
            t.quantization = q
        t.buffer = 0  # the empty buffer: computed at run time
        if data is not None:
            b = fb.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.model.buffers.append(b)
            t.buffer = len(self.model.buffers) - 1
        self.graph.tensors.append(t)
        return len(self.graph.tensors) - 1

    def opcode(self, builtin: int) -> int:
        for i, code in enumerate(self.model.operatorCodes):
            if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin and not code.customCode:
                return i
        code = fb.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
        self.model.operatorCodes.append(code)
        return len(self.model.operatorCodes) - 1

    def op(self, builtin, inputs, outputs, options_type=0, options=None) -> fb.OperatorT:
        o = fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.opcode(builtin), list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = options_type, options
        return o

    def float_op(self, builtin, inputs, name, width, options_type=0, options=None):
        """A float op on (1, width) values; returns (operator, its output tensor)."""
        out = self.tensor(name, (1, width), fb.TensorType.FLOAT32)
        return self.op(builtin, inputs, [out], options_type, options), out


def _copy_body(g: _Graph, source: int, mirrored: int) -> int:
    """The network's operators once more, reading `mirrored` where they read `source`: every
    computed tensor copied, every constant (the weights) shared. Returns the copy's output."""
    computed = {t for o in g.graph.operators for t in o.outputs}
    renamed = {source: mirrored}
    for t in sorted(computed):
        copy_t = copy.deepcopy(g.graph.tensors[t])
        copy_t.name = (copy_t.name or b"") + b"/mirror"  # the object API reads names as bytes
        g.graph.tensors.append(copy_t)
        renamed[t] = len(g.graph.tensors) - 1
    body = []
    for o in g.graph.operators:
        c = copy.deepcopy(o)
        c.inputs = [renamed.get(t, t) for t in o.inputs]
        c.outputs = [renamed[t] for t in o.outputs]
        body.append(c)
    g.graph.operators.extend(body)
    return renamed[g.graph.outputs[0]]


def _tail(g: _Graph, outs: list[int], spec, width: int) -> tuple[list, int]:
    """float ops from the int8 probabilities of each branch to the scores the card describes:
    spec.predict's averaging, then spec.calibrated's temperature and bias, as the device computes them."""
    B = fb.BuiltinOperator
    ops, floats = [], []
    for i, t in enumerate(outs):
        o, f = g.float_op(B.DEQUANTIZE, [t], f"probabilities_{i}", width)
        ops.append(o), floats.append(f)
    x, parts = floats[0], len(floats)
    if parts == 2:
        o, x = g.float_op(B.ADD, floats, "probability_sum", width, fb.BuiltinOptions.AddOptions, fb.AddOptionsT())
        ops.append(o)
    if spec.temperature == 1.0 and not spec.logit_bias:
        if parts == 2:
            half = g.tensor("half", (1,), fb.TensorType.FLOAT32, data=np.float32([0.5]))
            o, x = g.float_op(B.MUL, [x, half], "probabilities", width, fb.BuiltinOptions.MulOptions, fb.MulOptionsT())
            ops.append(o)
        return ops, x
    # log(max(p, 1e-6)) / T + bias, softmax; the average's 1/2 is a constant shift of the logits,
    # which softmax removes, so the sum is clipped at twice the floor instead
    floor = g.tensor("floor", (1,), fb.TensorType.FLOAT32, data=np.float32([1e-6 * parts]))
    o, x = g.float_op(
        B.MAXIMUM, [x, floor], "clipped", width, fb.BuiltinOptions.MaximumMinimumOptions, fb.MaximumMinimumOptionsT()
    )
    ops.append(o)
    o, x = g.float_op(B.LOG, [x], "log_probabilities", width)
    ops.append(o)
    inv_t = g.tensor("inverse_temperature", (1,), fb.TensorType.FLOAT32, data=np.float32([1.0 / spec.temperature]))
    o, x = g.float_op(B.MUL, [x, inv_t], "calibrated_logits", width, fb.BuiltinOptions.MulOptions, fb.MulOptionsT())
    ops.append(o)
    if spec.logit_bias:
        bias = g.tensor("logit_bias", (1, width), fb.TensorType.FLOAT32, data=np.float32(spec.logit_bias)[None])
        o, x = g.float_op(B.ADD, [x, bias], "biased_logits", width, fb.BuiltinOptions.AddOptions, fb.AddOptionsT())
        ops.append(o)
    soft = fb.SoftmaxOptionsT()
    soft.beta = 1.0
    o, x = g.float_op(B.SOFTMAX, [x], "probabilities", width, fb.BuiltinOptions.SoftmaxOptions, soft)
    ops.append(o)
    return ops, x


def rewrite(flatbuffer: bytes, spec) -> bytes:
    """An edgefer int8 flatbuffer (input int8 (1, S, S, 3) grey pixels p - 128, output int8
    probabilities) -> one taking uint8 RGB and giving the card's float32 scores."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(flatbuffer), 0))
    if len(model.subgraphs) != 1:
        raise MobileError(f"the model has {len(model.subgraphs)} subgraphs; an edgefer model has one")
    g = _Graph(model)
    graph = g.graph
    source, result = graph.inputs[0], graph.outputs[0]
    t_in, t_out = graph.tensors[source], graph.tensors[result]
    q_in = t_in.quantization
    if (
        t_in.type != fb.TensorType.INT8
        or list(t_in.shape) != [1, spec.size, spec.size, 3]
        or q_in is None
        or (list(q_in.scale), list(q_in.zeroPoint)) != ([1.0], [-128])
    ):
        raise MobileError(
            "the phone form is made from an edgefer int8 model on grey3 pixels (input int8 (1, S, S, 3), "
            "scale 1, zero point -128); export the run with edgefer-export --int8 first"
        )
    if t_out.type != fb.TensorType.INT8 or len(t_out.shape) != 2:
        raise MobileError("the model's output is not int8 probabilities (1, classes); export it with --int8")
    size, width = spec.size, int(t_out.shape[1])
    B = fb.BuiltinOperator
    body = list(graph.operators)

    image = g.tensor("image", (1, size, size, 3), fb.TensorType.UINT8, [1.0], [0])
    signed = g.tensor("image_int8", (1, size, size, 3), fb.TensorType.INT8, [1.0], [-128])
    head = [g.op(B.QUANTIZE, [image], [signed], fb.BuiltinOptions.QuantizeOptions, fb.QuantizeOptionsT())]
    s_w = 1.0 / sum(GREY_WEIGHTS)
    weights = g.tensor(
        "grey_weights", (3, 1, 1, 3), fb.TensorType.INT8, [s_w] * 3, [0] * 3, np.int8([GREY_WEIGHTS] * 3)
    )
    bias = g.tensor("grey_bias", (3,), fb.TensorType.INT32, [s_w] * 3, [0] * 3, np.int32([0, 0, 0]))
    conv = fb.Conv2DOptionsT()
    conv.padding, conv.strideW, conv.strideH = fb.Padding.VALID, 1, 1
    head.append(g.op(B.CONV_2D, [signed, weights, bias], [source], fb.BuiltinOptions.Conv2DOptions, conv))
    outs = [result]
    if spec.flip_average:
        axis = g.tensor("width_axis", (1,), fb.TensorType.INT32, data=np.int32([2]))
        mirrored = g.tensor("grey_mirrored", (1, size, size, 3), fb.TensorType.INT8, [1.0], [-128])
        head.append(
            g.op(B.REVERSE_V2, [source, axis], [mirrored], fb.BuiltinOptions.ReverseV2Options, fb.ReverseV2OptionsT())
        )
        graph.operators = body
        outs.append(_copy_body(g, source, mirrored))
        body = graph.operators
    tail, scores = _tail(g, outs, spec, width)
    graph.tensors[scores].name = "probabilities"
    graph.operators = head + body + tail
    graph.inputs, graph.outputs = [image], [scores]
    for sig in model.signatureDefs or []:
        sig.inputs = [_tensor_map("image", image)]
        sig.outputs = [_tensor_map("probabilities", scores)]
    builder = flatbuffers.Builder(1024 * 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tensor_map(name, index):
    m = fb.TensorMapT()
    m.name, m.tensorIndex = name, index
    return m


def mobile_card(card: dict, source_sha256: str) -> dict:
    """The card of the phone form: the same crop and labels; RGB in, nothing left for the reader."""
    spec = card_mod.spec(card)
    done = [
        step for step, on in zip(IN_GRAPH, (True, spec.flip_average, spec.temperature != 1.0, spec.logit_bias)) if on
    ]
    phone = spec.replace(color="rgb", flip_average=False, temperature=1.0, logit_bias=())
    quantization = dict(
        card.get("quantization") or {},
        input={"dtype": "uint8", "scale": 1.0, "zero_point": 0},
        output={"dtype": "float32"},
        profile="mobile",
        in_graph=done,
        made_from_sha256=source_sha256,
    )
    return dict(card_mod.with_spec(card, phone), quantization=quantization)


def metadata(flatbuffer: bytes, spec) -> bytes:
    """The flatbuffer with standard TFLite metadata, written by MediaPipe's metadata writer as its
    image classifier writer does, with our name and description; its appended zip (the labels file)
    is left off here and written again with the card."""
    try:
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer
    except ModuleNotFoundError:
        raise MobileError(
            "the phone form's metadata is written with MediaPipe's metadata writers: "
            "pip install -e '.[train,device]' -c constraints.txt (mediapipe is in the train extra)"
        ) from None
    crop = spec.crop
    writer = metadata_writer.MetadataWriter(bytearray(flatbuffer))
    writer.add_general_info(
        "edgefer facial expression",
        f"The facial expression of one face ({', '.join(spec.labels)}). Give it the face's square: the "
        f"detector's box grown by {crop.margin:g} of its side each way, its centre moved {crop.offset_y:g} "
        "sides down (edgefer's card, edgefer_card.json beside labels.txt). Grey conversion, mirror "
        "averaging and calibration are inside the model.",
    )
    # the input is uint8 pixels, which MediaPipe passes as they are; mean 0 and std 1 say so
    writer.add_image_input([0.0], [1.0])
    writer.add_classification_output(metadata_writer.Labels().add(list(spec.labels)))
    populated, _ = writer.populate()
    return card_mod.model_bytes(bytes(populated))


def labels_member(labels) -> bytes:
    return ("\n".join(labels) + "\n").encode()


def make_mobile(path) -> bytes:
    """An edgefer int8 .tflite (card inside) -> the phone form's bytes (card inside)."""
    source = str(path)
    card = card_mod.read_embedded(path)  # checks the card against the weights
    flatbuffer = card_mod.model_bytes(Path(path).read_bytes())
    if (card.get("quantization") or {}).get("profile") == "mobile":
        raise MobileError(f"{source}: already the phone form")
    spec = card_mod.spec(card, source)
    if spec.color != "gray3" or spec.equalize != "none":
        raise MobileError(
            f"{source}: the phone form is made for models on grey pixels without equalisation (color gray3); "
            f"this one takes {spec.color} with equalize {spec.equalize}"
        )
    phone = metadata(rewrite(flatbuffer, spec), spec)
    new_card = mobile_card(card, hashlib.sha256(flatbuffer).hexdigest())
    return card_mod.embed(phone, new_card, {LABELS_FILE: labels_member(spec.labels)})


def check_same_reading(source, phone, faces: int = 16, seed: int = 0) -> float:
    """The largest difference between the two files' probabilities on the same faces, each read
    the way edgefer reads it (the source: mirror and temperature outside the graph; the phone form:
    all of it inside), with the LiteRT interpreter. Random grey faces: on grey pixels the two are
    the same arithmetic, so any difference is a fault of the rewrite. MobileError past 1e-4."""
    from ..device.classifier import Classifier

    a, b = Classifier(source), Classifier(phone)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(faces):
        face = rng.integers(0, 256, (a.spec.size, a.spec.size), dtype=np.uint8)
        worst = max(worst, float(np.abs(a.run(a.prepare(face)) - b.run(b.prepare(face))).max()))
    if worst > 1e-4:
        raise MobileError(f"{phone}: reads faces differently from {source} (max difference {worst:.3g})")
    return worst


def export_mobile(source, out) -> dict:
    """Writes the phone form of the edgefer .tflite `source` to `out`, once LiteRT has read both the
    same way (`check_same_reading`); a file that fails the check is not left behind."""
    out = Path(out)
    check_file_writable(out, "--out")
    unfinished = out.with_name(f".{out.name}.unfinished")
    try:
        write_bytes(unfinished, make_mobile(source))
        worst = check_same_reading(source, unfinished)
        card = card_mod.read_embedded(unfinished)
        os.replace(unfinished, out)
    finally:
        unfinished.unlink(missing_ok=True)
    return {
        "model": str(out),
        "made_from": str(source),
        "size_bytes": out.stat().st_size,
        "in_graph": card["quantization"]["in_graph"],
        "max_difference": worst,
    }


def format_mobile(report: dict) -> str:
    return (
        f"phone form: uint8 RGB in, float32 scores out, {' + '.join(report['in_graph'])} inside the graph, "
        f"MediaPipe metadata and the card inside; {report['size_bytes'] / 1024:.1f} KB; reads what "
        f"{report['made_from']} reads (largest difference {report['max_difference']:.1g} on grey faces)"
    )

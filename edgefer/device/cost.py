"""What a model costs per invoke, read from its own graph: the multiply-accumulates (MACs) of its
convolutions and fully connected layers, which is nearly all of the work. Unlike milliseconds,
the figure is the same on every machine, so a change to the pipeline can be judged anywhere."""

from __future__ import annotations

from functools import cache

from ..core.interpreter import interpreter_class


@cache
def macs(model_path) -> int:
    """Multiply-accumulates of one invoke at batch 1 (the shapes the graph was converted with)."""
    Interpreter, _ = interpreter_class()
    interpreter = Interpreter(model_path=str(model_path))  # not allocated: no delegate folds the graph
    shapes = {t["index"]: t["shape"] for t in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():
        name, out = op["op_name"], shapes[op["outputs"][0]]
        if name == "CONV_2D":  # output pixels x output channels x (kernel h x w x input channels)
            _, kh, kw, cin = shapes[op["inputs"][1]]
            total += int(out[1] * out[2] * out[3] * kh * kw * cin)
        elif name == "DEPTHWISE_CONV_2D":  # one kernel per channel
            _, kh, kw, _ = shapes[op["inputs"][1]]
            total += int(out[1] * out[2] * out[3] * kh * kw)
        elif name == "FULLY_CONNECTED":
            units, inputs = shapes[op["inputs"][1]][:2]
            total += int(units * inputs)
    return total

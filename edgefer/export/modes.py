"""What edgefer-export can write, each mode said once (the CLI's flags and help are made from this;
read by the CLI and tests without loading TensorFlow)."""

MODES = {
    "int8": "quantization-aware training (tfmot), then full-integer int8: int8 weights, activations, input and output (default)",
    "ptq": "the same full-integer int8 conversion without QAT (post-training quantization)",
    "float16": "float16 weights, float compute (GPU / desktop)",
    "float32": "no quantization",
    "dynamic": "int8 weights, float activations (dynamic range)",
}
INTEGER_MODES = ("int8", "ptq")

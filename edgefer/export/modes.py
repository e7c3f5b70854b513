"""What edgefer-export can write (also read by the CLI and tests without loading TensorFlow).

int8     quantization-aware training (tfmot), then full-integer conversion: int8 weights and
         activations, int8 input and output
ptq      the same full-integer conversion without QAT (post-training quantization)
float16  float16 weights, float compute
float32  no quantization
dynamic  int8 weights, float activations (dynamic range)
"""

MODES = ("int8", "ptq", "float16", "float32", "dynamic")
INTEGER_MODES = ("int8", "ptq")

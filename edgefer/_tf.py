"""The one place TensorFlow is imported for training and export.

tfmot's quantization-aware training accepts Keras 2 models only, so models are built with
`tf_keras` (Keras 2) and TF is told to use it too before it is first imported.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .core.quiet import quiet_native  # noqa: E402

with quiet_native():  # CUDA probes and absl lines on machines without a GPU
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras"]

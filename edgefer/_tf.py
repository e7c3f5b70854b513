"""The one place TensorFlow is imported for training and export.

tfmot's quantization-aware training accepts Keras 2 models only, so models are built with
`tf_keras` (Keras 2) and TF is told to use it too before it is first imported.
"""

import os

from .core.errors import EdgeferError
from .core.quiet import quiet_native, verbose

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# 3: not even the C++ "failed call to cuInit" of a machine without a GPU (--verbose shows all of it)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if verbose() else "3")


class MissingTrainExtra(EdgeferError, ImportError):
    pass


try:
    with quiet_native():  # CUDA probes and absl lines on machines without a GPU
        import tensorflow as tf  # noqa: E402
        import tf_keras as keras  # noqa: E402
except ModuleNotFoundError as exc:
    if exc.name not in ("tensorflow", "tf_keras"):
        raise
    raise MissingTrainExtra(
        f"training and export need the train extra ({exc.name} is not installed): "
        "pip install -e '.[train,device]' -c constraints.txt (TensorFlow 2.19: Python 3.10 to 3.12)"
    ) from None

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras"]

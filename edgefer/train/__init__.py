"""Training side: fine-tune a backbone on a FER dataset (needs the `train` extra: TensorFlow).

From Python, the same flow as `edgefer-train`:

>>> from edgefer.train import TrainConfig, train
>>> result = train(TrainConfig(data="../shared/data/fer2013", out="runs/fer", epochs=8,
...                            weights="../shared/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"))
>>> result.metrics["accuracy"], result.card["labels"]
"""

from .config import ConfigError, TrainConfig, make_config


def train(cfg, dataset=None):
    from .trainer import train as _train  # TensorFlow loads on first use, not on import

    return _train(cfg, dataset)


def evaluate(run_dir, dataset=None, split="test"):
    from .evaluate import evaluate as _evaluate

    return _evaluate(run_dir, dataset, split)


__all__ = ["ConfigError", "TrainConfig", "make_config", "train", "evaluate"]

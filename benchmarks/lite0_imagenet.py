"""Is `--arch efficientnet-lite0 --weights imagenet` ImageNet's network, not just weights whose shapes
fit? The backbone as edgefer builds it, with the package's ImageNet classifier put back on top, reads a
photo whose ImageNet class is plain (matplotlib's sample photo of Grace Hopper in uniform, the one
TensorFlow's label_image example reads). With `--torch-python`, the same logits are also computed by an
independent forward pass written with PyTorch's own convolution and batch norm on the state dict as
`torch.load` reads it (a Python with torch and numpy, no TensorFlow: a throwaway venv).

    python benchmarks/lite0_imagenet.py --json results/lite0_imagenet.json [--torch-python /tmp/torch/bin/python]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# ImageNet-1k class ids of the labels the photo shows or neighbours (label_image's own top five)
NAMES = {652: "military uniform", 667: "mortarboard", 834: "suit", 906: "Windsor tie", 457: "bow tie", 887: "vestment"}


def photo(size: int = 224) -> np.ndarray:
    """The sample photo, centre-cropped square and resized as ImageNet evaluation does: (1, size, size, 3) float."""
    import matplotlib.cbook
    from PIL import Image

    img = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)).resize((size, size), Image.BICUBIC)
    return np.asarray(img, np.float32)[None]


def keras_logits(pixels: np.ndarray) -> np.ndarray:
    from edgefer._tf import keras
    from edgefer.train import efficientnet_lite
    from edgefer.train.backbones import _normalize

    inputs = keras.Input(pixels.shape[1:])
    pooled = keras.layers.GlobalAveragePooling2D()(efficientnet_lite.features(_normalize(inputs, "lite")))
    head = keras.layers.Dense(1000, name="imagenet_head")
    model = keras.Model(inputs, head(pooled))
    efficientnet_lite.load_imagenet(model, efficientnet_lite.package_weights(), head=head)
    return model.predict(pixels, verbose=0)[0]


def torch_logits(weights: str, pixels: np.ndarray, stages) -> np.ndarray:
    """EfficientNet-Lite0's forward in PyTorch's NCHW layout, TensorFlow's 'same' padding, eps 1e-3;
    `stages` is edgefer's own table (efficientnet_lite.STAGES), handed over, not written twice."""
    import torch
    import torch.nn.functional as F

    sd = torch.load(weights, map_location="cpu", weights_only=True)

    def conv(x, key, stride=1, groups=1):
        w = sd[key + ".weight"]
        k, (ih, iw) = w.shape[-1], x.shape[-2:]
        ph = max((math.ceil(ih / stride) - 1) * stride + k - ih, 0)
        pw = max((math.ceil(iw / stride) - 1) * stride + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, w, None, stride, 0, 1, groups)

    def bn(x, key):
        return F.batch_norm(
            x,
            sd[key + ".running_mean"],
            sd[key + ".running_var"],
            sd[key + ".weight"],
            sd[key + ".bias"],
            False,
            0.0,
            1e-3,
        )

    x = torch.from_numpy((pixels - 127.0) / 128.0).permute(0, 3, 1, 2).float()
    x = F.relu6(bn(conv(x, "_conv_stem", 2), "_bn0"))
    i, cin = 0, 32
    for kernel, stride, expand, cout, repeats in stages:
        for j in range(repeats):
            t, inputs, s = f"_blocks.{i}.", x, stride if j == 0 else 1
            if expand != 1:
                x = F.relu6(bn(conv(x, t + "_expand_conv"), t + "_bn0"))
            x = F.relu6(bn(conv(x, t + "_depthwise_conv", s, groups=x.shape[1]), t + "_bn1"))
            x = bn(conv(x, t + "_project_conv"), t + "_bn2")
            x = x + inputs if s == 1 and cin == cout else x
            cin, i = cout, i + 1
    x = F.relu6(bn(conv(x, "_conv_head"), "_bn1")).mean((2, 3))
    return F.linear(x, sd["_fc.weight"], sd["_fc.bias"])[0].numpy()


def top5(logits: np.ndarray) -> list[dict]:
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return [
        {"class": int(c), "name": NAMES.get(int(c), "?"), "probability": round(float(p[c]), 4)}
        for c in np.argsort(-p)[:5]
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json")
    ap.add_argument("--torch-python", help="a Python with torch and numpy: the independent PyTorch forward runs there")
    ap.add_argument(
        "--torch-reference", nargs=4, metavar=("WEIGHTS", "PIXELS", "STAGES", "OUT"), help=argparse.SUPPRESS
    )
    args = ap.parse_args(argv)
    if args.torch_reference:  # inside the torch Python: no edgefer, no TensorFlow
        weights, pixels, stages, out = args.torch_reference
        np.save(out, torch_logits(weights, np.load(pixels), json.loads(Path(stages).read_text())))
        return 0

    from edgefer.core.files import write_json
    from edgefer.train import efficientnet_lite

    pixels = photo()
    logits = keras_logits(pixels)
    result = {
        "photo": "matplotlib sample_data/grace_hopper.jpg, centre crop, 224 px",
        "weights": efficientnet_lite.PACKAGE_FILE,
        "keras_top5": top5(logits),
    }
    if args.torch_python:
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "pixels.npy", pixels)
            (Path(tmp) / "stages.json").write_text(json.dumps(efficientnet_lite.STAGES))
            cmd = [
                args.torch_python,
                __file__,
                "--torch-reference",
                str(efficientnet_lite.package_weights()),
                f"{tmp}/pixels.npy",
                f"{tmp}/stages.json",
                f"{tmp}/torch.npy",
            ]
            subprocess.run(cmd, check=True)
            reference = np.load(Path(tmp) / "torch.npy")
        result["torch_top5"] = top5(reference)
        result["max_abs_logit_difference"] = float(np.abs(reference - logits).max())
        result["logit_range"] = [round(float(logits.min()), 3), round(float(logits.max()), 3)]
    columns = ["rank", "ImageNet class", "edgefer's Keras EfficientNet-Lite0"]
    rows = [[i + 1, f"{t['class']} {t['name']}", f"{t['probability']:.3f}"] for i, t in enumerate(result["keras_top5"])]
    if "torch_top5" in result:
        columns.append("PyTorch forward, same state dict")
        for row, t in zip(rows, result["torch_top5"]):
            row.append(f"{t['class']} {t['name']} {t['probability']:.3f}")
    result["tables"] = {"top5": {"columns": columns, "rows": rows}}
    for key in ("keras_top5", "torch_top5"):
        if key in result:
            print(key, ", ".join(f"{t['name']} {t['probability']:.3f}" for t in result[key]))
    if "max_abs_logit_difference" in result:
        print(f"largest logit difference, Keras against PyTorch: {result['max_abs_logit_difference']:.2e}")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`edgefer-train`: fine-tune a backbone on a FER dataset and write a run directory."""
from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING

from .config import FIELDS, ConfigError, TrainConfig

HELP = {
    "data": "dataset folder or csv (folder-per-class, FER-2013 csv, FER+ votes, RAF-DB, CK+)",
    "dataset": "reader: auto, folder, fer2013-csv, ferplus, rafdb, rafdb-compound, ckplus",
    "images": "FER+: the FER-2013 image folder or csv its votes refer to",
    "mapping": "FER+: csv mapping vote rows to FER-2013 files",
    "out": "run directory to write",
    "arch": "backbone: mobilenet, mobilenetv2, resnet50, vgg16, inceptionv3, densenet121, smallcnn",
    "weights": "imagenet (Keras download, cached), none, or a local no-top .h5 file",
    "balance": "none, class-weights, oversample or gan",
    "equalize": "none, hist, bihist (brightness-preserving) or clahe; recorded in the card",
    "color": "gray, gray3 (gray on 3 channels, for ImageNet backbones) or rgb",
    "margin": "face-crop margin the device adds around a detected face (card)",
    "strategy": "none, mirrored (all GPUs / logical CPUs on this host) or multiworker (TF_CONFIG)",
    "max_per_class": "at most N images per class per split (quick runs)",
    "resume": "continue an interrupted run in --out (same configuration required)",
    "tta_flip": "average each face with its mirror image when evaluating; the card asks the device to do the same",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgefer-train", description=__doc__)
    p.add_argument("--config", help="TOML or YAML file of options; flags given here override it")
    defaults = TrainConfig()
    for name, f in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name) if f.default is not MISSING else None
        help_text = HELP.get(name, "") + f" (default: {default})"
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            annotation = str(f.type)
            kind = int if annotation.startswith("int") else float if annotation.startswith("float") else str
            p.add_argument(flag, type=kind, default=None, help=help_text)
    return p


def main(argv=None) -> int:
    args = vars(parser().parse_args(argv))
    config_file = args.pop("config")
    try:
        from .config import make_config
        cfg = make_config(config_file, **args)
        from .trainer import train  # imports TensorFlow: after the arguments are known to be good
        result = train(cfg)
    except (ConfigError, ValueError, PermissionError, FileNotFoundError) as exc:  # GanError, DatasetError too
        print(f"edgefer-train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nedgefer-train: interrupted; continue with the same command plus --resume", file=sys.stderr)
        return 130
    m = result.metrics
    print(f"test accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  -> {result.run_dir}/metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

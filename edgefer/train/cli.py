"""`edgefer-train`: fine-tune a backbone on a FER dataset and write a run directory."""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING

from ..core.errors import EdgeferError
from ..core.files import CommandParser
from ..core.spec import FaceCrop
from ..data.fer2013 import FER2013_MARGIN, FER2013_OFFSET_Y
from .balancers import BALANCERS
from .config import CHOICES, FIELDS, RETIRED, TrainConfig

HELP = {
    "data": "dataset folder or csv (folder-per-class, FER-2013 csv, FER+ votes, RAF-DB, CK+)",
    "images": "FER+: the FER-2013 image folder or csv its votes refer to",
    "mapping": "FER+: csv mapping vote rows to FER-2013 files",
    "votes": "FER-2013: FER+ votes (fer2013new.csv or its folder) mixed into the labels",
    "out": "run directory to write",
    "weights": "imagenet (Keras download, cached), none, or a local no-top .h5 file",
    "equalize": "bihist is brightness-preserving bi-histogram equalisation; recorded in the card",
    "color": "gray3 is gray on 3 channels, for ImageNet backbones",
    "framing": "crops: images are face crops (the crop below is then a device setting); frames: "
    "training detects and crops faces as the device does; auto: as the dataset reader says",
    "margin": f"face crop: margin around a detected face box, a share of its side (default: {FaceCrop.margin}, a "
    f"generic margin; the recipes set {FER2013_MARGIN}, where BlazeFace's box sits in a FER-2013 face, so the device "
    "frames faces as FER-2013 did: measure your own crops' framing before you change it)",
    "offset_y": "face crop: centre moved down by this share of the box, negative up (default: 0; the recipes "
    f"set {FER2013_OFFSET_Y}, FER-2013's framing, as --margin says)",
    "camera": "augment with camera conditions: brightness, contrast, gamma, blur, noise, occlusion",
    "strategy": "mirrored: all GPUs / logical CPUs on this host; multiworker: several hosts, each running "
    "this command with its own TF_CONFIG (docs/multiworker.md)",
    "worker_timeout": "multiworker: seconds a worker waits for a step before it says a peer stopped or never "
    "started, and exits",
    "max_per_class": "at most N images per class per split (quick runs)",
    "resume": "continue an interrupted run in --out (same configuration required)",
    "flip_average": "average each face with its mirror image in evaluation; the card asks the device to do the same",
    "dataset": "the reader; auto picks one from what is on disk",
    "val_fraction": "share of train cut off for validation where the dataset has no validation split",
    "test_fraction": "share of train cut off for testing where the dataset has no test split",
    "soft_labels": "FER+: train on the vote distributions instead of the majority label",
    "compound_votes": "ferplus-compound: an image is e.g. happily_surprised when at least N of its 10 "
    "annotators chose happy and as many chose surprise",
    "compound_min": "ferplus-compound: compound classes with fewer training images are dropped (reported)",
    "votes_weight": "share of the FER+ vote distribution in each target (--votes)",
    "teacher": "distillation: a teacher's probabilities per training image (.npz of recipes/teacher_targets.py)",
    "teacher_weight": "share of the teacher's probabilities in each target (--teacher)",
    "size": "input side in pixels (card)",
    "align": "face crop: level the eye line first (card)",
    "arch": "backbone from the registry",
    "alpha": "MobileNet width multiplier",
    "dropout": "dropout before the classifier",
    "bn_momentum": "BatchNorm momentum; Keras' 0.999 lags far behind on small gray faces",
    "freeze": "keep the backbone's weights up to and including this layer (e.g. block_2_add: "
    "MobileNetV2's first three blocks; a shorter training step)",
    "epochs": "epochs to train (with --resume: a larger number extends a finished run)",
    "batch_size": "images per step",
    "lr": "peak learning rate of Adam's cosine schedule",
    "label_smoothing": "cross-entropy label smoothing",
    "patience": "stop after this many epochs without a better validation accuracy",
    "balance": "class balancing of the training split: "
    + "; ".join(f"{name}, {b.what}" for name, b in BALANCERS.items()),
    "per_class": "oversample / gan: fill every class up to N images (default: the largest class)",
    "gan_dir": "gan: reuse (or resume) the GAN in this folder (default RUN/gan)",
    "gan_epochs": "gan: epochs of GAN training",
    "gan_loss": "gan: hinge (spectral-normalised DCGAN) or wgan-gp",
    "gan_size": "gan: the GAN's image side (FER-2013's native 48)",
    "gan_width": "gan: filters in the GAN's first layer",
    "gan_min_images": "gan: classes with fewer real images are oversampled instead",
    "gan_fidelity_epochs": "gan: epochs of the two real-face classifiers (guide: half A of train, gate: half B)",
    "gan_augment": "gan: DiffAugment (colour, translation, cutout) on real and fake images for the discriminator",
    "gan_guide": "gan: weight of the guide classifier's cross-entropy in the generator's loss (0: off)",
    "gan_condition_warmup": "gan: epochs over which the class condition is phased in from 0 (0: from the start)",
    "gan_gate": "gan: keep a synthetic image when the gate classifier gives its class at least this probability",
    "gan_gate_run": "gan: gate (and score fidelity) with this finished run's model, e.g. a FER+ run, instead of the small CNN on half B",
    "gan_max_share": "gan: at most this share of a class's quota may be synthetic; the rest is oversampled",
    "gan_tstr_images": "gan: images per class of the train-on-synthetic-test-on-real check",
    "seed": "seed of splits, shuffles, augmentation and initialisation",
    "flip": "augment with horizontal flips",
    "rotation": "augment with rotations up to this many degrees",
    "shift": "augment with shifts up to this share of the side",
    "zoom": "augment with zoom up to this share",
    "verbose": "Keras progress: 0 silent, 1 bars, 2 a line per epoch (default: bars on a terminal, else a line); "
    "EDGEFER_VERBOSE=1 also shows TensorFlow's own start-up log",
}


GROUPS = {  # the help lists the options in these groups, in this order
    "data": (
        "data",
        "dataset",
        "images",
        "mapping",
        "votes",
        "votes_weight",
        "soft_labels",
        "teacher",
        "teacher_weight",
        "compound_votes",
        "compound_min",
        "val_fraction",
        "test_fraction",
        "max_per_class",
    ),
    "input spec (written into the model card)": (
        "size",
        "color",
        "equalize",
        "framing",
        "margin",
        "offset_y",
        "align",
        "flip_average",
    ),
    "model": ("arch", "alpha", "weights", "dropout", "bn_momentum", "freeze"),
    "augmentation": ("flip", "rotation", "shift", "zoom", "camera"),
    "balancing": (
        "balance",
        "per_class",
        "gan_dir",
        "gan_epochs",
        "gan_loss",
        "gan_size",
        "gan_width",
        "gan_min_images",
        "gan_fidelity_epochs",
        "gan_augment",
        "gan_guide",
        "gan_condition_warmup",
        "gan_gate",
        "gan_gate_run",
        "gan_max_share",
        "gan_tstr_images",
    ),
    "run": (
        "out",
        "resume",
        "epochs",
        "batch_size",
        "lr",
        "label_smoothing",
        "patience",
        "seed",
        "strategy",
        "worker_timeout",
        "verbose",
    ),
}

EXAMPLES = """examples:
  edgefer-train --data faces/ --out runs/mine --weights imagenet        # DIR/<class>/*.jpg, split here
  edgefer-train --config recipes/fer2013_oversample.toml --out runs/default   # a shipped model's recipe
  edgefer-train --config recipes/fer2013.toml --out runs/fer --epochs 20       # flags override the file
  edgefer-train --config recipes/fer2013.toml --out runs/fer --resume          # continue after a kill
then: edgefer-export RUN --int8 --out model.tflite; edgefer-cam --model model.tflite"""


def parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog="edgefer-train",
        description=__doc__,
        epilog=EXAMPLES,
        usage="edgefer-train [--config RECIPE] [--data DATA] [--out RUN] [OPTION ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="TOML or YAML file of options (a recipe); flags given here override it")
    defaults = TrainConfig()
    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(FIELDS), set(FIELDS) ^ set(grouped)  # every option in one group
    for title, names in GROUPS.items():
        group = p.add_argument_group(title)
        for name in names:
            f = FIELDS[name]
            flag = "--" + name.replace("_", "-")
            default = getattr(defaults, name) if f.default is not MISSING else None
            help_text = HELP.get(name, "")
            if "default" not in help_text and default not in (None, ""):  # one default, said once
                help_text += f" (default: {default})"
            if isinstance(default, bool):
                group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            else:
                annotation = str(f.type)
                kind = int if annotation.startswith("int") else float if annotation.startswith("float") else str
                if name in CHOICES:  # listed from the registries; checked by the config, one line on error
                    help_text = f"{help_text}; one of: {', '.join(CHOICES[name])}"
                group.add_argument(flag, type=kind, default=None, help=help_text)
    for name in RETIRED:  # unlisted: given, the config says in one line where the study went
        p.add_argument("--" + name.replace("_", "-"), default=None, help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    args = vars(parser().parse_args(argv))
    config_file = args.pop("config")
    try:
        from .config import make_config

        cfg = make_config(config_file, **args)
        from .trainer import train  # imports TensorFlow: after the arguments are known to be good

        result = train(cfg)
    except EdgeferError as exc:
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

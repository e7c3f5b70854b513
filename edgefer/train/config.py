"""Training configuration: defaults here, then a TOML/YAML file, then command-line flags."""
from __future__ import annotations

import dataclasses
import hashlib
import json
try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path


class ConfigError(ValueError):
    pass


@dataclass
class TrainConfig:
    # data
    data: str = ""
    dataset: str = "auto"            # auto | folder | fer2013-csv | ferplus | rafdb | rafdb-compound | ckplus
    images: str | None = None        # FER+: the FER-2013 folder or csv the votes refer to
    mapping: str | None = None       # FER+: votes-row -> FER-2013 file mapping csv
    val_fraction: float = 0.1        # used only where the dataset has no validation split
    test_fraction: float = 0.1       # used only where the dataset has no test split
    max_per_class: int | None = None  # cap images per class per split (quick runs, tests)
    soft_labels: bool = False        # FER+ vote distributions as targets instead of majority
    # preprocessing contract (goes into the model card)
    size: int = 96
    color: str = "gray3"
    equalize: str = "none"
    margin: float = 0.2              # face-crop margin the device applies around a detected box
    # model
    arch: str = "mobilenetv2"
    alpha: float = 0.35
    weights: str = "imagenet"        # imagenet (Keras download) | none | path to a no-top .h5
    dropout: float = 0.2
    bn_momentum: float = 0.9
    # optimisation
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    label_smoothing: float = 0.0
    patience: int = 5                # early stopping on validation accuracy
    balance: str = "none"            # none | class-weights | oversample | gan
    per_class: int | None = None     # oversample / gan: fill each class up to N (default: the largest class)
    gan_dir: str | None = None       # gan: reuse (or resume) the GAN in this folder; default RUN/gan
    gan_epochs: int = 30
    gan_loss: str = "hinge"          # hinge (conditional DCGAN) | wgan-gp
    gan_size: int = 48               # the GAN's image side (FER-2013's native 48 px)
    gan_width: int = 32              # filters in the GAN's first layer (32 keeps FER-2013 ~30 min on 2 cores)
    gan_min_images: int = 50         # classes with fewer real images are oversampled instead
    gan_fidelity_epochs: int = 3     # epochs of the real-data classifier that scores fidelity
    seed: int = 0
    # augmentation (FER papers: 15 deg, 0.15 shift, 0.15 zoom, horizontal flip)
    flip: bool = True
    rotation: float = 15.0
    shift: float = 0.15
    zoom: float = 0.15
    tta_flip: bool = False           # average predictions with the mirrored face at evaluation, and on
                                     # the device (written into the card; edgefer-export --flip-average overrides)
    # running
    strategy: str = "none"           # none | mirrored | multiworker
    out: str = "runs/run"
    resume: bool = False
    verbose: int | None = None       # Keras verbosity; default: bars on a terminal, a line per epoch otherwise

    # keys that do not change what is trained, so --resume accepts them changed
    RUN_ONLY = ("out", "resume", "verbose")

    def fingerprint(self) -> str:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in self.RUN_ONLY}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self) -> "TrainConfig":
        choices = {"color": ("gray", "gray3", "rgb"), "equalize": ("none", "hist", "bihist", "clahe"),
                   "balance": ("none", "class-weights", "oversample", "gan"),
                   "strategy": ("none", "mirrored", "multiworker"), "gan_loss": ("hinge", "wgan-gp")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} = {getattr(self, key)!r}; choose one of {list(allowed)}")
        if not self.data:
            raise ConfigError("no dataset; pass --data DIR (or set data in the config file)")
        if self.weights not in ("imagenet", "none", "") and not Path(self.weights).is_file():
            raise ConfigError(f"{self.weights}: no such weights file; pass --weights imagenet (download), "
                              "none, or a no-top .h5")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
        return self


FIELDS = {f.name: f for f in fields(TrainConfig)}


def read_config_file(path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml
            values = yaml.safe_load(text) or {}
        else:
            values = tomllib.loads(text)
    except Exception as exc:  # both parsers' errors: report one line, never a traceback
        raise ConfigError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'TOML'} ({exc})") from None
    values = values.get("train", values)  # allow a [train] table
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; known keys: {sorted(FIELDS)}")
    # relative data paths in a recipe are relative to the recipe file
    for key in ("data", "images", "mapping", "weights"):
        value = values.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute() and value not in ("imagenet", "none"):
            values[key] = str((path.parent / value).resolve())
    return values


def make_config(file=None, **overrides) -> TrainConfig:
    """Defaults < config file < overrides (None means 'not given')."""
    values = read_config_file(file) if file else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)}")
    return TrainConfig(**values).check()

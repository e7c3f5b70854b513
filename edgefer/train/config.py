"""Training configuration: defaults here, then a TOML/YAML file, then command-line flags."""

from __future__ import annotations

import dataclasses
import hashlib
import json

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from ..core import preprocess
from ..core.errors import EdgeferError
from ..core.spec import ALIGN, FRAMING, FaceCrop
from ..data import DATASETS
from ..gan import LOSSES as GAN_LOSSES
from .backbones import BACKBONES
from .balancers import BALANCERS

STRATEGIES = ("none", "mirrored", "multiworker")
TARGET_FILES = ("teacher", "blendshapes")  # options naming a file of per-image targets the run reads


class ConfigError(EdgeferError, ValueError):
    pass


@dataclass
class TrainConfig:
    # data
    data: str = ""
    dataset: str = "auto"  # auto, or a reader of edgefer.data.DATASETS
    images: str | None = None  # FER+: the FER-2013 folder or csv the votes refer to
    mapping: str | None = None  # FER+: votes-row -> FER-2013 file mapping csv
    val_fraction: float = 0.1  # used only where the dataset has no validation split
    test_fraction: float = 0.1  # used only where the dataset has no test split
    max_per_class: int | None = None  # cap images per class per split (quick runs, tests)
    soft_labels: bool = False  # FER+ vote distributions as targets instead of majority
    votes: str | None = None  # FER-2013: FER+ votes (fer2013new.csv or its folder) mixed into the labels
    votes_weight: float = 0.5  # share of the FER+ vote distribution in each soft target
    votes_neutral: float = 1.0  # share of the neutral votes kept on faces FER-2013 labels with an emotion
    votes_clarity: float = 0.0  # weigh each training face by (its top FER+ vote share) ** this (0: off)
    teacher: str | None = None  # distillation: a teacher's probabilities (.npz of recipes/teacher_targets.py)
    teacher_weight: float = 0.5  # share of the teacher's probabilities in each target
    blendshapes: str | None = None  # the face landmarker's blendshapes per training face (.npz of
    # recipes/blendshape_targets.py), a second target for a head dropped after training
    blendshape_weight: float = 10.0  # of the blendshape loss (mean binary cross-entropy) against the expression's
    compound_votes: int = 3  # ferplus-compound: votes (of 10) each of the two leading emotions needs
    compound_min: int = 40  # ferplus-compound: classes with fewer training images are dropped
    # the input spec (edgefer.core.spec, written into the model card)
    size: int = 96
    color: str = "gray3"
    equalize: str = "none"
    framing: str = "auto"  # auto (the reader says) | crops (faces already cropped) | frames (detect and crop)
    margin: float = FaceCrop.margin  # face crop: margin around a detected box (on the device; in training for frames)
    offset_y: float = 0.0  # face crop: centre moved down by this share of the box (negative: up)
    align: str = "none"  # face crop: none | eyes (level the eye line)
    # model
    arch: str = "mobilenetv2"
    alpha: float = 0.35
    weights: str = "imagenet"  # imagenet (Keras download) | none | path to a no-top .h5
    dropout: float = 0.2
    bn_momentum: float = 0.9
    freeze: str = ""  # backbone layers up to this one keep their ImageNet weights ("": none)
    # optimisation
    epochs: int = 10
    warmup_size: int = 0  # the first warmup_epochs epochs see faces downscaled to this side
    warmup_epochs: int = 0  # (progressive resizing: a step costs about (warmup_size/size)^2; 0: off)
    probe_epochs: int = 0  # the first probe_epochs epochs train the head alone, then every layer
    # (but freeze's) learns: LP-FT (Kumar et al. 2022; 0: off)
    batch_size: int = 64
    lr: float = 1e-3
    label_smoothing: float = 0.0
    patience: int = 5  # early stopping on validation accuracy
    average_from: int = 0  # the model is the mean of the weights over every step from this epoch on
    # (tail averaging, as SWA / SWAD; 0: off, the best epoch)
    balance: str = "none"  # none | class-weights | oversample | gan
    per_class: int | None = None  # oversample / gan: fill each class up to N (default: the largest class)
    gan_dir: str | None = None  # gan: reuse (or resume) the GAN in this folder; default RUN/gan
    gan_epochs: int = 30
    gan_loss: str = "hinge"  # hinge (conditional DCGAN) | wgan-gp
    gan_size: int = 48  # the GAN's image side (FER-2013's native 48 px)
    gan_width: int = 32  # filters in the GAN's first layer (the GAN's time grows with its square)
    gan_min_images: int = 50  # classes with fewer real images are oversampled instead
    gan_fidelity_epochs: int = 3  # epochs of the two real-face classifiers (guide and gate)
    gan_augment: bool = True  # DiffAugment on real and fake images before the discriminator
    gan_guide: float = 0.1  # weight of the guide classifier's cross-entropy on G(z, y) (0: off);
    # 1.0 collapsed each class into an adversarial texture (docs/results/balancing.md)
    gan_condition_warmup: int = 5  # epochs over which the class condition is phased in (0: from the start)
    gan_gate: float = 0.5  # keep a synthetic image when the gate gives its class at least this
    gan_gate_run: str | None = None  # gate with this finished edgefer-train run (e.g. a FER+ model) instead
    # of the small CNN on half B of the training split
    gan_max_share: float = 0.5  # at most this share of a class's quota may be synthetic
    gan_tstr_images: int = 300  # images per class for train-on-synthetic-test-on-real
    seed: int = 0
    # augmentation (FER papers: 15 deg, 0.15 shift, 0.15 zoom, horizontal flip)
    flip: bool = True
    rotation: float = 15.0
    shift: float = 0.15
    zoom: float = 0.15
    camera: bool = False  # camera conditions: brightness, contrast, gamma, blur, noise, occlusion
    mixup: float = 0.0  # blend each face with another, targets alike, by a Beta(a, a) weight (0: off)
    flip_average: bool = False  # average each face with its mirror image: in evaluation, export and
    # on the device (the card carries it; export / cam / bench can override)
    # running
    strategy: str = "none"  # none | mirrored | multiworker
    worker_timeout: float = 300.0  # multiworker: seconds without a step before a worker gives up
    out: str = "runs/run"
    resume: bool = False
    verbose: int | None = None  # Keras verbosity; default: bars on a terminal, a line per epoch otherwise

    # keys that do not change what is trained, so --resume accepts them changed
    # (epochs: a finished run can be extended; the learning-rate cosine is stretched to the new length)
    RUN_ONLY = ("out", "resume", "verbose", "flip_average", "epochs", "worker_timeout")
    # the face crop is a device setting when the dataset's faces come cropped (FER-2013)
    CROP = ("margin", "offset_y", "align")

    def trained_keys(self, framing: str) -> list[str]:
        """The keys that change what is trained, for a dataset of crops or of full frames."""
        return [k for k in FIELDS if k not in self.RUN_ONLY and (framing == "frames" or k not in self.CROP)]

    def fingerprint(self, framing: str = "crops") -> str:
        d = {k: getattr(self, k) for k in self.trained_keys(framing)}
        d.update(
            {k: v for k, v in self.file_digests().items() if v}
        )  # a file rewritten in place changes what is trained
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def file_digests(self) -> dict[str, str | None]:
        """sha256 of each target file the run reads (teacher, blendshapes; None without one), as
        config.json records them: `teacher_sha256`, `blendshapes_sha256`."""
        return {
            f"{key}_sha256": hashlib.sha256(Path(getattr(self, key)).read_bytes()).hexdigest()
            if getattr(self, key) and Path(getattr(self, key)).is_file()
            else None
            for key in TARGET_FILES
        }

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self) -> TrainConfig:
        for f in fields(self):  # a config file can say epochs = "one"; say so before anything runs
            value, kinds = getattr(self, f.name), [k.strip() for k in str(f.type).split("|")]
            if not any(_is(value, k) for k in kinds):
                raise ConfigError(f"{f.name} = {value!r}: must be {' or '.join(kinds)}")
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} = {getattr(self, key)!r}; choose one of {list(allowed)}")
        if not self.data:
            raise ConfigError("no dataset; pass --data DIR (or set data in the config file)")
        data, out = Path(self.data).resolve(), Path(self.out).resolve()
        if data.is_dir() and (out == data or data in out.parents):
            raise ConfigError(
                f"--out {self.out} is inside --data {self.data}: the run's plots would be read as faces by the next "
                "run on that data; pass --out a folder outside it (e.g. runs/NAME)"
            )
        if self.weights not in ("imagenet", "none", "") and not Path(self.weights).is_file():
            raise ConfigError(
                f"{self.weights}: no such weights file; pass --weights imagenet (download), none, or a no-top .h5"
            )
        if self.gan_gate_run and not (Path(self.gan_gate_run) / "model.keras").is_file():
            raise ConfigError(
                f"gan_gate_run = {self.gan_gate_run}: no model.keras there; pass the --out folder "
                "of a finished edgefer-train run, or leave it out to gate with the half-B classifier"
            )
        if self.teacher and not Path(self.teacher).is_file():
            raise ConfigError(
                f"teacher = {self.teacher}: no such file; write it first with "
                "python recipes/teacher_targets.py --model NAME --data DATA --out FILE.npz"
            )
        if self.blendshapes and not Path(self.blendshapes).is_file():
            raise ConfigError(
                f"blendshapes = {self.blendshapes}: no such file; write it first with "
                "python recipes/blendshape_targets.py --data DATA --out FILE.npz"
            )
        if self.blendshape_weight < 0:
            raise ConfigError(f"blendshape_weight = {self.blendshape_weight}: must be 0 or more")
        if self.blendshapes and (self.mixup or self.balance == "class-weights"):
            # mixup blends targets and Keras weighs classes on one output only: neither fits a second target
            raise ConfigError(
                f"blendshapes with mixup = {self.mixup}, balance = {self.balance!r}: a second target "
                "takes neither mixup nor class weights (use mixup = 0, balance = 'oversample')"
            )
        if self.votes_clarity and not self.votes:
            raise ConfigError(
                f"votes_clarity = {self.votes_clarity}: weighs faces by their FER+ votes; pass --votes too"
            )
        if self.votes_clarity and (self.balance in ("class-weights", "gan") or self.mixup):
            # Keras takes one weight per example: class weights would replace these, GAN faces have
            # no votes, and a mixup blend of two faces has no one weight
            raise ConfigError(
                f"votes_clarity with balance = {self.balance!r}, mixup = {self.mixup}: "
                "use balance = 'oversample' or 'none' and mixup = 0"
            )
        if self.mixup < 0:
            raise ConfigError(f"mixup = {self.mixup}: must be 0 (off) or a positive Beta parameter such as 0.2")
        if not 0 <= self.average_from <= self.epochs:
            raise ConfigError(
                f"average_from = {self.average_from}: must be 0 (off) or the first epoch to average, "
                f"from 1 to epochs ({self.epochs})"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
        if bool(self.warmup_size) != bool(self.warmup_epochs):
            raise ConfigError(
                f"warmup_size = {self.warmup_size}, warmup_epochs = {self.warmup_epochs}: "
                "give both (a smaller side and how many epochs train at it) or neither"
            )
        if self.warmup_size and not BACKBONES[self.arch].min_size <= self.warmup_size < self.size:
            raise ConfigError(
                f"warmup_size = {self.warmup_size}: must be below size ({self.size}) and at least "
                f"{BACKBONES[self.arch].min_size} ({self.arch}'s smallest input)"
            )
        if self.warmup_epochs and not 0 < self.warmup_epochs < self.epochs:
            raise ConfigError(
                f"warmup_epochs = {self.warmup_epochs}: must leave epochs at the full size "
                f"(1 to {self.epochs - 1} of {self.epochs})"
            )
        if not 0 <= self.probe_epochs < self.epochs:
            raise ConfigError(
                f"probe_epochs = {self.probe_epochs}: must be 0 (off) or leave epochs to fine-tune "
                f"every layer (1 to {self.epochs - 1} of {self.epochs})"
            )
        if self.probe_epochs and 0 < self.average_from <= self.probe_epochs:
            # the average is over the trainable weights, which are the head's alone while it probes
            raise ConfigError(
                f"average_from = {self.average_from} with probe_epochs = {self.probe_epochs}: "
                f"average from an epoch after the probe ({self.probe_epochs + 1} or later)"
            )
        FaceCrop(self.margin, self.offset_y, self.align).check("face crop (--margin, --offset-y, --align)")
        return self


def _is(value, kind: str) -> bool:
    if kind == "None":
        return value is None
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"bool": bool, "str": str}[kind])


FIELDS = {f.name: f for f in fields(TrainConfig)}
# every option with a fixed set of values, read from the registries that implement them
CHOICES = {
    "dataset": ("auto", *DATASETS),
    "arch": tuple(BACKBONES),
    "color": preprocess.COLOR_MODES,
    "equalize": preprocess.EQUALIZE,
    "framing": ("auto", *FRAMING),
    "align": ALIGN,
    "balance": tuple(BALANCERS),
    "strategy": STRATEGIES,
    "gan_loss": GAN_LOSSES,
}
# names older runs wrote into config.json
# old option names a config file or a run's config.json may still use; edgefer-cam's --faces (near/far
# detector) is another thing, so training's option of that name became `framing`
RENAMED = {"tta_flip": "flip_average", "faces": "framing"}


MAX_EXTENDS = 8  # a recipe's chain of base files; deeper is a loop or a mistake


def read_config_file(path, _chain: tuple = ()) -> dict:
    """A recipe's values: `extends = "base.toml"` (beside it) reads that file first, this one's keys
    over it; relative paths are relative to the file that names them."""
    path = Path(path)
    if path.resolve() in _chain or len(_chain) >= MAX_EXTENDS:
        raise ConfigError(
            f"{path}: 'extends' runs in a loop or deeper than {MAX_EXTENDS} files ({' -> '.join(map(str, _chain))})"
        )
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
        raise ConfigError(
            f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'TOML'} ({exc})"
        ) from None
    values = values.get("train", values)  # allow a [train] table
    values = {RENAMED.get(k, k): v for k, v in values.items()}
    base = values.pop("extends", None)
    if base is not None and not (isinstance(base, str) and base):
        raise ConfigError(f"{path}: 'extends' names a recipe file, e.g. extends = \"base.toml\"")
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; known keys: {sorted(FIELDS)}")
    # relative data paths in a recipe are relative to the recipe file
    for key in ("data", "images", "mapping", "weights", "votes", *TARGET_FILES):
        value = values.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute() and value not in ("imagenet", "none"):
            values[key] = str((path.parent / value).resolve())
    if base is None:
        return values
    base_path = path.parent / base
    if not base_path.is_file():
        raise ConfigError(f"{path}: extends {base}, which is not there ({base_path})")
    return {**read_config_file(base_path, (*_chain, path.resolve())), **values}


def make_config(file=None, **overrides) -> TrainConfig:
    """Defaults < config file < overrides (None means 'not given')."""
    values = read_config_file(file) if file else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    values = {RENAMED.get(k, k): v for k, v in values.items()}
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ConfigError(f"unknown option(s) {sorted(unknown)}")
    return TrainConfig(**values).check()

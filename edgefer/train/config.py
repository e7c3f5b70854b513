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
TARGET_FILES = ("teacher",)  # options naming a file of per-image targets the run reads


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
    teacher: str | None = None  # distillation: a teacher's probabilities (.npz of recipes/teacher_targets.py)
    teacher_weight: float = 0.5  # share of the teacher's probabilities in each target
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
    batch_size: int = 64
    lr: float = 1e-3
    label_smoothing: float = 0.0
    patience: int = 5  # early stopping on validation accuracy
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
        """sha256 of each target file the run reads (the teacher's; None without one), as
        config.json records them: `teacher_sha256`."""
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
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
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


# options of studies that were measured (docs/results/generalisation.md) and then left the kit, with
# the value that meant "off": the commit RETIRED_AT still runs them
RETIRED = {
    "mixup": 0.0,
    "average_from": 0,
    "warmup_size": 0,
    "warmup_epochs": 0,
    "probe_epochs": 0,
    "votes_clarity": 0.0,
    "votes_neutral": 1.0,
    "blendshapes": None,
    "blendshape_weight": 10.0,
}
RETIRED_AT = "f4611b2"


def without_retired(saved: dict, run_dir) -> dict:
    """A run's saved configuration without the retired options an older edgefer wrote at "off";
    a run trained with one on is refused: this edgefer cannot continue or reproduce it."""
    studied = sorted(k for k, off in RETIRED.items() if saved.get(k, off) != off)
    if studied:
        raise ConfigError(
            f"{run_dir} was trained with {', '.join(studied)}, a study's option that left edgefer; "
            f"use it at commit {RETIRED_AT}, or choose another run"
        )
    return {k: v for k, v in saved.items() if k not in RETIRED}


def check_known(values: dict, where: str) -> None:
    """One line for a key edgefer does not know: a retired study's option says where it went."""
    retired = sorted(set(values) & set(RETIRED))
    if retired:
        raise ConfigError(
            f"{where}{', '.join(retired)}: "
            + (
                "a study's option that left edgefer after it was"
                if len(retired) == 1
                else "study options that left edgefer after they were"
            )
            + f" measured (docs/results/generalisation.md); remove {'it' if len(retired) == 1 else 'them'}, or run that study at commit {RETIRED_AT}"
        )
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ConfigError(f"{where}unknown key(s) {sorted(unknown)}; known keys: {sorted(FIELDS)}")


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
    check_known(values, f"{path}: ")
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
    check_known(values, "")
    return TrainConfig(**values).check()

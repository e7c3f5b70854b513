import errno
import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config, write_images
from edgefer.gan import GanError
from edgefer.gan.balance import quotas, write_synthetic
from edgefer.train import train
from edgefer.train.cli import main

# these tests train models: the slow part of the suite (pytest -m "not slow" leaves them out)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_spec("tensorflow") is None, reason="the train extra (TensorFlow) is not installed"),
]

LABELS = ["angry", "happy", "sad"]


@pytest.fixture
def imbalanced(tmp_path):
    """happy 16, angry 10, sad 4 images, with train/test folders (val is cut from train)."""
    root = tmp_path / "faces"
    for k, (cls, n) in enumerate((("happy", 16), ("angry", 10), ("sad", 5))):
        write_images(root / "train" / cls, [f"{cls}{i}" for i in range(n)], seed0=100 * k)
        write_images(root / "test" / cls, [f"t{cls}{i}" for i in range(3)], seed0=100 * k + 50)
    return root


def gan_config(tmp_path, data, **kw):
    """tiny_config with the GAN balancing the training split (imbalanced has its own test split)."""
    gan = dict(balance="gan", gan_epochs=2, gan_width=8, gan_min_images=5, gan_fidelity_epochs=1)
    return tiny_config(tmp_path, data, **{**gan, **kw})


def test_gan_balance_fills_the_training_split_only(tmp_path, imbalanced):
    result = train(gan_config(tmp_path, imbalanced, gan_gate=0.0))  # every sample passes the gate
    run = result.run_dir
    info = result.metrics["balance"]
    manifest = json.loads((run / "synthetic" / "manifest.json").read_text())
    assert manifest["generator_checkpoint"] and Path(manifest["generator_checkpoint"] + ".index").exists()
    assert manifest["count"] == len(manifest["files"]) == info["synthetic_images"] > 0
    assert all(f["synthetic"] and Path(f["path"]).exists() for f in manifest["files"])
    # train: happy 13 after the val cut; every class filled up to it; sad (4 left) was oversampled instead
    assert info["train_counts_after"] == [13, 13, 13]
    assert any("sad: only 4 training images" in note for note in info["notes"])
    assert (
        manifest["oversampled"]["sad"]["images"] == 9
        and "fewer than --gan-min-images" in manifest["oversampled"]["sad"]["why"]
    )
    assert {f["label"] for f in manifest["files"]} == {"angry"}
    # nothing synthetic in validation or test: their sizes are the real ones
    assert result.card["trained_on"]["splits"]["val"] == 6 and result.metrics["support"] == 9
    assert sum(result.metrics["val"]["per_class"][c]["support"] for c in LABELS) == 6
    checks = json.loads((run / "synthetic" / "quality.json").read_text())
    assert 0.0 <= checks["judges"]["gate_val_accuracy"] <= 1.0 and 0.0 <= checks["tstr"]["val_accuracy"] <= 1.0
    quality = checks["angry"]
    for key in (
        "fidelity",
        "tstr_recall",
        "near_copies",
        "nn_distance_synthetic_median",
        "diversity_synthetic",
        "diversity_real",
    ):
        assert key in quality
    assert quality["gate"]["pass_rate"] == 1.0 and quality["gate"]["kept"] == info["synthetic_images"]
    assert "fidelity" in checks["happy"] and "tstr_recall" in checks["happy"]  # every class, not just the filled
    assert list((run / "gan").glob("samples_epoch*.png"))


def test_a_gate_nothing_passes_falls_back_to_oversampling_and_says_so(tmp_path, imbalanced):
    result = train(gan_config(tmp_path, imbalanced, gan_gate=1.01, gan_guide=0.0, gan_augment=False))
    info = result.metrics["balance"]
    manifest = json.loads((result.run_dir / "synthetic" / "manifest.json").read_text())
    assert info["train_counts_after"] == [13, 13, 13] and manifest["count"] == 0
    assert "gate kept 0" in manifest["oversampled"]["angry"]["why"]
    assert any(note.startswith("angry: ") and "real images repeated" in note for note in info["notes"])
    checks = json.loads((result.run_dir / "synthetic" / "quality.json").read_text())
    assert checks["angry"]["gate"]["pass_rate"] == 0.0


def test_gan_resumes_from_its_checkpoint(tmp_path):
    from edgefer.gan.train import Gan, GanMeta  # TensorFlow loads here, not at collection

    meta = GanMeta("toy", LABELS, "basic7", 16, 1, width=8)
    x = np.random.default_rng(0).integers(0, 255, (32, 16, 16, 1), dtype=np.uint8)
    y = np.arange(32) % 3
    gan = Gan.open(tmp_path / "gan", meta)
    gan.fit(x, y, epochs=1, batch_size=8)
    again = Gan.open(tmp_path / "gan", meta)
    assert int(again.epoch.numpy()) == 1
    assert again.fit(x, y, epochs=2, batch_size=8)["epochs"] == 2
    assert len(json.loads((tmp_path / "gan" / "history.json").read_text())) == 2


def test_generator_made_for_another_dataset_is_refused(tmp_path, capsys, imbalanced):
    from edgefer.gan.train import Gan, GanMeta  # TensorFlow loads here, not at collection

    Gan.open(tmp_path / "gan", GanMeta("other", ["happy", "sad"], "basic7", 48, 1, width=8))
    with pytest.raises(GanError, match="trained for labels"):
        Gan.open(tmp_path / "gan", GanMeta("toy", LABELS, "basic7", 48, 1, width=8))
    rc = main(
        [
            "--data",
            str(imbalanced),
            "--out",
            str(tmp_path / "r"),
            "--arch",
            "smallcnn",
            "--weights",
            "none",
            "--size",
            "32",
            "--balance",
            "gan",
            "--gan-dir",
            str(tmp_path / "gan"),
            "--verbose",
            "0",
        ]
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgefer-train")]
    assert rc == 2 and "train a new GAN" in err[0]


def test_quotas():
    todo, notes = quotas([100, 40, 10], None, 20, LABELS)
    assert todo == {1: ("gan", 60), 2: ("oversample", 90)}
    todo, notes = quotas([100, 40, 30], 50, 20, LABELS)
    assert todo == {1: ("gan", 10), 2: ("gan", 20)} and "angry already above the quota 50" in notes[0]
    with pytest.raises(GanError, match="quota 20 is not above any class"):
        quotas([100, 40, 30], 20, 5, LABELS)


def test_a_disk_that_fills_midway_leaves_no_manifest(tmp_path, monkeypatch):
    from edgefer.gan.train import Gan, GanMeta  # TensorFlow loads here, not at collection

    gan = Gan.open(tmp_path / "gan", GanMeta("toy", LABELS, "basic7", 16, 1, width=8))
    from PIL import Image

    saved = []
    real_save = Image.Image.save

    def save(self, fp, *a, **kw):
        if len(saved) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        saved.append(fp)
        return real_save(self, fp, *a, **kw)

    monkeypatch.setattr(Image.Image, "save", save)
    with pytest.raises(OSError, match="No space left"):
        write_synthetic({1: gan.sample(np.full(10, 1), seed=0)}, LABELS, tmp_path / "synthetic", gan, {})
    assert not (tmp_path / "synthetic" / "manifest.json").exists()


def test_a_finished_run_can_gate_the_samples(tmp_path, imbalanced):
    expert = train(gan_config(tmp_path, imbalanced, out=str(tmp_path / "expert"), balance="none")).run_dir
    result = train(gan_config(tmp_path, imbalanced, gan_gate_run=str(expert), gan_gate=0.0))
    checks = json.loads((result.run_dir / "synthetic" / "quality.json").read_text())
    assert checks["judges"]["gate"] == str(expert) and "gate: half B" not in checks["judges"]["halves"]
    assert checks["angry"]["gate"]["pass_rate"] == 1.0 and 0.0 <= checks["angry"]["fidelity"] <= 1.0
    assert result.metrics["balance"]["train_counts_after"] == [13, 13, 13]


def test_an_expert_reads_compound_classes_from_its_top_two(tmp_path, imbalanced):
    from edgefer.train.gan_balance import expert_judge

    expert = train(gan_config(tmp_path, imbalanced, out=str(tmp_path / "expert"), balance="none")).run_dir
    score = expert_judge(expert, ["sadly_angry"])  # angry and sad name a compound
    out = score(np.random.default_rng(0).integers(0, 255, (6, 48, 48, 1), dtype=np.uint8))
    assert out.shape == (6, 1) and set(np.unique(out)) <= {0.0, 1.0}  # 1: its two leading emotions are sad and angry
    for unknown in (["neutral"], ["sadly_angry", "happily_surprised"]):  # the run knows no neutral, no surprise
        with pytest.raises(GanError, match="cover neither"):
            expert_judge(expert, unknown)


def test_a_gate_run_without_a_model_is_refused_before_work(tmp_path, imbalanced, capsys):
    rc = main(
        [
            "--data",
            str(imbalanced),
            "--out",
            str(tmp_path / "run"),
            "--arch",
            "smallcnn",
            "--weights",
            "none",
            "--balance",
            "gan",
            "--gan-gate-run",
            str(tmp_path / "nothing"),
            "--verbose",
            "0",
        ]
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgefer-train")]
    assert rc == 2 and "gan_gate_run" in err[0] and "no model.keras" in err[0]
    assert not (tmp_path / "run").exists()

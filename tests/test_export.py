import json
import shutil
from importlib.util import find_spec

import numpy as np
import pytest

from conftest import REPO, tiny_config, write_images
from edgefer.core import card as card_mod
from edgefer.core.errors import EdgeferError
from edgefer.device.classifier import Classifier
from edgefer.export import INTEGER_MODES, MODES
from edgefer.export.cli import main
from edgefer.train import run as run_mod
from edgefer.train import train

# these tests train and export models: the slow part of the suite (pytest -m "not slow" leaves them out)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_spec("tensorflow_model_optimization") is None,
        reason="the train extra (tensorflow-model-optimization) is not installed",
    ),
]


@pytest.fixture(scope="module")
def exporter():
    from edgefer.export import exporter as module  # TensorFlow loads when a test runs, not at collection

    return module


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    data = root / "faces"
    for k, cls in enumerate(("happy", "sad", "surprise")):
        write_images(data / cls, [f"{cls}{i}" for i in range(12)], seed0=k * 50 + k)
    return train(tiny_config(root, data, epochs=2)).run_dir


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_exports_a_self_describing_model(run_dir, tmp_path, mode, exporter):
    out = tmp_path / f"m_{mode}.tflite"
    report = exporter.export(run_dir, out, mode, qat_epochs=1, invokes=20, threads=(1, 2))
    card = card_mod.read_embedded(out)  # the card round-trips inside the one file
    assert card["labels"] == ["happy", "sad", "surprise"] and card["input"]["size"] == 32
    assert card["quantization"]["mode"] == mode
    assert card["metrics"]["tflite_test"]["accuracy"] == report["runs"][mode]["accuracy"]
    saved = json.loads((tmp_path / f"m_{mode}.report.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("m_")) == [
        f"m_{mode}.report.json",
        f"m_{mode}.tflite",
    ]
    assert saved["mode"] == mode and saved["size_bytes"] == out.stat().st_size
    assert set(saved["runs"][mode]["latency_ms_median"]) == {"1_thread", "2_thread"}
    if mode != "float32":
        assert "float32" in saved["runs"] and "accuracy_drop_pt" in saved
    clf = Classifier(out)
    probs = clf.predict(np.full((40, 40, 3), 128, np.uint8))
    assert set(probs) == set(card["labels"]) and sum(probs.values()) == pytest.approx(1.0, abs=0.02)
    if mode in INTEGER_MODES:
        assert clf.input["dtype"] == np.int8 and clf.output["dtype"] == np.int8
        # pixels 0..255 normalised in-graph: int8 input is exactly pixel - 128
        assert card["quantization"]["input"]["scale"] == pytest.approx(1.0, rel=1e-3)
        assert card["quantization"]["input"]["zero_point"] == -128
        assert exporter.float_tensors(out.read_bytes()) == []


def test_cli_int8_prints_the_table(run_dir, tmp_path, capsys):
    rc = main(
        [
            str(run_dir),
            "--int8",
            "--out",
            str(tmp_path / "cli.tflite"),
            "--qat-epochs",
            "1",
            "--invokes",
            "10",
            "--threads",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "int8" in out and "float32" in out and "pt accuracy lost" in out


def test_int8_without_a_qat_step_is_refused(run_dir, tmp_path, capsys):
    # tfmot sets weight ranges on the first training step; without one the model would be noise
    out = tmp_path / "none.tflite"
    rc = main([str(run_dir), "--int8", "--qat-epochs", "0", "--out", str(out)])
    assert rc == 2 and "--ptq" in capsys.readouterr().err and not out.exists()


def test_qat_starts_from_calibrated_activation_ranges(run_dir, exporter):
    run = run_mod.load(run_dir)
    model, cfg = run.model, run.config
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)).astype(np.float32)
    qat = exporter.quantization_aware(model, None, cfg, 3, 0, 1e-5, images)
    ranges = {}
    for layer in qat.layers:
        for w in layer.non_trainable_weights:
            var = w.name.split("/")[-1].split(":")[0]
            if var in ("output_min", "output_max", "pre_activation_min", "pre_activation_max"):
                ranges[(layer.name.removeprefix("quant_"), var)] = float(w.numpy().ravel()[0])
    outputs = sorted({n for n, v in ranges if v == "output_max"})
    assert outputs, "the QAT model has activation quantizers"
    expected = exporter.activation_ranges(model, [(n, "output") for n in outputs], images)
    for n in outputs:
        assert (ranges[(n, "output_min")], ranges[(n, "output_max")]) == pytest.approx(
            expected[(n, "output")], rel=1e-5
        )
        assert expected[(n, "output")] != (-6.0, 6.0)
    # without calibration images, tfmot's own start (what experiments/qat_compare.py compares against)
    untouched = exporter.quantization_aware(model, None, cfg, 3, 0, 1e-5, None)
    assert {
        float(w.numpy().ravel()[0])
        for layer in untouched.layers
        for w in layer.non_trainable_weights
        if w.name.split("/")[-1].startswith("output_m")
    } == {-6.0, 6.0}
    # the softmax input (logits) range, computed by hand
    probs = model.get_layer("probs")
    features = exporter.keras.Model(model.inputs, probs.input)(images, training=False).numpy()
    kernel, bias = probs.get_weights()
    logits = features @ kernel + bias
    assert ranges[("probs", "pre_activation_min")] == pytest.approx(min(logits.min(), 0.0), rel=1e-4, abs=1e-5)
    assert ranges[("probs", "pre_activation_max")] == pytest.approx(max(logits.max(), 0.0), rel=1e-4, abs=1e-5)


def test_flip_average_is_carried_by_the_card_and_used_on_device(run_dir, tmp_path, exporter):
    out = tmp_path / "flip.tflite"
    report = exporter.export(run_dir, out, "ptq", invokes=5, threads=(1,), flip_average=True)
    assert card_mod.read_embedded(out)["inference"] == {"flip_average": True}
    assert "single_pass" in report["runs"]["ptq"] and "single_pass" in report["runs"]["float32"]
    clf = Classifier(out)
    x = np.random.default_rng(1).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    assert clf.flip_average
    assert np.allclose(clf.run(x), (clf.run_once(x) + clf.run_once(x[:, ::-1])) / 2)
    assert np.array_equal(clf.run(x), clf.run(x[:, ::-1]))  # a face and its mirror image agree
    assert not Classifier(out, flip_average=False).flip_average
    plain = tmp_path / "plain.tflite"
    exporter.export(run_dir, plain, "ptq", invokes=5, threads=(1,), compare_float=False)
    assert not Classifier(plain).flip_average


def test_the_reported_accuracy_decides_as_the_card_does_with_its_class_prior_adjustment(tmp_path, exporter):
    """A logit bias in the card moves decisions on the device (Classifier.run); the accuracy the export
    and benchmarks/bundled_check.py report for a model must move with it, single pass too."""
    from edgefer.models import model_path

    bundled = model_path("fer2013")
    spec = Classifier(bundled).spec
    happy = spec.labels.index("happy")
    biased = tmp_path / "all_happy.tflite"
    card = card_mod.with_spec(
        card_mod.read_embedded(bundled),
        spec.replace(logit_bias=tuple(10.0 if i == happy else 0.0 for i in range(len(spec.labels)))),
    )
    biased.write_bytes(card_mod.embed(card_mod.model_bytes(bundled.read_bytes()), card))
    faces = np.random.default_rng(3).integers(0, 256, (12, *spec.shape)).astype(np.uint8)
    truth = np.array([happy] * 5 + [0] * 7)
    clf = Classifier(biased)
    assert all(np.argmax(clf.run(f)) == happy for f in faces)  # the device says happy to everything
    report, single = exporter.evaluate_tflite(biased, faces, truth)
    assert report["accuracy"] == pytest.approx(5 / 12) and single["accuracy"] == pytest.approx(5 / 12)


def test_calibrate_holds_a_given_bias_while_fitting_the_others():
    """edgefer-calibrate --bias --set-bias sad=0: the given class keeps its value and the rest are
    fitted around it (ferplus ships so: a bias on sad read a talking face looking down as sad)."""
    from edgefer.evaluate.calibrate import fit_bias

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 60)
    probs = np.full((180, 3), 0.1, np.float32)
    probs[np.arange(180), 0] = 0.8  # class 0 wins every face unless moved
    probs[y > 0, y[y > 0]] = 0.5 + 0.2 * rng.random(int((y > 0).sum()))
    free = fit_bias(probs, y)
    assert free[1] > 0 and free[2] > 0  # both rarer classes pulled up
    held = fit_bias(probs, y, held={2: 0.0})
    assert held[2] == 0.0 and held[1] > 0


def test_flip_average_decided_at_training_reaches_the_device(tmp_path, exporter):
    data = tmp_path / "faces"
    for k, cls in enumerate(("happy", "sad")):
        write_images(data / cls, [f"{cls}{i}" for i in range(10)], seed0=k * 50)
    run = train(tiny_config(tmp_path, data, flip_average=True)).run_dir
    report = exporter.export(run, tmp_path / "m.tflite", "ptq", invokes=5, threads=(1,), compare_float=False)
    assert report["flip_average"] and Classifier(tmp_path / "m.tflite").flip_average
    # the export may still decide otherwise
    assert (
        main(
            [
                str(run),
                "--ptq",
                "--no-flip-average",
                "--out",
                str(tmp_path / "one.tflite"),
                "--invokes",
                "5",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert not Classifier(tmp_path / "one.tflite").flip_average


def test_model_without_card_is_refused(run_dir, tmp_path, exporter):
    model = run_mod.load(run_dir).model
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(exporter.convert(model, "float32"))
    with pytest.raises(card_mod.BadCard, match="carries no edgefer card"):
        Classifier(bare)


def test_card_disagreeing_with_the_model_is_refused(run_dir, tmp_path, exporter):
    run = run_mod.load(run_dir)
    model, card = run.model, run.card
    wrong = dict(card, input=dict(card["input"], size=48))
    path = tmp_path / "wrong.tflite"
    path.write_bytes(card_mod.embed(exporter.convert(model, "float32"), wrong))
    with pytest.raises(card_mod.BadCard, match="disagrees with its card"):
        Classifier(path)
    broken_run = tmp_path / "run"
    shutil.copytree(run_dir, broken_run)
    (broken_run / "card.json").write_text(json.dumps(wrong))
    with pytest.raises(run_mod.RunError, match="does not belong to this model"):
        run_mod.load(broken_run)


def test_run_without_model_or_card(run_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "--out", str(tmp_path / "x.tflite")]) == 2
    assert "no model card" in capsys.readouterr().err
    no_card = tmp_path / "nocard"
    shutil.copytree(run_dir, no_card)
    (no_card / "card.json").unlink()
    assert main([str(no_card), "--out", str(tmp_path / "x.tflite")]) == 2
    err = capsys.readouterr().err
    assert "no model card" in err and len(err.strip().splitlines()) == 1


def test_bad_representative_sets(exporter):
    with pytest.raises(exporter.ExportError, match="empty"):
        exporter.representative(np.zeros((0, 32, 32, 3), np.uint8), 10)
    with pytest.raises(exporter.ExportError, match="shape"):
        exporter.representative(np.zeros((5, 32, 32), np.uint8), 10)


def test_int8_that_is_not_fully_integer_fails_loudly(run_dir, tmp_path, monkeypatch, exporter):
    real_convert = exporter.convert
    monkeypatch.setattr(exporter, "convert", lambda model, mode, rep=None: real_convert(model, "float32"))
    out = tmp_path / "float_in_disguise.tflite"
    with pytest.raises(exporter.ExportError, match="float tensor"):
        exporter.export(run_dir, out, "ptq", invokes=5)
    assert not out.exists()


def test_backbone_tfmot_cannot_quantize_falls_back_to_ptq(run_dir, tmp_path, monkeypatch, capsys, exporter):
    def unsupported(*args, **kwargs):
        raise RuntimeError("Layer custom_attention is not supported")

    monkeypatch.setattr(exporter, "quantization_aware", unsupported)
    report = exporter.export(run_dir, tmp_path / "fallback.tflite", "int8", invokes=5, threads=(1,))
    assert report["mode"] == "ptq" and report["requested_mode"] == "int8"
    assert "fell back to full-integer post-training quantization" in capsys.readouterr().out
    assert card_mod.read_embedded(tmp_path / "fallback.tflite")["quantization"]["mode"] == "ptq"


def test_device_refuses_a_float_model_unless_allowed(run_dir, tmp_path, exporter):
    from edgefer.device.pipeline import Pipeline

    face_model = REPO / "edgefer" / "models" / "blaze_face_short_range.tflite"
    if not face_model.exists():
        pytest.skip(f"needs {face_model}")
    out = tmp_path / "float.tflite"
    exporter.export(run_dir, out, "float32", invokes=5, threads=(1,))
    with pytest.raises(EdgeferError, match="not an integer model.*--allow-float"):
        Pipeline(out, face_model)
    with Pipeline(out, face_model, allow_float=True) as pipeline:
        assert not pipeline.classifier.integer


def test_an_unwritable_out_is_refused_before_any_work(run_dir, tmp_path, capsys, monkeypatch):
    from edgefer.train import run as run_module

    monkeypatch.setattr(run_module, "load", lambda *a, **k: pytest.fail("the run was opened before --out was checked"))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main([str(run_dir), "--int8", "--out", str(blocker / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file, not a folder" in err and len(err.strip().splitlines()) == 1


def test_damaged_runs_are_one_line_naming_the_file(run_dir, tmp_path, capsys):
    truncated = tmp_path / "truncated"
    shutil.copytree(run_dir, truncated)
    data = (truncated / "model.keras").read_bytes()
    (truncated / "model.keras").write_bytes(data[: len(data) // 3])
    assert main([str(truncated), "--ptq", "--out", str(tmp_path / "x.tflite")]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.keras: unreadable model" in err and len(err.splitlines()) == 1
    no_config = tmp_path / "noconfig"
    shutil.copytree(run_dir, no_config)
    (no_config / "config.json").unlink()
    assert main([str(no_config), "--ptq", "--out", str(tmp_path / "x.tflite")]) == 2
    assert "config.json: missing" in capsys.readouterr().err


def test_the_model_is_written_after_its_report(run_dir, tmp_path, exporter, monkeypatch):
    """Killed while evaluating: no model under its real name, so no model without a report."""

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(exporter, "evaluate_tflite", killed)
    with pytest.raises(KeyboardInterrupt):
        exporter.export(run_dir, tmp_path / "m.tflite", "ptq", invokes=5, threads=(1,))
    assert not (tmp_path / "m.tflite").exists() and not (tmp_path / "m.report.json").exists()
    assert not list(tmp_path.glob(".m*"))  # the scratch files (unfinished model, float reference) are gone too

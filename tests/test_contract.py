"""The contract: one input spec from training to the device, imports that go one way, and the
training loader and the device Classifier giving a face the same input tensor."""

import ast
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SHARED
from edgefer.core import card as card_mod
from edgefer.core import preprocess
from edgefer.core.spec import FaceCrop, InputSpec
from edgefer.data import Split, load_pixels

PACKAGE = REPO / "edgefer"
TENSORFLOW = {"tensorflow", "tf_keras", "keras", "tensorflow_model_optimization"}


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """{edgefer module: edgefer modules it imports}, {module: outside top-level packages}, from
    every import statement, at module level or inside functions (lazy imports count too)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = (path, parts[-1] == "__init__")
    inner, outer = {m: set() for m in modules}, {m: set() for m in modules}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module
                # `from package import submodule` needs the submodule; `from package import NAME`
                # needs the package's own __init__
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for t in targets:
                if t in modules:
                    inner[name].add(t)
                elif not t.startswith("edgefer"):
                    outer[name].add(t.split(".")[0])
    return inner, outer


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_device_side_imports_neither_tensorflow_nor_training_code():
    inner, outer = import_graph()
    device = [m for m in inner if m.startswith("edgefer.device")]
    assert device
    for m in device:
        reached = reachable(inner, m) | {m}
        assert not {r for r in reached if r.split(".")[1] in ("train", "export", "gan", "data", "_tf")}, m
        assert not set().union(*(outer[r] for r in reached)) & TENSORFLOW, m


def test_imports_have_no_cycle_between_modules_or_sides():
    inner, outer = import_graph()
    for m in inner:
        assert m not in reachable(inner, m), f"{m} imports itself through a cycle"
    sides = {}
    for m, targets in inner.items():
        side = m.split(".")[1] if "." in m else "edgefer"
        sides.setdefault(side, set()).update(t.split(".")[1] for t in targets if "." in t and t.split(".")[1] != side)
    sides = {k: v - {"edgefer"} for k, v in sides.items()}
    for side in sides:
        assert side not in reachable(
            {s: sides.get(s, set()) for s in set(sides) | set().union(*sides.values())}, side
        ), side
    assert sides["core"] == set() and sides["data"] <= {"core"}
    assert sides["device"] <= {"core", "models"}
    device_outside = set().union(*(outer[m] for m in inner if m.startswith(("edgefer.device", "edgefer.core"))))
    assert "mediapipe" not in device_outside  # the device side runs BlazeFace itself, in LiteRT


def test_collecting_the_tests_does_not_import_tensorflow():
    script = (
        "import sys, pytest\n"
        "rc = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests'])\n"
        "assert rc == 0, rc\n"
        "assert 'tensorflow' not in sys.modules, 'collection imported tensorflow'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


# --- parity: the training loader and the device Classifier -------------------------------------

needs_tf = pytest.mark.skipif(
    find_spec("tensorflow") is None or find_spec("ai_edge_litert") is None,
    reason="needs the train and device extras (TensorFlow, LiteRT)",
)


@pytest.fixture(scope="module")
def int8_models(tmp_path_factory):
    """A tiny real full-integer model per channel count, exported as edgefer-export does (input
    range pinned to 0..255): {channels: bare flatbuffer}."""
    from edgefer._tf import keras
    from edgefer.export.exporter import convert, representative

    models = {}
    for channels in (1, 3):
        x = keras.Input((24, 24, channels))
        y = keras.layers.Dense(2, activation="softmax")(
            keras.layers.GlobalAveragePooling2D()(
                keras.layers.Conv2D(4, 3)(keras.layers.Rescaling(1 / 127.5, offset=-1)(x))
            )
        )
        images = np.random.default_rng(channels).integers(0, 256, (16, 24, 24, channels)).astype(np.uint8)
        models[channels] = convert(keras.Model(x, y), "ptq", representative(images, 16))
    return models


def _face_file(tmp_path) -> Path:
    """A colour face-sized image with structure in every channel (a real face where one is at hand)."""
    path = tmp_path / "face.png"
    yale = SHARED / "data" / "yale_faces" / "01_happy.png"
    rgb = np.random.default_rng(3).integers(0, 256, (70, 60, 3), dtype=np.uint8)
    if yale.exists():
        gray = preprocess.read_image(yale)[40:180, 90:230]
        rgb = np.stack([gray, np.roll(gray, 7, 0), 255 - gray], axis=-1)
    Image.fromarray(rgb).save(path)
    return path


@needs_tf
@pytest.mark.parametrize("color", preprocess.COLOR_MODES)
@pytest.mark.parametrize("equalize", preprocess.EQUALIZE)
def test_training_loader_and_device_give_a_face_the_identical_input(tmp_path, int8_models, color, equalize):
    from edgefer.device.classifier import Classifier

    spec = InputSpec(("happy", "sad"), "basic7", 24, color=color, equalize=equalize)
    model = tmp_path / "m.tflite"
    card = card_mod.make_card(spec, arch="tiny", alpha=1, weights="none", dataset="x", splits={})
    model.write_bytes(card_mod.embed(int8_models[spec.channels], card))
    face = _face_file(tmp_path)

    # training: the loader's pixels, fed to the Keras model as float (epoch_batches casts them)
    pixels, kept, _ = load_pixels(Split([str(face)], np.array([0])), spec)
    training_input = pixels[0].astype(np.float32)
    # device: the Classifier's own path from the decoded image to the int8 tensor it sets
    clf = Classifier(model)
    tensor = clf.tensor(clf.prepare(preprocess.read_image(face)))[0]
    scale, zero = clf.input["quantization"]
    assert tensor.dtype == np.int8 and (scale, zero) == (1.0, -128)
    # identical, not merely within a quantisation step: int8 input is pixel - 128 exactly
    assert np.array_equal((tensor.astype(np.float32) - zero) * scale, training_input)
    assert card_mod.spec(card_mod.read_embedded(model)) == spec  # the card round-trips into the spec


@needs_tf
def test_full_frames_are_cropped_in_training_as_on_the_device(tmp_path, int8_models):
    """A head-and-shoulders frame: training (spec framing 'frames') detects and crops the face with
    the device's detector and crop; the device pipeline on the same frame classifies the same input."""
    from edgefer.device.classifier import Classifier
    from edgefer.device.pipeline import Pipeline
    from edgefer.device.sources import Frame

    frame_file = SHARED / "data" / "yale_faces" / "02_surprised.png"
    face_model = REPO / "edgefer" / "models" / "blaze_face_short_range.tflite"
    if not (frame_file.exists() and face_model.exists()):
        pytest.skip(f"needs the Yale faces and BlazeFace under {SHARED}")
    spec = InputSpec(("happy", "sad"), "basic7", 24, crop=FaceCrop(0.1, -0.1), framing="frames")
    model = tmp_path / "m.tflite"
    model.write_bytes(
        card_mod.embed(
            int8_models[3], card_mod.make_card(spec, arch="t", alpha=1, weights="none", dataset="x", splits={})
        )
    )
    pixels, kept, skipped = load_pixels(Split([str(frame_file)], np.array([0])), spec, face_model=face_model)
    assert len(kept) == 1 and not skipped
    expected = Classifier(model).run(pixels[0])
    frame = np.repeat(preprocess.read_image(frame_file)[..., None], 3, axis=-1)
    with Pipeline(model, face_model, video=False, smoothing=0.0, allow_float=True) as pipeline:
        faces = pipeline.process(Frame(frame, 0.0, 0))
    assert len(faces) == 1
    assert [faces[0].probs[k] for k in spec.labels] == pytest.approx(expected.tolist(), abs=1e-4)


def test_a_full_frame_without_a_face_is_skipped_and_named(tmp_path):
    face_model = REPO / "edgefer" / "models" / "blaze_face_short_range.tflite"
    if not face_model.exists():
        pytest.skip(f"needs {face_model}")
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((120, 160), 90, np.uint8)).save(blank)
    spec = InputSpec(("happy", "sad"), "basic7", 24, framing="frames")
    pixels, kept, skipped = load_pixels(Split([str(blank)], np.array([0])), spec, face_model=face_model)
    assert len(kept) == 0 and "wall.png: no face found" in skipped[0][1]


def test_every_flag_of_every_command_has_help():
    import argparse

    from edgefer.device import bench, cam
    from edgefer.export import cli as export_cli
    from edgefer.train import cli as train_cli

    def parser_of(main):
        captured = {}
        original = argparse.ArgumentParser.parse_args

        def grab(self, *a, **k):
            captured["parser"] = self
            raise SystemExit(0)

        argparse.ArgumentParser.parse_args = grab
        try:
            main(["--help"])
        except SystemExit:
            pass
        finally:
            argparse.ArgumentParser.parse_args = original
        return captured["parser"]

    for main in (cam.main, bench.main, export_cli.main, train_cli.main):
        parser = parser_of(main)
        missing = [a.dest for a in parser._actions if not a.help]
        assert not missing, (parser.prog, missing)


def test_evaluation_sits_on_top_and_nothing_edits_sys_path():
    """edgefer.evaluate runs models as the device does and reads datasets; no other side imports it.
    Scripts import the package, never each other through sys.path."""
    inner, _ = import_graph()
    for m, targets in inner.items():
        if not m.startswith("edgefer.evaluate"):
            assert not {t for t in targets if t.startswith("edgefer.evaluate")}, m
    scripts = [
        p
        for folder in ("edgefer", "benchmarks", "experiments", "recipes", "tests")
        for p in (REPO / folder).rglob("*.py")
    ]
    assert not [
        p for p in scripts if "sys.path." + "insert" in p.read_text() or "sys.path." + "append" in p.read_text()
    ]


@pytest.mark.parametrize(
    "command", ["edgefer-cam", "edgefer-bench", "edgefer-export", "edgefer-train", "edgefer-calibrate"]
)
def test_help_says_each_default_once(command):
    module = {
        "edgefer-cam": "edgefer.device.cam",
        "edgefer-bench": "edgefer.device.bench",
        "edgefer-export": "edgefer.export.cli",
        "edgefer-train": "edgefer.train.cli",
        "edgefer-calibrate": "edgefer.evaluate.calibrate",
    }[command]
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "400", "PATH": ""},
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    options = [line for line in done.stdout.splitlines() if line.lstrip().startswith("--")]
    assert options and not [line for line in options if line.count("(default") > 1]
    if command == "edgefer-train":  # grouped, with examples a user can copy
        for group in ("data:", "model:", "augmentation:", "balancing:", "run:", "examples:"):
            assert f"\n{group}" in done.stdout, group
        assert "--config recipes/" in done.stdout and "--margin" in done.stdout and "0.09" in done.stdout


@needs_tf
def test_multiply_accumulates_are_counted_from_the_graph(tmp_path, int8_models):
    """A 3x3 convolution of 4 filters on 24x24x3 (22x22 outputs) and a dense layer of 2 on 4 inputs:
    22*22*4*(3*3*3) + 4*2 multiply-accumulates, as edgefer-bench reports per invoke."""
    from edgefer.device.cost import macs

    model = tmp_path / "tiny.tflite"
    model.write_bytes(int8_models[3])
    assert macs(model) == 22 * 22 * 4 * 27 + 4 * 2

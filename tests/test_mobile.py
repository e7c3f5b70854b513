"""The phone form (edgefer-export --mobile, edgefer/models/mobile/): MediaPipe Tasks loads it as it
is and reads what edgefer reads; edgefer reads it too; the shipped files are the bundled models'."""

import hashlib
import subprocess
import sys
from importlib.util import find_spec

import cv2
import numpy as np
import pytest

from conftest import FER2013, REPO, SHARED, needs_shared

pytestmark = pytest.mark.skipif(find_spec("ai_edge_litert") is None, reason="the device extra is not installed")
from edgefer.core import card as card_mod
from edgefer.core.preprocess import prepare, read_image
from edgefer.device.classifier import Classifier
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import Frame
from edgefer.models import BUNDLED, HERE, model_path

PHONE = {name: HERE / "mobile" / file for name, file in BUNDLED.items()}
FACE_MODEL = HERE / "blaze_face_short_range.tflite"
needs_mediapipe = pytest.mark.skipif(find_spec("mediapipe") is None, reason="MediaPipe (dev extra) is not installed")
needs_tf = pytest.mark.skipif(find_spec("tensorflow") is None, reason="the train extra is not installed")


def private_test_faces(count: int) -> list:
    return sorted(FER2013.glob("test/*/PrivateTest_*.jpg"))[:: 3589 // count][:count]


@pytest.mark.parametrize("name", list(BUNDLED))
def test_each_bundled_model_ships_its_phone_form_made_from_it(name):
    phone = card_mod.read_embedded(PHONE[name])  # the checksum in the card holds too
    source = card_mod.read_embedded(model_path(name))
    flatbuffer = card_mod.model_bytes(model_path(name).read_bytes())
    assert phone["quantization"]["made_from_sha256"] == hashlib.sha256(flatbuffer).hexdigest(), (
        f"rebuild it: edgefer-export {name} --mobile --out {PHONE[name].relative_to(REPO)}"
    )
    assert phone["labels"] == source["labels"] and phone["face_crop"] == source["face_crop"]
    assert phone["input"]["color"] == "rgb" and phone["inference"] == {
        "flip_average": False,
        "uncertain_below": source["inference"]["uncertain_below"],
    }
    assert "temperature" in phone["quantization"]["in_graph"] and "grey" in phone["quantization"]["in_graph"]


@needs_shared
@pytest.mark.parametrize("name", ["fer2013-balanced", "large"])
def test_edgefer_reads_the_phone_form_as_it_reads_the_int8_model(name):
    int8, phone = Classifier(model_path(name)), Classifier(PHONE[name])
    assert phone.input["dtype"] == np.uint8 and phone.output["dtype"] == np.float32
    for path in private_test_faces(30):
        face = read_image(path)
        assert np.abs(int8.run(int8.prepare(face)) - phone.run(phone.prepare(face))).max() < 1e-4, path.name


@needs_shared
def test_edgefer_cam_runs_the_phone_form_with_the_same_readings():
    frames = sorted((SHARED / "data" / "yale_faces").glob("0[1-3]_*.png"))
    readings = []
    for model in (model_path(), PHONE["fer2013-balanced"]):
        with Pipeline(model, FACE_MODEL, video=False, smoothing=0.0) as pipeline:
            readings.append(
                [
                    [f.label for f in pipeline.process(Frame(cv2.cvtColor(read_image(p), cv2.COLOR_GRAY2RGB), 0, k))]
                    for k, p in enumerate(frames)
                ]
            )
    assert readings[0] == readings[1] and sum(map(len, readings[0])) >= len(frames) - 2


def mediapipe_classifier(path):
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision

    return vision.ImageClassifier.create_from_options(
        vision.ImageClassifierOptions(base_options=tasks.BaseOptions(model_asset_path=str(path)), max_results=-1)
    )


def mp_image(rgb):
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


@needs_mediapipe
@needs_shared
@pytest.mark.parametrize("name", ["fer2013-balanced", "large"])
def test_mediapipe_image_classifier_loads_it_and_reads_what_edgefer_reads(name):
    """A face given at the model's input size: MediaPipe passes it as it is, and the top label and the
    scores are edgefer's (benchmarks/mobile_check.py: the crop as it is, MediaPipe resizing it)."""
    from mediapipe.tasks.python.metadata.metadata import MetadataDisplayer

    assert MetadataDisplayer.with_model_file(str(PHONE[name])).get_packed_associated_file_list() == [
        "labels.txt",
        card_mod.CARD_MEMBER,
    ]
    int8 = Classifier(model_path(name))
    classifier = mediapipe_classifier(PHONE[name])
    for path in private_test_faces(40):
        face = read_image(path)
        ours = int8.run(int8.prepare(face))
        result = classifier.classify(mp_image(prepare(face, int8.spec.size, "rgb"))).classifications[0]
        theirs = {c.category_name: c.score for c in result.categories}
        assert sorted(theirs) == sorted(int8.labels)
        assert max(theirs, key=theirs.get) == int8.labels[int(np.argmax(ours))], path.name
        assert max(abs(theirs[k] - v) for k, v in zip(int8.labels, ours)) < 1e-4


@needs_mediapipe
@needs_shared
def test_mediapipe_face_detector_and_the_cards_region_read_yale_frames_as_edgefer_cam():
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.components.containers.rect import Rect

    detector = vision.FaceDetector.create_from_options(
        vision.FaceDetectorOptions(base_options=tasks.BaseOptions(model_asset_path=str(FACE_MODEL)))
    )
    classifier = mediapipe_classifier(PHONE["fer2013-balanced"])
    spec = Classifier(PHONE["fer2013-balanced"]).spec
    frames = sorted((SHARED / "data" / "yale_faces").glob("*_happy.png")) + sorted(
        (SHARED / "data" / "yale_faces").glob("*_surprised.png")
    )
    same = 0
    with Pipeline(model_path(), FACE_MODEL, video=False, smoothing=0.0, uncertain=0.0) as pipeline:
        for k, path in enumerate(frames):
            rgb = cv2.cvtColor(read_image(path), cv2.COLOR_GRAY2RGB)
            ours = max(pipeline.process(Frame(rgb, 0, k)), key=lambda f: f.box[2] * f.box[3]).label
            b = max(detector.detect(mp_image(rgb)).detections, key=lambda d: d.bounding_box.width).bounding_box
            region = spec.crop.region((b.origin_x, b.origin_y, b.width, b.height), rgb.shape[1], rgb.shape[0])
            result = classifier.classify(mp_image(rgb), vision.ImageProcessingOptions(region_of_interest=Rect(*region)))
            same += result.classifications[0].categories[0].category_name == ours
    assert same >= len(frames) - 1, f"{same} of {len(frames)}"


@needs_tf
@needs_mediapipe
def test_export_mobile_rebuilds_the_shipped_file_byte_for_byte(tmp_path):
    out = tmp_path / "phone.tflite"
    run = subprocess.run(
        [sys.executable, "-m", "edgefer.export.cli", "fer2013-balanced", "--mobile", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "MediaPipe metadata and the card inside" in run.stdout
    assert out.read_bytes() == PHONE["fer2013-balanced"].read_bytes()
    again = subprocess.run(
        [sys.executable, "-m", "edgefer.export.cli", str(out), "--mobile", "--out", str(tmp_path / "twice.tflite")],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and again.stderr.strip().endswith("already the phone form")
    assert not (tmp_path / "twice.tflite").exists() and not list(tmp_path.glob(".*unfinished"))
    missing = subprocess.run(
        [sys.executable, "-m", "edgefer.export.cli", "nothing.tflite", "--mobile", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "nothing.tflite: no such file" in missing.stderr

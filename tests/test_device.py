"""The device side, driven headless on the real clip and the Yale full frames with the bundled model
and the real BlazeFace detector."""

import json
import re
import subprocess
import sys
from importlib.util import find_spec

import cv2
import numpy as np
import pytest

from conftest import REPO, SHARED

pytestmark = pytest.mark.skipif(
    find_spec("ai_edge_litert") is None and find_spec("tflite_runtime") is None,
    reason="the device extra (ai-edge-litert) is not installed",
)
from edgefer.core import card as card_mod
from edgefer.core.faces import FaceDetector, FaceModelMissing, resolve_face_model
from edgefer.core.preprocess import read_image
from edgefer.core.taxonomy import TAXONOMIES
from edgefer.device import bench, cam
from edgefer.device.classifier import Classifier
from edgefer.device.latency import Latency
from edgefer.device.pipeline import Face, Pipeline, draw
from edgefer.device.sources import Frame, SourceError, VideoSource, open_source
from edgefer.device.tracker import Tracker
from edgefer.models import model_path

CLIP = REPO / "media" / "talking_face_640x360.mp4"  # ships with the project (media/NOTICE)
FACE_MODEL = REPO / "edgefer" / "models" / "blaze_face_short_range.tflite"  # ships in the package
YALE = SHARED / "data" / "yale_faces"
needs_media = pytest.mark.skipif(
    not (CLIP.exists() and FACE_MODEL.exists()),
    reason="needs media/talking_face_640x360.mp4 and the packaged BlazeFace model (both ship in the repository)",
)
MODEL = model_path()


def cam_main(capsys, *args):
    rc = cam.main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@needs_media
def test_cam_headless_on_the_talking_face_clip(tmp_path, capsys):
    jsonl, report = tmp_path / "frames.jsonl", tmp_path / "latency.json"
    rc, out, err = cam_main(
        capsys,
        "--source",
        CLIP,
        "--headless",
        "--face-model",
        FACE_MODEL,
        "--jsonl",
        jsonl,
        "--latency-json",
        report,
        "--record",
        tmp_path / "out.mp4",
    )
    assert rc == 0, err
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 225  # 9 s at 25 fps
    with_face = [f for f in lines if f["faces"]]
    assert len(with_face) >= 0.95 * len(lines)
    face = with_face[0]["faces"][0]
    assert set(face) >= {"box", "label", "probs", "track", "uncertain"} and len(face["box"]) == 4
    assert sum(face["probs"].values()) == pytest.approx(1.0, abs=0.02)
    assert len({f["faces"][0]["track"] for f in with_face}) <= 3  # one person stays one track
    summary = json.loads(report.read_text())
    for stage in ("capture", "detect", "preprocess", "classify", "draw", "total"):
        assert {"p50_ms", "p90_ms", "p99_ms"} <= set(summary["stages"][stage])
    assert summary["fps"] > 0 and "p99 ms" in out
    assert "model fer2013_balanced_int8.tflite: 7 classes (basic7)" in out and FACE_MODEL.name in out
    recorded = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert recorded.get(cv2.CAP_PROP_FRAME_COUNT) == 225


@needs_media
def test_yale_full_frames_folder(tmp_path, capsys):
    folder = tmp_path / "yale"
    folder.mkdir()
    for p in sorted(YALE.glob("*_happy.png"))[:6] + sorted(YALE.glob("*_surprised.png"))[:6]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "zz_broken.png").write_bytes(b"\x89PNG broken")
    jsonl = tmp_path / "yale.jsonl"
    rc, out, err = cam_main(capsys, "--source", folder, "--headless", "--face-model", FACE_MODEL, "--jsonl", jsonl)
    assert rc == 0 and "zz_broken.png" in err and "zz_broken.png" not in out  # skipped, named, on stderr
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 12 and sum(bool(f["faces"]) for f in lines) >= 11


@needs_media
def test_no_face_many_faces_and_a_face_cut_by_the_border():
    face = cv2.cvtColor(read_image(YALE / "01_happy.png"), cv2.COLOR_GRAY2RGB)
    blank = np.full((360, 640, 3), 90, np.uint8)
    two = np.concatenate([face, face[:, ::-1]], axis=1)
    many = np.concatenate([two, two], axis=0)  # four people
    cut = np.full_like(face, 90)
    cut[:, :200] = face[:, 120:]  # the face runs off the left edge
    with Pipeline(MODEL, FACE_MODEL, video=False) as pipeline:
        assert pipeline.process(Frame(blank, 0.0, 0)) == []
        faces = pipeline.process(Frame(many, 0.04, 1))
        assert len(faces) == 4 and len({f.track for f in faces}) == 4
        edge = pipeline.process(Frame(cut, 0.08, 2))
        assert len(edge) == 1 and edge[0].label in pipeline.classifier.labels


def test_tracker_keeps_identities_and_smooths():
    tracker = Tracker(smoothing=0.5)
    a, b = (10, 10, 50, 50), (200, 10, 50, 50)
    first = tracker.update([a, b], [[1.0, 0.0], [0.0, 1.0]])
    second = tracker.update([(202, 12, 50, 50), (12, 11, 50, 50)], [[0.0, 1.0], [0.0, 1.0]])  # order swapped
    assert [t.id for t in second] == [first[1].id, first[0].id]
    assert second[1].probs.tolist() == pytest.approx([0.5, 0.5])  # smoothed, not flipped


def test_latency_percentiles_with_fixed_memory():
    import tracemalloc

    lat = Latency(("total",))
    for ms in range(1, 101):
        lat.add("total", ms / 1000)
    lat.frames = 100
    s = lat.summary()["stages"]["total"]
    assert s["p50_ms"] == pytest.approx(50, rel=0.02) and s["p99_ms"] == pytest.approx(99, rel=0.02)
    tracemalloc.start()
    try:
        lat.add("total", 0.002)
        before = tracemalloc.get_traced_memory()[0]
        for k in range(20000):  # a long run: what it keeps must not grow with the frames
            lat.add("total", 0.001 + k * 1e-7)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000  # bytes; keeping every sample would need 20,000 x 8 at least


def test_one_timing_loop_counts_capture_total_and_frames():
    lat = Latency()
    seen = [(frame, measured) for frame, measured in lat.frames_of(range(10), warmup=3, limit=5)]
    assert [f for f, _ in seen] == [0, 1, 2, 3, 4, 5, 6, 7]  # 3 warm-up frames, then 5 measured
    assert [m is None for _, m in seen] == [True] * 3 + [False] * 5
    summary = lat.summary()
    assert summary["frames"] == 5
    assert summary["stages"]["capture"]["count"] == summary["stages"]["total"]["count"] == 5


def test_no_camera_at_that_index(capsys):
    rc, _, err = cam_main(capsys, "--source", "9", "--headless")
    assert rc == 2 and "no camera at index 9" in err


def test_a_camera_that_disappears_mid_run_ends_cleanly_with_the_report(monkeypatch, tmp_path, capsys):
    class DyingCamera:
        def __init__(self):
            self.n = 0

        def isOpened(self):
            return True

        def read(self):
            self.n += 1
            return (True, np.zeros((48, 64, 3), np.uint8)) if self.n <= 5 else (False, None)

        def get(self, prop):
            return 0.0

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoCapture", lambda *a: DyingCamera())
    source = VideoSource("0")
    frames = list(source)
    assert len(frames) == 5  # ended, not hung, not raised
    if not FACE_MODEL.exists():
        return
    report = tmp_path / "latency.json"  # the whole command: it ends with its report, exit 0
    rc, out, err = cam_main(capsys, "--source", "0", "--headless", "--face-model", FACE_MODEL, "--latency-json", report)
    assert rc == 0 and "stopped delivering frames" in err and "p50 ms" in out
    assert json.loads(report.read_text())["frames"] == 5


def test_missing_face_model_gives_one_clear_message(tmp_path, monkeypatch):
    with pytest.raises(FaceModelMissing, match="nothere.tflite: no such face model"):
        resolve_face_model(tmp_path / "nothere.tflite")
    monkeypatch.setenv("EDGEFER_FACE_MODEL", str(tmp_path / "env.tflite"))
    with pytest.raises(FaceModelMissing, match="EDGEFER_FACE_MODEL"):
        resolve_face_model()
    monkeypatch.delenv("EDGEFER_FACE_MODEL")
    assert resolve_face_model().name == "blaze_face_short_range.tflite"  # bundled: works offline
    assert resolve_face_model(faces="far").name == "face_detection_full_range_sparse.tflite"
    with pytest.raises(FaceModelMissing, match="--faces middle: choose one of near, far"):
        resolve_face_model(faces="middle")
    monkeypatch.setattr("edgefer.core.faces.MODELS_DIR", tmp_path)
    with pytest.raises(FaceModelMissing, match="bundled face model is missing.*--face-model PATH"):
        resolve_face_model()
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"x")
    with pytest.raises(FaceModelMissing, match="junk.tflite: not a usable face detector"):
        FaceDetector(junk)
    with pytest.raises(FaceModelMissing, match="not a usable face detector"):
        FaceDetector(MODEL)  # an expression model is no face detector


def test_models_without_card_or_with_a_lying_card_are_refused(tmp_path):
    bare = card_mod.model_bytes(MODEL.read_bytes())  # the flatbuffer without its appended card
    (tmp_path / "bare.tflite").write_bytes(bare)
    with pytest.raises(card_mod.BadCard, match="carries no edgefer card"):
        Classifier(tmp_path / "bare.tflite")
    card = card_mod.read_embedded(MODEL)
    lying = dict(card, input=dict(card["input"], size=64))
    (tmp_path / "lying.tflite").write_bytes(card_mod.embed(bare, lying))
    with pytest.raises(card_mod.BadCard, match="disagrees with its card"):
        Classifier(tmp_path / "lying.tflite")


@pytest.mark.parametrize(
    "name,taxonomy,labels",
    [
        ("fer2013", "basic7", TAXONOMIES["basic7"]),
        ("fer2013-balanced", "basic7", TAXONOMIES["basic7"]),
        ("ferplus", "ferplus8", TAXONOMIES["ferplus8"]),
    ],
)
def test_bundled_models_are_integer_with_their_cards(name, taxonomy, labels):
    clf = Classifier(model_path(name))
    assert clf.integer and clf.card["taxonomy"] == taxonomy and clf.labels == list(labels)
    assert clf.flip_average  # the bundled models were trained with flips and ask for averaging
    assert model_path(name).stat().st_size < 1_000_000


@needs_media
def test_flip_averaging_follows_the_card_unless_overridden(tmp_path):
    bare, card = card_mod.model_bytes(MODEL.read_bytes()), card_mod.read_embedded(MODEL)
    for flip in (True, False):
        path = tmp_path / f"flip_{flip}.tflite"
        path.write_bytes(card_mod.embed(bare, dict(card, inference={"flip_average": flip})))
        with Pipeline(path, FACE_MODEL, video=False) as pipeline:
            assert pipeline.classifier.flip_average is flip
        for override in (True, False):
            with Pipeline(path, FACE_MODEL, video=False, flip_average=override) as pipeline:
                assert pipeline.classifier.flip_average is override
    clf = Classifier(tmp_path / "flip_True.tflite")
    x = clf.prepare(np.random.default_rng(0).integers(0, 256, (120, 100, 3)).astype(np.uint8))
    assert np.allclose(clf.run(x), (clf.run_once(x) + clf.run_once(x[:, ::-1])) / 2)


def test_unknown_model_name_is_named(capsys):
    rc, _, err = cam_main(capsys, "--model", "fer9000", "--headless", "--source", "9")
    assert rc == 2 and "fer9000: no such model file" in err


@needs_media
def test_bench_json_contract(tmp_path):
    out = tmp_path / "bench.json"
    assert (
        bench.main(
            [
                "--source",
                str(CLIP),
                "--face-model",
                str(FACE_MODEL),
                "--threads",
                "1",
                "--frames",
                "40",
                "--warmup",
                "5",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["machine"]["cpu"] and isinstance(result["machine"]["simd"], list)  # figures say where
    run = result["runs"][0]
    assert run["threads"] == 1 and run["frames"] == 40 and isinstance(run["flip_average"], bool)
    assert run["faces"] == "near" and run["frames_with_faces"] == 40  # the detector measured, not a frame's faces
    assert {"detect", "preprocess", "classify", "total"} <= set(run["stages"]) and run["fps"] > 0
    # the shortcuts the figures were taken with, and the work per frame on every machine
    assert (run["detect_every"], run["classify_every"], run["alternate_sides"]) == (4, 2, True)
    assert run["mmacs_per_frame"]["total"] > 0 and run["invokes_per_frame"]["total"] > 0


def test_cam_and_bench_take_the_same_pipeline_options():
    from edgefer.device.options import chosen

    argv = ["--detect-every", "1", "--classify-every", "3", "--no-alternate-sides", "--no-flip-average"]
    got = chosen(cam.parser().parse_args(argv))
    assert got == {
        "face_model": None,
        "flip_average": False,
        "detect_every": 1,
        "classify_every": 3,
        "alternate_sides": False,
    }
    with pytest.raises(SystemExit):  # bench parses them too: past them, a missing --source is the error
        bench.main(argv)


@needs_media
def test_device_runs_without_tensorflow_or_mediapipe(tmp_path):
    """The whole camera pipeline with TensorFlow, MediaPipe and the training code made unimportable."""
    script = f"""
import sys
sys.modules["tensorflow"] = None       # import tensorflow -> ModuleNotFoundError
sys.modules["mediapipe"] = None        # nor MediaPipe: a Pi 4 cannot run its 1.x wheels
sys.modules["edgefer.train"] = None
from edgefer.device import cam
rc = cam.main(["--source", {str(CLIP)!r}, "--headless", "--max-frames", "30", "--face-model", {str(FACE_MODEL)!r}])
assert not any(m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules if sys.modules[m] is not None)
sys.exit(rc)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "faces found in 30 of 30 frames" in out.stdout


def test_open_source_rejects_a_missing_file(tmp_path):
    with pytest.raises(SourceError, match="no such video file"):
        open_source(tmp_path / "missing.mp4")


def test_picamera_absent_gives_the_install_hint():
    try:
        import picamera2  # noqa: F401

        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    with pytest.raises(SourceError, match="apt install python3-picamera2"):
        open_source("picamera")


# --- bad input a user feeds the device side: one line naming the thing and the fix ----------------


@needs_media
def test_an_image_folder_is_stills_not_a_video(tmp_path, capsys):
    """Different people in a folder: no track carried from one image to the next, no smoothing."""
    folder = tmp_path / "yale"
    folder.mkdir()
    for p in sorted(YALE.glob("0[1-6]_*.png"))[:24]:
        (folder / p.name).write_bytes(p.read_bytes())
    smoothed, unsmoothed = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert cam_main(capsys, "--source", folder, "--headless", "--face-model", FACE_MODEL, "--jsonl", smoothed)[0] == 0
    assert (
        cam_main(
            capsys,
            "--source",
            folder,
            "--headless",
            "--face-model",
            FACE_MODEL,
            "--jsonl",
            unsmoothed,
            "--smoothing",
            "0",
        )[0]
        == 0
    )
    a = [json.loads(line) for line in smoothed.read_text().splitlines()]
    b = [json.loads(line) for line in unsmoothed.read_text().splitlines()]
    assert [f["file"] for f in a] == sorted(p.name for p in folder.iterdir())
    assert [[x["label"] for x in f["faces"]] for f in a] == [[x["label"] for x in f["faces"]] for f in b]
    assert all(x["track"] is None for f in a for x in f["faces"])  # a still is no track
    one = tmp_path / "one.jsonl"  # a single image is a still too
    assert (
        cam_main(capsys, "--source", folder / "01_happy.png", "--headless", "--face-model", FACE_MODEL, "--jsonl", one)[
            0
        ]
        == 0
    )
    assert json.loads(one.read_text())["file"] == "01_happy.png"


@needs_media
def test_record_into_a_missing_folder_creates_it_and_keeps_every_frame_of_mixed_sizes(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, p in enumerate(sorted(YALE.glob("*_happy.png"))[:4]):
        image = read_image(p)
        cv2.imwrite(str(folder / f"{i}.png"), image if i % 2 else cv2.resize(image, (200, 150)))
    video = tmp_path / "new" / "dir" / "out.mp4"
    rc, out, err = cam_main(capsys, "--source", folder, "--headless", "--face-model", FACE_MODEL, "--record", video)
    assert rc == 0 and "fitted into it" in err
    assert cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT) == 4


@pytest.mark.parametrize("option", ["--record", "--jsonl", "--latency-json"])
def test_unwritable_outputs_are_refused_before_the_camera_opens(tmp_path, capsys, option):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    rc, _, err = cam_main(capsys, "--source", "9", "--headless", option, blocker / "out")
    assert rc == 2 and option in err and "is a file, not a folder" in err and len(err.strip().splitlines()) == 1
    rc, _, err = cam_main(capsys, "--source", "9", "--headless", option, tmp_path)
    assert rc == 2 and "is a folder" in err


def test_bench_json_unwritable_is_refused_before_the_run(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert bench.main(["--source", "9", "--json", str(tmp_path / "f" / "b.json")]) == 2
    err = capsys.readouterr().err
    assert "--json" in err and "is a file, not a folder" in err


def test_sources_get_advice_for_what_they_are(tmp_path):
    corrupt = tmp_path / "clip.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))
    with pytest.raises(SourceError, match="cannot decode this video.*ffmpeg"):
        list(open_source(corrupt))
    with pytest.raises(SourceError, match="cannot open this stream.*server is up"):
        open_source("rtsp://127.0.0.1:9/live")
    with pytest.raises(SourceError, match="no camera at index 9.*ls /dev/video"):
        open_source("9")
    with pytest.raises(SourceError, match="no such image or folder"):
        open_source(tmp_path / "missing.jpg")


def test_threads_below_one_names_the_flag(capsys):
    with pytest.raises(SystemExit):
        cam.main(["--threads", "0"])
    assert "argument --threads: 0 is below 1" in capsys.readouterr().err


def test_damaged_models_are_told_apart_from_models_without_a_card(tmp_path):
    raw = MODEL.read_bytes()
    (tmp_path / "cut.tflite").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(card_mod.BadCard, match="cut.tflite: this model carries no edgefer card.*cut short"):
        Classifier(tmp_path / "cut.tflite")
    (tmp_path / "photo.tflite").write_bytes(b"\xff\xd8\xff\xe0" + bytes(1000))
    with pytest.raises(card_mod.BadCard, match="photo.tflite: not a TFLite model"):
        Classifier(tmp_path / "photo.tflite")
    bare, card = card_mod.model_bytes(raw), card_mod.read_embedded(MODEL)
    (tmp_path / "mangled.tflite").write_bytes(card_mod.embed(bare[:64] + bytes(len(bare) - 64), card))
    with pytest.raises(card_mod.BadCard, match="mangled.tflite: the model inside is damaged"):
        Classifier(tmp_path / "mangled.tflite")


@needs_media
def test_startup_is_quiet_unless_verbose(tmp_path):
    script = (
        f"from edgefer.device import cam; cam.main(['--source', {str(CLIP)!r}, '--headless', "
        f"'--max-frames', '3', '--face-model', {str(FACE_MODEL)!r}])"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0 and "XNNPACK" not in done.stderr and "absl" not in done.stderr, done.stderr[-1500:]


@needs_media
def test_our_blazeface_finds_the_faces_mediapipe_finds():
    """The LiteRT BlazeFace decoding against MediaPipe's own FaceDetector on the same model: the same
    number of faces in every frame of the clip and every Yale image, boxes overlapping closely."""
    pytest.importorskip("mediapipe")
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from edgefer.device.tracker import iou

    frames = [f.rgb for f in open_source(CLIP)][::3]
    frames += [cv2.cvtColor(read_image(p), cv2.COLOR_GRAY2RGB) for p in sorted(YALE.glob("*.png"))[::3]]
    options = vision.FaceDetectorOptions(
        base_options=BaseOptions(model_asset_path=str(FACE_MODEL)), running_mode=vision.RunningMode.IMAGE
    )
    overlaps = []
    with vision.FaceDetector.create_from_options(options) as reference, FaceDetector(FACE_MODEL) as ours:
        for rgb in frames:
            theirs = sorted(
                (b.origin_x, b.origin_y, b.width, b.height)
                for b in (
                    d.bounding_box
                    for d in reference.detect(
                        mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
                    ).detections
                )
            )
            mine = sorted(f.box for f in ours.detect(rgb))
            assert len(mine) == len(theirs)
            overlaps += [iou(a, b) for a, b in zip(mine, theirs)]
    assert len(overlaps) >= len(frames) - 2 and np.median(overlaps) > 0.85 and min(overlaps) > 0.6


def far_away(rgb, k):
    """The frame shrunk k times in the corner of a black frame of the same size: the same person,
    k times farther from the camera."""
    h, w = rgb.shape[:2]
    canvas = np.zeros_like(rgb)
    canvas[: h // k, : w // k] = cv2.resize(rgb, (w // k, h // k), interpolation=cv2.INTER_AREA)
    return canvas


@needs_media
def test_far_faces_are_found_by_the_full_range_model_as_mediapipe_finds_them():
    """--faces far decodes the full-range model as MediaPipe does (same faces, close boxes), and
    finds the face the short-range model loses once the person stands three times farther away."""
    pytest.importorskip("mediapipe")
    import mediapipe as mp

    from edgefer.device.tracker import iou

    frames = [f.rgb for f in open_source(CLIP)][::9]
    overlaps = []
    with (
        mp.solutions.face_detection.FaceDetection(model_selection=1) as reference,
        FaceDetector(resolve_face_model(faces="far")) as far,
        FaceDetector(resolve_face_model()) as near,
    ):
        for rgb in frames + [far_away(rgb, 3) for rgb in frames]:
            h, w = rgb.shape[:2]
            theirs = [
                (b.xmin * w, b.ymin * h, b.width * w, b.height * h)
                for b in (d.location_data.relative_bounding_box for d in reference.process(rgb).detections or [])
            ]
            mine = [f.box for f in far.detect(rgb)]
            assert len(mine) == len(theirs) == 1
            overlaps.append(iou(mine[0], theirs[0]))
        assert not any(near.detect(far_away(rgb, 3)) for rgb in frames)  # ~35 px faces: lost by near
    assert np.median(overlaps) > 0.8 and min(overlaps) > 0.6


@needs_media
def test_a_face_below_the_bar_is_flagged_uncertain_and_drawn_so(capsys, tmp_path):
    lines = tmp_path / "faces.jsonl"
    rc, _, _ = cam_main(
        capsys, "--source", CLIP, "--headless", "--uncertain", "0.99", "--max-frames", "5", "--jsonl", lines
    )
    faces = [f for line in lines.read_text().splitlines() for f in json.loads(line)["faces"]]
    assert rc == 0 and len(faces) == 5 and all(f["uncertain"] for f in faces)
    assert all(f["label"] in f["probs"] for f in faces)  # the decision stays
    assert all(abs(sum(f["probs"].values()) - 1) < 0.01 for f in faces)  # probabilities stay
    frame = np.zeros((200, 200, 3), np.uint8)
    f = faces[0]  # a face of the JSON lines, read back
    drawn = draw(frame, [Face((50, 50, 100, 100), f["label"], f["probs"], f["score"], f["uncertain"], f["track"])])
    assert drawn[40:50, 50:150].any()  # the label is written above the box
    with pytest.raises(SystemExit):
        cam.parser().parse_args(["--uncertain", "1.5"])
    assert "not a probability" in capsys.readouterr().err


def test_an_unknown_face_range_is_refused_naming_the_choices(capsys):
    for parse in (cam.parser().parse_args, lambda argv: bench.main(["--source", "x", *argv])):
        with pytest.raises(SystemExit):
            parse(["--faces", "middle"])
        err = capsys.readouterr().err
        assert "--faces" in err and "near" in err and "far" in err


@needs_media
def test_cam_runs_with_far_faces(capsys):
    rc, out, _ = cam_main(capsys, "--source", CLIP, "--headless", "--faces", "far", "--max-frames", "10")
    assert rc == 0 and "face_detection_full_range_sparse.tflite" in out and "faces found in 10 of 10" in out


def test_picamera_that_fails_to_import_says_why(monkeypatch):
    """Installed but broken (a venv numpy shadowing the one picamera2 was built with) is not 'absent'."""
    import builtins

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "picamera2":
            raise ImportError("numpy.core.multiarray failed to import", name="numpy.core.multiarray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(SourceError, match="installed but does not import.*numpy.core.multiarray.*pip uninstall numpy"):
        open_source("picamera")


def test_the_service_template_is_filled_for_the_installing_user():
    unit = (REPO / "deploy" / "pi" / "edgefer-cam.service").read_text()
    assert "User=@USER@" in unit and "@VENV@/bin/edgefer-cam" in unit and "--reconnect" in unit
    assert "/home/pi" not in unit and "User=pi" not in unit
    setup = (REPO / "deploy" / "pi" / "setup_pi.sh").read_text()
    assert "s|@USER@|$(id -un)|g" in setup and "--no-install-recommends" in setup


@pytest.mark.parametrize("serve,picamera", [("", True), ("0.0.0.0:8000", True), ("", False)])
def test_setup_pi_writes_a_unit_that_edgefer_cam_parses(tmp_path, serve, picamera):
    """The unit setup_pi.sh writes, with and without the live view, with and without picamera2 among
    the system's packages (a USB webcam on another 64-bit Debian), run from outside the clone: its
    command line parses, its outputs are bounded, and with SERVE the token file is private to the
    user. (apt, sudo and pip are stubbed.)"""
    import os
    import shlex

    stub = tmp_path / "bin"
    stub.mkdir()
    for tool, rc in (("sudo", 0), ("apt-get", 0), ("apt-cache", 0 if picamera else 100)):
        (stub / tool).write_text(f"#!/bin/sh\nexit {rc}\n")
        (stub / tool).chmod(0o755)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for tool in ("pip", "python"):
        (venv / "bin" / tool).write_text("#!/bin/sh\nexit 0\n")
        (venv / "bin" / tool).chmod(0o755)
    script = (
        (REPO / "deploy" / "pi" / "setup_pi.sh")
        .read_text()
        .replace('python3 -m venv --system-site-packages "$VENV"', ":")
    )
    (tmp_path / "setup.sh").write_text(script)
    env = dict(
        os.environ, HOME=str(tmp_path), VENV=str(venv), SERVE=serve, REPO=str(REPO), PATH=f"{stub}:{os.environ['PATH']}"
    )
    out = subprocess.run(["bash", str(tmp_path / "setup.sh")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    unit = (tmp_path / "edgefer" / "edgefer-cam.service").read_text()
    command = next(line for line in unit.splitlines() if line.startswith("ExecStart="))[len("ExecStart=") :]
    argv = shlex.split(command)
    assert argv[0] == f"{venv}/bin/edgefer-cam" and "@" not in command
    args = cam.parser().parse_args(argv[1:])
    assert args.source == ("picamera" if picamera else "0") and args.headless and args.reconnect
    assert args.jsonl and args.rotate_mb > 0  # months of frames.jsonl do not fill the SD card
    if not picamera:
        assert "python3-picamera2 is not among this system's packages" in out.stdout
    token_file = tmp_path / "edgefer" / "token.env"
    if serve:
        assert args.serve == serve and (token_file.stat().st_mode & 0o077) == 0
        assert f"EnvironmentFile=-{tmp_path}/edgefer/token.env" in unit
        assert "?token=" + token_file.read_text().strip().split("=", 1)[1] in out.stdout
    else:
        assert args.serve is None and not token_file.exists()


def test_jsonl_and_csv_rotate_at_their_bound_and_keep_one_previous_file(tmp_path):
    from edgefer.device.outputs import Appender, FaceCsv

    log = Appender(tmp_path / "frames.jsonl", max_bytes=1000)
    for i in range(100):
        log.write(json.dumps({"frame": i, "pad": "x" * 40}) + "\n")
    log.close()
    current, previous = tmp_path / "frames.jsonl", tmp_path / "frames.jsonl.1"
    assert current.stat().st_size < 1000 and 1000 <= previous.stat().st_size < 1100
    assert not (tmp_path / "frames.jsonl.2").exists()  # one previous file: bounded at twice the size
    frames = [json.loads(line)["frame"] for line in (previous.read_text() + current.read_text()).splitlines()]
    assert frames == list(range(frames[0], 100))  # whole lines, in order, the newest kept

    table = FaceCsv(tmp_path / "faces.csv", ["happy", "sad"], max_bytes=500)
    face = Face((1, 2, 3, 4), "happy", {"happy": 0.7, "sad": 0.3}, 0.9, track=0)
    for i in range(40):
        table.write(Frame(np.zeros((2, 2, 3), np.uint8), i / 25, i, ""), [face])
    table.close()
    for path in (tmp_path / "faces.csv", tmp_path / "faces.csv.1"):  # each file starts with its header
        assert path.read_text().splitlines()[0].startswith("t,frame,file,track")
    FaceCsv(tmp_path / "faces.csv", ["happy", "sad"]).close()  # and a restart appends to it


def test_jsonl_appends_across_restarts(tmp_path, capsys):
    if not FACE_MODEL.exists():
        pytest.skip(f"needs {FACE_MODEL}")
    lines = tmp_path / "frames.jsonl"
    for _ in range(2):
        assert (
            cam_main(
                capsys, "--source", YALE / "01_happy.png", "--headless", "--face-model", FACE_MODEL, "--jsonl", lines
            )[0]
            == 0
        )
    assert len(lines.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "given,msg",
    [
        ("calm=1", r"--set-bias calm=1: fer2013_balanced_int8.tflite has no class 'calm'"),
        ("neutral=minus1", r"--set-bias neutral=minus1: 'minus1' is not a number"),
    ],
)
def test_calibrate_refuses_a_bad_given_bias_before_reading_any_face(tmp_path, given, msg):
    """edgefer-calibrate --set-bias: a class the model lacks or a value that is no number is one
    line naming it, before FER+ is read (so it holds where ../shared is absent), and nothing is written."""
    out = tmp_path / "calibrated.tflite"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgefer.evaluate.calibrate",
            "--set-bias",
            given,
            "--out",
            str(out),
            "--json",
            str(tmp_path / "c.json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and re.search(msg, done.stderr), done.stderr
    assert not out.exists() and not (tmp_path / "c.json").exists()

"""The work the device does per frame: the flip pair in one invoke, detection every few frames of a
video with the boxes carried, a steady face read every other frame, a tracked face read one side
a frame. Labels hold; stills are untouched; the machine-independent figures (invokes,
multiply-accumulates) are halved."""

import numpy as np
import pytest

from conftest import REPO, SHARED

CLIP = REPO / "media" / "talking_face_640x360.mp4"
YALE = SHARED / "data" / "yale_faces"
pytest.importorskip("ai_edge_litert", reason="needs the device extra (LiteRT)")


@pytest.fixture(scope="module")
def clip_frames():
    from edgefer.device.sources import open_source

    return list(open_source(CLIP))


def run(frames, **options):
    from edgefer.device.pipeline import Pipeline
    from edgefer.models import model_path

    with Pipeline(model_path(None), **options) as pipeline:
        labels = []
        for frame in frames:
            faces = pipeline.process(frame)
            labels.append(faces[0].label if faces else None)
        return labels, pipeline.cost()


@pytest.mark.parametrize("name", ["fer2013-balanced", "fer2013", "ferplus"])
def test_the_flip_pair_in_one_invoke_reads_exactly_as_two(name):
    from edgefer.device.classifier import Classifier
    from edgefer.models import model_path

    clf = Classifier(model_path(name))
    faces = np.random.default_rng(1).integers(0, 256, (6, *clf.spec.shape)).astype(np.uint8)
    together = np.stack([clf.run(f) for f in faces])
    assert clf.invokes == 6 and clf.images == 12  # one invoke a face, two images in it
    apart = clf.spec.predict(clf.run_batch, faces)  # the face, then its mirror image: two invokes
    assert np.array_equal(together, apart)


@pytest.mark.parametrize("name", ["fer2013-balanced", "ferplus"])
def test_one_side_a_read_is_half_of_the_pair(name):
    from edgefer.core.spec import mirror
    from edgefer.device.classifier import Classifier
    from edgefer.models import model_path

    clf = Classifier(model_path(name))
    face = np.random.default_rng(2).integers(0, 256, clf.spec.shape).astype(np.uint8)
    plain, mirrored = clf.run_once(face), clf.run_once(mirror(face))
    assert np.allclose(clf.run(face, 0), clf.spec.calibrated(plain))
    assert np.allclose(clf.run(face, 1), clf.spec.calibrated(mirrored))
    assert np.allclose(clf.run(face), clf.spec.calibrated((plain + mirrored) / 2))
    clf.invokes = clf.images = 0
    clf.run(face, 1)
    assert clf.invokes == clf.images == 1


def test_a_tracked_face_is_read_one_side_a_frame_and_a_new_one_on_both(clip_frames):
    from edgefer.device.pipeline import Pipeline
    from edgefer.models import model_path

    # uncertain=0: no face is below the bar, so every read after the first is one side
    with Pipeline(model_path(None), detect_every=1, classify_every=1, uncertain=0) as pipeline:
        sides, run_one = [], pipeline.classifier.run
        pipeline.classifier.run = lambda pixels, side=None: sides.append(side) or run_one(pixels, side)
        for frame in clip_frames[:9]:
            pipeline.process(frame)
    assert sides == [None, 1, 0, 1, 0, 1, 0, 1, 0]  # both at first, then mirror image, face, ...
    assert pipeline.classifier.images == 2 + 8 and pipeline.classifier.invokes == 9


def test_the_default_video_pipeline_keeps_the_labels_at_under_half_the_work(clip_frames):
    from edgefer.device.cost import macs
    from edgefer.models import HERE, model_path

    everything, full = run(clip_frames, detect_every=1, classify_every=1, alternate_sides=False)
    default, cost = run(clip_frames)
    assert sum(label is not None for label in default) == len(clip_frames) == 225
    same = np.mean([a == b for a, b in zip(default, everything)])
    assert same >= 0.98, same
    # the pipeline before these shortcuts: BlazeFace and two classifier invokes (face, mirror) a frame
    before = macs(HERE / "blaze_face_short_range.tflite") + 2 * macs(model_path(None))
    assert full["mmacs_per_frame"]["total"] == pytest.approx(before / 1e6, abs=0.01)
    assert cost["mmacs_per_frame"]["total"] <= before / 2e6
    assert cost["invokes_per_frame"]["total"] <= 3 / 2 and full["invokes_per_frame"]["total"] == 2


def test_stills_are_read_whole_whatever_the_video_shortcuts_say():
    from edgefer.device.sources import open_source

    if not YALE.is_dir():
        pytest.skip(f"needs the Yale faces under {SHARED}")
    frames = list(open_source(YALE))[:24]
    plain, plain_cost = run(frames, video=False, detect_every=1, classify_every=1)
    shortcuts, cost = run(frames, video=False, detect_every=8, classify_every=4, alternate_sides=True)
    assert shortcuts == plain and cost["invokes_per_frame"]["detect"] == 1
    assert cost["mmacs_per_frame"] == plain_cost["mmacs_per_frame"]  # both sides of every face, as before


def test_a_face_that_nears_the_edge_is_detected_again_at_once(clip_frames):
    """The clip slid sideways a few pixels a frame until the face reaches the border: with detection
    every 8 frames the carried box would hang in the air; the pipeline detects at the edge instead."""
    from edgefer.device.sources import Frame

    slid = []
    for i, frame in enumerate(clip_frames[:60]):
        shift = 6 * i
        rgb = np.zeros_like(frame.rgb)
        rgb[:, shift:] = frame.rgb[:, : rgb.shape[1] - shift]
        slid.append(Frame(rgb, frame.t, frame.index))
    _, steady = run(clip_frames[:60], detect_every=8, classify_every=1)
    labels, sliding = run(slid, detect_every=8, classify_every=1)
    assert sliding["invokes_per_frame"]["detect"] > 1.5 * steady["invokes_per_frame"]["detect"]
    assert labels[-1] is None  # gone past the border: found gone, not carried

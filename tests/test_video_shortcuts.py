"""The work the device does per frame: the flip pair in one invoke, detection every few frames of a
video with the boxes carried, a steady face read every other frame. Labels hold; stills are
untouched; the machine-independent figures (invokes, multiply-accumulates) are halved."""

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
            labels.append(faces[0]["label"] if faces else None)
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


def test_the_default_video_pipeline_keeps_the_labels_at_under_half_the_work(clip_frames):
    from edgefer.device.cost import macs
    from edgefer.models import HERE, model_path

    everything, full = run(clip_frames, detect_every=1, classify_every=1)
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
    plain, _ = run(frames, video=False, detect_every=1, classify_every=1)
    shortcuts, cost = run(frames, video=False, detect_every=8, classify_every=4)
    assert shortcuts == plain and cost["invokes_per_frame"]["detect"] == 1


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

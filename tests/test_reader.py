"""The device side from Python (`edgefer.ExpressionReader`), on the clip that ships with the project."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO

CLIP = REPO / "media" / "talking_face_640x360.mp4"
litert = pytest.importorskip("ai_edge_litert", reason="needs the device extra (LiteRT)")


@pytest.fixture(scope="module")
def reader():
    import edgefer

    with edgefer.ExpressionReader() as reader:  # the bundled default and face detector
        yield reader


@pytest.fixture(scope="module")
def first_frame_bgr():
    cap = cv2.VideoCapture(str(CLIP))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    return bgr


def test_one_image_as_a_path_or_an_array_in_either_order_gives_the_same_faces(tmp_path, reader, first_frame_bgr):
    from edgefer import Face

    rgb = np.ascontiguousarray(first_frame_bgr[..., ::-1])
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), first_frame_bgr)
    from_rgb, from_bgr, from_path = reader.read(rgb), reader.read(first_frame_bgr, order="bgr"), reader.read(path)
    assert len(from_rgb) == 1 and isinstance(from_rgb[0], Face)
    assert from_rgb == from_bgr == from_path
    face = from_rgb[0]
    x, y, w, h = face.box
    assert 0 <= x < 640 and 0 <= y < 360 and w > 40 and h > 40
    assert face.label == max(face.probs, key=face.probs.get) and set(face.probs) == set(reader.labels)
    assert sum(face.probs.values()) == pytest.approx(1.0, abs=1e-2) and 0.5 <= face.score <= 1
    assert face.track is None  # a still is read on its own
    # the wrong order is a different picture to the model: the order matters and is stated
    assert reader.read(first_frame_bgr)[0].probs != face.probs


def test_a_stream_tracks_the_face_over_the_frames_of_a_video(reader):
    seen = list(reader.stream(CLIP, max_frames=8))
    assert [frame.index for frame, _ in seen] == list(range(8))
    assert all(len(faces) == 1 and faces[0].track == 0 for _, faces in seen)
    assert seen[0][0].rgb.shape == (360, 640, 3)


def test_what_is_not_an_image_is_one_line_naming_the_fix(reader):
    from edgefer.core.errors import EdgeferError

    with pytest.raises(EdgeferError, match=r"shape \(4,\) and dtype float64: pass uint8"):
        reader.read(np.zeros(4))
    with pytest.raises(EdgeferError, match="say 'rgb' or 'bgr'"):
        reader.read(np.zeros((8, 8, 3), np.uint8), order="bgra")


def test_no_display_is_said_once_and_the_run_goes_on_headless(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    run = subprocess.run(
        [sys.executable, "-m", "edgefer.device.cam", "--source", str(CLIP), "--max-frames", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("no window: no display") == 1 and "no window" not in run.stdout, run.stderr
    assert "faces found in 5 of 5 frames" in run.stdout


def test_csv_cells_a_spreadsheet_would_run_are_written_inert_and_rows_reach_the_disk(tmp_path, first_frame_bgr):
    """An image named like a formula is written with a leading apostrophe (OWASP's advice against CSV
    injection); each frame's rows are on disk before the run ends (a power cut keeps them)."""
    import csv

    from edgefer.device import cam

    folder = tmp_path / "photos"
    folder.mkdir()
    name = '=HYPERLINK("http:__evil")+1.jpg'
    cv2.imwrite(str(folder / name), first_frame_bgr)
    out = tmp_path / "faces.csv"
    assert cam.main(["--source", str(folder), "--headless", "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["file"] for r in rows] == ["'" + name]

    from edgefer.device.outputs import FaceCsv
    from edgefer.device.pipeline import Face
    from edgefer.device.sources import Frame

    table = FaceCsv(tmp_path / "live.csv", ["happy", "sad"])
    face = Face((1, 2, 3, 4), "happy", {"happy": 0.7, "sad": 0.3}, 0.9, track=0)
    table.write(Frame(np.zeros((2, 2, 3), np.uint8), 0.04, 1, ""), [face])
    assert (tmp_path / "live.csv").read_text().count("\n") == 2  # header and the row, not yet closed
    table.close()


def test_a_csv_that_is_not_utf8_text_is_one_line(tmp_path, capsys):
    from edgefer.device import cam

    out = tmp_path / "faces.csv"
    out.write_bytes(b"\xff\xfe\x00binary\x00")
    assert cam.main(["--source", str(CLIP), "--headless", "--max-frames", "2", "--csv", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a CSV file edgefer wrote" in err[0] and "--csv a new file" in err[0]
    assert out.read_bytes() == b"\xff\xfe\x00binary\x00"


def test_the_reader_takes_every_pipeline_option_the_camera_takes():
    """ExpressionReader's keywords cover edgefer-cam's pipeline options (tests the two stay in step)."""
    import inspect

    from edgefer import ExpressionReader
    from edgefer.device import cam

    keywords = set(inspect.signature(ExpressionReader).parameters)
    pipeline_flags = {
        "model",
        "face_model",
        "faces",
        "threads",
        "min_score",
        "smoothing",
        "flip_average",
        "uncertain",
        "pairs",
        "detect_every",
        "classify_every",
        "alternate_sides",
        "allow_float",
    }
    flags = {a.dest for a in cam.parser()._actions}
    assert pipeline_flags <= flags and pipeline_flags <= keywords
    frames = list(ExpressionReader(detect_every=1, classify_every=1, alternate_sides=False).stream(CLIP, max_frames=3))
    assert len(frames) == 3 and all(f.track == 0 for _, faces in frames for f in faces)

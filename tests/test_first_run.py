"""What a newcomer meets in the first five minutes: the first run says what each face shows, every
documented step works or says why in one line, and the outputs agree with each other."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from edgefer.core.preprocess import BadImage, read_image
from edgefer.device import bench, cam

CLIP = REPO / "media" / "talking_face_640x360.mp4"
YALE_LIKE = REPO / "docs" / "live_view.png"  # any image the package ships; faces come from the clip's frames


def run_cam(capsys, *args):
    rc = cam.main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture
def photos(tmp_path):
    """Three stills: two frames of the clip (a face each), one grey image (no face), one broken file."""
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    cap = cv2.VideoCapture(str(CLIP))
    for name in ("a_first.png", "c_second.png"):
        ok, bgr = cap.read()
        assert ok
        Image.fromarray(bgr[..., ::-1]).save(folder / name)
        for _ in range(50):
            cap.read()
    cap.release()
    Image.fromarray(np.full((120, 160), 128, np.uint8)).save(folder / "d_blank.png")
    (folder / "b_broken.jpg").write_bytes(b"not an image")
    return folder


def test_a_folder_of_images_prints_each_images_faces_and_the_csv_says_what_the_screen_says(tmp_path, capsys, photos):
    table = tmp_path / "faces.csv"
    rc, out, err = run_cam(capsys, "--source", photos, "--headless", "--csv", table, "--uncertain", "0.99")
    assert rc == 0, err
    lines = out.splitlines()
    first = next(line for line in lines if line.startswith("a_first.png: "))
    assert "uncertain (" in first and " at (" in first  # a reading below the bar, its box
    assert "d_blank.png: no face found" in lines
    assert "b_broken.jpg" in err and "b_broken.jpg" not in out  # a skipped file goes to stderr
    assert lines.index(first) < next(i for i, line in enumerate(lines) if line.startswith("stage"))  # before latency
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert [r["file"] for r in rows] == ["a_first.png", "c_second.png"]
    assert [r["frame"] for r in rows] == ["0", "2"]  # the image's place in name order, the skipped one counted
    assert all(r["t"] == "" and r["track"] == "" and r["uncertain"] == "1" for r in rows)  # stills: no time, no track


def test_a_video_run_ends_with_each_tracked_faces_expressions(tmp_path, capsys):
    jsonl = tmp_path / "f.jsonl"
    rc, out, err = run_cam(capsys, "--source", CLIP, "--headless", "--jsonl", jsonl, "--csv", tmp_path / "f.csv")
    assert rc == 0, err
    lines = out.splitlines()
    head = lines.index("expressions over the run (each face: the share of its frames each label led):")
    face = lines[head + 1]
    assert face.startswith("  face 0, 0.0-9.0 s (225 frames): ") and "%" in face, face
    assert head < next(i for i, line in enumerate(lines) if line.startswith("stage"))
    frames = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows = list(csv.DictReader((tmp_path / "f.csv").open(encoding="utf-8")))
    # the same face is the same track in the JSON lines and the CSV, and in Python (tests/test_reader.py)
    assert {f["track"] for fr in frames for f in fr["faces"]} == {int(r["track"]) for r in rows} == {0}
    assert len(rows) == sum(len(fr["faces"]) for fr in frames) and "uncertain" in rows[0]


def test_a_run_folder_as_model_says_export_it_first(tmp_path, capsys):
    run = tmp_path / "runs" / "mine"
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"")
    rc, _, err = run_cam(capsys, "--model", run, "--source", CLIP)
    assert rc == 2 and len(err.splitlines()) == 1
    assert "a training run, not a model file; export it first (edgefer-export" in err


def test_a_missing_image_a_fifo_and_a_huge_image_are_one_line_each(tmp_path, capsys, monkeypatch):
    with pytest.raises(BadImage, match="nope.jpg: no such file$"):
        read_image(tmp_path / "nope.jpg")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(BadImage, match="not a regular file"):
        read_image(fifo)  # would block forever if opened
    rc, _, err = run_cam(capsys, "--source", fifo, "--headless")
    assert rc == 2 and "not a regular file" in err and "Traceback" not in err
    assert err.splitlines()[-1].endswith("pipe.jpg: could not read its one image (see above)")
    from edgefer.core import preprocess

    monkeypatch.setattr(preprocess, "MAX_PIXELS", 100 * 100)
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((101, 100), np.uint8)).save(big)
    with pytest.raises(BadImage, match=r"100x101 pixels is over the 0.01-megapixel bound"):
        read_image(big)


def test_serve_without_a_display_says_nothing_about_a_window(capsys, monkeypatch):
    from edgefer.device.outputs import open_window

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert open_window(serving=True) is None and capsys.readouterr().err == ""
    assert open_window() is None and "no window: no display" in capsys.readouterr().err


def test_bench_says_how_many_frames_it_measured_and_that_the_clip_loops(capsys):
    assert bench.main(["--source", str(CLIP), "--frames", "240", "--warmup", "5", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "measured 240 frames after 5 warm-up (a short source is looped)" in out and "mean" in out


@pytest.mark.parametrize("command", ["edgefer.train.cli", "edgefer.export.cli"])
def test_train_and_export_without_the_train_extra_say_how_to_install_it(tmp_path, command):
    """After the device-only install both commands exist; without TensorFlow each says what to install."""
    (tmp_path / "data").mkdir()
    args = (
        ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "r")]
        if "train" in command
        else [str(tmp_path), "--out", str(tmp_path / "m.tflite")]
    )
    code = f"import sys; sys.modules['tensorflow'] = None; from {command} import main; sys.exit(main({args!r}))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    err = run.stderr.strip()
    assert run.returncode == 2 and len(err.splitlines()) == 1, err
    assert (
        "need the train extra (tensorflow is not installed): pip install -e '.[train,device]' -c constraints.txt" in err
    )


def test_calibrate_without_the_ferplus_votes_says_where_to_point_it(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgefer.evaluate.calibrate",
            "--votes",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "c.tflite"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "no FER+ votes (fer2013new.csv) here" in run.stderr and "--images" in run.stderr


def test_the_large_model_runs_by_name_and_carries_its_recipe(capsys):
    from edgefer.core import card as card_mod
    from edgefer.models import model_path

    card = card_mod.read_embedded(model_path("large"))
    assert card["backbone"]["arch"] == "efficientnet-lite0" and card["quantization"]["mode"] == "int8"
    assert card["inference"]["temperature"] != 1.0  # calibrated as it was copied into the package
    rc, out, err = run_cam(capsys, "--model", "large", "--source", CLIP, "--headless", "--max-frames", "20")
    assert rc == 0 and "model large_int8.tflite: 7 classes (basic7), 64 px gray3" in out, err

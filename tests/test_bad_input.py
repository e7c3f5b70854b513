"""Bad input a careful user or an attacker gives the device side: each is one line naming the file
and the fix, on stderr, and nothing already written is lost."""

import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import REPO

CLIP = REPO / "media" / "talking_face_640x360.mp4"
pytest.importorskip("ai_edge_litert", reason="needs the device extra (LiteRT)")


def cam(*args, cwd=REPO, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "edgefer.device.cam", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_decompression_bomb_is_one_line_as_a_source_and_skipped_in_training(tmp_path, monkeypatch):
    """An image past Pillow's pixel guard (a 14000x14000 PNG at the default; a small one here, with
    the guard lowered): the camera says so in one line; training skips it and names it."""
    from edgefer.core import preprocess
    from edgefer.core.spec import InputSpec
    from edgefer.data import Split, load_pixels
    from edgefer.device import cam as cam_mod

    bomb = tmp_path / "bomb.png"
    Image.new("L", (300, 300)).save(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(preprocess.BadImage, match=r"bomb.png: too large to decode safely .*scale it down"):
        preprocess.read_image(bomb)
    spec = InputSpec(("happy", "sad"), "basic7", 24)
    pixels, kept, skipped = load_pixels(Split([str(bomb)], np.array([0])), spec)
    assert len(kept) == 0 and "too large to decode safely" in skipped[0][1]
    assert cam_mod.main(["--source", str(bomb), "--headless"]) == 2  # said, and a run with nothing read fails


def test_record_never_replaces_a_file_and_refuses_a_path_opencv_cannot_write_before_the_model_loads(tmp_path):
    keep = tmp_path / "keep.mp4"
    keep.write_text("precious\n")
    done = cam("--headless", "--source", CLIP, "--max-frames", "3", "--record", keep)
    assert done.returncode == 2 and keep.read_text() == "precious\n"
    assert done.stderr.strip().splitlines() == [
        f"edgefer-cam: error: --record {keep}: the file exists and would be replaced; pass --record a new name"
    ]
    done = cam("--headless", "--source", CLIP, "--max-frames", "3", "--record", tmp_path / "out.txt")
    assert done.returncode == 2 and done.stdout == "" and not (tmp_path / "out.txt").exists()
    lines = done.stderr.strip().splitlines()  # before the model loads: no model line, no OpenCV line
    assert len(lines) == 1 and "OpenCV writes video as .mp4" in lines[0]


@pytest.mark.parametrize("stop", ["kill", "term"])
def test_a_recording_stopped_mid_run_is_a_playable_file_or_none(tmp_path, stop):
    """Killed outright, no file appears where the video should be; stopped as systemd stops a
    service (SIGTERM), the video is finished and moved into place."""
    video = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgefer.device.cam",
            "--headless",
            "--source",
            str(CLIP),
            "--loop",
            "--realtime",
            "--record",
            str(video),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    partial = tmp_path / ".out.partial.mp4"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 10_000) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert partial.exists(), proc.stderr.read() if proc.poll() is not None else "no partial file"
    proc.send_signal(signal.SIGKILL if stop == "kill" else signal.SIGTERM)
    proc.communicate(timeout=30)
    if stop == "kill":
        assert not video.exists()
    else:
        assert proc.returncode == 0 and video.exists() and not partial.exists()
        assert cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT) > 0


def test_a_video_with_a_damaged_middle_says_how_many_frames_could_not_be_decoded(tmp_path):
    data = bytearray(CLIP.read_bytes())
    start, end = int(len(data) * 0.4), int(len(data) * 0.6)
    data[start:end] = bytes(end - start)
    damaged = tmp_path / "midcorrupt.mp4"
    damaged.write_bytes(bytes(data))
    done = cam("--headless", "--source", damaged)
    assert done.returncode == 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "of its 225 frames could not be decoded" in lines[0] and "ffmpeg" in lines[0]


def test_usage_errors_and_a_missing_camera_are_one_line_of_ours():
    done = cam("--bogus")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "edgefer-cam: error: unrecognized arguments: --bogus (edgefer-cam --help lists every option)"
    ]
    done = cam("--source", CLIP, "--headless", "--rotate-mb", "-1")  # a bound below 0 would rotate every line
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "edgefer-cam: error: argument --rotate-mb: -1.0 is below 0 (0: no bound) (edgefer-cam --help lists every option)"
    ]
    done = cam("--source", "9", "--headless")  # no OpenCV WARN/ERROR lines before ours
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("edgefer-cam: error: no camera at index 9")


@pytest.mark.parametrize("script", ["fer_compare.py", "cross_check.py"])
def test_a_comparison_with_fer_missing_says_how_to_get_it_in_one_line(script):
    """`fer` is not a dependency: the benchmarks that compare with it say how to install it aside."""
    import importlib.util

    if importlib.util.find_spec("fer") is not None:
        pytest.skip("the fer package is importable here")
    args = ["--model", "fer"] if script == "cross_check.py" else ["--frames", "5"]
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args], capture_output=True, text=True, timeout=300
    )
    lines = [line for line in done.stderr.splitlines() if "fer" in line]
    assert done.returncode == 1 and len(lines) == 1, done.stderr[-2000:]
    assert "pip install --no-deps --target /tmp/fer_pkg fer" in lines[0] and "PYTHONPATH" in lines[0]

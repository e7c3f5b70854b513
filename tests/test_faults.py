"""Full disks, clashing outputs, slow clients, odd files and out-of-range options: one line each, and
nothing already written is lost (the probe of issue 52, case by case)."""

import csv
import errno
import json
import os
import threading

import numpy as np
import pytest

from conftest import REPO, class_folder, tiny_config  # noqa: F401 (class_folder is a fixture)
from edgefer.core.errors import OutputFailed
from edgefer.core.files import write_json
from edgefer.device import cam, outputs

CLIP = REPO / "media" / "talking_face_640x360.mp4"


def run_cam(capsys, *args):
    rc = cam.main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def disk_full_after(monkeypatch, module, budget: int):
    """os.write in `module` writes `budget` bytes in all, then fails as a full disk does (a short write first)."""
    real, left = os.write, [budget]

    def write(fd, data):
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real(fd, bytes(data[: left[0]]))
        left[0] -= n
        return n

    monkeypatch.setattr(module.os, "write", write)


@pytest.mark.parametrize("option", ["--csv", "--jsonl"])
def test_a_disk_that_fills_up_ends_the_run_in_one_line_and_leaves_no_torn_row(tmp_path, capsys, monkeypatch, option):
    out = tmp_path / ("faces.csv" if option == "--csv" else "frames.jsonl")
    disk_full_after(monkeypatch, outputs, 5000)
    rc, _, err = run_cam(capsys, "--source", CLIP, "--headless", option, out)
    assert rc == 2 and "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(f"edgefer-cam: error: {out}: the disk is full (No space left on device)")
    )
    assert "every line before this one is kept whole" in err
    text = out.read_text(encoding="utf-8")
    assert text.endswith("\n") and 0 < len(text) <= 5000
    if option == "--csv":
        rows = list(csv.reader(text.splitlines()))
        assert len({len(r) for r in rows}) == 1  # the header's width on every row: none torn
    else:
        assert all(json.loads(line) for line in text.splitlines())


def test_a_json_report_on_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    report = tmp_path / "bench.json"
    report.write_text('{"old": true}\n')
    from pathlib import Path

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OutputFailed, match=r"bench.json: the disk is full .*the file there before is unchanged"):
        write_json(report, {"new": True})
    monkeypatch.undo()
    assert report.read_text() == '{"old": true}\n' and [p.name for p in tmp_path.iterdir()] == ["bench.json"]


def test_a_recording_that_could_not_be_finished_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    video = tmp_path / "out.mp4"
    monkeypatch.setattr(outputs, "playable", lambda path: False)  # as a container cut short by a full disk
    rc, _, err = run_cam(capsys, "--source", CLIP, "--headless", "--max-frames", "5", "--record", video)
    assert rc == 2 and "the video could not be finished (is the disk full?)" in err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_two_runs_recording_to_one_new_path_the_second_is_refused(tmp_path):
    video = tmp_path / "out.mp4"
    first = outputs.Recorder(video)
    try:
        with pytest.raises(outputs.RecordError, match="another run is recording to it"):
            outputs.Recorder(video)
    finally:
        first.close()
    assert list(tmp_path.iterdir()) == []  # no frame came: nothing kept, the claim let go
    outputs.Recorder(video).close()


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--csv", "x.csv", "--jsonl", "x.csv"], "--jsonl and --csv both name x.csv; give each output its own file"),
        (["--jsonl", "x.mp4", "--record", "x.mp4"], "--record and --jsonl both name x.mp4"),
        (["--smoothing", "5"], "argument --smoothing: 5.0 is not a probability from 0 up to below 1"),
        (["--min-score", "0"], "argument --min-score: 0.0 is not a score above 0 and up to 1"),
        (["--min-score", "5"], "argument --min-score: 5.0 is not a score above 0 and up to 1"),
        (["--max-frames", "-1"], "argument --max-frames: -1 is below 0"),
        (["--threads", "100000"], "argument --threads: 100000 is above 64"),
    ],
)
def test_clashing_outputs_and_options_out_of_range_are_one_line(tmp_path, capsys, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    try:
        rc = cam.main(["--source", str(CLIP), "--headless", *args])
    except SystemExit as exc:  # argparse's own refusal
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # nothing was written


def test_the_python_api_holds_the_same_ranges_and_is_safe_from_two_threads():
    import cv2

    from edgefer import ExpressionReader
    from edgefer.device.pipeline import BadOption
    from edgefer.device.reader import BadArray

    for kwargs, name in (
        ({"smoothing": 5}, "smoothing"),
        ({"min_score": 0}, "min_score"),
        ({"threads": 100000}, "threads"),
    ):
        with pytest.raises(BadOption, match=f"^{name}="):
            ExpressionReader(**kwargs)
    reader = ExpressionReader()
    with pytest.raises(BadArray, match=r"shape \(0, 0, 3\)"):
        reader.read(np.zeros((0, 0, 3), np.uint8))
    cap = cv2.VideoCapture(str(CLIP))
    frame = cap.read()[1][..., ::-1].copy()
    cap.release()
    expected = reader.read(frame)
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(reader.read(frame))
        except Exception as exc:  # noqa: BLE001 (the test reports whatever a thread raised)
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 40 and all(r == expected for r in results)


def test_a_detector_bar_near_zero_finds_no_face_off_the_frame(capsys):
    rc, out, err = run_cam(capsys, "--source", CLIP, "--headless", "--min-score", "0.001", "--max-frames", "10")
    assert rc == 0 and "Traceback" not in err, err


@pytest.mark.slow
def test_a_run_folder_inside_the_data_and_two_runs_into_one_folder_are_refused(tmp_path, class_folder):  # noqa: F811
    from edgefer.train import train
    from edgefer.train.config import ConfigError
    from edgefer.train.trainer import RunBusy, run_lock

    with pytest.raises(ConfigError, match="is inside --data"):
        train(tiny_config(tmp_path, class_folder, out=str(class_folder / "happy" / "run")))
    assert not (class_folder / "happy" / "run").exists()
    run = tmp_path / "run"
    run.mkdir()
    with run_lock(run):  # another edgefer-train holds the folder
        with pytest.raises(RunBusy, match="another edgefer-train is writing this run"):
            train(tiny_config(tmp_path, class_folder))
    assert train(tiny_config(tmp_path, class_folder)).metrics  # free again


def test_a_fer2013_row_of_text_pixels_is_one_line(tmp_path):
    from edgefer.data import DatasetError, load_dataset

    rows = ["emotion,pixels,Usage"] + [f"{i % 2},{' '.join(['1'] * 2304)},Training" for i in range(4)]
    rows.append("0," + " ".join(["1"] * 2303 + ["abc"]) + ",Training")
    (tmp_path / "fer2013.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"'pixels' holds 'abc', not a number from 0 to 255; fix or delete the row"):
        load_dataset(tmp_path / "fer2013.csv")


def test_resuming_a_run_whose_own_files_are_damaged_or_gone_is_one_line(tmp_path):
    pytest.importorskip("tensorflow", reason="the train extra (TensorFlow) is not installed")
    from edgefer.train.checkpoints import check_resume
    from edgefer.train.config import ConfigError, TrainConfig

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    cfg = TrainConfig(data=str(tmp_path), out=str(run), resume=True)
    (run / "checkpoints" / "state.json").write_text('{"epoch": 2, "best')  # cut short
    with pytest.raises(ConfigError, match="config.json: missing, so .* cannot be resumed"):
        check_resume(cfg, run, "crops")
    (run / "config.json").write_text(json.dumps({"config": cfg.to_dict(), "fingerprint": cfg.fingerprint("crops")}))
    with pytest.raises(ConfigError, match=r"state.json: damaged .*delete .*checkpoints to start over"):
        check_resume(cfg, run, "crops")


def test_test_faces_seen_in_training_and_a_class_without_test_faces_are_warned_of():
    from edgefer.train.arrays import Arrays, split_warnings

    rng = np.random.default_rng(0)
    train = rng.integers(0, 255, (6, 4, 4, 1), dtype=np.uint8)
    test = np.concatenate([train[:2], rng.integers(0, 255, (2, 4, 4, 1), dtype=np.uint8)])
    arrays = {
        "train": Arrays(train, np.array([0, 1, 2, 0, 1, 2]), None),
        "test": Arrays(test, np.array([0, 0, 1, 1]), None),
    }
    leak, absent = split_warnings(arrays, ["happy", "sad", "angry"])
    assert leak.startswith("2 of 4 test faces are pixel-identical to training faces")
    assert absent.startswith("no test faces of angry: its F1 counts as 0")


def test_a_device_as_a_video_source_is_named_for_what_it_is(capsys):
    rc, _, err = run_cam(capsys, "--source", "/dev/zero", "--headless")
    assert rc == 2 and "/dev/zero: not a regular file (a device or FIFO)" in err and len(err.strip().splitlines()) == 1


def test_the_live_views_state_names_no_path_of_this_machine():
    from edgefer.device.latency import Latency
    from edgefer.device.pipeline import Pipeline
    from edgefer.device.serve import LiveView

    with Pipeline(REPO / "edgefer" / "models" / "fer2013_int8.tflite") as pipeline:
        state = json.dumps(LiveView(pipeline.about(), pipeline.classifier.labels, Latency()).state())
    assert str(REPO) not in state and "/models/" not in state


def test_trainings_faces_option_is_now_framing_and_old_configs_still_read(tmp_path):
    """edgefer-cam's --faces picks the near or far detector; training's crops/frames option is --framing,
    and a config file written with the old name reads as before."""
    from edgefer.train import make_config

    old = tmp_path / "old.toml"
    (tmp_path / "data").mkdir()
    old.write_text(f'[train]\ndata = "{tmp_path / "data"}"\nout = "{tmp_path / "out"}"\nfaces = "frames"\n')
    assert make_config(old).framing == "frames"


def test_a_video_whose_frames_change_size_midway_says_so_once(capsys):
    import cv2

    from edgefer.device.sources import VideoSource

    source = VideoSource(str(CLIP))
    source.cap.release()
    frames = iter([np.zeros((360, 640, 3), np.uint8)] * 3 + [np.zeros((240, 320, 3), np.uint8)] * 3)

    class Spliced:  # a capture whose decoded frames change size after the third
        def read(self):
            return next(((True, f) for f in frames), (False, None))

        def get(self, prop):
            return 6 if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

        def release(self):
            pass

    source.cap = Spliced()
    try:
        shapes = [f.rgb.shape[:2] for f in source]
    finally:
        source.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert shapes == [(360, 640)] * 3 + [(240, 320)] * 3
    assert [line for line in err if "where the video began at 640x360" in line] == [err[0]]
    assert err[0].startswith(f"{CLIP}: frame 3 is 320x240")


def test_a_video_of_two_sizes_joined_ends_where_opencv_would_read_it_garbled(tmp_path, capsys):
    """The clip at 320x180, then at 192x108, joined byte for byte (tests/data/make_joined_video.py):
    OpenCV decodes the second part at the first size, so the run ends at the join, keeping the rest."""
    joined = REPO / "tests" / "data" / "joined_sizes.ts"
    rc, out, err = run_cam(capsys, "--source", joined, "--headless", "--csv", tmp_path / "faces.csv")
    said = [line for line in err.splitlines() if "joined without re-encoding" in line]
    assert rc == 0 and len(said) == 1
    assert said[0].startswith(f"{joined}: near frame 24 the video turns 192x108 where it began at 320x180")
    assert said[0].endswith("-vf scale=320:180 out.mp4")
    with open(tmp_path / "faces.csv") as f:
        assert sorted({int(row["frame"]) for row in csv.DictReader(f)}) == list(range(24))  # none garbled
    assert "faces found in 24 of 24 frames" in out


def test_the_size_a_stream_declares_is_read_from_its_parameter_sets(tmp_path):
    import cv2

    from edgefer.device.bitstream import DeclaredSizes, declared_size

    clip = DeclaredSizes(CLIP)  # MP4: the first parameter set is in the extradata
    assert clip.codec == "h264" and clip.next() == (640, 360) and clip.first == (640, 360)
    clip.close()
    joined = DeclaredSizes(REPO / "tests" / "data" / "joined_sizes.ts")
    declared = [joined.next() for _ in range(60)]
    assert joined.first == (320, 180) and declared[24] == (192, 108) and declared[48:] == [None] * 12
    assert {size for size in declared[:24] if size} == {(320, 180)}
    sps = bytes.fromhex("6764000dacd94141fa10000003001000000303")
    assert declared_size(b"\x00\x00\x00\x01" + sps, "h264") == (320, 240)
    assert declared_size(b"\x00\x00\x01" + sps[:6], "h264") is None  # cut short: says nothing
    assert declared_size(b"\x00\x00\x01" + sps, "hevc") is None and declared_size(b"", "h264") is None
    other = tmp_path / "mjpeg.avi"  # a codec it does not read: it says nothing and reads nothing
    writer = cv2.VideoWriter(str(other), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    mjpeg = DeclaredSizes(other)
    assert mjpeg.cap is None and mjpeg.next() is None and mjpeg.first is None


def test_a_model_keras_naming_a_class_keras_does_not_know_is_one_line(tmp_path):
    """edgefer-export (and every stage that opens a run) on a model.keras whose config names an unknown class."""
    pytest.importorskip("tensorflow", reason="the train extra (TensorFlow) is not installed")
    import zipfile

    from edgefer.core.spec import InputSpec
    from edgefer.train.run import RunError, _load_model

    with zipfile.ZipFile(tmp_path / "model.keras", "w") as z:
        z.writestr("config.json", json.dumps({"module": "nowhere", "class_name": "NopeModel", "config": {}}))
        z.writestr("metadata.json", json.dumps({"keras_version": "2.19.0"}))
    with pytest.raises(RunError, match=r"model.keras: unreadable model \(.*NopeModel.*\); retrain"):
        _load_model(tmp_path / "model.keras", InputSpec(("happy", "sad"), "basic7", 32))

import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from edgefer.core import card, preprocess
from edgefer.core.files import atomic_path, write_json
from edgefer.core.metrics import classification_report, mean_recall, paired_difference
from edgefer.core.spec import BadSpec, FaceCrop, InputSpec
from edgefer.core.taxonomy import BASIC7, UnknownLabel, canonical, taxonomy_for


def test_aliases_map_to_canonical_names():
    assert canonical("Anger") == "angry"
    assert canonical("happiness") == "happy"
    assert canonical("SADNESS") == "sad"
    assert canonical("Happily Surprised") == "happily_surprised"
    with pytest.raises(UnknownLabel, match="bored"):
        canonical("bored")


def test_taxonomy_picks_smallest_holding_all_classes_in_its_order():
    assert taxonomy_for(["neutral", "happy", "angry"]) == ("basic7", ["angry", "happy", "neutral"])
    assert taxonomy_for(["contempt", "happy"]) == ("ferplus8", ["happy", "contempt"])
    with pytest.raises(UnknownLabel, match="mix"):
        taxonomy_for(["happy", "sadly_angry"])


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "I;16"])
def test_read_image_handles_real_world_modes(tmp_path, mode):
    arr = (np.arange(48 * 48).reshape(48, 48) % 256).astype(np.uint8)
    if mode == "I;16":
        im = Image.fromarray(arr.astype(np.uint16) * 257)
    else:
        im = Image.fromarray(arr, "L").convert(mode)
    path = tmp_path / "x.png"
    im.save(path)
    out = preprocess.read_image(path)
    assert out.dtype == np.uint8 and out.shape[:2] == (48, 48)
    if mode == "I;16":  # 16-bit is rescaled, not clipped to white
        assert abs(int(out.max()) - 255) <= 1 and abs(int(out[0, 1]) - 1) <= 1


def test_read_image_refuses_truncated_and_non_images(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:300])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    for bad in (truncated, text):
        with pytest.raises(preprocess.BadImage, match=bad.name):
            preprocess.read_image(bad)


@pytest.mark.parametrize("color,channels", [("gray", 1), ("gray3", 3), ("rgb", 3)])
@pytest.mark.parametrize("eq", preprocess.EQUALIZE)
def test_prepare_gives_model_pixels(color, channels, eq):
    gray = np.random.default_rng(1).integers(0, 120, (48, 48), dtype=np.uint8)
    out = preprocess.prepare(gray, 96, color, eq)
    assert out.shape == (96, 96, channels) and out.dtype == np.uint8
    if color == "gray3":
        assert (out[..., 0] == out[..., 2]).all()


def test_bihist_preserves_brightness_better_than_plain_equalisation():
    dark = np.clip(np.random.default_rng(2).normal(60, 15, (64, 64)), 0, 255).astype(np.uint8)
    bi = preprocess.equalize(dark, "bihist")
    plain = preprocess.equalize(dark, "hist")
    assert abs(bi.mean() - dark.mean()) < abs(plain.mean() - dark.mean())
    assert bi.std() > dark.std()


def test_crop_face_clamps_a_face_cut_by_the_border():
    frame = np.zeros((100, 200, 3), np.uint8)
    crop = preprocess.crop_face(frame, (180, -10, 40, 40), margin=0.2)
    assert crop.shape[0] == crop.shape[1] == 56


def test_crop_offset_moves_the_square_up_the_face():
    frame = np.tile(np.arange(200, dtype=np.uint8)[:, None], (1, 200))  # each row holds its y
    centred = preprocess.crop_face(frame, (80, 80, 40, 40), margin=0.0)
    raised = preprocess.crop_face(frame, (80, 80, 40, 40), margin=0.0, offset_y=-0.25)
    assert centred[0, 0] == 80 and raised[0, 0] == 70 and raised.shape == (40, 40)


def _spec(**changes):
    return InputSpec(labels=BASIC7, taxonomy="basic7", size=96, **changes)


def _card(**changes):
    c = card.make_card(_spec(), arch="mobilenetv2", alpha=0.35, weights="imagenet", dataset="x", splits={"train": 1})
    c.update(changes)
    return c


def test_card_round_trips_into_an_identical_spec(tmp_path):
    spec = _spec(equalize="clahe", crop=FaceCrop(0.1, -0.1, "eyes"), flip_average=True)
    write_json(tmp_path / "card.json", card.make_card(spec, arch="a", alpha=1, weights="none", dataset="x", splits={}))
    assert card.spec(card.load(tmp_path / "card.json")) == spec
    x = spec.model_input(spec.pixels(np.zeros((50, 40, 3), np.uint8)))
    assert x.shape == (96, 96, 3) and x.dtype == np.float32


def test_the_same_card_on_the_same_model_is_the_same_file_whenever_it_is_written(tmp_path, monkeypatch):
    """A recipe re-run can be checked with cmp: the embedded card carries no write time."""
    import time
    import zipfile

    made = card.make_card(_spec(), arch="a", alpha=1, weights="none", dataset="x", splits={})
    first = card.embed(b"TFL3 flatbuffer", made)
    later = time.time() + 3 * 86400
    monkeypatch.setattr(zipfile.time, "time", lambda: later)  # the clock zipfile reads for a member's date
    assert card.embed(b"TFL3 flatbuffer", made) == first
    path = tmp_path / "m.tflite"
    path.write_bytes(first)
    assert card.read_embedded(path) == dict(made, model_sha256=hashlib.sha256(b"TFL3 flatbuffer").hexdigest())
    assert card.model_bytes(first) == b"TFL3 flatbuffer"


def test_a_card_that_is_not_one_is_refused_in_one_line_before_it_costs_memory(tmp_path):
    """Nested 100,000 deep, labels twice, a member that inflates past the bound, weights flipped after
    the card was written: each a BadCard naming the file."""
    import io
    import json
    import zipfile

    model = REPO / "edgefer" / "models" / "fer2013_int8.tflite"
    flat = card.model_bytes(model.read_bytes())

    def with_member(text: bytes) -> Path:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(card.CARD_MEMBER, text)
        path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.tflite"
        path.write_bytes(flat + buffer.getvalue())
        return path

    good = card.read_embedded(model)
    cases = {
        b"[" * 100_000 + b"]" * 100_000: "nested too deep",
        json.dumps(dict(good, labels=["happy", "happy", *good["labels"][2:]])).encode(): "each once",
        b" " * (card.MAX_CARD_BYTES + 10) + b"{}": "over 1,000,000 bytes",
    }
    for text, expected in cases.items():
        with pytest.raises(card.BadCard, match=expected):
            card.read_embedded(with_member(text))
    flipped = bytearray(model.read_bytes())
    flipped[len(flat) // 2 : len(flat) // 2 + 4096] = bytes(
        b ^ 0xFF for b in flipped[len(flat) // 2 : len(flat) // 2 + 4096]
    )
    (tmp_path / "flipped.tflite").write_bytes(bytes(flipped))
    with pytest.raises(card.BadCard, match="weights are not those its card was written for"):
        card.read_embedded(tmp_path / "flipped.tflite")


def test_cards_written_before_framing_load_unchanged():
    old = {
        "card_version": 1,
        "task": "facial-expression",
        "taxonomy": "basic7",
        "labels": list(BASIC7),
        "input": {"size": 112, "color": "gray3", "range": [0, 255], "equalize": "none", "normalization": "in-model"},
        "face_crop": {"margin": 0.2, "square": True, "align": "none"},
        "inference": {"flip_average": True},
    }
    assert card.spec(old) == InputSpec(BASIC7, "basic7", 112, crop=FaceCrop(0.2), flip_average=True)


@pytest.mark.parametrize(
    "change,msg",
    [
        ({"labels": ["happy"]}, "labels"),
        ({"taxonomy": "emotions"}, "taxonomy"),
        ({"input": {"size": 96, "color": "purple", "range": [0, 255], "equalize": "none"}}, "color"),
        ({"input": {"size": 96, "color": "gray3", "range": [-1, 1], "equalize": "none"}}, "range"),
        ({"input": {"size": 96, "color": "gray3", "equalize": "none", "normalization": "imagenet"}}, "normalization"),
        ({"face_crop": {"margin": 0.2, "square": False}}, "square"),
        ({"face_crop": {"margin": 0.2, "align": "nose"}}, "align"),
        ({"face_crop": {"margin": 0.2, "framing": "portraits"}}, "framing"),
        ({"card_version": 99}, "card_version"),
        ({"inference": {"flip_average": "yes"}}, "flip_average"),
    ],
)
def test_a_card_the_code_cannot_honour_is_refused_with_what_is_wrong(change, msg):
    with pytest.raises(card.BadCard, match=msg):
        card.validate(_card(**change))


def test_a_spec_refuses_what_the_code_does_not_implement():
    with pytest.raises(BadSpec, match="equalize"):
        _spec(equalize="retinex")
    with pytest.raises(BadSpec, match="margin"):
        _spec(crop=FaceCrop(margin=3.0))


def test_an_ensemble_is_the_geometric_mean_over_the_labels_asked_for():
    from edgefer.core.spec import ensemble

    a = (["happy", "sad", "contempt"], np.array([[0.4, 0.4, 0.2]]))  # contempt drops out: 0.5 / 0.5
    b = (["sad", "happy"], np.array([[0.2, 0.8]]))  # another order
    mean = ensemble([a, b], ["happy", "sad"])
    assert mean == pytest.approx(np.array([[2.0, 1.0]]) / 3.0)  # sqrt(.5*.8) : sqrt(.5*.2) = 2 : 1
    assert ensemble([b], ["happy", "sad"]) == pytest.approx(np.array([[0.8, 0.2]]))


def test_a_logit_bias_moves_decisions_and_travels_in_the_card():
    spec = _spec(logit_bias=(0, 0, 0, 0, 0, 0, 3.0))
    assert card.spec(card.with_spec(_card(), spec)) == spec
    probs = np.array([[0.5, 0.1, 0.1, 0.1, 0.1, 0.0, 0.1]], np.float32)
    adjusted = spec.predict(lambda x: probs, np.zeros((1, 2, 2, 1), np.uint8))
    assert adjusted.argmax() == 6 and adjusted.sum() == pytest.approx(1.0)
    assert "logit_bias" not in _spec().to_card()["inference"]  # absent unless set: older cards round-trip
    with pytest.raises(card.BadCard, match="logit_bias"):
        card.validate(_card(inference={"flip_average": False, "logit_bias": [1.0, 2.0]}))


def test_a_temperature_calibrates_confidence_without_moving_the_decision():
    spec = _spec(temperature=2.0, uncertain_below=0.4)
    assert card.spec(card.with_spec(_card(), spec)) == spec  # both travel in the card
    probs = np.array([[0.6, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]], np.float32)
    softened = spec.predict(lambda x: probs, np.zeros((1, 2, 2, 1), np.uint8))
    assert softened.argmax() == 0 and softened.max() < 0.6 and softened.sum() == pytest.approx(1.0)
    # p ** (1 / T), renormalised
    expected = probs**0.5 / (probs**0.5).sum()
    assert np.allclose(softened, expected, atol=1e-5)
    assert spec.uncertain(softened[0]) and not spec.replace(uncertain_below=0.2).uncertain(softened[0])
    assert set(_spec().to_card()["inference"]) == {"flip_average"}  # absent unless set
    for bad, msg in (({"temperature": 0}, "temperature"), ({"uncertain_below": 1.5}, "uncertain_below")):
        with pytest.raises(card.BadCard, match=msg):
            card.validate(_card(inference={"flip_average": False, **bad}))


def test_flip_averaging_is_one_function_of_the_spec():
    faces = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 1), dtype=np.uint8)
    run = lambda x: x[:, 0, :2, 0].astype(np.float32)  # noqa: E731  "probabilities": the top-left pixels
    single = _spec().predict(run, faces)
    averaged = _spec(flip_average=True).predict(run, faces)
    assert np.array_equal(single, run(faces))
    assert np.allclose(averaged, (run(faces) + faces[:, 0, ::-1][:, :2, 0]) / 2)


def test_missing_card_file_is_refused(tmp_path):
    with pytest.raises(card.BadCard, match="no model card"):
        card.load(tmp_path / "card.json")


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"ok": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        write_json(tmp_path / "card.json", {"ok": 1})
    finally:
        os.umask(umask)
    assert (tmp_path / "card.json").stat().st_mode & 0o777 == 0o644


def test_classification_report_matches_hand_computation():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 1, 0]
    r = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert r["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert r["per_class"]["c"]["f1"] == 0.0
    assert r["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    po, pe = 4 / 6, (3 * 3 + 2 * 3 + 1 * 0) / 36
    assert r["cohen_kappa"] == pytest.approx((po - pe) / (1 - pe))


def test_mean_recall_weighs_each_class_the_same():
    # 8 of 9 "a" right, 0 of 1 "b": accuracy 0.8, the mean of the two recalls (8/9 + 0) / 2
    assert mean_recall(["a"] * 9 + ["b"], ["a"] * 8 + ["b", "a"]) == pytest.approx(4 / 9)


def test_paired_difference_tells_a_real_gain_from_one_these_faces_cannot_show():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 2000)
    a = np.where(rng.random(2000) < 0.6, truth, (truth + 1) % 4)
    same = paired_difference(truth, a, a.copy())
    assert same["difference"] == same["low"] == same["high"] == 0.0  # the same answers: nothing to tell
    better = a.copy()
    wrong = np.flatnonzero(a != truth)[:200]
    better[wrong] = truth[wrong]  # 200 of 2000 faces more right: +10 points
    gain = paired_difference(truth, a, better)
    assert gain["difference"] == pytest.approx(0.10) and 0 < gain["low"] < 0.10 < gain["high"] < 0.15
    assert gain["items"] == 2000
    swapped = a.copy()
    right = np.flatnonzero(a == truth)[:100]
    swapped[wrong[:100]] = truth[wrong[:100]]  # 100 faces more right, 100 more wrong
    swapped[right] = (truth[right] + 1) % 4
    tie = paired_difference(truth, a, swapped)
    assert tie["difference"] == 0.0 and tie["low"] < 0 < tie["high"]
    recall = paired_difference(truth, a, better, mean_recall)
    assert recall["low"] < recall["difference"] < recall["high"]
    with pytest.raises(ValueError, match="same items"):
        paired_difference(truth, a, a[:10])


def test_eye_alignment_levels_a_tilted_eye_line():
    frame = np.zeros((200, 200), np.uint8)
    right, left = (80, 110), (120, 90)  # eye line tilted by about -27 degrees
    for x, y in (right, left):
        frame[y - 3 : y + 4, x - 3 : x + 4] = 255
    crop = preprocess.crop_face(frame, (60, 60, 80, 80), margin=0.2, eyes=(right, left))
    assert crop.shape[0] == crop.shape[1]
    ys, xs = np.nonzero(crop > 128)
    left_half, right_half = ys[xs < crop.shape[1] / 2], ys[xs >= crop.shape[1] / 2]
    assert abs(left_half.mean() - right_half.mean()) < 3  # level after alignment


def test_recipe_script_names_the_models_it_knows():
    done = subprocess.run(
        ["bash", str(REPO / "recipes" / "make_default.sh"), "fer9000"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "unknown model 'fer9000' (fer2013, fer2013-balanced, ferplus, large, compound)" in done.stderr

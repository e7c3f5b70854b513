import csv

import numpy as np
import pytest

from conftest import FER2013, SHARED, needs_shared, write_images
from edgefer.core.spec import InputSpec
from edgefer.data import DatasetError, detect, load_dataset, load_pixels, mix_teacher
from edgefer.data.balance import balance_report, format_balance, write_balance
from edgefer.data.fer2013 import ferplus_targets


# --- folder per class ---------------------------------------------------------------------------
def test_one_folder_is_split_stratified_and_deterministically(class_folder):
    ds = load_dataset(class_folder, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert ds.taxonomy == "basic7" and ds.labels == ["angry", "happy", "sad"]  # basic-7 order, aliases mapped
    assert ds.counts() == {"train": [6, 6, 6], "val": [2, 2, 2], "test": [2, 2, 2]}
    again = load_dataset(class_folder, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert again.splits["test"].images == ds.splits["test"].images
    every = [p for s in ds.splits.values() for p in s.images]
    assert len(every) == len(set(every)) == 30


def test_train_test_folders_are_kept_and_val_cut_from_train(tmp_path):
    for split, n in (("train", 10), ("test", 4)):
        for cls in ("happy", "neutral"):
            write_images(tmp_path / split / cls, [f"{cls}{i}" for i in range(n)])
    ds = load_dataset(tmp_path, val_fraction=0.2)
    assert ds.sizes() == {"train": 16, "val": 4, "test": 8}
    assert all("/test/" in p for p in ds.splits["test"].images)


def test_fer2013_file_names_carry_the_official_split(tmp_path):
    write_images(tmp_path / "train" / "angry", ["Training_1", "Training_2"])
    write_images(tmp_path / "test" / "angry", ["PublicTest_3", "PrivateTest_4", "PrivateTest_5"])
    write_images(tmp_path / "train" / "happy", ["Training_6"])
    ds = load_dataset(tmp_path)
    assert ds.sizes() == {"train": 3, "val": 1, "test": 2}
    assert all("PrivateTest_" in p for p in ds.splits["test"].images)


@needs_shared
def test_real_fer2013_official_split():
    ds = load_dataset(FER2013)
    assert ds.sizes() == {"train": 28709, "val": 3589, "test": 3589}
    assert ds.labels == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert ds.counts()["train"][1] == 436 and ds.counts()["train"][3] == 7215  # disgust, happy
    spec = InputSpec(tuple(ds.labels), ds.taxonomy, 96)
    pixels, kept, skipped = load_pixels(ds.splits["val"].subset(range(50)), spec)
    assert pixels.shape == (50, 96, 96, 3) and not skipped


def test_empty_class_folder_is_named(class_folder):
    (class_folder / "fear").mkdir()
    with pytest.raises(DatasetError, match=r"fear: class folder holds no images"):
        load_dataset(class_folder)


def test_class_outside_the_taxonomy_is_named(class_folder):
    write_images(class_folder / "bored", ["b1"])
    with pytest.raises(DatasetError, match=r"bored.*rename the folder"):
        load_dataset(class_folder)


def test_unreadable_images_are_skipped_and_reported(class_folder):
    (class_folder / "Happy" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (class_folder / "Happy" / "notes.png").write_text("hello")
    write_images(class_folder / "Happy", ["rgba"], mode="RGBA")
    write_images(class_folder / "Happy", ["palette"], mode="P")
    ds = load_dataset(class_folder, val_fraction=0.0, test_fraction=0.0)
    split = ds.splits["train"]
    pixels, kept, skipped = load_pixels(split, InputSpec(tuple(ds.labels), ds.taxonomy, 32))
    assert len(skipped) == 2 and len(kept) == len(split) - 2
    assert {s[0].rsplit("/", 1)[1] for s in skipped} == {"broken.jpg", "notes.png"}
    assert all("unreadable image" in reason for _, reason in skipped)


# --- FER-2013 csv and FER+ ----------------------------------------------------------------------
def _fer_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        w.writerows(rows)
    return path


def _pix(v, side=4):
    return " ".join([str(v)] * side * side)


def test_fer2013_csv(tmp_path):
    path = _fer_csv(
        tmp_path / "fer2013.csv",
        [
            (3, _pix(10), "Training"),
            (0, _pix(20), "Training"),
            (6, _pix(30), "PublicTest"),
            (1, _pix(40), "PrivateTest"),
        ],
    )
    assert detect(path) == "fer2013-csv"
    ds = load_dataset(path)
    assert ds.sizes() == {"train": 2, "val": 1, "test": 1}
    assert ds.labels[ds.splits["test"].labels[0]] == "disgust"
    assert ds.splits["train"].images[0].shape == (4, 4)


@pytest.mark.parametrize(
    "row,msg",
    [
        ((9, _pix(1), "Training"), "outside 0..6"),
        ((1, "1 2 3", "Training"), "square image"),
        ((1, _pix(1), "Holdout"), "Usage"),
    ],
)
def test_fer2013_csv_bad_rows_name_the_line(tmp_path, row, msg):
    path = _fer_csv(tmp_path / "fer.csv", [(0, _pix(1), "Training"), row])
    with pytest.raises(DatasetError, match=rf"fer.csv:3: .*{msg}"):
        load_dataset(path)


def test_ferplus_majority_and_drops():
    #                neu hap sur sad ang dis fea con unk NF
    votes = np.array(
        [
            [6, 4, 0, 0, 0, 0, 0, 0, 0, 0],  # neutral
            [1, 0, 0, 0, 0, 0, 0, 0, 9, 0],  # unknown wins -> drop
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face -> drop
            [5, 5, 0, 0, 0, 0, 0, 0, 0, 0],  # tie -> drop
            [1, 1, 7, 1, 0, 0, 0, 0, 0, 0],
        ]
    )  # single votes are noise: surprise, soft = 1
    label, soft = ferplus_targets(votes)
    assert label.tolist() == [0, -1, -1, -1, 2]
    assert soft[0].tolist() == pytest.approx([0.6, 0.4, 0, 0, 0, 0, 0, 0])
    assert soft[4][2] == 1.0


def _ferplus_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "Usage",
                "Image name",
                "neutral",
                "happiness",
                "surprise",
                "sadness",
                "anger",
                "disgust",
                "fear",
                "contempt",
                "unknown",
                "NF",
            ]
        )
        w.writerows(rows)
    return path


FERPLUS_ROWS = [
    ("Training", "fer0.png", 0, 8, 0, 0, 0, 0, 0, 2, 0, 0),
    ("Training", "fer1.png", 0, 0, 0, 0, 0, 0, 0, 9, 1, 0),
    ("PublicTest", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 10),
    ("PrivateTest", "fer3.png", 10, 0, 0, 0, 0, 0, 0, 0, 0, 0),
]


def test_ferplus_by_row_on_the_fer2013_csv(tmp_path):
    votes = _ferplus_csv(tmp_path / "fer2013new.csv", FERPLUS_ROWS)
    fer = _fer_csv(
        tmp_path / "fer2013.csv",
        [(3, _pix(i), u) for i, u in enumerate(["Training", "Training", "PublicTest", "PrivateTest"])],
    )
    ds = load_dataset(votes, images=fer)
    assert ds.taxonomy == "ferplus8" and "contempt" in ds.labels
    assert ds.sizes() == {"train": 2, "val": 0, "test": 1}
    assert [ds.labels[i] for i in ds.splits["train"].labels] == ["happy", "contempt"]
    assert ds.splits["train"].soft.shape == (2, 8)


def test_ferplus_through_a_mapping_file_and_missing_images(tmp_path):
    votes = _ferplus_csv(tmp_path / "fer2013new.csv", FERPLUS_ROWS)
    images = tmp_path / "fer2013"
    write_images(images / "train" / "happy", ["Training_0.jpg", "Training_1.jpg"])
    write_images(images / "test" / "neutral", ["PrivateTest_3.jpg"])
    mapping = tmp_path / "map.csv"
    rows = [(0, "train/happy/Training_0.jpg"), (1, "train/happy/Training_1.jpg"), (3, "test/neutral/PrivateTest_3.jpg")]
    mapping.write_text("fer2013_row,fer2013_folder_path\n" + "".join(f"{r},{p}\n" for r, p in rows))
    ds = load_dataset(votes, images=images, mapping=mapping)
    assert ds.splits["test"].images[0].endswith("PrivateTest_3.jpg")
    (images / "train" / "happy" / "Training_1.jpg").unlink()
    with pytest.raises(DatasetError, match=r"map.csv names .*Training_1.jpg, which does not exist"):
        load_dataset(votes, images=images, mapping=mapping)


def test_votes_mixed_into_fer2013_labels(tmp_path):
    """Half FER-2013 label, half FER+ votes (contempt, unknown and not-a-face left out); a face
    without votes keeps its own label."""
    from edgefer.data.fer2013 import mix_votes

    #                           neu hap sur sad ang dis fea con unk NF
    votes = _ferplus_csv(
        tmp_path / "fer2013new.csv",
        [("Training", "a.png", 5, 0, 0, 3, 2, 0, 0, 0, 0, 0), ("Training", "b.png", 6, 0, 0, 4, 0, 0, 0, 0, 0, 0)],
    )
    images = tmp_path / "fer2013"
    write_images(images / "train" / "sad", ["Training_0.jpg"])
    write_images(images / "train" / "neutral", ["Training_1.jpg"])
    write_images(images / "train" / "angry", ["Training_2.jpg"])  # no votes: keeps its own label
    mapping = tmp_path / "map.csv"
    mapping.write_text("fer2013_row,fer2013_folder_path\n0,train/sad/Training_0.jpg\n1,train/neutral/Training_1.jpg\n")
    ds = mix_votes(load_dataset(images), votes, 0.5, mapping=mapping)
    train = ds.splits["train"]
    target = {i.split("/")[-1]: dict(zip(ds.labels, t)) for i, t in zip(train.images, train.soft)}
    assert target["Training_0.jpg"] == pytest.approx({"sad": 0.65, "neutral": 0.25, "angry": 0.1})
    assert target["Training_1.jpg"] == pytest.approx({"angry": 0.0, "neutral": 0.8, "sad": 0.2})
    assert target["Training_2.jpg"] == pytest.approx({"angry": 1.0, "neutral": 0.0, "sad": 0.0})
    assert "for 2 of 3 images" in ds.notes[-1]
    with pytest.raises(DatasetError, match="votes weight 2.0 must be within 0..1"):
        mix_votes(load_dataset(images), votes, 2.0, mapping=mapping)


@needs_shared
def test_real_ferplus_through_the_shared_mapping():
    ds = load_dataset(SHARED / "data" / "ferplus")
    assert ds.taxonomy == "ferplus8" and len(ds.labels) == 8
    assert ds.sizes()["train"] > 25000 and ds.sizes()["test"] > 3000
    assert all(p.startswith(str(FER2013)) and "PrivateTest_" in p for p in ds.splits["test"].images[:50])


def test_compound_names_and_the_top_two_reader():
    from edgefer.core.taxonomy import compound_name, top_two_compound

    assert compound_name("surprise", "happy") == compound_name("happy", "surprise") == "happily_surprised"
    assert compound_name("angry", "sad") == "sadly_angry" and compound_name("fear", "disgust") is None
    probs = {"neutral": 0.5, "happy": 0.3, "surprise": 0.15, "sad": 0.05}
    assert top_two_compound(probs, 0.1) == "happily_surprised"  # neutral is no part of a compound
    assert top_two_compound(probs, 0.2) is None
    assert top_two_compound({"happy": 0.5, "sad": 0.4}, 0.1) is None  # no RAF-DB class for the pair


def test_ferplus_compound_rule_split_and_dropped_classes(tmp_path):
    #         usage           name         neu hap sur sad ang dis fea con unk NF
    rows = [
        ("Training", "fer0.png", 0, 4, 4, 0, 0, 0, 0, 0, 2, 0),  # happily surprised
        ("Training", "fer1.png", 2, 3, 3, 0, 0, 0, 0, 0, 2, 0),  # happily surprised (3 + 3)
        ("Training", "fer2.png", 0, 0, 3, 0, 0, 0, 5, 0, 2, 0),  # fearfully surprised
        ("Training", "fer3.png", 0, 5, 2, 0, 0, 0, 0, 0, 3, 0),  # surprise 2 < 3 votes: none
        ("Training", "fer4.png", 0, 3, 3, 3, 0, 0, 0, 0, 1, 0),  # a third emotion ties the second: none
        ("Training", "fer5.png", 0, 4, 0, 4, 0, 0, 0, 0, 2, 0),  # happy + sad: no RAF-DB class
        ("Training", "fer6.png", 0, 0, 0, 4, 4, 0, 0, 0, 2, 0),  # sadly angry, one training image
        ("PublicTest", "fer7.png", 0, 4, 4, 0, 0, 0, 0, 0, 2, 0),  # happily surprised
        ("PrivateTest", "fer8.png", 0, 0, 4, 0, 0, 0, 4, 0, 2, 0),
    ]  # fearfully surprised
    votes = _ferplus_csv(tmp_path / "fer2013new.csv", rows)
    fer = _fer_csv(tmp_path / "fer2013.csv", [(3, _pix(i), r[0]) for i, r in enumerate(rows)])
    ds = load_dataset(votes, "ferplus-compound", images=fer, compound_min=1)
    assert ds.taxonomy == "compound11" and ds.name == "ferplus-compound"
    assert ds.labels == ["happily_surprised", "sadly_angry", "fearfully_surprised"]  # RAF-DB's order
    assert ds.counts() == {"train": [2, 1, 1], "val": [1, 0, 0], "test": [0, 0, 1]}
    with pytest.raises(DatasetError, match="fewer than 2 compound classes"):
        load_dataset(votes, "ferplus-compound", images=fer, compound_min=2)


@needs_shared
def test_real_ferplus_compound_keeps_the_official_split():
    ds = load_dataset(SHARED / "data" / "ferplus", "ferplus-compound")
    assert ds.labels[0] == "happily_surprised" and "fearfully_surprised" in ds.labels
    assert "happily_disgusted" not in ds.labels and "happily_disgusted (8)" in ds.notes[1]
    counts = ds.counts()
    assert all(n >= 40 for n in counts["train"]) and sum(counts["test"]) > 200
    assert all("PrivateTest_" in p for p in ds.splits["test"].images)


# --- RAF-DB -------------------------------------------------------------------------------------
def _rafdb(root, entries):
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("".join(f"{n} {c}\n" for n, c in entries))
    write_images(root / "Image" / "aligned", [n.replace(".jpg", "_aligned.jpg") for n, _ in entries], ext=".jpg")
    return root


def test_rafdb_basic(tmp_path):
    entries = [(f"train_{i:05d}.jpg", 1 + i % 7) for i in range(28)] + [
        (f"test_{i:04d}.jpg", 1 + i % 7) for i in range(7)
    ]
    root = _rafdb(tmp_path / "raf", entries)
    assert detect(root) == "rafdb"
    ds = load_dataset(root, val_fraction=0.25)
    assert ds.taxonomy == "basic7" and ds.labels == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert ds.sizes() == {"train": 21, "val": 7, "test": 7}
    # RAF label 1 is surprise, 4 happiness
    first_test = ds.splits["test"]
    assert ds.labels[first_test.labels[0]] == "surprise" and ds.labels[first_test.labels[3]] == "happy"


def test_rafdb_compound(tmp_path):
    entries = [(f"train_{i:04d}.jpg", 1 + i % 11) for i in range(33)] + [
        (f"test_{i:04d}.jpg", 1 + i % 11) for i in range(11)
    ]
    ds = load_dataset(_rafdb(tmp_path / "rafc", entries), val_fraction=0.34)
    assert ds.taxonomy == "compound11" and len(ds.labels) == 11
    assert ds.labels[ds.splits["test"].labels[0]] == "happily_surprised"


def test_rafdb_label_file_naming_a_missing_image(tmp_path):
    root = _rafdb(tmp_path / "raf", [("train_00001.jpg", 1), ("test_0001.jpg", 2)])
    (root / "EmoLabel" / "list_patition_label.txt").write_text(
        "train_00001.jpg 1\ntrain_00002.jpg 4\ntest_0001.jpg 2\n"
    )
    with pytest.raises(DatasetError, match=r"names train_00002.jpg, but no such image"):
        load_dataset(root)


# --- CK+ ----------------------------------------------------------------------------------------
def test_ckplus_class_folders_split_by_subject(tmp_path):
    root = tmp_path / "ck"
    for k, cls in enumerate(("anger", "contempt", "happy", "surprise")):
        names = [f"S{s:03d}_00{k}_{f:08d}" for s in range(10, 30) for f in (1, 2, 3)]
        write_images(root / cls, names)
    assert detect(root) == "ckplus"
    ds = load_dataset(root, val_fraction=0.1, test_fraction=0.2)
    assert ds.taxonomy == "ferplus8" and "contempt" in ds.labels
    subjects = {s: {p.rsplit("/", 1)[1][:4] for p in sp.images} for s, sp in ds.splits.items()}
    assert not subjects["train"] & subjects["test"] and not subjects["train"] & subjects["val"]
    assert len(subjects["test"]) == 4 and len(subjects["val"]) == 2


def test_ckplus_original_layout_uses_the_last_frames(tmp_path):
    root = tmp_path / "CK+"
    for s, code in (("S005", 3), ("S010", 5), ("S011", 2), ("S014", 7), ("S022", 1)):
        write_images(root / "cohn-kanade-images" / s / "001", [f"{s}_001_{f:08d}" for f in range(1, 9)])
        (root / "Emotion" / s / "001").mkdir(parents=True)
        (root / "Emotion" / s / "001" / f"{s}_001_00000008_emotion.txt").write_text(f"   {code}.0000000e+00\n")
    ds = load_dataset(root, val_fraction=0.2, test_fraction=0.2)
    assert sorted(ds.labels) == sorted(["angry", "contempt", "disgust", "happy", "surprise"])
    assert sum(ds.sizes().values()) == 15  # 3 apex frames x 5 sequences
    assert all(p.endswith(("6.png", "7.png", "8.png")) for s in ds.splits.values() for p in s.images)


# --- balance report -----------------------------------------------------------------------------
def test_balance_report_counts_ratio_and_png(tmp_path, class_folder):
    write_images(class_folder / "angry", [f"extra{i}" for i in range(20)])  # 30 angry vs 10 others
    ds = load_dataset(class_folder, val_fraction=0.0, test_fraction=0.0)
    report = balance_report(ds)
    assert report["counts"]["train"] == [30, 10, 10] and report["imbalance_ratio"] == 3.0
    assert "imbalance" in format_balance(report)
    write_balance(ds, tmp_path)
    assert (tmp_path / "balance.png").read_bytes()[:4] == b"\x89PNG"


def test_fer2013_names_without_all_three_usages_are_split_by_folder(tmp_path):
    """FER-2013 files copied with their Training_ names only: not all into train with an empty val."""
    root = tmp_path / "faces"
    for k, cls in enumerate(("happy", "sad")):
        write_images(root / cls, [f"Training_{k}{i:04d}" for i in range(10)], seed0=10 * k, ext=".jpg")
    ds = load_dataset(root)
    assert all(ds.sizes()[s] > 0 for s in ("train", "val", "test"))
    assert any("split by folder instead" in note for note in ds.notes)


# --- distillation targets ------------------------------------------------------------------------
def _teacher_file(path, names, labels, probs):
    np.savez(path, names=np.array(names), labels=np.array(labels), probs=np.array(probs, np.float32))
    return path


def _text_file(path, text):
    path.write_text(text)
    return path


def test_a_teacher_is_mixed_into_the_targets_by_file_name(tmp_path, class_folder):
    ds = load_dataset(class_folder, val_fraction=0.2, test_fraction=0.2, seed=3)  # angry, happy, sad
    first = ds.splits["train"].images[0]
    label = ds.splits["train"].labels[0]
    # the teacher's labels in another order, with one the student lacks (renormalised away)
    teacher = _teacher_file(
        tmp_path / "t.npz", [first.split("/")[-1]], ["sad", "contempt", "happy", "angry"], [[0.2, 0.5, 0.1, 0.2]]
    )
    mix_teacher(ds, teacher, 0.5)
    soft = ds.splits["train"].soft
    expected = 0.5 * np.eye(3)[label] + 0.5 * np.array([0.4, 0.2, 0.4])  # angry, happy, sad
    assert np.allclose(soft[0], expected, atol=1e-6)
    assert np.allclose(soft[1:], np.eye(3)[ds.splits["train"].labels[1:]])  # the teacher did not see them
    assert np.allclose(soft.sum(axis=1), 1.0) and "teacher t.npz" in ds.notes[-1]


@pytest.mark.parametrize(
    "make, msg",
    [
        (lambda d: d / "missing.npz", "no such file"),
        (lambda d: _text_file(d / "bad.npz", "not numpy"), "not a teacher file"),
        (lambda d: _teacher_file(d / "t.npz", ["x.png"], ["happy", "sad"], [[0.5, 0.5]]), "cannot say ['angry']"),
    ],
)
def test_a_bad_teacher_file_is_named_with_the_fix(tmp_path, class_folder, make, msg):
    ds = load_dataset(class_folder, val_fraction=0.2, test_fraction=0.2, seed=3)
    path = make(tmp_path)
    with pytest.raises(DatasetError, match=r"^" + str(path).replace(".", r"\.") + ".*" + msg.replace("[", r"\[")):
        mix_teacher(ds, path, 0.5)

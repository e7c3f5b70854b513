"""Geometry as a second opinion: MediaPipe's face landmarker reads 52 blendshapes (smile,
brow down, jaw open ...) from 478 landmarks; it learned faces from far more people than FER-2013.
Measured here: a small head on those 52 numbers, alone and fused with a CNN model, and its cost.

1. Features: the landmarker (`../shared/models/face_landmarker.task`, mediapipe tasks, IMAGE mode)
   on every FER-2013 image, upscaled 4x onto a gray border (48 px faces are below what its detector
   finds), cached in `--cache`. Faces it does not find keep the CNN's reading alone.
2. The head: 52 -> 64 -> classes (ReLU, dropout), trained on the training split with the default
   recipe's targets (FER-2013 label mixed with the FER+ vote distribution, `--votes-weight`), mirror
   images added by swapping each Left/Right blendshape pair, classes weighted to equal total weight.
3. Fusion: log p = (1 - w) log p_cnn + w log p_head, w chosen on the FER+ majority of PublicTest
   (where choices are made); PrivateTest reported.
4. Yale full frames (59): the CNN through the device pipeline (BlazeFace, card crop, int8), the
   landmarker on the same full frame.
5. Cost per face: the landmark model (256x256) and the blendshape model through LiteRT, 1 thread.

    python experiments/blendshapes.py --model fer2013-balanced --json runs/blendshapes.json
"""

from __future__ import annotations

import argparse
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgefer.core import preprocess
from edgefer.core.files import atomic_path, write_json
from edgefer.core.interpreter import interpreter_class
from edgefer.data import load_dataset
from edgefer.data.base import DatasetError, read_npz
from edgefer.data.fer2013 import mix_votes, read_ferplus
from edgefer.device.classifier import Classifier
from edgefer.device.pipeline import Pipeline
from edgefer.device.sources import Frame
from edgefer.evaluate.checks import SHARED, recall, yale_files, yale_truth
from edgefer.models import model_path

LANDMARKER = SHARED / "models" / "face_landmarker.task"

UPSCALE, BORDER = 4, 48  # a 48 px FER-2013 face becomes 192 px inside a 288 px gray square:
# below about 100 px the landmarker's own detector finds few faces


def landmarker(task) -> callable:
    """gray uint8 image -> its 52 blendshape scores, or None where the landmarker finds no face."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(task)),
        running_mode=vision.RunningMode.IMAGE,
        output_face_blendshapes=True,
        num_faces=1,
        min_face_detection_confidence=0.3,
        min_face_presence_confidence=0.3,
    )
    detector = vision.FaceLandmarker.create_from_options(opts)

    def read(gray: np.ndarray) -> np.ndarray | None:
        rgb = np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
        found = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)).face_blendshapes
        return np.array([c.score for c in found[0]], np.float32) if found else None

    return read


def blendshape_names() -> list[str]:
    """The landmarker's 52 blendshapes in its output order (mediapipe's enum names)."""
    from mediapipe.tasks.python.vision.face_landmarker import Blendshapes

    return [b.name for b in sorted(Blendshapes, key=lambda b: b.value)]


def mirror_columns(names) -> np.ndarray:
    """Column order of the mirror image's blendshapes: every ...LEFT swapped with its ...RIGHT."""
    names = [str(n) for n in names]
    swap = [n.replace("LEFT", "#").replace("RIGHT", "LEFT").replace("#", "RIGHT") for n in names]
    return np.array([names.index(s) for s in swap])


def read_small_face(read, gray: np.ndarray) -> np.ndarray | None:
    """The landmarker on a small face crop, upscaled onto a gray border first."""
    big = cv2.resize(gray, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    return read(cv2.copyMakeBorder(big, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_CONSTANT, value=128))


def read_blendshapes(paths: list[str], task, progress=None) -> np.ndarray:
    """(N, 52) blendshapes of face crops, NaN rows where the landmarker found no face."""
    read = landmarker(task)
    scores = np.full((len(paths), 52), np.nan, np.float32)
    for i, path in enumerate(progress(paths) if progress else paths):
        found = read_small_face(read, preprocess.read_image(path))
        if found is not None:
            scores[i] = found
    return scores


def save_blendshapes(path, paths: list[str], names: list[str], scores: np.ndarray) -> None:
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:  # np.savez adds .npz to a bare path name
        np.savez(f, paths=np.array([str(p) for p in paths]), names=np.array(names), scores=scores)


def load_blendshapes(path) -> tuple[list[str], list[str], np.ndarray]:
    """(paths, names, scores) of a blendshape file, or one clear error naming it and the fix."""
    path, writer = Path(path), "python experiments/blendshapes.py (delete the file to write it again)"
    paths, names, scores = read_npz(path, ("paths", "names", "scores"), "blendshapes", writer)
    if scores.shape != (len(paths), len(names)):
        raise DatasetError(
            f"{path}: {scores.shape[0]} rows of {scores.shape[1:]} scores for {len(paths)} paths "
            f"and {len(names)} names; write it with {writer}"
        )
    return [str(p) for p in paths], [str(n) for n in names], scores


def fer_features(paths: list[str], cache: Path) -> np.ndarray:
    """(N, 52) blendshapes of FER-2013 images, NaN where no face was found; cached by path list in
    `cache` (paths, names, scores)."""
    if cache.exists():
        saved, _, scores = load_blendshapes(cache)
        if saved == list(paths):
            return scores
    scores = read_blendshapes(
        paths, LANDMARKER, progress=lambda xs: tqdm(xs, desc="landmarker on FER-2013", mininterval=10)
    )
    save_blendshapes(cache, paths, blendshape_names(), scores)
    return scores


def train_head(x: np.ndarray, targets: np.ndarray, seed: int = 0, epochs: int = 40):
    """A 52 -> 64 -> classes MLP on blendshapes; x (N, 52) without NaN, targets (N, classes) soft."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    x = np.concatenate([x, x[:, mirror_columns(blendshape_names())]])  # a face and its mirror image
    targets = np.concatenate([targets, targets])
    mass = targets.sum(axis=0)
    weights = (targets @ (mass.sum() / (len(mass) * mass))).astype(np.float32)  # classes weigh the same
    head = tf.keras.Sequential(
        [
            tf.keras.Input((x.shape[1],)),
            tf.keras.layers.Dense(64, activation="relu"),
            tf.keras.layers.Dropout(0.2),
            tf.keras.layers.Dense(targets.shape[1], activation="softmax"),
        ]
    )
    head.compile(tf.keras.optimizers.Adam(3e-3), "categorical_crossentropy")
    head.fit(x, targets, sample_weight=weights, batch_size=256, epochs=epochs, verbose=0)
    return lambda feats: head.predict(feats, batch_size=1024, verbose=0)


def head_probs(head, feats: np.ndarray, classes: int) -> np.ndarray:
    """Head probabilities, uniform where no face was found (NaN rows)."""
    found = np.isfinite(feats[:, 0])
    out = np.full((len(feats), classes), 1.0 / classes, np.float32)
    if found.any():
        out[found] = head(feats[found])
    return out


def fuse(cnn: np.ndarray, head: np.ndarray, found: np.ndarray, w: float) -> np.ndarray:
    """Log-linear fusion; faces the landmarker missed keep the CNN's probabilities."""
    logp = (1 - w) * np.log(np.clip(cnn, 1e-6, 1)) + w * np.log(np.clip(head, 1e-6, 1))
    fused = np.exp(logp - logp.max(axis=1, keepdims=True))
    fused /= fused.sum(axis=1, keepdims=True)
    return np.where(found[:, None], fused, cnn)


def accuracy(probs: np.ndarray, truth: list, labels: list[str]) -> float:
    """Share right over the faces whose label the model can say (FER+ contempt is left out)."""
    keep = [i for i, t in enumerate(truth) if t in labels]
    return round(float(np.mean([labels[int(np.argmax(probs[i]))] == truth[i] for i in keep])), 4)


def yale(model, face_model, labels: list[str]):
    """Yale full frames: (truth, CNN probabilities of the largest face through the pipeline, blendshapes)."""
    files = yale_files()
    read = landmarker(LANDMARKER)
    truth, cnn, feats = [], [], []
    with Pipeline(model, face_model, video=False, smoothing=0.0, uncertain=0.0) as pipeline:
        for k, path in enumerate(files):
            gray = preprocess.read_image(path)
            faces = pipeline.process(Frame(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), k / 25, k, path.name))
            face = max(faces, key=lambda f: f.box[2] * f.box[3]) if faces else None
            cnn.append([face.probs[c] for c in labels] if face else [1.0 / len(labels)] * len(labels))
            found = read(gray)
            feats.append(found if found is not None else np.full(52, np.nan, np.float32))
            truth.append(yale_truth(path))
    return truth, np.array(cnn, np.float32), np.array(feats, np.float32)


def cost_per_face(clf: Classifier, repeats: int = 300) -> dict:
    """Median ms per face, LiteRT, 1 thread, in one sitting: the landmark model (256x256 RGB), the
    blendshape model (146 points), and, for scale, the CNN as the device runs it (its card's flip pair)."""
    Interpreter, backend = interpreter_class()
    rng = np.random.default_rng(0)

    def median_ms(run) -> float:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            run()
            times.append((time.perf_counter() - t) * 1000)
        return round(float(np.median(times)), 3)

    out = {"backend": backend}
    with zipfile.ZipFile(LANDMARKER) as bundle:
        for name in ("face_landmarks_detector.tflite", "face_blendshapes.tflite"):
            it = Interpreter(model_content=bundle.read(name), num_threads=1)
            it.allocate_tensors()
            d = it.get_input_details()[0]
            it.set_tensor(d["index"], rng.random(d["shape"]).astype(np.float32))
            out[name] = median_ms(it.invoke)
    pixels = rng.integers(0, 256, clf.spec.shape, dtype=np.uint8)
    out[f"cnn {clf.path.name}"] = median_ms(lambda: clf.run(pixels))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="fer2013-balanced", help="bundled name or .tflite (a basic-7 model)")
    p.add_argument("--face-model", default=None, help="BlazeFace for the Yale pipeline (default: bundled)")
    p.add_argument("--votes-weight", type=float, default=0.5)
    p.add_argument("--cache", default="runs/blendshapes/fer2013_blendshapes.npz")
    p.add_argument("--features-only", action="store_true", help="only fill the landmarker cache")
    p.add_argument("--json", default="runs/blendshapes.json")
    args = p.parse_args()

    ds = load_dataset(SHARED / "data" / "fer2013", "auto")
    names = ("train", "val", "test")
    paths = [str(x) for s in names for x in ds.splits[s].images]
    t = time.perf_counter()
    scores = fer_features(paths, Path(args.cache))
    print(
        f"landmarker: {len(paths)} images, faces found in {int(np.isfinite(scores[:, 0]).sum())} "
        f"({time.perf_counter() - t:.0f} s)",
        flush=True,
    )
    if args.features_only:
        return
    at = np.cumsum([0] + [len(ds.splits[s]) for s in names])
    feats = {s: scores[at[i] : at[i + 1]] for i, s in enumerate(names)}
    found = {s: np.isfinite(f[:, 0]) for s, f in feats.items()}

    mix_votes(ds, SHARED / "data" / "ferplus" / "fer2013new.csv", args.votes_weight)
    labels = ds.labels
    train = ds.splits["train"]
    targets = train.soft if train.soft is not None else np.eye(len(labels))[train.labels]
    t = time.perf_counter()
    head = train_head(feats["train"][found["train"]], targets[found["train"]])
    print(f"head trained in {time.perf_counter() - t:.0f} s", flush=True)

    plus = read_ferplus(SHARED / "data" / "ferplus")
    clf = Classifier(model_path(args.model))
    assert clf.labels == labels, f"{args.model}: labels {clf.labels}, expected FER-2013's {labels}"
    row_of = {str(Path(x).resolve()): i for i, x in enumerate(paths)}  # a file's row in `scores`
    cnn_of = {}  # a file's CNN probabilities, by the same key

    def reading(images: list, truth: list, desc: str) -> dict:
        """CNN and head probabilities of FER-2013 files (each file through the CNN once), with their truth."""
        keys = [str(Path(x).resolve()) for x in images]
        for x, key in tqdm([(x, k) for x, k in zip(images, keys) if k not in cnn_of], desc=desc, mininterval=10):
            cnn_of[key] = clf.run(clf.prepare(preprocess.read_image(x)))
        f = scores[[row_of[k] for k in keys]]
        return {
            "cnn": np.stack([cnn_of[k] for k in keys]),
            "head": head_probs(head, f, len(labels)),
            "found": np.isfinite(f[:, 0]),
            "truth": truth,
        }

    # FER-2013 labels over the whole split; FER+ majorities over the FER+ split's own images, as
    # cross_check.py counts them
    rows = {
        s: {
            "fer": reading(ds.splits[s].images, [labels[k] for k in ds.splits[s].labels], f"CNN on {s}"),
            "plus": reading(plus.splits[s].images, [plus.labels[k] for k in plus.splits[s].labels], f"CNN on FER+ {s}"),
        }
        for s in ("val", "test")
    }
    grid = np.round(np.arange(0, 1.0001, 0.05), 2)
    v = rows["val"]["plus"]
    by_w = {float(w): accuracy(fuse(v["cnn"], v["head"], v["found"], w), v["truth"], labels) for w in grid}
    best = max(by_w, key=lambda w: (by_w[w], -w))
    print("fusion weight on PublicTest FER+ majority:", by_w, "-> chosen", best, flush=True)

    yt, ycnn, yfeats = yale(model_path(args.model), args.face_model, labels)
    yfound = np.isfinite(yfeats[:, 0])
    ys = {"cnn": ycnn, "head": head_probs(head, yfeats, len(labels)), "found": yfound}
    results = {
        "model": args.model,
        "landmarker_faces_found": {s: [int(f.sum()), len(f)] for s, f in found.items()},
        "yale_landmarker_faces_found": int(yfound.sum()),
        "fusion_weight_by_publictest_ferplus": by_w,
        "fusion_weight": best,
        "cost_ms": cost_per_face(clf),
        "rows": {},
    }
    for name, pick in (
        ("cnn", lambda r: r["cnn"]),
        ("head alone", lambda r: r["head"]),
        ("fused", lambda r: fuse(r["cnn"], r["head"], r["found"], best)),
    ):
        ylabels = [labels[int(np.argmax(q))] for q in pick(ys)]
        t = rows["test"]["plus"]
        row = {
            "publictest_fer2013": accuracy(pick(rows["val"]["fer"]), rows["val"]["fer"]["truth"], labels),
            "publictest_ferplus": accuracy(pick(rows["val"]["plus"]), rows["val"]["plus"]["truth"], labels),
            "privatetest_ferplus": accuracy(pick(t), t["truth"], labels),
            "privatetest_ferplus_recall": recall(
                *zip(*[(c, labels[int(np.argmax(q))]) for c, q in zip(t["truth"], pick(t)) if c in labels])
            ),
            "yale": round(float(np.mean([a == b for a, b in zip(yt, ylabels)])), 4),
            "yale_recall": recall(yt, ylabels),
            "privatetest_fer2013": accuracy(pick(rows["test"]["fer"]), rows["test"]["fer"]["truth"], labels),
        }
        results["rows"][name] = row
        print(f"{name:11s} {row}", flush=True)
    print("cost per face (ms):", results["cost_ms"])
    write_json(args.json, results)
    print("wrote", args.json)


if __name__ == "__main__":
    main()

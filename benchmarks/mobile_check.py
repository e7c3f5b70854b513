"""The phone form read by MediaPipe Tasks itself: does an app that loads it with MediaPipe's
`ImageClassifier` read what edgefer-cam reads?

1. FER+ PrivateTest crops (FER-2013's 48 px faces): edgefer's reading of the bundled int8 model
   (`Classifier`, as edgefer-cam reads a face) against MediaPipe's `ImageClassifier` on the phone form,
   given the crop two ways: as it is, MediaPipe resizing it to the model's input; and resized by the
   app first, with the card's resize (cv2), to the model's input size. Beside each, agreement with the
   FER+ majority.
2. Yale full frames: edgefer's pipeline (BlazeFace, the card's crop, the int8 model) against
   MediaPipe's `FaceDetector` on the bundled BlazeFace, the card's crop as the classifier's region of
   interest (`FaceCrop.region`), and the phone form.

    python benchmarks/mobile_check.py --json results/mobile_check.json
"""

from __future__ import annotations

import argparse
import platform

import cv2
import numpy as np

from edgefer.core import preprocess
from edgefer.core.files import write_json
from edgefer.data.fer2013 import read_ferplus
from edgefer.device.classifier import Classifier
from edgefer.evaluate.checks import SHARED, ferplus_truths, yale_check, yale_files, yale_truth
from edgefer.models import BUNDLED, HERE, model_path


def mediapipe_tasks(phone, face_model):
    import mediapipe as mp
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision

    classifier = vision.ImageClassifier.create_from_options(
        vision.ImageClassifierOptions(base_options=tasks.BaseOptions(model_asset_path=str(phone)), max_results=-1)
    )
    detector = vision.FaceDetector.create_from_options(
        vision.FaceDetectorOptions(base_options=tasks.BaseOptions(model_asset_path=str(face_model)))
    )

    def classify(rgb, region=None):
        from mediapipe.tasks.python.components.containers.rect import Rect

        options = None if region is None else vision.ImageProcessingOptions(region_of_interest=Rect(*region))
        result = classifier.classify(
            mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)), options
        )
        return {c.category_name: c.score for c in result.classifications[0].categories}

    def faces(rgb):
        result = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
        return [d.bounding_box for d in result.detections]

    return classify, faces


def resize_probe(size: int, faces) -> dict:
    """What MediaPipe does to a crop of another size: a probe model whose scores are its own input
    pixels shows the image MediaPipe hands the model, compared with cv2.resize (the card's resize,
    pixel centres aligned) and with a bilinear warp that maps the crop's edges to the input's edges."""
    import tempfile

    from mediapipe.tasks.python.metadata.metadata_writers import image_classifier, metadata_writer

    from edgefer._tf import tf

    echo = tf.function(
        lambda x: tf.reshape(tf.cast(x, tf.float32), [1, -1]),
        input_signature=[tf.TensorSpec([1, size, size, 3], tf.uint8)],
    )
    flat = tf.lite.TFLiteConverter.from_concrete_functions([echo.get_concrete_function()], echo).convert()
    labels = metadata_writer.Labels().add([str(i) for i in range(size * size * 3)])
    probe, _ = image_classifier.MetadataWriter.create(bytearray(flat), [0.0], [1.0], labels).populate()
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(probe), f.flush()
        classify, _ = mediapipe_tasks(f.name, HERE / "blaze_face_short_range.tflite")
        to_resize, to_warp = [], []
        for path in faces:
            gray = preprocess.read_image(path)
            scores = classify(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))
            seen = np.zeros(size * size * 3, np.float32)
            for k, v in scores.items():
                seen[int(k)] = v
            seen = seen.reshape(size, size, 3)[..., 0]
            s = gray.shape[1] / size
            edges = cv2.warpAffine(
                gray, np.float32([[s, 0, 0], [0, s, 0]]), (size, size),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
            )  # fmt: skip
            to_resize.append(np.abs(seen - cv2.resize(gray, (size, size), interpolation=cv2.INTER_LINEAR)).mean())
            to_warp.append(np.abs(seen - edges).mean())
    return {
        "input_size": size,
        "faces": len(faces),
        "mean_level_difference_to_cv2_resize": round(float(np.mean(to_resize)), 3),
        "mean_level_difference_to_edge_aligned_warp": round(float(np.mean(to_warp)), 3),
    }


def top(scores: dict) -> str:
    return max(scores, key=scores.get)


def crops(name, test, labels, classify) -> dict:
    clf = Classifier(model_path(name))
    plus, _ = ferplus_truths(test, labels)
    edgefer, as_is, app_resized = [], [], []
    for path in test.images:
        image = preprocess.read_image(path)
        edgefer.append(clf.labels[int(np.argmax(clf.run(clf.prepare(image))))])
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image
        as_is.append(top(classify(rgb)))
        app_resized.append(top(classify(preprocess.prepare(rgb, clf.spec.size, "rgb"))))
    known = [i for i, t in enumerate(plus) if t in clf.labels]

    def agreement(a, b):
        return round(float(np.mean([a[i] == b[i] for i in known])), 4)

    return {
        "faces": len(known),
        "agree_as_is": agreement(as_is, edgefer),
        "agree_app_resized": agreement(app_resized, edgefer),
        "ferplus_edgefer": agreement(edgefer, plus),
        "ferplus_as_is": agreement(as_is, plus),
        "ferplus_app_resized": agreement(app_resized, plus),
    }


def yale(name, classify, faces, face_model) -> dict:
    spec = Classifier(model_path(name)).spec
    ours = yale_check(model_path(name), face_model)["predictions"]
    theirs = {}
    for path in yale_files():
        rgb = cv2.cvtColor(preprocess.read_image(path), cv2.COLOR_GRAY2RGB)
        boxes = faces(rgb)
        if not boxes:
            theirs[path.name] = "no face"
            continue
        b = max(boxes, key=lambda b: b.width * b.height)
        region = spec.crop.region((b.origin_x, b.origin_y, b.width, b.height), rgb.shape[1], rgb.shape[0])
        theirs[path.name] = top(classify(rgb, region))
    truth = {p.name: yale_truth(p) for p in yale_files()}
    return {
        "frames": len(truth),
        "agree": sum(theirs[k] == ours[k] for k in truth),
        "correct_edgefer": sum(ours[k] == truth[k] for k in truth),
        "correct_mediapipe": sum(theirs[k] == truth[k] for k in truth),
        "differ": {k: [ours[k], theirs[k]] for k in truth if ours[k] != theirs[k]},
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="bundled name; repeat (default: every bundled model)")
    p.add_argument("--face-model", default=str(HERE / "blaze_face_short_range.tflite"))
    p.add_argument("--json", default="results/mobile_check.json")
    args = p.parse_args()
    import mediapipe

    ferplus = read_ferplus(SHARED / "data" / "ferplus")
    test = ferplus.splits["test"]
    results = {"mediapipe": mediapipe.__version__, "python": platform.python_version(), "models": {}}
    for name in args.model or list(BUNDLED):
        classify, faces = mediapipe_tasks(HERE / "mobile" / BUNDLED[name], args.face_model)
        results["models"][name] = {"crops": crops(name, test, ferplus.labels, classify)}
        results["models"][name]["yale"] = yale(name, classify, faces, args.face_model)
        print(name, results["models"][name], flush=True)
    first = Classifier(model_path(next(iter(results["models"])))).spec.size
    results["mediapipe_resize"] = resize_probe(first, test.images[:50])
    print(results["mediapipe_resize"], flush=True)
    m = results["models"]
    results["tables"] = {
        "crops": {
            "columns": [
                "model",
                "FER+ PrivateTest faces",
                "same top label as edgefer: crop as it is",
                "crop resized by the app",
                "FER+ majority: edgefer",
                "MediaPipe, crop as it is",
                "MediaPipe, resized by the app",
            ],
            "rows": [
                [
                    f"`{k}`",
                    v["crops"]["faces"],
                    f"{100 * v['crops']['agree_as_is']:.2f}%",
                    f"{100 * v['crops']['agree_app_resized']:.2f}%",
                    f"{100 * v['crops']['ferplus_edgefer']:.2f}%",
                    f"{100 * v['crops']['ferplus_as_is']:.2f}%",
                    f"{100 * v['crops']['ferplus_app_resized']:.2f}%",
                ]
                for k, v in m.items()
            ],
        },
        "yale": {
            "columns": ["model", "Yale frames", "same reading", "correct: edgefer-cam", "correct: MediaPipe"],
            "rows": [
                [
                    f"`{k}`",
                    v["yale"]["frames"],
                    v["yale"]["agree"],
                    v["yale"]["correct_edgefer"],
                    v["yale"]["correct_mediapipe"],
                ]
                for k, v in m.items()
            ],
        },
    }
    write_json(args.json, results)


if __name__ == "__main__":
    main()

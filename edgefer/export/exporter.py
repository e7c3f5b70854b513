"""A trained run -> a self-describing TFLite model, evaluated with the LiteRT interpreter.

Modes:
  int8     quantization-aware fine-tuning (tfmot), then full-integer conversion: int8 weights and
           activations, int8 input and output. int8 input because edgefer models take 0..255 pixels
           and normalise in-graph, so calibration gives input scale 1, zero point -128: a pixel p
           is fed as p - 128 exactly, with no rounding between the device's pixels and the model.
  ptq      the same full-integer conversion without QAT (post-training quantization)
  float16  float16 weights, float compute
  float32  no quantization
  dynamic  int8 weights, float activations (dynamic range)
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from .._tf import keras, tf
from ..core import card as card_mod
from ..core.errors import EdgeferError
from ..core.files import check_file_writable, write_bytes, write_json
from ..core.interpreter import interpreter_class
from ..core.metrics import classification_report
from ..core.quiet import quiet_native
from ..core.spec import flip_passes
from ..device.classifier import Classifier
from ..train import run as run_mod
from ..train.batches import make_datasets
from ..train.config import TrainConfig
from .modes import INTEGER_MODES, MODES


class ExportError(EdgeferError, ValueError):
    pass


def representative(pixels: np.ndarray, count: int, seed: int = 0):
    """A calibration set of real training images, float in the model's 0..255 input range."""
    if pixels is None or len(pixels) == 0:
        raise ExportError("the representative set is empty: the run's training split has no readable images")
    if pixels.ndim != 4:
        raise ExportError(f"representative images must be (N, H, W, C), got shape {pixels.shape}")
    idx = np.random.default_rng(seed).choice(len(pixels), min(count, len(pixels)), replace=False)
    chosen = pixels[idx].astype(np.float32)
    # Calibration sets the int8 input's scale from the pixel range it sees. One black and one white
    # pixel in the first image pin that range to 0..255 (scale 1, zero point -128: pixel p -> p-128)
    # whatever the data, while leaving the statistics of inner layers essentially unchanged.
    chosen[0, 0, 0, :], chosen[0, 0, 1, :] = 0.0, 255.0

    def gen():
        for x in chosen:
            yield [x[None]]

    return gen


def activation_ranges(model, tensors: list[tuple[str, str]], images: np.ndarray, batch: int = 50) -> dict:
    """Min and max of some tensors of the float model over real images, the way post-training
    calibration measures them, in one pass. tensors: (layer name, "output" | "pre_activation");
    returns {(layer name, kind): (min, max)}, each range containing 0, as TFLite requires."""
    layers = [model.get_layer(name) for name, _ in tensors]
    # a pre-activation is recomputed from the layer's input with its activation switched off
    probe = keras.Model(
        model.inputs,
        [layer.input if kind == "pre_activation" else layer.output for layer, (_, kind) in zip(layers, tensors)],
    )
    lo, hi = [0.0] * len(tensors), [0.0] * len(tensors)
    for start in range(0, len(images), batch):
        outs = probe(images[start : start + batch].astype(np.float32), training=False)
        for i, (layer, (_, kind), t) in enumerate(zip(layers, tensors, outs if len(layers) > 1 else [outs])):
            if kind == "pre_activation":
                activation, layer.activation = layer.activation, keras.activations.linear
                try:
                    t = layer(t, training=False)
                finally:
                    layer.activation = activation
            t = np.asarray(t)
            lo[i], hi[i] = min(lo[i], float(t.min())), max(hi[i], float(t.max()))
    return {key: (lo[i], hi[i]) for i, key in enumerate(tensors)}


def init_activation_ranges(qat, model, images: np.ndarray) -> int:
    """tfmot starts every activation range at [-6, 6] and moves it by an exponential average with
    decay 0.999 per step, so after one or two epochs the ranges still sit far from the real ones
    (logits and residual sums clipped): QAT then scored below plain post-training quantization.
    Start each range where calibration would put it. Returns how many ranges were set."""
    wanted = {}  # (float layer name, which tensor) -> the QAT variables that quantize it
    for layer in qat.layers:
        for w in layer.non_trainable_weights:
            var = w.name.split("/")[-1].split(":")[0]
            kind, _, end = var.rpartition("_")
            if end in ("min", "max") and kind in ("output", "post_activation", "pre_activation"):
                tensor = "pre_activation" if kind == "pre_activation" else "output"
                wanted.setdefault((layer.name.removeprefix("quant_"), tensor), {})[end] = w
    if not wanted:
        return 0
    for key, (lo, hi) in activation_ranges(model, list(wanted), images).items():
        low, high = wanted[key]["min"], wanted[key]["max"]
        low.assign(np.full(low.shape, lo, np.float32))
        high.assign(np.full(high.shape, hi, np.float32))
    return len(wanted)


def quantization_aware(
    model, arrays, cfg: TrainConfig, n_classes: int, epochs: int, lr: float, calibration: np.ndarray | None
):
    """QAT fine-tune. Layers tfmot cannot quantize (the in-graph normalisation) stay float in the
    Keras model; the converter quantizes them from the representative set. Activation ranges start
    from `calibration` images (None: tfmot's own [-6, 6] start, kept for comparison)."""
    import tensorflow_model_optimization as tfmot

    q = tfmot.quantization.keras

    def annotate(layer):
        if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization, keras.layers.InputLayer)):
            return layer
        return q.quantize_annotate_layer(layer)

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    with q.quantize_scope():
        qat = q.quantize_apply(annotated)
    if calibration is not None:
        init_activation_ranges(qat, model, calibration)
    qat.compile(optimizer=keras.optimizers.Adam(lr), loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    if epochs > 0:
        train_ds, val_ds, _ = make_datasets(arrays, cfg, n_classes)
        # Keras' own epoch line would give the accuracy on augmented (and oversampled) training
        # batches, which says little; the validation split's is the figure to read
        history = qat.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0)
        print(
            f"quantization-aware training: {epochs} epoch{'s' if epochs > 1 else ''} at lr {lr:g}; validation "
            f"accuracy {history.history['val_accuracy'][-1]:.4f} (fake-quantized Keras model; the int8 "
            "model's own test figures follow)",
            flush=True,
        )
    return qat


def convert(model, mode: str, rep=None) -> bytes:
    # the converter's MLIR and quantizer log lines (W0000 ..., fully_quantize: ...), and its warning that
    # an int8 input has no statistics: the input's scale is set by the graph (pixel p -> p - 128)
    with quiet_native(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return _convert(model, mode, rep)


def _convert(model, mode: str, rep=None) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode in INTEGER_MODES:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = rep
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def float_tensors(model_bytes: bytes) -> list[str]:
    """Names of float tensors in a converted model; a full-integer model has none."""
    interp = interpreter_class()[0](model_content=model_bytes)
    return [t["name"] for t in interp.get_tensor_details() if t["dtype"] in (np.float32, np.float16)]


def evaluate_tflite(
    path, pixels: np.ndarray, labels_true: np.ndarray, flip_average: bool | None = None
) -> tuple[dict, dict | None]:
    """(report as the model's card asks, or as `flip_average` overrides; single-pass report or None):
    with flip averaging on, both come from the same two passes, the faces and their mirror images.
    A class-prior adjustment in the card (`logit_bias`) moves decisions, so both reports include it,
    as the device does."""
    clf = Classifier(path, flip_average=flip_average)

    def report(probs):
        return classification_report(labels_true, clf.spec.calibrated(probs).argmax(1), clf.labels)

    if not clf.spec.flip_average:
        return report(clf.run_batch(pixels)), None
    plain, mirrored = flip_passes(clf.run_batch, pixels)
    return report((plain + mirrored) / 2), report(plain)


def latency(clf: Classifier, pixels: np.ndarray, invokes: int) -> float:
    """Median milliseconds of one invoke (input already set), after a warm-up."""
    clf.run(pixels[0])
    times = []
    for _ in range(invokes):
        t = time.perf_counter()
        clf.interpreter.invoke()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def export(
    run_dir,
    out,
    mode: str = "int8",
    qat_epochs: int = 1,
    qat_lr: float = 1e-5,
    representative_count: int = 1000,
    max_per_class: int | None = None,
    invokes: int = 200,
    threads=(1, 2),
    compare_float: bool = True,
    flip_average: bool | None = None,
) -> dict:
    if mode not in MODES:
        raise ExportError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "int8" and qat_epochs < 1:
        # tfmot sets the weights' quantization ranges on the first training step; with none they
        # stay at [-6, 6] and the model converts to noise
        raise ExportError("--int8 needs --qat-epochs 1 or more; use --ptq for no fine-tuning")
    out = Path(out)
    check_file_writable(out, "--out")  # before minutes of QAT and conversion, not after
    run = run_mod.load(run_dir)
    model, cfg = run.model, run.config
    # flip averaging was decided at training (the run's spec) unless the caller says otherwise
    spec = run.spec if flip_average is None else run.spec.replace(flip_average=flip_average)
    arrays = run.arrays(max_per_class=max_per_class)
    rep = representative(arrays["train"].x, representative_count, cfg.seed)

    model_bytes, used, notes = quantized(model, arrays, cfg, spec, mode, qat_epochs, qat_lr, rep, out)
    full_card = quantization_card(run.card, spec, used, model_bytes)
    # evaluated under a name the device is not pointed at; `out` itself is written last, after its
    # report, so a killed export never leaves a complete-looking model without one
    unfinished = out.with_name(f".{out.name}.unfinished")
    reference = out.with_name(f".{out.stem}.float32-reference.tflite")  # the float model compared against
    try:
        write_bytes(unfinished, card_mod.embed(model_bytes, full_card))
        test = arrays["test"]
        report = {
            "model": str(out),
            "mode": used,
            "requested_mode": mode,
            "notes": notes,
            "flip_average": spec.flip_average,
            "test_images": int(len(test.y)),
        }
        evaluated = {used: unfinished}
        if compare_float and used != "float32":
            write_bytes(
                reference, card_mod.embed(convert(model, "float32"), dict(full_card, quantization={"mode": "float32"}))
            )
            evaluated["float32"] = reference
        report["runs"] = measure(evaluated, test, invokes, threads)
        if "float32" in report["runs"] and used in report["runs"] and used != "float32":
            report["accuracy_drop_pt"] = round(
                100 * (report["runs"]["float32"]["accuracy"] - report["runs"][used]["accuracy"]), 2
            )
        # the card inside the model says what was measured on it
        full_card["metrics"] = dict(
            run.card.get("metrics", {}),
            tflite_test={"accuracy": report["runs"][used]["accuracy"], "macro_f1": report["runs"][used]["macro_f1"]},
        )
        final = card_mod.embed(model_bytes, full_card)
        report["size_bytes"] = report["runs"][used]["size_bytes"] = len(final)
        write_json(report_path(out), report)
        write_bytes(out, final)
        return report
    finally:  # the scratch files go however the export ends
        for scratch in (unfinished, reference):
            scratch.unlink(missing_ok=True)


def quantized(model, arrays, cfg, spec, mode: str, qat_epochs: int, qat_lr: float, rep, out) -> tuple[bytes, str, list]:
    """(the converted flatbuffer, the mode it was converted in, notes): int8 is QAT first, and falls
    back to post-training quantization where tfmot cannot quantize the backbone; an integer mode
    that left a float tensor is refused."""
    used, notes, source = mode, [], model
    if mode == "int8":
        try:
            calibration = np.stack([x[0][0] for x in rep()])
            source = quantization_aware(model, arrays, cfg, len(spec.labels), qat_epochs, qat_lr, calibration)
        except (ValueError, RuntimeError, TypeError) as exc:
            used = "ptq"
            notes.append(
                f"QAT not possible for {cfg.arch} ({str(exc).splitlines()[0][:160]}); "
                "fell back to full-integer post-training quantization"
            )
            print("edgefer-export: " + notes[-1])
    model_bytes = convert(source, used, rep)
    if mode in INTEGER_MODES:
        floats = float_tensors(model_bytes)
        if floats:
            raise ExportError(
                f"conversion left {len(floats)} float tensor(s) (e.g. {floats[:3]}); "
                f"{out} would not be fully integer and was not written"
            )
    return model_bytes, used, notes


def quantization_card(run_card: dict, spec, used: str, model_bytes: bytes) -> dict:
    """The run's card with the export's spec and how the model's input and output are quantized."""
    interp = interpreter_class()[0](model_content=model_bytes)
    qin, qout = interp.get_input_details()[0], interp.get_output_details()[0]
    card = card_mod.with_spec(run_card, spec)
    card["quantization"] = {
        "mode": used,
        **{
            side: {
                "dtype": np.dtype(t["dtype"]).name,
                "scale": float(t["quantization"][0]),
                "zero_point": int(t["quantization"][1]),
            }
            for side, t in (("input", qin), ("output", qout))
        },
    }
    return card


def measure(models: dict, test, invokes: int, threads) -> dict:
    """Each model file (name -> path) on the test split with LiteRT: its report as the card asks,
    the single pass beside a flip-averaged one, its size and the median invoke at each thread count."""
    runs = {}
    for name, path in models.items():
        metrics, single = evaluate_tflite(path, test.x, test.y)
        runs[name] = {
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "size_bytes": Path(path).stat().st_size,
            "latency_ms_median": {
                f"{n}_thread": round(latency(Classifier(path, threads=n), test.x, invokes), 3) for n in threads
            },
            "report": metrics,
        }
        if single is not None:  # what the second invoke buys
            runs[name]["single_pass"] = {"accuracy": single["accuracy"], "macro_f1": single["macro_f1"]}
    return runs


def report_path(out: Path) -> Path:
    """Where an export's report goes: beside the model, named after it (NAME.report.json)."""
    return out.with_name(out.stem + ".report.json")


def format_export(report: dict) -> str:
    lines = [
        f"{'model':<10}{'accuracy':>10}{'macro-F1':>10}{'size KB':>10}"
        + "".join(
            f"{k.replace('_thread', ' thr ms'):>12}" for k in next(iter(report["runs"].values()))["latency_ms_median"]
        )
    ]
    for name, r in report["runs"].items():
        lines.append(
            f"{name:<10}{r['accuracy']:>10.4f}{r['macro_f1']:>10.4f}{r['size_bytes'] / 1024:>10.1f}"
            + "".join(f"{v:>12.3f}" for v in r["latency_ms_median"].values())
        )
    if report.get("flip_average"):
        lines.append(
            "accuracy with flip averaging (2 invokes per face; latency above is one invoke); "
            "single pass: "
            + ", ".join(f"{name} {r['single_pass']['accuracy']:.4f}" for name, r in report["runs"].items())
        )
    if "accuracy_drop_pt" in report:
        lines.append(
            f"float32 -> {report['mode']}: {report['accuracy_drop_pt']:+.2f} pt accuracy lost on "
            f"{report['test_images']} test images"
        )
    return "\n".join(lines)

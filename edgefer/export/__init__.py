"""Export side: a trained run -> a self-describing (card inside) TFLite model, int8 by default."""

MODES = ("int8", "ptq", "float16", "float32", "dynamic")
INTEGER_MODES = ("int8", "ptq")


def export(run_dir, out, mode="int8", **options):
    from .exporter import export as _export  # TensorFlow loads on first use
    return _export(run_dir, out, mode, **options)


__all__ = ["export"]

"""Export side: a trained run -> a self-describing (card inside) TFLite model, int8 by default."""

from .modes import INTEGER_MODES, MODES


def export(run_dir, out, mode="int8", **options):
    from .exporter import export as _export  # TensorFlow loads on first use

    return _export(run_dir, out, mode, **options)


__all__ = ["INTEGER_MODES", "MODES", "export"]

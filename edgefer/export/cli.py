"""`edgefer-export RUN --int8 --out FILE.tflite`: QAT + full-integer TFLite with the card inside.
`--mobile` writes the phone form too, the file MediaPipe Tasks loads as it is (docs/mobile.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.files import CommandParser, OneDefault, thread_list
from .modes import MODES


def main(argv=None) -> int:
    p = CommandParser(prog="edgefer-export", description=__doc__, formatter_class=OneDefault)
    p.add_argument(
        "run",
        help="run directory written by edgefer-train; with --mobile also an exported edgefer .tflite or "
        "a bundled model's name",
    )
    p.add_argument("--out", required=True, help="the .tflite file to write (NAME.report.json goes beside it)")
    p.add_argument(
        "--mobile",
        action="store_true",
        help="the phone form as well (uint8 RGB in, MediaPipe metadata): NAME.mobile.tflite beside --out; "
        "from an exported .tflite or bundled name, only the phone form, at --out",
    )
    modes = p.add_mutually_exclusive_group()
    for mode, what in MODES.items():
        modes.add_argument(f"--{mode}", dest="mode", action="store_const", const=mode, help=what)
    p.add_argument(
        "--qat-epochs", type=int, default=1, help="quantization-aware training epochs (--int8 needs 1 or more)"
    )
    p.add_argument("--qat-lr", type=float, default=1e-5, help="learning rate of quantization-aware training")
    p.add_argument("--representative", type=int, default=1000, help="calibration images from the training split")
    p.add_argument("--max-per-class", type=int, default=None, help="cap images per class per split (quick runs)")
    p.add_argument("--invokes", type=int, default=200, help="invokes per latency measurement (median reported)")
    p.add_argument("--threads", type=thread_list, default="1,2", help="LiteRT thread counts for the latency figures")
    p.add_argument(
        "--flip-average",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the device averages each face with its mirror image (two invokes); for models "
        "trained with flips. Written into the card and used in the evaluation "
        "(default: the run's card, i.e. edgefer-train --flip-average)",
    )
    args = p.parse_args(argv)
    from ..core.errors import EdgeferError

    try:
        if args.mobile and not Path(args.run).is_dir():
            return _mobile_only(args.run, args.out)
        from .exporter import export, format_export, report_path

        report = export(
            args.run,
            args.out,
            args.mode or "int8",
            qat_epochs=args.qat_epochs,
            qat_lr=args.qat_lr,
            representative_count=args.representative,
            max_per_class=args.max_per_class,
            invokes=args.invokes,
            threads=tuple(args.threads),
            flip_average=args.flip_average,
        )
        print(format_export(report))
        print(f"wrote {args.out} (card inside) and {report_path(Path(args.out))}")
        if args.mobile:
            return _mobile_only(args.out, mobile_path(Path(args.out)))
    except EdgeferError as exc:
        print(f"edgefer-export: error: {exc}", file=sys.stderr)
        return 2
    return 0


def mobile_path(out: Path) -> Path:
    """Where --mobile puts the phone form of a run's export: beside it, NAME.mobile.tflite."""
    return out.with_name(out.stem + ".mobile.tflite")


def _mobile_only(source, out) -> int:
    from ..models import BUNDLED, model_path
    from .mobile import MobileError, export_mobile, format_mobile

    if source not in BUNDLED and not Path(source).is_file():
        raise MobileError(
            f"{source}: no such file; pass a run directory, an exported .tflite or one of {', '.join(BUNDLED)}"
        )
    report = export_mobile(model_path(source), out)
    print(format_mobile(report))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

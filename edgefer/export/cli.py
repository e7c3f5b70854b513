"""`edgefer-export RUN --int8 --out FILE.tflite`: QAT + full-integer TFLite with the card inside."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.files import CommandParser, OneDefault, thread_list
from .modes import MODES


def main(argv=None) -> int:
    p = CommandParser(prog="edgefer-export", description=__doc__, formatter_class=OneDefault)
    p.add_argument("run", help="run directory written by edgefer-train")
    p.add_argument("--out", required=True, help="the .tflite file to write (NAME.report.json goes beside it)")
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
    except EdgeferError as exc:
        print(f"edgefer-export: error: {exc}", file=sys.stderr)
        return 2
    print(format_export(report))
    print(f"wrote {args.out} (card inside) and {report_path(Path(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

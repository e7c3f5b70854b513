#!/usr/bin/env bash
# Reproduce the shipped models (fer2013, then fer2013-balanced): train (FER-2013, recipe fer2013_default.toml), export to
# full-integer int8 with the card inside, evaluate with LiteRT on PrivateTest, copy into the package.
# The shipped model is the PTQ export (1,000 calibration images): on this model QAT with 2 epochs
# measured 63.97% against PTQ's 65.28% (float 66.23%), see the README. Both are written.
# Run from the repository root with ../shared beside it:  bash train/make_default.sh
set -euo pipefail
BIN=${BIN:-.venv/bin}
RUN=${RUN:-runs/fer2013_default}
"$BIN/edgefer-train" --config train/fer2013_default.toml --out "$RUN" --resume
"$BIN/edgefer-export" "$RUN" --int8 --qat-epochs 2 --out "$RUN/export/fer2013_int8.tflite"
"$BIN/edgefer-export" "$RUN" --ptq --out "$RUN/export_ptq/fer2013_int8_ptq.tflite"
cp "$RUN/export_ptq/fer2013_int8_ptq.tflite" edgefer/models/fer2013_int8.tflite
echo "shipped edgefer/models/fer2013_int8.tflite; reports: $RUN/export*/export_report.json"

# The second bundled model, fer2013-balanced: the same recipe on the oversampled training split.
BAL=${BAL:-runs/fer2013_oversample}
"$BIN/edgefer-train" --config train/fer2013_oversample.toml --out "$BAL" --resume
"$BIN/edgefer-export" "$BAL" --ptq --out "$BAL/export_ptq/fer2013_balanced_int8.tflite"
cp "$BAL/export_ptq/fer2013_balanced_int8.tflite" edgefer/models/fer2013_balanced_int8.tflite
echo "shipped edgefer/models/fer2013_balanced_int8.tflite"

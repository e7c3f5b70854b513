#!/usr/bin/env bash
# Reproduce the shipped default model: train (FER-2013, recipe fer2013_default.toml), QAT-export to
# full-integer int8 with the card inside, evaluate with LiteRT on PrivateTest, copy into the package.
# Run from the repository root with ../shared beside it:  bash train/make_default.sh
set -euo pipefail
BIN=${BIN:-.venv/bin}
RUN=${RUN:-runs/fer2013_default}
"$BIN/edgefer-train" --config train/fer2013_default.toml --out "$RUN" --resume
"$BIN/edgefer-export" "$RUN" --int8 --qat-epochs 2 --out "$RUN/export/fer2013_int8.tflite"
cp "$RUN/export/fer2013_int8.tflite" edgefer/models/fer2013_int8.tflite
echo "shipped edgefer/models/fer2013_int8.tflite; report: $RUN/export/export_report.json"

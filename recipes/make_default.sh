#!/usr/bin/env bash
# Reproduce a shipped model: train from ../shared, QAT-export to full-integer int8 with the card
# inside, evaluate with LiteRT on the test split (PrivateTest), calibrate its confidence on FER+
# PublicTest (temperature and the "uncertain" bar into the card) as it is copied into the package,
# then write its phone form (edgefer-export --mobile) under edgefer/models/mobile/.
#   bash recipes/make_default.sh fer2013-balanced   (the default; recipe recipes/fer2013_oversample.toml)
#   bash recipes/make_default.sh fer2013            (no balancing; recipe recipes/fer2013_default.toml)
#   bash recipes/make_default.sh ferplus            (FER+ 8 classes; recipe recipes/ferplus.toml)
#   bash recipes/make_default.sh large              (EfficientNet-Lite0 on the FER+ votes; recipe recipes/teacher_lite0.toml)
#   bash recipes/make_default.sh compound           (FER+ compound, 9 classes; recipe recipes/compound.toml;
#                                                   not shipped: use it with --model RUN/export/compound_int8.tflite)
# Run from the repository root with ../shared beside it. Reruns resume where a run stopped.
set -euo pipefail
BIN=${BIN:-.venv/bin}
NAME=${1:-fer2013-balanced}
case "$NAME" in
  fer2013)          CONFIG=recipes/fer2013_default.toml;    FILE=fer2013_int8.tflite ;;
  fer2013-balanced) CONFIG=recipes/fer2013_oversample.toml; FILE=fer2013_balanced_int8.tflite ;;
  ferplus)          CONFIG=recipes/ferplus.toml;            FILE=ferplus_int8.tflite ;;
  large)            CONFIG=recipes/teacher_lite0.toml;      FILE=large_int8.tflite ;;
  compound)         CONFIG=recipes/compound.toml;           FILE=compound_int8.tflite ;;
  *) echo "make_default.sh: unknown model '$NAME' (fer2013, fer2013-balanced, ferplus, large, compound)" >&2; exit 2 ;;
esac
RUN=${RUN:-runs/recipe_${NAME//-/_}}
"$BIN/edgefer-train" --config "$CONFIG" --out "$RUN" --resume
# QAT for one epoch from calibrated ranges, then full-integer conversion (1,000 calibration images);
# the run's card (flip averaging, face crop) goes into the model as it is
"$BIN/edgefer-export" "$RUN" --int8 --qat-epochs 1 --out "$RUN/export/$FILE"
if [ "$NAME" = compound ]; then   # measured below reading ferplus's top two; not in the package
  echo "built $RUN/export/$FILE (edgefer-cam --model $RUN/export/$FILE); report: $RUN/export/${FILE%.tflite}.report.json"
  exit 0
fi
# the same flatbuffer; only the card gains inference.temperature and inference.uncertain_below;
# ferplus's also a class-prior adjustment (inference.logit_bias) for faces with about as many of
# each expression, sad held at 0 (docs/results/calibration.md)
ADJUST=()
if [ "$NAME" = ferplus ]; then ADJUST=(--bias --set-bias sad=0); fi
"$BIN/edgefer-calibrate" --model "$RUN/export/$FILE" ${ADJUST[@]+"${ADJUST[@]}"} --out "edgefer/models/$FILE" \
  --json "$RUN/export/calibrate.json"
# the phone form of the shipped file, for MediaPipe Tasks (docs/mobile.md)
"$BIN/edgefer-export" "edgefer/models/$FILE" --mobile --out "edgefer/models/mobile/$FILE"
echo "shipped edgefer/models/$FILE and edgefer/models/mobile/$FILE; reports: $RUN/export/${FILE%.tflite}.report.json, $RUN/export/calibrate.json"

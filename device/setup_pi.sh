#!/usr/bin/env bash
# Install edgefer's device side on a Raspberry Pi (64-bit Raspberry Pi OS), without TensorFlow.
# Run from the repository root:  bash device/setup_pi.sh
set -euo pipefail
VENV=${VENV:-$HOME/edgefer-venv}
sudo apt-get update
# picamera2 and libcamera are OS packages; the venv sees them through --system-site-packages.
sudo apt-get install -y python3-venv python3-picamera2 libgl1
python3 -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install --upgrade pip
"$VENV/bin/pip" install -r device/requirements-pi.txt
"$VENV/bin/pip" install --no-deps .
# The BlazeFace model: newer mediapipe wheels carry none. Fetch it once into the cache (needs internet),
# or copy blaze_face_short_range.tflite to ~/.cache/edgefer/ by hand.
"$VENV/bin/python" -c "from edgefer.core.faces import resolve_face_model; print('face model:', resolve_face_model())"
echo "try it:  $VENV/bin/edgefer-cam --source picamera --headless --report-every 10"

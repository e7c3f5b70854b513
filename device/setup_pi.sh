#!/usr/bin/env bash
# Install edgefer's device side on a Raspberry Pi (64-bit Raspberry Pi OS), without TensorFlow or
# MediaPipe. Works offline once the packages are cached: the face model ships inside edgefer.
# Run from the repository root:  bash device/setup_pi.sh
set -euo pipefail
VENV=${VENV:-$HOME/edgefer-venv}
sudo apt-get update
# picamera2 and libcamera are OS packages; the venv sees them through --system-site-packages.
# OpenCV's wheel needs libgthread (libglib2.0-0).
sudo apt-get install -y python3-venv python3-picamera2 libglib2.0-0
python3 -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install --upgrade pip
"$VENV/bin/pip" install -r device/requirements-pi.txt
"$VENV/bin/pip" install --no-deps .
"$VENV/bin/python" -c "from edgefer.core.faces import resolve_face_model; print('face model:', resolve_face_model())"
"$VENV/bin/python" -c "import picamera2" 2>/dev/null && echo "picamera2: ok" \
  || echo "picamera2 does not import in the venv; see device/README.md (a USB webcam still works: --source 0)"
echo "try it:  $VENV/bin/edgefer-cam --source picamera --headless --report-every 10"

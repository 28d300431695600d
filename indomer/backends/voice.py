"""Voice embeddings of clips: resemblyzer's bundled encoder (offline) or a pyannote model.

* ``"resemblyzer"`` (the default): the GE2E encoder whose weights ship inside the
  ``resemblyzer`` wheel, so builds and tests work with no hub at all. 256 values, unit L2
  norm. The clip is volume-normalised and its long silences trimmed first
  (``preprocess_wav``), as resemblyzer intends.
* anything else: a pyannote embedding model, as a hub id (``pyannote/wespeaker-voxceleb-
  resnet34-LM``) or a local folder/checkpoint, run with ``Inference(window="whole")``; the
  vector is L2-normalised here. Loading follows :mod:`indomer.backends.diarize` (cache only
  unless downloads are allowed, telemetry off).

Both return None for a clip with too little voice to embed (under :data:`MIN_SECONDS` after
trimming), so the caller decides what such a clip inherits. Both run with ``threads`` torch
threads (default 1): on this 2-core machine 20 demo clips took 0.7 s with 1 thread, 1.7 s
with 2, and 43 s with 2 while other processes kept the cores busy (spinning OpenMP workers);
the vectors differ in the last bits between thread counts, so the count is fingerprinted.
"""

from __future__ import annotations

import functools
import threading
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol

import numpy as np

from indomer.backends.torchutil import torch_threads
from indomer.errors import MissingExtraError, UsageError
from indomer.identity import unit_vector

SAMPLE_RATE = 16_000
RESEMBLYZER = "resemblyzer"
#: Voiced audio below this length gives an unreliable embedding: None instead.
MIN_SECONDS = 0.5
#: A clip whose samples all stay below this (full scale 1.0) is silence, not a voice.
SILENCE = 1e-4


class VoiceEncoder(Protocol):
    """What the speakers stage needs from an embedding backend."""

    name: str

    def embed(self, wav: np.ndarray) -> np.ndarray | None:
        """A unit-norm float32 vector for 16 kHz mono ``wav``, or None when too short."""
        ...


def _mono(wav: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(wav, dtype=np.float32))
    if x.ndim != 1:
        raise UsageError(f"voice embedding: expected mono 1-D audio, got shape {x.shape}")
    return x


class ResemblyzerEncoder:
    """resemblyzer's pretrained GE2E encoder on the CPU (about 0.1 s per 4 s clip here)."""

    name = RESEMBLYZER

    def __init__(self, *, threads: int = 1) -> None:
        self.threads = threads
        try:
            with warnings.catch_warnings():
                # resemblyzer imports scipy.ndimage.morphology, deprecated in SciPy 1.x
                warnings.simplefilter("ignore", DeprecationWarning)
                from resemblyzer import VoiceEncoder as _Encoder
                from resemblyzer import preprocess_wav
        except ImportError:
            raise MissingExtraError("resemblyzer", "speakers") from None
        self._encoder = _Encoder("cpu", verbose=False)
        self._preprocess = preprocess_wav

    def embed(self, wav: np.ndarray) -> np.ndarray | None:
        x = _mono(wav)
        if x.size < MIN_SECONDS * SAMPLE_RATE or not np.any(np.abs(x) > SILENCE):
            return None
        # the audio is at resemblyzer's own rate already: no source_sr, so no librosa.resample
        # (a no-op here whose first call imports scipy.signal and numba's caches)
        x = self._preprocess(x)
        if x.size < MIN_SECONDS * SAMPLE_RATE:
            return None
        with torch_threads(self.threads):
            return unit_vector(self._embed_utterance(x))

    def _embed_utterance(self, wav: np.ndarray) -> np.ndarray:
        """``VoiceEncoder.embed_utterance`` (same partials, same bytes) on
        :func:`mel_spectrogram` instead of librosa's, which a worker would import for it."""
        import torch

        enc = self._encoder
        wav_slices, mel_slices = enc.compute_partial_slices(len(wav), 1.3, 0.75)
        longest = wav_slices[-1].stop
        if longest >= len(wav):
            wav = np.pad(wav, (0, longest - len(wav)), "constant")
        mel = mel_spectrogram(wav)
        mels = np.array([mel[s] for s in mel_slices])
        with torch.no_grad():
            partial = enc(torch.from_numpy(mels).to(enc.device)).cpu().numpy()
        raw = np.mean(partial, axis=0)
        return raw / np.linalg.norm(raw, 2)


@functools.lru_cache(maxsize=1)
def _mel_constants() -> tuple[np.ndarray, np.ndarray]:
    """The filter bank and window librosa gives resemblyzer (tools/make_resemblyzer_mel.py)."""
    with np.load(Path(__file__).resolve().parents[1] / "data" / "resemblyzer_mel.npz") as z:
        return z["basis"], z["window"]


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """resemblyzer's ``wav_to_mel_spectrogram`` of 16 kHz float32 ``wav``, bit for bit, without
    librosa: librosa's centred, zero-padded STFT (400-sample Hann windows, hop 160: float64
    frames, stored as complex64), its power spectrogram and its filter-bank product, with the
    same dtypes and memory layouts (the product goes through BLAS, whose summation order
    follows the layout). Returns ``(frames, 40)`` float32."""
    basis, window = _mel_constants()
    n_fft, hop = window.size, SAMPLE_RATE // 100
    y = np.pad(np.asarray(wav), (n_fft // 2, n_fft // 2), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    # librosa: (bins, frames) complex64 in Fortran order = (frames, bins) in C order, transposed
    stft = np.fft.rfft(window * frames, axis=-1).astype(np.complex64).T
    power = np.abs(stft) ** 2.0
    mel = np.einsum("...ft,mf->...mt", power, basis, optimize=True)
    return mel.astype(np.float32).T


class PyannoteEncoder:
    """A pyannote embedding model (hub id or local path) over the whole clip."""

    def __init__(self, name: str, *, allow_download: bool = False, device: str = "cpu",
                 threads: int = 1, cache_dir: str | Path | None = None) -> None:
        from indomer.backends.diarize import import_pyannote, load_pretrained

        import_pyannote()
        import torch
        from pyannote.audio import Inference, Model

        model = load_pretrained(Model.from_pretrained, name, setting="speakers.embedding",
                                allow_download=allow_download, cache_dir=cache_dir)
        self.name = name
        self.threads = threads
        self._torch = torch
        self._inference = Inference(model, window="whole", device=torch.device(device))

    def embed(self, wav: np.ndarray) -> np.ndarray | None:
        x = _mono(wav)
        if x.size < MIN_SECONDS * SAMPLE_RATE:
            return None
        with torch_threads(self.threads), self._torch.inference_mode():
            out = self._inference({"waveform": self._torch.from_numpy(x)[None],
                                   "sample_rate": SAMPLE_RATE})
        return unit_vector(out)


_LOCK = threading.Lock()
_ENCODERS: dict[tuple[str, bool, str, int], VoiceEncoder] = {}


def load_encoder(name: str = RESEMBLYZER, *, allow_download: bool = False,
                 device: str = "cpu", threads: int = 1) -> VoiceEncoder:
    """The process's encoder for ``name`` (loaded once)."""
    key = (name, allow_download, device, threads)
    with _LOCK:
        if key not in _ENCODERS:
            if name == RESEMBLYZER:
                _ENCODERS[key] = ResemblyzerEncoder(threads=threads)
            else:
                _ENCODERS[key] = PyannoteEncoder(name, allow_download=allow_download,
                                                 device=device, threads=threads)
        return _ENCODERS[key]


@functools.lru_cache(maxsize=1)
def _resemblyzer_version() -> str:
    try:
        lib = version("resemblyzer")
    except PackageNotFoundError:
        return "resemblyzer missing"
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    digest = "unknown"
    for folder in (spec.submodule_search_locations or []) if spec else []:
        weights = Path(folder) / "pretrained.pt"
        if weights.is_file():
            digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    return f"resemblyzer {lib} (pretrained.pt sha256:{digest})"


def model_version(name: str = RESEMBLYZER) -> str:
    """The embedding model and its weights' identity, for fingerprints and build.json."""
    if name == RESEMBLYZER:
        return _resemblyzer_version()
    from indomer.backends.diarize import model_version as pyannote_version

    return pyannote_version(name)

"""Silero VAD (v5/v6 ONNX weights shipped inside the ``silero-vad`` wheel) on onnxruntime.

We call the ONNX graph directly, the way ``silero_vad.utils_vad.OnnxWrapper`` does, because
the package's Python entry points import torch and the media extra must not need torch.
One session per process, single-threaded, so probabilities are the same on every run.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from indomer.errors import MissingExtraError, UsageError

SAMPLE_RATE = 16_000
#: Samples per model call at 16 kHz: one speech probability per 32 ms frame.
FRAME_SAMPLES = 512
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
#: The model sees the last 64 samples of the previous chunk before each new chunk.
CONTEXT_SAMPLES = 64
MODEL_NAME = "silero_vad.onnx"


def model_path() -> Path:
    """Where the installed wheel keeps ``silero_vad.onnx``, found without importing the package.

    ``import silero_vad`` pulls in torch, so we locate the package folder from its import
    spec instead of through ``importlib.resources`` (which would import it).
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("silero-vad/onnxruntime", "media")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / MODEL_NAME
        if path.is_file():
            return path
    raise MissingExtraError("silero-vad/onnxruntime", "media")


def model_version() -> str:
    """``silero-vad <version>`` for fingerprints and build.json."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"silero-vad {version('silero-vad')}"
    except PackageNotFoundError:
        return "silero-vad unknown"


class SileroVAD:
    """Per-frame speech probabilities from Silero VAD at 16 kHz."""

    def __init__(self, path: Path | None = None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise MissingExtraError("silero-vad/onnxruntime", "media") from None
        self.path = Path(path) if path is not None else model_path()
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1  # one thread: identical floats on every run
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.version = model_version()

    def speech_probs(self, wav16k: np.ndarray) -> np.ndarray:
        """One speech probability per 512-sample (32 ms) frame, frame ``i`` starting at
        ``i * FRAME_SECONDS``; the last partial frame is zero-padded, as silero does.

        The recurrent state starts at zero for every call, so a file's probabilities do not
        depend on what the session saw before.
        """
        wav = np.asarray(wav16k, dtype=np.float32)
        if wav.ndim != 1:
            raise UsageError(f"speech_probs: expected mono 1-D audio, got shape {wav.shape}")
        n_frames = -(-wav.size // FRAME_SAMPLES)
        padded = np.zeros(n_frames * FRAME_SAMPLES + CONTEXT_SAMPLES, dtype=np.float32)
        padded[CONTEXT_SAMPLES: CONTEXT_SAMPLES + wav.size] = wav
        state = np.zeros((2, 1, 128), dtype=np.float32)
        sr = np.array(SAMPLE_RATE, dtype=np.int64)
        probs = np.empty(n_frames, dtype=np.float32)
        run = self._session.run
        for i in range(n_frames):
            # chunk = 64 context samples (the tail of the previous chunk) + 512 new ones
            chunk = padded[i * FRAME_SAMPLES: (i + 1) * FRAME_SAMPLES + CONTEXT_SAMPLES]
            out, state = run(None, {"input": chunk[None, :], "state": state, "sr": sr})
            probs[i] = out[0, 0]
        return probs


_LOCK = threading.Lock()
_VAD: list[SileroVAD] = []


def load_vad() -> SileroVAD:
    """The process's one :class:`SileroVAD` (loaded on first use; about 0.1 s)."""
    with _LOCK:
        if not _VAD:
            _VAD.append(SileroVAD())
        return _VAD[0]

"""Write indomer/data/resemblyzer_mel.npz: the mel filter bank and the STFT window that
resemblyzer's ``wav_to_mel_spectrogram`` gets from librosa (16 kHz, 25 ms windows, 40 mels).

``indomer.backends.voice`` computes resemblyzer's spectrogram from these constants, so a
worker need not import ``librosa.filters`` (scipy.signal and numba's caches: about 2 CPU s
per process). tests/backends/test_voice.py checks the file against librosa.

    .venv/bin/python tools/make_resemblyzer_mel.py
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "indomer" / "data" / "resemblyzer_mel.npz"


def constants() -> dict[str, np.ndarray]:
    """The filter bank (float32, 40 x 201) and the periodic Hann window (float64, 400)."""
    import librosa
    from resemblyzer import hparams
    from scipy.signal import get_window

    n_fft = int(hparams.sampling_rate * hparams.mel_window_length / 1000)
    basis = librosa.filters.mel(sr=hparams.sampling_rate, n_fft=n_fft,
                                n_mels=hparams.mel_n_channels)
    window = get_window("hann", n_fft, fftbins=True)
    return {"basis": basis, "window": window}


def main() -> None:
    buf = io.BytesIO()
    np.savez(buf, **constants())  # uncompressed, no timestamps: the same bytes every run
    OUT.write_bytes(buf.getvalue())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

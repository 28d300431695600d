"""Write indomer/data/resample_22050_16k.npy: the low-pass filter ``scipy.signal.resample_poly
(x, 320, 441)`` designs (``firwin(8821, 1 / 441, window=("kaiser", 5.0))``), so the demo's
speech synthesis resamples without importing scipy.signal (1.3 CPU s in every process
that synthesises). tests/demo/test_synth.py checks the file against scipy.

    .venv/bin/python tools/make_resample_filter.py
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "indomer" / "data" / "resample_22050_16k.npy"
UP, DOWN = 320, 441


def design() -> np.ndarray:
    """The filter, float64, 8,821 taps."""
    from scipy.signal import firwin

    return firwin(2 * 10 * DOWN + 1, 1.0 / DOWN, window=("kaiser", 5.0))


def main() -> None:
    buf = io.BytesIO()
    np.save(buf, design())
    OUT.write_bytes(buf.getvalue())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

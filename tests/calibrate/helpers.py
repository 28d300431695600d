"""Helpers shared by the calibration test files (tests/test_calibrate.py and tests/calibrate/)."""

from __future__ import annotations

import struct

import numpy as np

SR = 16_000


def _wav_float(samples: np.ndarray, rate: int = SR, channels: int = 1) -> bytes:
    data = np.asarray(samples, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body

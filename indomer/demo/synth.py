"""Offline synthetic Indonesian corpus pieces: speech with exact word times, talking-head mp4s.

Everything here is generated from wheels already installed with the ``media`` extra (espeak-ng
from ``espeakng-loader``, faces from scikit-image and matplotlib) plus ffmpeg on PATH, so the
demo and the tests never touch the network, and the same inputs give the same bytes.

Speech is made word by word (FIXTURES.md section 1, recipe A): each word is synthesized alone,
resampled to 16 kHz, trimmed where ``|x| > 0.005``, and joined with known silences, so every
word and sentence boundary in the returned truth is exact to the sample.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import shutil
import string
import subprocess
import tempfile
import threading
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from indomer.errors import MissingExtraError, UsageError

SAMPLE_RATE = 16_000
#: A word's audio starts and ends where its amplitude first/last exceeds this (full scale 1.0).
TRIM_LEVEL = 0.005

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, end exclusive


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: ``name`` is voice[+variant] (``id+m3``), pitch 0-99, rate in wpm."""

    name: str
    pitch: int = 50
    rate: int = 150

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 99:
            raise UsageError(f"voice {self.name}: pitch {self.pitch} is outside 0-99")
        if not 80 <= self.rate <= 450:
            raise UsageError(f"voice {self.name}: rate {self.rate} wpm is outside 80-450")


#: Voices that resemblyzer tells apart (FIXTURES.md section 5: different voices <= 0.91 cosine,
#: same voice >= 0.976), so speaker clustering has real speakers to find.
VOICES: dict[str, Voice] = {
    "m3": Voice("id+m3", pitch=30, rate=140),
    "f2": Voice("id+f2", pitch=70, rate=160),
    "id": Voice("id", pitch=50, rate=150),
    "id_p80": Voice("id", pitch=80, rate=150),
    "f4": Voice("id+f4", pitch=60, rate=175),
    # two more men for the demo's six people: resemblyzer puts them at most 0.86 (m2) and
    # 0.85 (m7) from the others, both closest to ``id``, and 0.74 from each other
    "m7": Voice("id+m7", pitch=35, rate=135),
    "m2": Voice("id+m2", pitch=40, rate=150),
}

#: Short natural Indonesian sentences, one emotion each (canonical label names).
DEMO_SENTENCES: tuple[tuple[str, str], ...] = (
    ("happiness", "Saya sangat senang bisa bertemu kalian hari ini."),
    ("happiness", "Akhirnya tim kami menang, rasanya luar biasa!"),
    ("sadness", "Saya sedih sekali karena kucing saya hilang kemarin."),
    ("sadness", "Rumah ini terasa sepi sejak ibu pergi."),
    ("anger", "Saya marah karena mereka selalu datang terlambat!"),
    ("anger", "Jangan pernah berbohong lagi kepada saya!"),
    ("neutral", "Hari ini saya akan memasak nasi goreng untuk makan malam."),
    ("neutral", "Kereta berangkat dari stasiun pukul tujuh pagi."),
    ("fear", "Saya takut berjalan sendirian di jalan yang gelap."),
    ("surprise", "Wah, saya tidak menyangka hadiahnya sebesar ini!"),
    ("disgust", "Makanan ini sudah basi dan baunya sangat menjijikkan."),
    ("neutral", "Besok kami akan membahas resep rendang bersama."),
)

# --- espeak-ng through ctypes -------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_LOCK = threading.Lock()
_PRIVATE_LIB: dict[str, str] = {}  # "path" -> this process's private copy of libespeak-ng
_ESPEAK_RATE_HZ = 22_050
_NOISE_SEED = 1


def _espeak_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError:
        raise MissingExtraError("espeakng-loader", "media") from None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def _private_library() -> tuple[str, str]:
    """A copy of libespeak-ng under a path only this module opens (made once per process).

    espeak-ng keeps synthesis state in C statics that ``espeak_Initialize`` does not reset
    (the pitch-flutter phase, the gain control, ...), so the same word comes out with
    different samples depending on what was spoken before. Loading a private copy afresh for
    every :func:`speak` call and unloading it afterwards starts each call from the same state
    (about 1 ms), and nobody else's espeak (phonemizers load the package's own path) is
    disturbed by our reloads.
    """
    lib_path, data_path = _espeak_paths()
    if "path" not in _PRIVATE_LIB:
        folder = tempfile.mkdtemp(prefix="indomer-espeak-")
        copy = os.path.join(folder, "libespeak-ng-indomer" + Path(lib_path).suffix)
        shutil.copyfile(lib_path, copy)
        _PRIVATE_LIB["path"] = copy
        import atexit

        atexit.register(shutil.rmtree, folder, True)
    return _PRIVATE_LIB["path"], data_path


def _dlclose(lib: ctypes.CDLL) -> None:
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary
    close(lib._handle)


class _Espeak:
    """One fresh load of libespeak-ng; use as a context manager under ``_LOCK``."""

    def __enter__(self) -> Self:
        lib_path, data_path = _private_library()
        lib = ctypes.CDLL(lib_path, mode=ctypes.RTLD_LOCAL)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if rate != _ESPEAK_RATE_HZ:
            _dlclose(lib)
            raise UsageError(f"libespeak-ng at {lib_path} did not start (returned {rate})")
        # espeak_Initialize seeds its noise generator (breathy variants such as f2) with
        # time(NULL); a fixed seed makes the breath noise repeat too.
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed(_NOISE_SEED)
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, _events) -> int:
            if n > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _SynthCallback(collect)  # kept alive as long as the library is
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        return self

    def set_voice(self, voice: Voice) -> None:
        if self._lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise UsageError(f"espeak-ng has no voice {voice.name!r} (try 'id' or 'id+m3')")
        self._lib.espeak_SetParameter(_ESPEAK_RATE, voice.rate, 0)
        self._lib.espeak_SetParameter(_ESPEAK_PITCH, voice.pitch, 0)

    def synth(self, text: str) -> np.ndarray:
        """int16 samples at 22050 Hz for ``text``."""
        self._chunks.clear()
        data = text.encode("utf-8") + b"\0"
        self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8,
                               None, None)
        self._lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks)

    def __exit__(self, *exc: object) -> None:
        self._lib.espeak_Terminate()
        _dlclose(self._lib)
        del self._lib


@functools.lru_cache(maxsize=1)
def _resample_filter() -> np.ndarray:
    """The low-pass filter ``resample_poly(x, 320, 441)`` designs on every call (a Kaiser FIR
    of 8,821 taps), as scipy designs it (tools/make_resample_filter.py), times 320."""
    h = np.load(Path(__file__).resolve().parents[1] / "data" / "resample_22050_16k.npy")
    return h * 320


def _resample_22050_to_16k(x: np.ndarray) -> np.ndarray:
    """``scipy.signal.resample_poly(x / 32768, 320, 441)``, bit for bit, in numpy: importing
    scipy.signal costs 1.3 CPU s in each process that synthesises.

    scipy's polyphase loop (``upfirdn``) adds, for each output sample, the products of the
    input samples in increasing order with the filter's taps of that output's phase, one
    rounded multiply and one rounded add at a time; here the same sums run over all output
    samples at once, tap by tap, in the same order (tests/demo/test_synth.py compares)."""
    up, down = 320, 441
    x = x.astype(np.float64) / 32768.0
    h = _resample_filter()
    n_in = x.size
    n_out = -(-n_in * up // down)
    half_len = (h.size - 1) // 2
    n_pre_pad = down - half_len % down
    n_pre_remove = (half_len + n_pre_pad) // down
    # the filter as resample_poly pads it: zeros in front, then whole phases of `up` taps
    taps = np.concatenate([np.zeros(n_pre_pad), h])
    per_phase = -(-taps.size // up)
    taps = np.concatenate([taps, np.zeros(per_phase * up - taps.size)])
    phases = taps.reshape(per_phase, up).T[:, ::-1]  # phase p: taps p + up*k, last first
    # output j (of the kept ones) is phase t = (j*down) % up at input index (j*down) // up
    j = np.arange(n_pre_remove, n_pre_remove + n_out)
    t, last = (j * down) % up, (j * down) // up
    padded = np.concatenate([np.zeros(per_phase - 1), x, np.zeros(per_phase)])
    out = np.zeros(n_out)
    for m in range(per_phase):  # input last - per_phase + 1 + m, tap m of the flipped phase
        out += padded[last + m] * phases[t, m]
    return out


def _trim(x: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > TRIM_LEVEL)
    if loud.size == 0:
        return x[:0]
    return x[loud[0]: loud[-1] + 1]


def _word_of(token: str) -> str:
    return token.strip(string.punctuation + "\u201c\u201d\u2018\u2019\u2026")


def speak(
    sentences: list[str],
    voice: Voice,
    *,
    word_gap: float = 0.06,
    sentence_gap: float = 0.7,
    lead: float = 0.5,
) -> tuple[np.ndarray, dict[str, Any]]:
    """16 kHz mono float32 speech for ``sentences`` and its exact timing truth.

    Each whitespace token is spoken alone (its punctuation kept, so a final ``!`` or ``.``
    still shapes the intonation), trimmed, and placed after ``word_gap`` seconds of silence
    within a sentence or ``sentence_gap`` between sentences; ``lead`` seconds of silence open
    and close the recording. The truth records, in seconds, every sentence's and word's
    ``start``/``end`` (first and last sample above :data:`TRIM_LEVEL`). Tokens without
    letters or digits are skipped. The result depends only on the arguments.
    """
    if word_gap < 0 or sentence_gap < 0 or lead < 0:
        raise UsageError("speak: word_gap, sentence_gap and lead must be >= 0 seconds")
    gap_w = np.zeros(round(word_gap * SAMPLE_RATE), dtype=np.float64)
    gap_s = np.zeros(round(sentence_gap * SAMPLE_RATE), dtype=np.float64)
    parts: list[np.ndarray] = [np.zeros(round(lead * SAMPLE_RATE), dtype=np.float64)]
    pos = parts[0].size
    truth_sentences: list[dict[str, Any]] = []
    with _LOCK, _Espeak() as engine:
        engine.set_voice(voice)
        for text in sentences:
            words: list[dict[str, Any]] = []
            for token in text.split():
                if not any(ch.isalnum() for ch in token):
                    continue
                audio = _trim(_resample_22050_to_16k(engine.synth(token)))
                if audio.size == 0:
                    continue
                if words:
                    parts.append(gap_w)
                    pos += gap_w.size
                elif truth_sentences:
                    parts.append(gap_s)
                    pos += gap_s.size
                words.append({"word": _word_of(token), "start": pos / SAMPLE_RATE,
                              "end": (pos + audio.size) / SAMPLE_RATE})
                parts.append(audio)
                pos += audio.size
            if not words:
                raise UsageError(f"speak: sentence {text!r} produced no audio")
            truth_sentences.append({"index": len(truth_sentences), "text": text,
                                    "start": words[0]["start"], "end": words[-1]["end"],
                                    "words": words})
    parts.append(np.zeros(round(lead * SAMPLE_RATE), dtype=np.float64))
    wav = np.concatenate(parts).astype(np.float32)
    truth = {
        "sample_rate": SAMPLE_RATE,
        "duration": wav.size / SAMPLE_RATE,
        "voice": {"name": voice.name, "pitch": voice.pitch, "rate": voice.rate},
        "text": " ".join(sentences),
        "sentences": truth_sentences,
    }
    return wav, truth


def write_wav(path: Path, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM mono WAV (the clip format), written with a fixed header so bytes repeat."""
    pcm = np.clip(np.round(np.asarray(wav, dtype=np.float64) * 32767.0), -32768, 32767)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(sample_rate)
        fh.writeframes(pcm.astype("<i2").tobytes())


# --- faces and talking heads -------------------------------------------------------------

#: Head crops (rows, cols) giving a face of about 110-130 px at 380 px high (FIXTURES.md
#: section 2), and the face rectangle inside each crop (x0, y0, x1, y1), measured by hand
#: from brow to chin and cheek to cheek.
FACES: dict[str, dict[str, tuple[int, int, int, int]]] = {
    "astronaut": {"crop": (0, 300, 75, 375), "face": (105, 70, 208, 175)},
    "hopper": {"crop": (40, 420, 75, 455), "face": (100, 110, 290, 290)},
}
#: The whole portraits (the same face boxes in full-image coordinates): smaller faces (about
#: 75 px astronaut, 120 px Hopper at 380 px high), the harder case for a face detector.
PORTRAITS: dict[str, dict[str, tuple[int, int, int, int]]] = {
    "astronaut_full": {"crop": (0, 512, 0, 512), "face": (180, 70, 283, 175)},
    "hopper_full": {"crop": (0, 600, 0, 512), "face": (175, 150, 365, 330)},
}
_BACKGROUND_BGR = (178, 190, 196)
#: More people from scikit-image's ``data.lfw_subset()``: 25 x 25 gray face crops
#: from Labeled Faces in the Wild (news photographs), brow to chin. Each is scaled up to
#: :data:`_LFW_FACE` px (bicubic) and set on the background colour with as much again on
#: every side, so in a talking head the face is about 127 px high, like the head crops.
#: They were chosen among the crops that the Haar cascade finds and dlib's HOG model
#: confirms at every scale, two men and a woman, so that with Hopper the four demo people
#: are as far apart as dlib's face identity vectors allow: different people measure 0.78
#: to 0.84 in the demo's talking heads (Collins and Hopper, left out, 0.88), the same face
#: 0.99 and more. Two more (77 and 32, chosen the same way among the subset's 100 faces:
#: at most 0.86 from the others and from each other) make the demo's six people.
LFW_FACES: dict[str, int] = {"lfw26": 26, "lfw20": 20, "lfw31": 31, "lfw77": 77, "lfw32": 32}
_LFW_FACE = 128
FACES.update(
    {
        name: {
            "crop": (0, 3 * _LFW_FACE, 0, 3 * _LFW_FACE),
            "face": (_LFW_FACE, _LFW_FACE, 2 * _LFW_FACE, 2 * _LFW_FACE),
        }
        for name in LFW_FACES
    }
)


def _face_spec(face: str) -> dict[str, tuple[int, int, int, int]]:
    spec = FACES.get(face) or PORTRAITS.get(face)
    if spec is None:
        raise UsageError(f"unknown face {face!r}; expected one of {sorted(FACES | PORTRAITS)}")
    return spec


def _lfw_face(index: int) -> np.ndarray:
    """LFW crop ``index`` of scikit-image's subset, scaled up and framed (see LFW_FACES)."""
    from PIL import Image
    from skimage import data

    crop = np.asarray(data.lfw_subset()[index])
    if crop.dtype != np.uint8:  # float in [0, 1] (the docstring says uint8; it is not)
        crop = np.clip(np.round(crop.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(crop).resize((_LFW_FACE, _LFW_FACE), Image.BICUBIC))
    canvas = np.empty((3 * _LFW_FACE, 3 * _LFW_FACE, 3), dtype=np.uint8)
    canvas[:] = _BACKGROUND_BGR[::-1]
    canvas[_LFW_FACE: 2 * _LFW_FACE, _LFW_FACE: 2 * _LFW_FACE] = big[:, :, None]
    return canvas


def _face_image(face: str) -> np.ndarray:
    """The RGB head crop (or whole portrait) for ``face``: Eileen Collins (NASA), Grace
    Hopper, or one of the people from the LFW subset, all bundled in wheels."""
    spec = _face_spec(face)
    try:
        if face in LFW_FACES:
            image = _lfw_face(LFW_FACES[face])
        elif face.startswith("astronaut"):
            from skimage import data

            image = data.astronaut()
        else:
            from matplotlib import cbook
            from PIL import Image

            path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"))
    except ImportError:
        raise MissingExtraError("scikit-image/matplotlib", "media") from None
    r0, r1, c0, c1 = spec["crop"]
    return np.ascontiguousarray(image[r0:r1, c0:c1, :3])


def _resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pillow's bilinear resize, uint8 in and out (a few ms; deterministic integer code)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def face_frames(
    face: str,
    n_frames: int,
    *,
    fps: float = 25,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> Iterator[tuple[np.ndarray, Box]]:
    """``n_frames`` BGR frames (H, W, 3 uint8) of a moving head and each frame's true face box.

    The head crop is scaled to 79 % of the frame height, moved +-40 px horizontally and
    +-15 px vertically and scaled +-5 % with sines (at 640x480; proportionally otherwise);
    ``seed`` picks the phases and periods, so a detector test sees real motion that is
    still exactly known.
    """
    width, height = size
    crop = _face_image(face)[:, :, ::-1]  # RGB -> BGR, what ffmpeg's bgr24 expects
    ch, cw = crop.shape[:2]
    fx0, fy0, fx1, fy1 = _face_spec(face)["face"]
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0.0, 2.0 * math.pi, size=3)
    period = np.array([4.0, 2.7, 3.3]) * rng.uniform(0.85, 1.15, size=3)
    unit = height / 480.0
    base = 380.0 * unit / ch
    background = np.empty((height, width, 3), dtype=np.uint8)
    background[:] = _BACKGROUND_BGR
    heads: dict[tuple[int, int], np.ndarray] = {}  # sizes repeat: about 40 distinct ones
    for k in range(n_frames):
        t = k / fps
        wave_ = np.sin(2.0 * math.pi * t / period + phase)
        scale = base * (1.0 + 0.05 * wave_[2])
        h = max(1, round(ch * scale))
        w = max(1, round(cw * scale))
        cx = width / 2 + 40.0 * unit * wave_[0]
        cy = height / 2 + 15.0 * unit * wave_[1]
        x0 = round(cx - w / 2)
        y0 = round(cy - h / 2)
        frame = background.copy()
        head = heads.get((h, w))
        if head is None:
            head = heads[(h, w)] = _resize_bilinear(crop, h, w)
        # paste with clipping, in case a caller asks for a frame smaller than the head
        fx, fy = max(0, x0), max(0, y0)
        tx, ty = min(width, x0 + w), min(height, y0 + h)
        if tx > fx and ty > fy:
            frame[fy:ty, fx:tx] = head[fy - y0: ty - y0, fx - x0: tx - x0]
        sx, sy = w / cw, h / ch
        box = (
            max(0, x0 + round(fx0 * sx)), max(0, y0 + round(fy0 * sy)),
            min(width, x0 + round(fx1 * sx)), min(height, y0 + round(fy1 * sy)),
        )
        yield frame, box


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise UsageError("ffmpeg is not on PATH; install it (Debian: apt-get install ffmpeg)")
    return exe


def talking_head(
    wav: np.ndarray,
    face: str,
    out_mp4: Path,
    *,
    fps: int = 25,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> list[Box]:
    """Write an H.264/AAC mp4 of ``face`` talking over ``wav`` (16 kHz mono); return the boxes.

    The video has ``ceil(duration * fps)`` frames, so it outlasts the audio by less than one
    frame; the audio keeps its timing (cross-correlation lag 0). Encoding is single-threaded
    with bit-exact flags and no metadata, so the same inputs give a byte-identical file.
    The file appears atomically. Returns one face box (x0, y0, x1, y1) per video frame.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1 or wav.size == 0:
        raise UsageError("talking_head: wav must be a non-empty 1-D 16 kHz array")
    duration = wav.size / SAMPLE_RATE
    n_frames = math.ceil(duration * fps - 1e-9)
    width, height = size
    if width % 2 or height % 2:
        raise UsageError(f"talking_head: size {size} must be even for yuv420p")
    out_mp4 = Path(out_mp4)
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    boxes: list[Box] = []
    with tempfile.TemporaryDirectory(prefix="indomer-th-") as tmp:
        audio = Path(tmp) / "speech.wav"
        write_wav(audio, wav)
        partial = out_mp4.with_name(f".{out_mp4.name}.partial")
        cmd = [
            _ffmpeg(), "-nostdin", "-y", "-v", "error",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", str(fps),
            "-i", "pipe:0",
            "-i", str(audio),
            "-map", "0:v:0", "-map", "1:a:0",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-pix_fmt", "yuv420p",
            "-threads", "1",
            "-c:a", "aac", "-b:a", "96k", "-ar", str(SAMPLE_RATE), "-ac", "1",
            "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
            "-map_metadata", "-1", "-movflags", "+faststart",
            "-f", "mp4", str(partial),
        ]
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=errors)
            try:
                for frame, box in face_frames(face, n_frames, fps=fps, size=size, seed=seed):
                    proc.stdin.write(frame.tobytes())
                    boxes.append(box)
            except BrokenPipeError:
                pass  # ffmpeg stopped early; its exit code and message say why
            finally:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
                code = proc.wait()
            if code != 0:
                errors.seek(0)
                message = errors.read().decode("utf-8", "replace").strip().splitlines()
                partial.unlink(missing_ok=True)
                raise UsageError(f"{out_mp4}: ffmpeg failed ({code}): "
                                 f"{message[-1] if message else 'no message'}")
        os.replace(partial, out_mp4)
    return boxes

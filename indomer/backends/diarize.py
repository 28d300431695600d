"""pyannote.audio speaker diarization, offline first, plus the pure per-clip summary.

* **Loading.** ``Pipeline.from_pretrained`` takes a Hugging Face hub id or a local folder
  (``config.yaml`` + model subfolders). The token comes from huggingface_hub's usual places
  (``HF_TOKEN``, ``hf auth login``); we never pass or print it. Unless downloads are allowed,
  the load runs with huggingface_hub's HTTP backend refusing every request, which is what
  ``HF_HUB_OFFLINE=1`` does, scoped to the load: a cached model loads, a missing one is a
  one-line error naming the model, the licence to accept (pyannote's models are gated) and
  the fetch command. Telemetry is off: ``PYANNOTE_METRICS_ENABLED=false`` is set before
  pyannote is first imported.
* **Audio in memory.** The pipeline gets ``{"waveform": (1, n) tensor, "sample_rate":
  16000}``, so no torchcodec/FFmpeg file decoding happens inside pyannote.
* **Per-clip summary** (:func:`clip_summary`) is pure arithmetic on the source's turns, so it
  is tested with hand-made turns and exact numbers.
* ``write_test_pipeline`` writes a pipeline with random weights (FIXTURES.md section 6) for
  tests and benchmarks: it exercises the code path and costs what the real architecture
  costs, but its speakers mean nothing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indomer.errors import MissingExtraError, UsageError

SAMPLE_RATE = 16_000
Turn = tuple[float, float, str]  # (start, end, label), seconds of the source
#: pyannote's current open diarization pipeline (gated: accept its conditions on the Hub).
DEFAULT_PIPELINE = "pyannote/speaker-diarization-community-1"


# --------------------------------------------------------------------------- loading


def import_pyannote() -> Any:
    """``pyannote.audio`` with telemetry off.

    Set, not defaulted: pyannote writes its own default (on) into the environment when first
    imported (whisperx imports it too), but reads the variable again before every report.
    """
    os.environ["PYANNOTE_METRICS_ENABLED"] = "false"
    try:
        import pyannote.audio
    except ImportError:
        raise MissingExtraError("pyannote.audio", "speakers") from None
    return pyannote.audio


def _offline_session() -> Any:
    """A requests session that refuses every request, as huggingface_hub's offline mode does."""
    import requests
    from huggingface_hub.errors import OfflineModeIsEnabled

    class _Refuse(requests.adapters.HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            raise OfflineModeIsEnabled(f"indomer: downloads are off ({request.url})")

    session = requests.Session()
    session.mount("http://", _Refuse())
    session.mount("https://", _Refuse())
    return session


@contextlib.contextmanager
def hub_access(allow_download: bool) -> Iterator[None]:
    """Inside the block huggingface_hub reads only its cache unless ``allow_download``."""
    if allow_download:
        yield
        return
    from huggingface_hub import configure_http_backend
    from huggingface_hub.utils import _http

    previous = getattr(_http, "_GLOBAL_BACKEND_FACTORY", None)
    configure_http_backend(backend_factory=_offline_session)
    try:
        yield
    finally:
        if previous is not None:
            configure_http_backend(backend_factory=previous)
        else:
            configure_http_backend()


def is_local(name: str) -> bool:
    """A local folder or file (else ``name`` is taken as a Hugging Face hub id)."""
    return Path(name).expanduser().exists()


def missing_model_message(name: str, setting: str, cause: BaseException | None = None) -> str:
    """The one line that says how to get a hub model onto this machine."""
    why = f" ({type(cause).__name__})" if cause is not None else ""
    return (
        f"{setting}: pyannote model {name!r} is not in the local Hugging Face cache and "
        f"downloads are off{why}; accept its licence at https://hf.co/{name} (a gated model), "
        f"log in with `huggingface-cli login`, then fetch it with `huggingface-cli download "
        f"{name}` (or set speakers.allow_download: true), or give a local folder instead"
    )


def load_pretrained(
    loader: Any,
    name: str,
    *,
    setting: str,
    allow_download: bool = False,
    cache_dir: str | Path | None = None,
) -> Any:
    """``loader(name)`` (a pyannote ``from_pretrained``) with the hub guarded and errors
    turned into one line naming ``setting`` and the model."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    local = is_local(name)
    if local:
        name = str(Path(name).expanduser())
    kwargs = {} if cache_dir is None else {"cache_dir": cache_dir}
    try:
        # pyannote prints its own advice on hub errors; ours below is the one line that counts
        with hub_access(allow_download), contextlib.redirect_stdout(io.StringIO()):
            obj = loader(name, **kwargs)
    except (HfHubHTTPError, OfflineModeIsEnabled) as exc:
        if local:
            raise UsageError(f"{setting}: {name} refers to a hub model that is not cached "
                             f"({type(exc).__name__}); make its config point to local "
                             "folders, or fetch the model it names") from None
        raise UsageError(missing_model_message(name, setting, exc)) from None
    except HFValidationError:
        raise UsageError(f"{setting}: {name!r} is neither an existing local path nor a hub id "
                         "(owner/name); fix the path or the id") from None
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise UsageError(f"{setting}: cannot load {name}: {exc.strerror or exc} (expected a "
                         "pyannote folder with config.yaml / pytorch_model.bin, or a hub "
                         "id); fix the path") from None
    if obj is None:
        raise UsageError(missing_model_message(name, setting))
    return obj


_PIPELINES: dict[tuple[str, str, bool], Any] = {}


def load_pipeline(
    name: str = DEFAULT_PIPELINE,
    *,
    allow_download: bool = False,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
) -> Any:
    """The diarization pipeline ``name`` (hub id or local folder), loaded once per process."""
    key = (name, device, allow_download)
    if key not in _PIPELINES:
        import_pyannote()
        import torch
        from pyannote.audio import Pipeline

        pipeline = load_pretrained(Pipeline.from_pretrained, name, setting="speakers.diarization",
                                   allow_download=allow_download, cache_dir=cache_dir)
        pipeline.to(torch.device(device))
        _PIPELINES[key] = pipeline
    return _PIPELINES[key]


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts):
            h.update(p.relative_to(folder).as_posix().encode() + b"\0")
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=16)
def _local_digest(path: str, stamp: tuple) -> str:
    p = Path(path)
    if p.is_file():
        with open(p, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()[:12]
    return _tree_digest(p)


def _stamp(path: Path) -> tuple:
    files = [path] if path.is_file() else sorted(q for q in path.rglob("*") if q.is_file())
    return tuple((str(q), q.stat().st_size, q.stat().st_mtime_ns) for q in files)


def available(name: str, filename: str = "config.yaml") -> bool:
    """Whether ``name`` loads without a download: a local path, or a hub id whose
    ``filename`` (``config.yaml`` for pipelines, ``pytorch_model.bin`` for models) is cached.
    For ``indomer doctor``; the load itself still checks everything it needs."""
    if is_local(name):
        return True
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, filename), str)


def model_version(name: str) -> str:
    """``<name>@<revision>`` for fingerprints: a local folder's content sha256 (12 hex), a
    hub model's cached commit ("not cached" when absent), plus the pyannote.audio version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        lib = f"pyannote.audio {version('pyannote.audio')}"
    except PackageNotFoundError:
        lib = "pyannote.audio missing"
    if is_local(name):
        path = Path(name).expanduser().resolve()
        return f"{path.name}@sha256:{_local_digest(str(path), _stamp(path))}; {lib}"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.yaml")
        if not isinstance(cached, str):
            cached = try_to_load_from_cache(name, "pytorch_model.bin")
    except ImportError:
        cached = None
    revision = Path(cached).parent.name if isinstance(cached, str) else "not cached"
    return f"{name}@{revision}; {lib}"


# --------------------------------------------------------------------------- running


def diarize_source(wav: np.ndarray, pipeline: Any, *, threads: int = 1) -> list[Turn]:
    """Speaker turns ``(start, end, label)`` of 16 kHz mono ``wav``, sorted, overlaps kept.

    Labels are the pipeline's (``SPEAKER_00``...), local to this source. Times are rounded
    to microseconds and clamped to the audio. ``threads``: torch threads for the call (20 s
    of audio with the test pipeline here: 3.0 s with 1 thread, 12.5 s with 2 on a busy
    machine).
    """
    x = np.ascontiguousarray(np.asarray(wav, dtype=np.float32))
    if x.ndim != 1:
        raise UsageError(f"diarize_source: expected mono 1-D audio, got shape {x.shape}")
    if x.size == 0:
        return []
    import torch

    from indomer.backends.torchutil import torch_threads

    duration = x.size / SAMPLE_RATE
    with torch_threads(threads), torch.inference_mode():
        out = pipeline({"waveform": torch.from_numpy(x)[None], "sample_rate": SAMPLE_RATE})
    annotation = getattr(out, "speaker_diarization", out)
    turns = []
    for segment, _, label in annotation.itertracks(yield_label=True):
        start = round(max(0.0, float(segment.start)), 6)
        end = round(min(duration, float(segment.end)), 6)
        if end > start:
            turns.append((start, end, str(label)))
    return sorted(turns)


# --------------------------------------------------------------------------- clip summary


def _merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _by_label(turns: Sequence[Turn], start: float, end: float) -> dict[str, list]:
    """Each label's speech inside ``[start, end]``, merged."""
    per: dict[str, list[tuple[float, float]]] = {}
    for s, e, label in turns:
        s, e = max(float(s), start), min(float(e), end)
        if e > s:
            per.setdefault(str(label), []).append((s, e))
    return {label: _merge(iv) for label, iv in sorted(per.items())}


def _coverage(per: dict[str, list]) -> tuple[float, float]:
    """(time with >= 1 speaker, time with >= 2 speakers) by a sweep over the boundaries."""
    events = sorted((t, d) for iv in per.values() for s, e in iv for t, d in ((s, 1), (e, -1)))
    speech = overlap = 0.0
    active = 0
    prev = None
    for t, d in events:
        if prev is not None and t > prev:
            if active >= 1:
                speech += t - prev
            if active >= 2:
                overlap += t - prev
        active += d
        prev = t
    return speech, overlap


def clip_summary(
    turns: Sequence[Turn], start: float, end: float, *, min_speaker_time: float = 0.0
) -> dict[str, Any]:
    """Who speaks in the clip ``[start, end]`` (seconds of the source).

    ``n_speakers``: labels with at least ``min_speaker_time`` s of speech in the clip (and
    some); ``primary``: the label with the most speech (ties: the smaller label);
    ``primary_share``: its speech over the clip's speech time (any speaker; None without
    speech); ``overlap``: the share of the speech time where two or more speak at once.
    """
    per = _by_label(turns, float(start), float(end))
    times = {label: sum(e - s for s, e in iv) for label, iv in per.items()}
    speech, overlap = _coverage(per)
    if speech <= 0:
        return {"n_speakers": 0, "primary": None, "primary_share": None, "overlap": None}
    primary = min(times, key=lambda lab: (-times[lab], lab))
    n = sum(1 for t in times.values() if t > 0 and t >= min_speaker_time)
    return {
        "n_speakers": n,
        "primary": primary,
        "primary_share": round(times[primary] / speech, 6),
        "overlap": round(overlap / speech, 6),
    }


def solo_regions(turns: Sequence[Turn], start: float, end: float, label: str) -> list:
    """Where ``label`` speaks alone inside ``[start, end]``, as ``(s, e)`` seconds relative
    to ``start`` (what to embed when another speaker intrudes on a clip)."""
    per = _by_label(turns, float(start), float(end))
    mine = per.get(label, [])
    others = _merge(iv for lab, ivs in per.items() if lab != label for iv in ivs)
    out = []
    for s, e in mine:
        cur = s
        for os_, oe in others:
            if oe <= cur or os_ >= e:
                continue
            if os_ > cur:
                out.append((cur, os_))
            cur = max(cur, oe)
        if cur < e:
            out.append((cur, e))
    return [(round(s - start, 6), round(e - start, 6)) for s, e in out]


# --------------------------------------------------------------------------- test pipeline


def write_test_pipeline(folder: str | Path, *, segmentation_step: float = 0.5,
                        seed: int = 0) -> Path:
    """A pyannote ``SpeakerDiarization`` folder with random weights (FIXTURES.md section 6).

    Segmentation: PyanNet (powerset, 3 speakers, 10 s chunks); embedding: WeSpeakerResNet34;
    PLDA: synthetic. It loads offline with ``Pipeline.from_pretrained(folder)`` and runs the
    real architecture at the real cost, but finds meaningless speakers: for code-path tests
    and timing only. The same ``seed`` gives the same weights.
    """
    import_pyannote()
    import torch
    import yaml
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34
    from pyannote.audio.models.segmentation import PyanNet

    try:
        from lightning import __version__ as lightning_version
    except ImportError:  # pragma: no cover - pyannote requires lightning
        lightning_version = "unknown"

    folder = Path(folder)
    for sub in ("segmentation", "embedding", "plda"):
        (folder / sub).mkdir(parents=True, exist_ok=True)

    def save(model: Any, path: Path) -> None:
        # the checkpoint layout lightning's Trainer.save_checkpoint writes, without a Trainer
        ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": lightning_version, "epoch": 0, "global_step": 0}
        model.on_save_checkpoint(ckpt)
        torch.save(ckpt, path)

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        seg = PyanNet(sincnet={"stride": 10})
        seg.specifications = Specifications(
            problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME,
            duration=10.0, classes=["speaker#1", "speaker#2", "speaker#3"],
            powerset_max_classes=2, permutation_invariant=True)
        seg.build()
        save(seg, folder / "segmentation" / "pytorch_model.bin")
        emb = WeSpeakerResNet34()
        emb.specifications = Specifications(problem=Problem.REPRESENTATION,
                                            resolution=Resolution.CHUNK, duration=10.0)
        emb.build()
        save(emb, folder / "embedding" / "pytorch_model.bin")
    rng = np.random.default_rng(seed)
    lda, _ = np.linalg.qr(rng.standard_normal((256, 128)))
    np.savez(folder / "plda" / "xvec_transform.npz", mean1=np.zeros(256), mean2=np.zeros(128),
             lda=lda)
    np.savez(folder / "plda" / "plda.npz", mu=np.zeros(128), tr=np.eye(128),
             psi=np.linspace(2.0, 0.1, 128))
    config = {
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {"segmentation": "$model/segmentation", "embedding": "$model/embedding",
                       "plda": "$model/plda", "clustering": "VBxClustering",
                       "segmentation_step": float(segmentation_step)},
        },
        "params": {"segmentation": {"min_duration_off": 0.0},
                   "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}},
        "dependencies": {"pyannote.audio": "4.0.0"},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    return folder

"""Ask a served model (any OpenAI-compatible chat endpoint) about every clip of a split.

Each clip becomes one ``POST {endpoint}/chat/completions``, sent by the official ``openai``
client (so what reaches vLLM, or a hosted API, is exactly what that client sends). The user
turn holds the clip's media as the content parts vLLM accepts for Qwen2.5-Omni, then the
prompt with the transcript:

- audio: ``{"type": "input_audio", "input_audio": {"data": BASE64, "format": "wav"}}`` (the
  OpenAI part; vLLM accepts it as well as its own ``audio_url``);
- video: ``{"type": "video_url", "video_url": {"url": "data:video/mp4;base64,..."}}`` (vLLM's
  part); with audio as well, the audio is the mp4's own track, sent once, and the request says
  ``"mm_processor_kwargs": {"use_audio_in_video": true}`` (how Qwen2.5-Omni and OmniMER hear a
  video, like ms-swift's ``USE_AUDIO_IN_VIDEO``);
- text: the transcript inside the prompt.

Answers are appended to the predictions file one fsync'd line at a time, so ``kill -9`` loses
only the requests in flight, and a rerun asks only the ids not yet answered (a torn last line is
dropped and its id asked again). A finished run rewrites the file in dataset order (atomically),
so the file does not depend on which answer came back first. Transient failures (HTTP 408, 409,
429, 5xx, timeouts, refused connections, an answer that is not JSON) are retried with exponential
backoff and jitter from a seeded generator, honouring ``Retry-After``; anything else stops the
run with one line. The API key is read from the environment and never printed or written.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indomer.errors import DataError, IndomerError, MissingExtraError, UsageError, first_few
from indomer.labels import label_set

#: Tasks a served model is asked about (the scorer parses its free-text answers).
TASKS: tuple[str, ...] = ("emotion", "sentiment")
MODALITIES: tuple[str, ...] = ("text", "audio", "video")
DEFAULT_MODALITIES = "text,audio,video"
#: The prompt file shared with ``indomer export`` (a checkpoint fine-tuned on the exported
#: records is asked exactly what it was trained on).
PROMPTS_FILE = "prompts.yaml"
TRANSCRIPT = "{transcript}"
#: Greedy decoding, and room for a short sentence ("The speaker sounds happy.").
TEMPERATURE = 0.0
MAX_TOKENS = 64
#: Retry delays: BACKOFF_BASE * 2**attempt seconds, at most BACKOFF_MAX, times a jitter factor
#: in [0.75, 1] (as the openai client does); a server's Retry-After up to RETRY_AFTER_MAX wins.
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
RETRY_AFTER_MAX = 120.0
RETRY_STATUSES = frozenset({408, 409, 429})
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_AUDIO_FORMATS = {".wav": "wav", ".mp3": "mp3", ".flac": "flac"}
_VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
}


# --------------------------------------------------------------------------- the prompt


@dataclass(frozen=True)
class Prompt:
    """What every request of a run says around the clip: the system turn and the user text
    (``{transcript}`` where the clip's transcript goes), from ``schemas/prompts.yaml``."""

    version: int
    system: str
    user: str

    @property
    def sha256(self) -> str:
        """Hex sha256 of the prompt as sent (system and user text, canonical JSON): the same
        hash means the same words were asked."""
        doc = json.dumps({"system": self.system, "user": self.user}, sort_keys=True)
        return hashlib.sha256(doc.encode("utf-8")).hexdigest()

    def render(self, transcript: str | None) -> str:
        return self.user.replace(TRANSCRIPT, transcript or "")


def load_prompts() -> dict:
    """``schemas/prompts.yaml`` (the one versioned prompt file)."""
    from importlib import resources

    import yaml

    return yaml.safe_load(resources.files("indomer.schemas").joinpath(PROMPTS_FILE).read_bytes())


def prompt_for(task: str, modalities: tuple[str, ...], doc: dict | None = None) -> Prompt:
    """The prompt of ``task``: the instruction naming the labels as ``english (indonesian)``,
    then the transcript line when text is sent, as ``indomer export`` writes its user turns
    (after the media, which here are content parts instead of ``<video>`` tags)."""
    doc = load_prompts() if doc is None else doc
    entry = doc["tasks"][task]
    ls = label_set(task)
    labels = ", ".join(f"{n} ({entry['names_id'][n]})" for n in ls.names)
    instruction = " ".join(entry["instruction"].split()).replace("{labels}", labels)
    user = instruction
    if "text" in modalities:
        user += "\n" + doc["transcript"].replace("{transcript}", TRANSCRIPT)
    return Prompt(version=int(doc["version"]), system=" ".join(doc["system"].split()), user=user)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """One run's choices, checked once by :func:`settings`."""

    endpoint: str
    model: str
    split: str
    task: str
    modalities: tuple[str, ...]
    concurrency: int
    timeout: float
    retries: int
    api_key_env: str
    max_answer: int = 65536

    @property
    def url(self) -> str:
        return f"{self.endpoint}/chat/completions"


def parse_modalities(value: str) -> tuple[str, ...]:
    """``text,audio,video`` (any subset, any order) -> the canonical ordered tuple."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    bad = [p for p in parts if p not in MODALITIES]
    if bad or not parts:
        raise UsageError(
            f"--modalities {value!r}: expected a comma-separated subset of "
            f"{', '.join(MODALITIES)} (e.g. text,audio,video)"
        )
    return tuple(m for m in MODALITIES if m in parts)


def normalise_endpoint(value: str) -> str:
    """The API base URL (``http://HOST:8000/v1``); a pasted ``.../chat/completions`` is cut."""
    url = value.strip().rstrip("/")
    url = url.removesuffix("/chat/completions")
    if not re.match(r"^https?://[^/\s]+", url):
        raise UsageError(
            f"--endpoint {value!r}: expected the API base URL of an OpenAI-compatible server, "
            "e.g. http://localhost:8000/v1"
        )
    return url


def settings(
    *,
    endpoint: str,
    model: str,
    split: str = "test",
    task: str = "emotion",
    modalities: str = DEFAULT_MODALITIES,
    concurrency: int = 4,
    timeout: float = 120.0,
    retries: int = 5,
    api_key_env: str = "OPENAI_API_KEY",
    max_answer: int = 65536,
) -> Settings:
    """Validate the options (each bad one is a one-line :class:`UsageError`)."""
    if task not in TASKS:
        raise UsageError(f"--task {task!r}: expected one of {', '.join(TASKS)}")
    if not model.strip():
        raise UsageError("--model: expected the served model's name (GET /v1/models lists it)")
    if concurrency < 1:
        raise UsageError(f"--concurrency {concurrency}: expected at least 1")
    if not timeout > 0:
        raise UsageError(f"--timeout {timeout:g}: expected seconds > 0")
    if retries < 0:
        raise UsageError(f"--retries {retries}: expected 0 or more")
    if max_answer < 1:
        raise UsageError(f"--max-answer {max_answer}: expected bytes >= 1")
    if not _ENV_NAME_RE.match(api_key_env):
        # never echo the value: a user may have pasted the key itself here
        raise UsageError(
            "--api-key-env takes the NAME of an environment variable holding the key "
            "(e.g. OPENAI_API_KEY), not the key itself"
        )
    return Settings(
        endpoint=normalise_endpoint(endpoint),
        model=model.strip(),
        split=split,
        task=task,
        modalities=parse_modalities(modalities),
        concurrency=concurrency,
        timeout=float(timeout),
        retries=retries,
        api_key_env=api_key_env,
        max_answer=max_answer,
    )


# --------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class Clip:
    """What is sent about one clip: its transcript and the media bytes asked for."""

    id: str
    text: str | None
    audio: dict | None = None
    video: dict | None = None


def _has_bytes(media: Any) -> bool:
    return isinstance(media, dict) and bool(media.get("bytes"))


def lacking(clip: Clip, modalities: tuple[str, ...]) -> list[str]:
    """The modalities asked for that this clip does not carry (release builds have no media)."""
    out = []
    if "text" in modalities and not (clip.text or "").strip():
        out.append("text")
    if "audio" in modalities and "video" not in modalities and not _has_bytes(clip.audio):
        out.append("audio")
    if "video" in modalities and not _has_bytes(clip.video):
        out.append("video")
    return out


def iter_clips(out: Path, split: str, modalities: tuple[str, ...]) -> Iterator[Clip]:
    """The split's clips in dataset order, read a few rows at a time: only a handful of clips'
    media are ever in memory (shards are written in row groups of 64 clips)."""
    import pyarrow.parquet as pq

    from indomer.dataset import shard_paths

    columns = ["id", "text"]
    if "video" in modalities:
        columns.append("video")  # with audio too, the audio is the mp4's own track
    elif "audio" in modalities:
        columns.append("audio")
    for path in shard_paths(out, split):
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=8, columns=columns)
            for batch in batches:
                for row in batch.to_pylist():
                    yield Clip(
                        id=row["id"],
                        text=row.get("text"),
                        audio=row.get("audio"),
                        video=row.get("video"),
                    )
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable Parquet shard ({exc}); rebuild") from exc


def split_ids(out: Path, split: str) -> list[str]:
    """The split's ids in dataset order (a missing split is one line naming those there)."""
    from indomer.dataset import read_split

    return [str(i) for i in read_split(out, split, columns=["id"])["id"]]


# --------------------------------------------------------------------------- requests


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def build_request(clip: Clip, s: Settings, prompt: Prompt) -> dict:
    """The JSON body of the chat-completions request for one clip."""
    parts: list[dict] = []
    extra: dict = {}
    if "video" in s.modalities:
        video = clip.video or {}
        suffix = Path(str(video.get("path") or "clip.mp4")).suffix.lower()
        url = _data_url(_VIDEO_TYPES.get(suffix, "video/mp4"), video["bytes"])
        parts.append({"type": "video_url", "video_url": {"url": url}})
        if "audio" in s.modalities:
            extra["mm_processor_kwargs"] = {"use_audio_in_video": True}
    elif "audio" in s.modalities:
        audio = clip.audio or {}
        suffix = Path(str(audio.get("path") or "clip.wav")).suffix.lower()
        data = base64.b64encode(audio["bytes"]).decode("ascii")
        parts.append(
            {
                "type": "input_audio",
                "input_audio": {"data": data, "format": _AUDIO_FORMATS.get(suffix, "wav")},
            }
        )
    parts.append({"type": "text", "text": prompt.render(clip.text)})
    body = {
        "model": s.model,
        "messages": [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": parts},
        ],
        "temperature": TEMPERATURE,
        "max_tokens": MAX_TOKENS,
    }
    body.update(extra)
    return body


def shown_request(body: dict, s: Settings, key_set: bool) -> str:
    """The request as ``--dry-run`` prints it: media abbreviated, the key never shown."""

    def short(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: short(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [short(v) for v in value]
        if isinstance(value, str) and value.startswith("data:") and ";base64," in value:
            head, sep, data = value.partition(";base64,")
            return f"{head}{sep}<{len(base64.b64decode(data))} bytes, not shown>"
        if isinstance(value, str) and key == "data":  # input_audio
            return f"<base64 of {len(base64.b64decode(value))} bytes, not shown>"
        return value

    auth = f"Bearer <${s.api_key_env}, not shown>" if key_set else "Bearer EMPTY"
    lines = [
        f"POST {s.url}",
        f"Authorization: {auth}",
        "Content-Type: application/json",
        "",
        json.dumps(short(body), indent=2, sort_keys=True, ensure_ascii=False),
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- answers


class Transient(Exception):
    """A failure worth retrying; ``final`` is the one line shown when the retries run out."""

    def __init__(self, final: str, retry_after: float | None = None) -> None:
        super().__init__(final)
        self.final = final
        self.retry_after = retry_after


class PredictError(IndomerError):
    """The endpoint cannot be used (down, not the chat API, refused the key, ...)."""


@dataclass(frozen=True)
class Answer:
    text: str | None
    finish_reason: str | None
    truncated: bool = False


#: Bytes of a response body read at most: a body beyond it is refused, not stored.
BODY_MAX = 64 * 1024 * 1024


def cap_answer(answer: Answer, limit: int) -> Answer:
    """``answer`` with its text cut to ``limit`` UTF-8 bytes (flagged), so one runaway
    generation cannot fill the predictions file."""
    if answer.text is None:
        return answer
    data = answer.text.encode("utf-8")
    if len(data) <= limit:
        return answer
    text = data[:limit].decode("utf-8", "ignore")
    return Answer(text=text, finish_reason=answer.finish_reason, truncated=True)


def redact(text: str, secret: str | None) -> str:
    """``text`` on one line, at most 300 characters, with ``secret`` replaced by ``***``."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    text = " ".join(str(text).split())
    return text if len(text) <= 300 else text[:297] + "..."


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds a server asks to wait (``retry-after-ms`` or ``retry-after`` in seconds)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) / scale
        except ValueError:
            continue
    return None


def backoff(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: ``BACKOFF_BASE * 2**attempt`` (capped) times [0.75, 1]."""
    return min(BACKOFF_BASE * 2.0**attempt, BACKOFF_MAX) * (1.0 - 0.25 * rng.random())


def parse_answer(text: str, where: str) -> Answer:
    """``choices[0].message.content`` of a chat-completions body; malformed JSON is transient,
    a body without choices is not."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Transient(
            f"{where}: the answer is not valid JSON ({exc}); is this an OpenAI-compatible "
            "chat endpoint?"
        ) from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        raise PredictError(
            f"{where}: the answer has no choices (expected choices[0].message.content); "
            "check that --endpoint serves the OpenAI chat API and the server's log"
        )
    first = choices[0] if isinstance(choices[0], dict) else {}
    message = first.get("message") if isinstance(first.get("message"), dict) else {}
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict)) or None
    if content is not None and not isinstance(content, str):
        content = None
    reason = first.get("finish_reason")
    return Answer(text=content, finish_reason=reason if isinstance(reason, str) else None)


class ChatClient:
    """One chat-completions call through the official ``openai`` client (its own retries off:
    :func:`ask` retries with a seeded generator and one line at the end)."""

    def __init__(self, s: Settings, api_key: str | None) -> None:
        try:
            import openai
        except ImportError as exc:
            raise MissingExtraError("openai", "predict") from exc
        self._openai = openai
        self._key = api_key
        self.s = s
        self._client = openai.OpenAI(
            api_key=api_key or "EMPTY",
            base_url=s.endpoint,
            max_retries=0,
            timeout=s.timeout,
        )

    def close(self) -> None:
        self._client.close()

    def send(self, body: dict, clip_id: str) -> Answer:
        openai = self._openai
        s = self.s
        where = f"{s.url} ({clip_id})"
        kwargs = {k: v for k, v in body.items() if k not in ("mm_processor_kwargs",)}
        extra = {k: body[k] for k in ("mm_processor_kwargs",) if k in body}
        deadline = time.monotonic() + s.timeout
        try:
            with self._client.chat.completions.with_streaming_response.create(
                **kwargs, extra_body=extra or None
            ) as raw:
                response = raw.http_response
                ctype = response.headers.get("content-type", "")
                if "json" not in ctype.split(";")[0]:
                    raise PredictError(
                        f"{s.url}: answered HTTP {response.status_code} with "
                        f"{ctype or 'no content-type'}"
                        f"{' (an HTML page)' if 'html' in ctype else ''}, not the OpenAI chat "
                        "API's JSON; --endpoint should be the API base, e.g. "
                        "http://HOST:8000/v1"
                    )
                body = self._read_body(response, deadline, where)
        except openai.APITimeoutError:
            raise Transient(
                f"{where}: no answer within --timeout {s.timeout:g} s; raise --timeout, lower "
                "--concurrency, or check the server"
            ) from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            reason = redact(str(cause) or type(cause).__name__, self._key)
            raise Transient(
                f"{s.endpoint}: cannot connect ({reason}); start the server or fix --endpoint"
            ) from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc, where) from None
        text = body.decode(response.encoding or "utf-8", "replace")
        return cap_answer(parse_answer(text, where), s.max_answer)

    def _read_body(self, response: Any, deadline: float, where: str) -> bytes:
        """The whole body by ``deadline`` (``--timeout`` is a total per request: a server
        trickling a byte at a time cannot hold a worker forever), at most :data:`BODY_MAX`."""
        chunks: list[bytes] = []
        size = 0
        stream = response.iter_bytes()
        while True:
            try:
                chunk = next(stream)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - the HTTP library's timeout or cut stream
                raise Transient(
                    f"{where}: the answer stopped half-way ({type(exc).__name__}); "
                    "check the server"
                ) from None
            chunks.append(chunk)
            size += len(chunk)
            if size > BODY_MAX:
                raise PredictError(
                    f"{where}: the answer is larger than {BODY_MAX // (1024 * 1024)} MiB; "
                    "lower max_tokens on the server or check it"
                )
            if time.monotonic() > deadline:
                raise Transient(
                    f"{where}: no complete answer within --timeout {self.s.timeout:g} s "
                    "(a total per request); raise --timeout or check the server"
                )
        return b"".join(chunks)

    def _status_error(self, exc: Any, where: str) -> Exception:
        s = self.s
        status = exc.status_code
        response = exc.response
        ctype = response.headers.get("content-type", "") if response is not None else ""
        if "html" in ctype:  # a proxy's error page: its markup says nothing useful on one line
            shown = f"an HTML page, {ctype.split(';')[0]}"
        else:
            shown = redact(_error_message(exc.body, response), self._key)
        if status in RETRY_STATUSES or status >= 500:
            hint = (
                "lower --concurrency or raise --retries"
                if status == 429
                else "check the server's log"
            )
            return Transient(
                f"{where}: HTTP {status} ({shown}); {hint}",
                retry_after=retry_after_seconds(response.headers if response is not None else None),
            )
        if "html" in ctype:
            return PredictError(
                f"{s.url}: answered HTTP {status} with an HTML page ({ctype}), not the OpenAI "
                "chat API; --endpoint should be the API base, e.g. http://HOST:8000/v1"
            )
        if status in (401, 403):
            return PredictError(
                f"{s.url}: HTTP {status}, the API key was refused; put the key in "
                f"${s.api_key_env} (or name another variable with --api-key-env)"
            )
        if status == 404:
            return PredictError(
                f"{s.url}: HTTP 404 ({shown}); check --model {s.model!r} (GET "
                f"{s.endpoint}/models lists the served ones) and --endpoint"
            )
        return PredictError(f"{where}: HTTP {status} ({shown}); the server refused the request")


def _error_message(body: Any, response: Any) -> str:
    """The ``message`` of an OpenAI/vLLM error body, else the start of the response text."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
    if isinstance(body, str) and body.strip():
        return body
    try:
        return response.text if response is not None else ""
    except Exception:  # noqa: BLE001  (a streamed body may be unreadable; the status says enough)
        return ""


def _pause(stop: threading.Event, seconds: float) -> None:
    """Wait before a retry, returning early when the run is stopping (tests replace this)."""
    stop.wait(seconds)


# --------------------------------------------------------------------------- the file


@dataclass
class Existing:
    """What a previous run left in the predictions file."""

    answered: set[str] = field(default_factory=set)
    torn: str | None = None  # the torn last line's text, dropped
    keep: int = 0  # bytes of whole lines; anything after them is cut before appending
    size: int = 0


def read_existing(path: Path, s: Settings, sha: str, ids: set[str]) -> Existing:
    """The ids already answered in ``path`` by this model, task, prompt and modalities.

    A last line without its newline is a write cut by a kill: it is reported and its id asked
    again. Any other bad line, an id from elsewhere or a line from another model or prompt
    is one error naming ``file:line`` (mixing two systems in one file would score neither).
    """
    found = Existing()
    if not path.exists():
        return found
    data = path.read_bytes()
    body, nl, tail = data.rpartition(b"\n")
    if not nl:
        body, tail = b"", data
    found.size, found.keep = len(data), len(data) - len(tail)
    if tail.strip():
        found.torn = tail.decode("utf-8", "replace")
    want = {
        "model": s.model,
        "prompt_sha256": sha,
        "modalities": ",".join(s.modalities),
    }
    for lineno, raw in enumerate(body.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            raise DataError(
                f"{where}: not a JSON line; this file was not written by 'indomer predict' or "
                "is damaged; choose another --out"
            ) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or s.task not in obj:
            raise DataError(
                f"{where}: expected a line with 'id' and {s.task!r} (an 'indomer predict "
                f"--task {s.task}' file); choose another --out"
            )
        for key, value in want.items():
            if obj.get(key) != value:
                raise DataError(
                    f"{where}: written with {key} {obj.get(key)!r}, this run uses {value!r}; "
                    "one file holds one system: choose another --out"
                )
        if obj["id"] not in ids:
            raise DataError(
                f"{where}: id {obj['id']!r} is not in split {s.split!r}; this file is from "
                "another split or dataset: choose another --out"
            )
        if obj["id"] in found.answered:
            raise DataError(f"{where}: id {obj['id']!r} answered twice; keep one line, then rerun")
        found.answered.add(obj["id"])
    return found


class Appender:
    """Append-only JSONL with one fsync per line, under an exclusive lock on the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        self._fh = open(path, "ab")  # noqa: SIM115  (closed by close())
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise UsageError(
                f"{path}: another 'indomer predict' is writing this file; wait for it or "
                "choose another --out"
            ) from None
        if created:
            _fsync_dir(path.parent)
        self._lock = threading.Lock()

    def truncate(self, size: int) -> None:
        with self._lock:
            self._fh.truncate(size)
            os.fsync(self._fh.fileno())

    def write(self, obj: dict) -> None:
        line = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rewrite_in_order(path: Path, order: list[str]) -> None:
    """Rewrite the predictions file in dataset order, atomically (nothing when already so)."""
    from indomer.fsutil import write_bytes_atomic

    data = path.read_bytes()
    rank = {seg_id: i for i, seg_id in enumerate(order)}
    lines = [ln for ln in data.splitlines() if ln.strip()]
    keyed = sorted(lines, key=lambda ln: rank.get(json.loads(ln)["id"], len(rank)))
    new = b"".join(ln + b"\n" for ln in keyed)
    if new != data:
        write_bytes_atomic(path, new)


# --------------------------------------------------------------------------- the run


@dataclass
class Summary:
    """What one run did (printed by the command)."""

    total: int = 0
    before: int = 0
    answered: int = 0
    retries: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)  # id -> lacking modalities
    torn: str | None = None
    sha: str = ""
    dry_run: str | None = None
    skipped_file: Path | None = None


class _Run:
    """The shared state of one run's worker threads."""

    def __init__(
        self,
        s: Settings,
        client: ChatClient,
        appender: Appender,
        prompt: Prompt,
        progress: Callable[[int, int], None],
        summary: Summary,
    ) -> None:
        self.s = s
        self.client = client
        self.appender = appender
        self.prompt = prompt
        self.sha = prompt.sha256
        self.progress = progress
        self.summary = summary
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.rng = random.Random(0)  # jitter: one seeded generator per run
        self.slots = threading.Semaphore(s.concurrency * 2)

    def ask(self, clip: Clip) -> None:
        try:
            if self.stop.is_set():
                return
            body = build_request(clip, self.s, self.prompt)
            answer = self._with_retries(body, clip.id)
            self.appender.write(
                {
                    "id": clip.id,
                    self.s.task: answer.text,
                    "model": self.s.model,
                    "prompt_sha256": self.sha,
                    "prompt_version": self.prompt.version,
                    "modalities": ",".join(self.s.modalities),
                    "finish_reason": answer.finish_reason,
                    **({"truncated": True} if answer.truncated else {}),
                }
            )
            with self.lock:
                self.summary.answered += 1
                done = self.summary.before + self.summary.answered
            self.progress(done, self.summary.total)
        except BaseException as exc:  # noqa: BLE001  (handed to the main thread, which raises it)
            with self.lock:
                if self.error is None:
                    self.error = exc
            self.stop.set()
        finally:
            self.slots.release()

    def _with_retries(self, body: dict, clip_id: str) -> Answer:
        attempt = 0
        while True:
            try:
                return self.client.send(body, clip_id)
            except Transient as exc:
                if attempt >= self.s.retries or self.stop.is_set():
                    tries = attempt + 1
                    raise PredictError(
                        f"{exc.final} (after {tries} tr{'y' if tries == 1 else 'ies'})"
                    ) from None
                wait = exc.retry_after
                if wait is None or not 0 < wait <= RETRY_AFTER_MAX:
                    with self.lock:
                        wait = backoff(attempt, self.rng)
                with self.lock:
                    self.summary.retries += 1
                _pause(self.stop, wait)
                attempt += 1


def predict(
    out: Path,
    preds: Path,
    s: Settings,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    environ: dict[str, str] | None = None,
) -> Summary:
    """Ask the endpoint about every clip of ``s.split`` not yet answered in ``preds``."""
    out, preds = Path(out), Path(preds)
    if preds.is_dir():
        raise UsageError(f"--out {preds}: is a folder; expected the predictions .jsonl file")
    if preds.resolve().is_relative_to(out.resolve()):
        raise UsageError(
            f"--out {preds}: inside the dataset folder {out}; write predictions elsewhere"
        )
    from indomer.outputs import Outputs

    guard = Outputs([out])
    target = guard.file(preds, "--out")  # resumed in place: the guard's checks, then appended
    guard.file(preds.with_name(preds.name + ".skipped.jsonl"), "--out (its .skipped.jsonl)")
    if target != Path(os.path.abspath(preds)):  # a link inside its folder: write its target
        preds = target
    env = os.environ if environ is None else environ
    api_key = env.get(s.api_key_env) or None
    prompt = prompt_for(s.task, s.modalities)
    sha = prompt.sha256
    ids = split_ids(out, s.split)
    summary = Summary(total=len(ids), sha=sha)
    progress = progress or (lambda done, total: None)

    def resume() -> Existing:
        existing = read_existing(preds, s, sha, set(ids))
        summary.before = len(existing.answered)
        if existing.torn is not None:
            summary.torn = _torn_id(existing.torn)
        return existing

    if dry_run:
        pending = _pending(out, s, resume().answered, summary)
        first = next(pending, None)
        if first is not None:
            summary.dry_run = shown_request(build_request(first, s, prompt), s, bool(api_key))
        for _ in pending:  # count the rest (and the skipped ones)
            pass
        return summary

    created = not preds.exists()
    appender = Appender(preds)  # locked before reading: no other run appends meanwhile
    try:
        existing = resume()
        if existing.keep < existing.size:
            appender.truncate(existing.keep)
        pending = _pending(out, s, existing.answered, summary)
        client = ChatClient(s, api_key)
        run = _Run(s, client, appender, prompt, progress, summary)
        try:
            with ThreadPoolExecutor(max_workers=s.concurrency, thread_name_prefix="predict") as ex:
                try:
                    for clip in pending:
                        run.slots.acquire()
                        if run.stop.is_set():
                            run.slots.release()
                            break
                        ex.submit(run.ask, clip)
                except BaseException:
                    run.stop.set()  # queued clips are not asked; those in flight finish
                    raise
        finally:
            client.close()
        if run.error is not None:
            raise run.error
        _finish_skipped(preds, summary)
        rewrite_in_order(preds, ids)
    finally:
        appender.close()
        if created and preds.exists() and preds.stat().st_size == 0:
            preds.unlink()  # nothing answered: leave no empty file behind
    return summary


def _pending(out: Path, s: Settings, answered: set[str], summary: Summary) -> Iterator[Clip]:
    """Clips to ask, in dataset order; those lacking a modality asked for go to the summary."""
    for clip in iter_clips(out, s.split, s.modalities):
        if clip.id in answered:
            continue
        missing = lacking(clip, s.modalities)
        if missing:
            summary.skipped[clip.id] = missing
            continue
        yield clip
    if summary.skipped and not answered and len(summary.skipped) == summary.total:
        kinds = sorted({m for ms in summary.skipped.values() for m in ms})
        raise DataError(
            f"{out}: none of the {summary.total} clips of split {s.split!r} has "
            f"{' or '.join(kinds)} (a release build carries no media); build with "
            "--media-dir, or choose --modalities text"
        )


def _finish_skipped(preds: Path, summary: Summary) -> None:
    """List the skipped clips beside the predictions (``PREDS.skipped.jsonl``), or remove a
    stale list when none was skipped."""
    from indomer.fsutil import write_text_atomic

    path = preds.with_name(preds.name + ".skipped.jsonl")
    if not summary.skipped:
        path.unlink(missing_ok=True)
        return
    lines = [
        json.dumps({"id": i, "lacks": summary.skipped[i]}, sort_keys=True)
        for i in sorted(summary.skipped)
    ]
    write_text_atomic(path, "\n".join(lines) + "\n")
    summary.skipped_file = path


def _torn_id(text: str) -> str:
    m = re.search(r'"id"\s*:\s*"([^"]*)"', text)
    return m.group(1) if m else "(unknown id)"


def skipped_line(summary: Summary, modalities: tuple[str, ...]) -> str | None:
    """One warning line naming the skipped clips, or None."""
    if not summary.skipped:
        return None
    kinds = sorted({m for ms in summary.skipped.values() for m in ms})
    where = f"; listed in {summary.skipped_file}" if summary.skipped_file else ""
    return (
        f"skipped {len(summary.skipped)} clip(s) without {' or '.join(kinds)} (not asked; "
        f"'indomer score --allow-missing' counts them wrong): "
        f"{first_few(sorted(summary.skipped))}{where}"
    )


def stderr_progress(every: float = 0.1) -> Callable[[int, int], None]:
    """A progress callback: a live line on a terminal, else one line per tenth of the split."""
    tty = sys.stderr.isatty()
    state = {"next": 0.0}
    lock = threading.Lock()

    def show(done: int, total: int) -> None:
        with lock:
            if tty:
                sys.stderr.write(f"\rpredict: {done}/{total} answered")
                if done >= total:
                    sys.stderr.write("\n")
                sys.stderr.flush()
            elif total and done / total >= state["next"]:
                sys.stderr.write(f"predict: {done}/{total} answered\n")
                state["next"] = (int(done / total / every) + 1) * every
                sys.stderr.flush()

    return show

"""The HTTP side of ``indomer predict``: one chat-completions call through the official
``openai`` client, retried with seeded exponential backoff and jitter on transient failures
(HTTP 408, 409, 429, 5xx, timeouts, refused connections, an answer that is not JSON),
honouring ``Retry-After``; the API key is never printed."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from indomer.errors import IndomerError, MissingExtraError
from indomer.predict.settings import Settings

#: Retry delays: BACKOFF_BASE * 2**attempt seconds, at most BACKOFF_MAX, times a jitter factor
#: in [0.75, 1] (as the openai client does); a server's Retry-After up to RETRY_AFTER_MAX wins.
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
RETRY_AFTER_MAX = 120.0
RETRY_STATUSES = frozenset({408, 409, 429})


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

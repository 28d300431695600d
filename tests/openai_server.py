"""An OpenAI-compatible chat-completions server on 127.0.0.1, speaking vLLM's wire format.

``indomer predict`` is tested against it through the real ``openai`` client, so what is checked
is the protocol, not a mock of our own calls:

- ``POST /v1/chat/completions``: the request is checked as vLLM checks it (``model`` served,
  ``messages`` a list, content parts of the kinds vLLM knows, ``data:`` URLs and
  ``input_audio`` data that decode from base64); the answer is a ``chat.completion`` object
  shaped like vLLM's (``id``, ``object``, ``created``, ``model``, ``choices[].message``,
  ``finish_reason``, ``usage``); errors are vLLM's ``{"error": {"message", "type", "param",
  "code"}}`` bodies with the matching status;
- ``GET /v1/models``: the served model.

Faults are scripted per request, in arrival order (:meth:`FakeOpenAI.script`): ``429`` (with
``Retry-After``), ``500``, ``slow`` (hold the answer until the client has given up),
``malformed`` (a cut JSON body), ``trickle`` (a valid answer sent one byte every
``interval`` seconds), ``html`` (a login page with status 200), ``empty`` (no
choices), ``401``, ``404``. :meth:`FakeOpenAI.hold_after` blocks every request after the first
``k`` answers until :meth:`FakeOpenAI.release`, so a test can kill a client at a known point,
and :meth:`FakeOpenAI.gate` holds the first ``n`` requests until ``n`` are in flight together,
which only a client that really sends ``n`` at once gets through. Every request is recorded
(headers, raw body, parsed body, the clip it names), with the peak number in flight.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from quiet_server import QuietHTTPServer

#: Content-part kinds vLLM's chat endpoint accepts (vllm/entrypoints/chat_utils.py).
PART_TYPES = frozenset(
    {"text", "image_url", "image_embeds", "audio_url", "input_audio", "video_url"}
)
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
    b"<body><form>Please sign in</form></body></html>"
)


@dataclass
class Received:
    """One request as the server got it."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any = None
    media: list[tuple[str, bytes]] = field(default_factory=list)  # (kind, decoded bytes)
    text: str = ""  # the text parts, joined
    outcome: str = ""  # "ok", or the fault / error sent


class HttpError(Exception):
    def __init__(self, status: int, message: str, kind: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = headers or {}


def error_body(status: int, message: str, kind: str) -> bytes:
    """vLLM's error response (``ErrorResponse{error: ErrorInfo}``)."""
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": status}}
    ).encode()


def completion(model: str, content: str | None, n_prompt: int) -> dict:
    """A ``chat.completion`` object as vLLM returns it (non-streaming)."""
    n_out = len((content or "").split())
    return {
        "id": f"chatcmpl-{time.monotonic_ns():x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": None,
                    "audio": None,
                    "function_call": None,
                    "tool_calls": [],
                    "reasoning_content": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
        ],
        "service_tier": None,
        "system_fingerprint": None,
        "usage": {
            "prompt_tokens": n_prompt,
            "total_tokens": n_prompt + n_out,
            "completion_tokens": n_out,
            "prompt_tokens_details": None,
        },
        "prompt_logprobs": None,
        "kv_transfer_params": None,
    }


def _b64(data: str, where: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise HttpError(400, f"{where}: invalid base64 data", "BadRequestError") from None


class FakeOpenAI:
    """The server; use as a context manager (``with FakeOpenAI(model="m") as server``)."""

    def __init__(
        self,
        model: str = "qwen-omni",
        api_key: str | None = None,
        answer: Callable[[Received], str | None] | None = None,
    ) -> None:
        self.model = model
        self.api_key = api_key
        self.answer = answer or (lambda req: "The speaker sounds happy.")
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.answered = 0
        self._faults: deque[tuple[str, dict]] = deque()
        self._hold_after: int | None = None
        self._admitted = 0
        self._released = threading.Event()
        self._closing = threading.Event()
        self._gate_n = 0
        self._gate = threading.Condition(self.lock)
        self._gate_open = False
        self.slow_seconds = 30.0
        self.always: str | None = None  # a fault for every request (e.g. "html")
        self._httpd = QuietHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # ---------------------------------------------------------------- control

    @property
    def url(self) -> str:
        """The API base URL (what ``--endpoint`` takes)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(self, *faults: str | tuple[str, dict]) -> None:
        """Faults for the next requests, one each, in arrival order (then normal answers)."""
        with self.lock:
            for f in faults:
                self._faults.append(f if isinstance(f, tuple) else (f, {}))

    def hold_after(self, k: int) -> None:
        """Answer ``k`` requests, then hold every later one until :meth:`release`."""
        with self.lock:
            self._hold_after = k
            self._admitted = 0
            self._released.clear()

    def release(self) -> None:
        with self.lock:
            self._hold_after = None
        self._released.set()

    def gate(self, n: int) -> None:
        """Hold the first ``n`` requests until ``n`` are in flight at once (or 30 s pass)."""
        with self.lock:
            self._gate_n = n
            self._gate_open = False

    def chat_requests(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._released.set()
        with self.lock:
            self._gate_open = True
            self._gate.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()

    # ---------------------------------------------------------------- protocol

    def _check_request(self, req: Received) -> None:
        """Parse and check a chat request the way vLLM's pydantic models and loaders do."""
        if self.api_key is not None:
            auth = req.headers.get("authorization", "")
            if auth != f"Bearer {self.api_key}":
                shown = auth.removeprefix("Bearer ")
                raise HttpError(
                    401,
                    f"Incorrect API key provided: {shown}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                )
        ctype = req.headers.get("content-type", "")
        if not ctype.startswith("application/json"):
            raise HttpError(400, f"expected application/json, got {ctype!r}", "BadRequestError")
        try:
            body = json.loads(req.raw)
        except ValueError as exc:
            raise HttpError(400, f"JSON decode error: {exc}", "BadRequestError") from None
        req.body = body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise HttpError(400, "Field required: messages", "BadRequestError")
        if body.get("model") != self.model:
            raise HttpError(
                404, f"The model `{body.get('model')}` does not exist.", "NotFoundError"
            )
        texts = []
        for i, msg in enumerate(body["messages"]):
            content = msg.get("content") if isinstance(msg, dict) else None
            if isinstance(content, str):
                texts.append(content)
                continue
            if not isinstance(content, list):
                raise HttpError(
                    400, f"messages.{i}.content: expected str or list", "BadRequestError"
                )
            for j, part in enumerate(content):
                where = f"messages.{i}.content.{j}"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in PART_TYPES:
                    raise HttpError(400, f"{where}: unknown part type {kind!r}", "BadRequestError")
                if kind == "text":
                    texts.append(part["text"])
                elif kind == "input_audio":
                    audio = part["input_audio"]
                    if audio.get("format") not in ("wav", "mp3", "flac", "ogg"):
                        raise HttpError(400, f"{where}: bad audio format", "BadRequestError")
                    req.media.append(("audio", _b64(audio["data"], where)))
                else:
                    url = part[kind]["url"]
                    _, sep, data = url.partition(";base64,")
                    if not (url.startswith("data:") and sep):
                        raise HttpError(400, f"{where}: only data: URLs here", "BadRequestError")
                    req.media.append((kind.removesuffix("_url"), _b64(data, where)))
        req.text = "\n".join(texts)
        kwargs = body.get("mm_processor_kwargs")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise HttpError(400, "mm_processor_kwargs: expected an object", "BadRequestError")

    def _next_fault(self) -> tuple[str, dict] | None:
        with self.lock:
            if self._faults:
                return self._faults.popleft()
        return (self.always, {}) if self.always else None

    def _wait_gate(self) -> None:
        with self._gate:
            if self._gate_n <= 0 or self._gate_open:
                return
            if self.in_flight >= self._gate_n:
                self._gate_open = True
                self._gate.notify_all()
                return
            self._gate.wait_for(lambda: self._gate_open, timeout=30)

    def _wait_hold(self) -> None:
        """Admit the first ``k`` requests (counted when admitted, so concurrent ones cannot
        slip past ``k``), hold the others until released."""
        with self.lock:
            held = self._hold_after is not None and self._admitted >= self._hold_after
            if not held:
                self._admitted += 1
        if held:
            self._released.wait()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                trickle = float((headers or {}).get("X-Trickle", 0))
                self.end_headers()
                try:
                    if trickle:  # one byte at a time, until done or the client hangs up
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            if server._closing.wait(trickle):
                                return
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    data = {
                        "object": "list",
                        "data": [{"id": server.model, "object": "model", "owned_by": "vllm"}],
                    }
                    self._send(200, json.dumps(data).encode(), "application/json")
                else:
                    self._send(
                        404, error_body(404, "Not Found", "NotFoundError"), "application/json"
                    )

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                req = Received(
                    method="POST",
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    raw=raw,
                )
                with server.lock:
                    server.requests.append(req)
                    server.in_flight += 1
                    server.peak = max(server.peak, server.in_flight)
                status, body, ctype, headers = self._respond(req)
                with server.lock:  # before the answer leaves, so a client never sees n + 1
                    server.in_flight -= 1
                    if status == 200 and req.outcome == "ok":
                        server.answered += 1
                self._send(status, body, ctype, headers)

            def _respond(self, req: Received) -> tuple[int, bytes, str, dict]:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    req.outcome = "404"
                    return (
                        404,
                        error_body(404, "Not Found", "NotFoundError"),
                        "application/json",
                        {},
                    )
                server._wait_gate()
                try:
                    server._check_request(req)
                except HttpError as exc:
                    req.outcome = str(exc.status)
                    return (
                        exc.status,
                        error_body(exc.status, exc.message, exc.kind),
                        "application/json",
                        exc.headers,
                    )
                server._wait_hold()
                fault = server._next_fault()
                if fault is not None:
                    kind, opts = fault
                    req.outcome = kind
                    return self._fault(kind, opts)
                req.outcome = "ok"
                content = server.answer(req)
                data = completion(server.model, content, len(req.text.split()))
                return 200, json.dumps(data).encode(), "application/json", {}

            def _fault(self, kind: str, opts: dict) -> tuple[int, bytes, str, dict]:
                if kind == "429":
                    retry = {"Retry-After": str(opts.get("retry_after", 1))}
                    return (
                        429,
                        error_body(429, "Rate limit reached", "RateLimitError"),
                        "application/json",
                        retry,
                    )
                if kind == "500":
                    return (
                        500,
                        error_body(500, "CUDA out of memory", "InternalServerError"),
                        "application/json",
                        {},
                    )
                if kind == "401":
                    return (
                        401,
                        error_body(401, "Unauthorized", "invalid_request_error"),
                        "application/json",
                        {},
                    )
                if kind == "slow":
                    server._closing.wait(opts.get("seconds", server.slow_seconds))
                    data = completion(server.model, "too late", 1)
                    return 200, json.dumps(data).encode(), "application/json", {}
                if kind == "trickle":  # a valid answer, sent one byte every `interval` s
                    data = completion(server.model, "happy", 1)
                    interval = str(opts.get("interval", 0.5))
                    return 200, json.dumps(data).encode(), "application/json", {
                        "X-Trickle": interval
                    }
                if kind == "malformed":
                    return (
                        200,
                        b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [',
                        "application/json",
                        {},
                    )
                if kind == "html":
                    return 200, HTML_PAGE, "text/html; charset=utf-8", {}
                if kind == "empty":
                    data = completion(server.model, None, 1)
                    data["choices"] = []
                    return 200, json.dumps(data).encode(), "application/json", {}
                raise ValueError(f"unknown fault {kind!r}")

        return Handler


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

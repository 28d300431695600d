"""One ``indomer predict`` run's choices (endpoint, model, task, modalities, limits), each
checked once with a one-line :class:`~indomer.errors.UsageError`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from indomer.errors import UsageError

#: Tasks a served model is asked about (the scorer parses its free-text answers).
TASKS: tuple[str, ...] = ("emotion", "sentiment")
MODALITIES: tuple[str, ...] = ("text", "audio", "video")
DEFAULT_MODALITIES = "text,audio,video"


_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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

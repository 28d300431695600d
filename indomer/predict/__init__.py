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

The parts: :mod:`~indomer.predict.settings` (the checked options), :mod:`~indomer.predict.prompts`
(the prompt and the request body), :mod:`~indomer.predict.client` (HTTP and retries) and
:mod:`~indomer.predict.journal` (the resumable predictions file); this module reads the split's
clips and drives the run.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from indomer.errors import DataError, UsageError, first_few
from indomer.predict.client import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    BODY_MAX,
    RETRY_AFTER_MAX,
    RETRY_STATUSES,
    Answer,
    ChatClient,
    PredictError,
    Transient,
    _pause,
    backoff,
    cap_answer,
    parse_answer,
    redact,
    retry_after_seconds,
)
from indomer.predict.journal import (
    Appender,
    Existing,
    check_sidecar,
    dumps_sidecar,
    read_existing,
    rewrite_in_order,
    sidecar,
)
from indomer.predict.prompts import (
    MAX_TOKENS,
    PROMPTS_FILE,
    TEMPERATURE,
    TRANSCRIPT,
    Clip,
    Prompt,
    build_request,
    lacking,
    load_prompts,
    prompt_for,
    shown_request,
)
from indomer.predict.settings import (
    DEFAULT_MODALITIES,
    MODALITIES,
    TASKS,
    Settings,
    normalise_endpoint,
    parse_modalities,
    settings,
)
from indomer.sidecar import META_SUFFIX, sidecar_path

if TYPE_CHECKING:
    from indomer.dataset import Snapshot

#: The package's API: the driver below and what its parts (settings, prompts, client, journal)
#: export, so that ``from indomer import predict`` keeps working.
__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "BODY_MAX",
    "DEFAULT_MODALITIES",
    "MAX_TOKENS",
    "MODALITIES",
    "PROMPTS_FILE",
    "RETRY_AFTER_MAX",
    "RETRY_STATUSES",
    "TASKS",
    "TEMPERATURE",
    "TRANSCRIPT",
    "Answer",
    "Appender",
    "ChatClient",
    "Clip",
    "Existing",
    "PredictError",
    "Prompt",
    "Settings",
    "Summary",
    "Transient",
    "backoff",
    "build_request",
    "cap_answer",
    "iter_clips",
    "lacking",
    "load_prompts",
    "normalise_endpoint",
    "parse_answer",
    "parse_modalities",
    "predict",
    "prompt_for",
    "read_existing",
    "redact",
    "retry_after_seconds",
    "rewrite_in_order",
    "settings",
    "shown_request",
    "skipped_line",
    "split_ids",
    "stderr_progress",
]

# --------------------------------------------------------------------------- clips


def iter_clips(snap: Snapshot, split: str, modalities: tuple[str, ...]) -> Iterator[Clip]:
    """The split's clips in dataset order, read a few rows at a time from the one pinned
    generation: only a handful of clips' media are ever in memory, and a ``split`` committed
    during an hours-long run changes nothing this run reads."""
    columns = ["id", "text"]
    if "video" in modalities:
        columns.append("video")  # with audio too, the audio is the mp4's own track
    elif "audio" in modalities:
        columns.append("audio")
    for row in snap.iter_rows(split, columns, batch_size=8):
        yield Clip(
            id=row["id"], text=row.get("text"), audio=row.get("audio"), video=row.get("video")
        )


def split_ids(snap: Snapshot, split: str) -> list[str]:
    """The split's ids in dataset order (a missing split is one line naming those there)."""
    return [str(i) for i in snap.read(split, columns=["id"])["id"]]


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
    side_option = f"--out (its {META_SUFFIX})"
    guard.file(sidecar_path(preds), side_option)
    if target != Path(os.path.abspath(preds)):  # a link inside its folder: write its target
        preds = target
    side = sidecar_path(preds)
    env = os.environ if environ is None else environ
    api_key = env.get(s.api_key_env) or None
    prompt = prompt_for(s.task, s.modalities)
    from indomer.dataset import snapshot

    with snapshot(out) as snap:  # one generation for the whole run
        return _predict(
            snap, preds, s, prompt, api_key, dry_run=dry_run, progress=progress,
            guard=guard, side=side, side_option=side_option,
        )  # fmt: skip


def _predict(
    snap: Snapshot,
    preds: Path,
    s: Settings,
    prompt,
    api_key: str | None,
    *,
    dry_run: bool,
    progress: Callable[[int, int], None] | None,
    guard,
    side: Path,
    side_option: str,
) -> Summary:
    """The run itself, over one pinned generation (options and PREDS already checked); the
    sidecar's assignment is that generation's, as the clips asked are."""
    sha = prompt.sha256
    ids = split_ids(snap, s.split)
    summary = Summary(total=len(ids), sha=sha)
    progress = progress or (lambda done, total: None)

    def resume() -> Existing:
        existing = read_existing(preds, s, sha, set(ids))
        summary.before = len(existing.answered)
        if existing.torn is not None:
            summary.torn = _torn_id(existing.torn)
        return existing

    if dry_run:
        pending = _pending(snap, s, resume().answered, summary)
        first = next(pending, None)
        if first is not None:
            summary.dry_run = shown_request(build_request(first, s, prompt), s, bool(api_key))
        for _ in pending:  # count the rest (and the skipped ones)
            pass
        return summary

    identity = snap.split_identity
    created = not preds.exists()
    side_created = not side.exists()
    appender = Appender(preds)  # locked before reading: no other run appends meanwhile
    try:
        if preds.stat().st_size:  # first: a re-split also changes the split's ids
            check_sidecar(identity, preds)
        existing = resume()
        guard.write_text(side, dumps_sidecar(sidecar(s, sha, identity)), side_option)
        if existing.keep < existing.size:
            appender.truncate(existing.keep)
        pending = _pending(snap, s, existing.answered, summary)
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
            if side_created:
                side.unlink(missing_ok=True)
    return summary


def _pending(
    snap: Snapshot, s: Settings, answered: set[str], summary: Summary
) -> Iterator[Clip]:
    """Clips to ask, in dataset order; those lacking a modality asked for go to the summary."""
    out = snap.out
    for clip in iter_clips(snap, s.split, s.modalities):
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

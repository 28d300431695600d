"""``indomer predict``: a thin wrapper over :func:`indomer.predict.predict`."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import guarded
from indomer.commands.options import dry_run_option, quiet_option, split_option


@click.command("predict")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--endpoint",
    required=True,
    metavar="URL",
    help="API base URL of an OpenAI-compatible chat server, e.g. http://localhost:8000/v1 "
    "(vLLM serving Qwen2.5-Omni, or a hosted API).",
)
@click.option("--model", required=True, metavar="NAME", help="Served model name to ask.")
@split_option()
@click.option(
    "--task",
    default="emotion",
    show_default=True,
    metavar="emotion|sentiment",
    help="What the model is asked; the answer is stored under this key.",
)
@click.option(
    "--modalities",
    default="text,audio,video",
    show_default=True,
    metavar="text,audio,video",
    help="What is sent: the transcript in the prompt, the wav (input_audio), the mp4 "
    "(video_url; with audio, the mp4's own track via use_audio_in_video). Clips lacking one "
    "are skipped and listed.",
)
@click.option(
    "--concurrency",
    type=int,
    default=4,
    show_default=True,
    metavar="N",
    help="Requests in flight at once.",
)
@click.option(
    "--timeout",
    type=float,
    default=120.0,
    show_default=True,
    metavar="S",
    help="Seconds a request may take in all, from sending it to the answer's last byte.",
)
@click.option(
    "--max-answer",
    type=int,
    default=65536,
    show_default=True,
    metavar="BYTES",
    help="Longest answer stored; a longer one is cut to this size and flagged truncated.",
)
@click.option(
    "--retries",
    type=int,
    default=5,
    show_default=True,
    metavar="N",
    help="Retries of a request after HTTP 408/409/429/5xx, a timeout, a refused connection or "
    "a malformed answer (exponential backoff with jitter, honouring Retry-After).",
)
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the API key (never printed or written); unset sends "
    "'EMPTY', as a vLLM server without --api-key expects.",
)
@dry_run_option()
@quiet_option()
@click.option(
    "--out",
    "preds",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PREDS.jsonl",
    help="Predictions file: one line per answered clip; a rerun asks only the ids not in it.",
)
@guarded
def predict(
    out: Path,
    endpoint: str,
    model: str,
    split: str,
    task: str,
    modalities: str,
    concurrency: int,
    timeout: float,
    max_answer: int,
    retries: int,
    api_key_env: str,
    dry_run: bool,
    quiet: bool,
    preds: Path,
) -> None:
    """Ask a served model about every clip of the dataset at OUT; write PREDS.jsonl.

    Each line holds the clip id, the raw answer under the task's key (the scorer parses free
    text), the model name and the prompt's sha256. Answers are appended as they come, so a
    killed run resumes where it stopped; a finished run leaves the file in dataset order.
    PREDS.jsonl.meta.json records the split's name and assignment sha256, so that score
    refuses the file against another assignment of that name.
    """
    from indomer import predict as lib

    s = lib.settings(
        endpoint=endpoint,
        model=model,
        split=split,
        task=task,
        modalities=modalities,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
        api_key_env=api_key_env,
        max_answer=max_answer,
    )
    summary = lib.predict(
        out, preds, s, dry_run=dry_run, progress=None if dry_run or quiet else lib.stderr_progress()
    )
    if summary.torn is not None:
        verb = "would drop" if dry_run else "dropped"
        click.echo(
            f"warning: {preds}: {verb} a torn last line (id {summary.torn}, cut by a kill); "
            "that clip is asked again",
            err=True,
        )
    line = lib.skipped_line(summary, s.modalities)
    if line is not None:
        click.echo(f"warning: {line}", err=True)
    todo = summary.total - summary.before - len(summary.skipped)
    if dry_run:
        if summary.dry_run is not None:
            click.echo(summary.dry_run, nl=False)
        click.echo(
            f"dry run: {todo} clip(s) of {summary.total} to ask, {summary.before} already in "
            f"{preds}, {len(summary.skipped)} skipped; nothing sent"
        )
        return
    click.echo(
        f"{preds}: {summary.before + summary.answered} of {summary.total} clips answered "
        f"({summary.answered} now, {summary.before} before; {summary.retries} retries; "
        f"{len(summary.skipped)} skipped) by {s.model}, prompt sha256 {summary.sha[:12]}"
    )

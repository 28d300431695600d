"""``indomer browse``: a thin wrapper over :mod:`indomer.browse` (a local server, or one file)."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import guarded
from indomer.commands.options import preds_option
from indomer.errors import UsageError


@click.command("browse")
@click.argument("out", type=click.Path(path_type=Path))
@preds_option(multiple=True)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=8765,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but 127.0.0.1 shows the dataset to your network.",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write one self-contained page (data inlined) to FILE instead of serving.",
)
@click.option(
    "--with-media",
    is_flag=True,
    help="With --html: embed the clips' video and audio too (the file grows by their size).",
)
@guarded
def browse(
    out: Path,
    preds: tuple[Path, ...],
    port: int,
    host: str,
    html_file: Path | None,
    with_media: bool,
) -> None:
    """Look at a built dataset OUT in the browser: clips, words, votes and predictions.

    Serves one read-only page on http://127.0.0.1:8765/ (the URL is printed) until Ctrl-C:
    a filterable table of clips, each clip's video with its words lit as they are spoken,
    the annotators' votes, and with --preds (repeat it for several systems) each system's
    answers, an error filter and its confusion matrix.
    """
    from indomer import browse as lib

    if with_media and html_file is None:
        raise UsageError("--with-media only applies to --html FILE; add --html review.html")
    if html_file is not None:
        path = lib.write_html(out, html_file, preds, with_media=with_media)
        click.echo(f"wrote {path}; open it in a browser (file://{path.resolve()})")
        return
    server = lib.make_server(out, preds, host, port)
    click.echo(f"serving {out} on {server.url} (read-only; Ctrl-C stops)", err=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()

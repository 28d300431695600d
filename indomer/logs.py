"""Third-party output of the stages goes to ``OUT/work/log.txt``, not the terminal (DESIGN §4).

The models a build loads talk: whisperx logs ``INFO - Performing voice activity detection``
to stdout through its own handler, Lightning tells the user to run ``python -m
lightning.pytorch.utilities.upgrade_checkpoint`` on a checkpoint they never chose, torch and
pyannote raise ``UserWarning``s. None of it is for the person running ``indomer build``, whose
terminal holds indomer's summary on stdout and its progress and warnings on stderr.

:func:`stage_output` wraps a stage's ``setup`` and ``run`` (in the driver and in every worker
process): for its duration Python ``logging`` (the root logger and any logger a library gave
its own console handler), ``warnings`` and ``print`` go to the log file, and after it the
process is as it was. Output written below Python (C libraries writing to file descriptor 2)
is not caught.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

#: The log file, under the build's work folder.
LOG_NAME = "log.txt"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_path(out: Path) -> Path:
    """``OUT/work/log.txt``: beside the stages' manifests, never in the published dataset."""
    return Path(out) / "work" / LOG_NAME


def _console(handler: logging.Handler) -> bool:
    """A library's console handler: a plain ``StreamHandler`` (whisperx's, Lightning's) on
    whatever stdout or stderr was when the library set it up. Subclasses (a file, a test's
    capture) and handlers into memory are the user's, and left alone."""
    if type(handler) is not logging.StreamHandler:
        return False
    return not isinstance(handler.stream, (io.StringIO, _Into))


class _Into:
    """What ``sys.stdout`` or ``sys.stderr`` is during a stage: the log file, under a name.

    A library that builds a console handler inside the block binds it to this object; on the
    way out the handler is pointed back at the stream it would have had (:func:`stage_output`).
    """

    def __init__(self, stream, real) -> None:
        self._stream = stream
        self.real = real

    def write(self, text: str) -> int:
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return "utf-8"


class _Once(logging.Filter):
    """On the root's file handler: drop a record that a handler nearer its logger already put
    in the file (a library's console handler made inside the stage, which writes there too),
    so a propagating library logger is not logged twice."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        root = logging.getLogger()
        while logger is not None and logger is not root:
            for h in logger.handlers:
                if h is self.handler or isinstance(getattr(h, "stream", None), _Into):
                    return False
            if not logger.propagate:
                break
            logger = logger.parent
        return True


def _loggers() -> list[logging.Logger]:
    found = [logging.getLogger()]
    for obj in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(obj, logging.Logger):
            found.append(obj)
    return found


@contextlib.contextmanager
def stage_output(path: Path | None) -> Iterator[None]:
    """Send what third-party code logs, warns or prints to ``path`` while the block runs.

    A logger's console handler is swapped for the file (a logger that does not propagate,
    like whisperx's and Lightning's, keeps a handler, so neither adds its console handler
    back); the root logger gets the file too. ``None`` leaves everything as it is (a stage
    run outside a build).
    """
    if path is None:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", errors="replace") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(_FORMAT))
        root_handler = logging.StreamHandler(stream)
        root_handler.setFormatter(logging.Formatter(_FORMAT))
        root_handler.addFilter(_Once(handler))
        swapped: list[tuple[logging.Logger, list[logging.Handler]]] = []
        root = logging.getLogger()
        root_level = root.level
        try:
            for logger in _loggers():
                console = [h for h in logger.handlers if _console(h)]
                if logger is root:
                    swapped.append((logger, list(logger.handlers)))
                    for h in console:
                        logger.removeHandler(h)
                    logger.addHandler(root_handler)
                elif console:
                    swapped.append((logger, list(logger.handlers)))
                    for h in console:
                        logger.removeHandler(h)
                    if not logger.propagate:
                        logger.addHandler(handler)
            if root.level > logging.INFO:
                root.setLevel(logging.INFO)  # what libraries say at INFO is worth keeping
            out, err = _Into(stream, sys.stdout), _Into(stream, sys.stderr)
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                logging.captureWarnings(True)
                try:
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                        yield
                finally:
                    logging.captureWarnings(False)
        finally:
            for logger, handlers in swapped:
                for h in list(logger.handlers):
                    logger.removeHandler(h)
                for h in handlers:
                    logger.addHandler(h)
            # console handlers made inside the block: back to the console they were made for
            for logger in _loggers():
                for h in logger.handlers:
                    if isinstance(getattr(h, "stream", None), _Into):
                        h.setStream(h.stream.real)
            root.setLevel(root_level)
            handler.flush()
            root_handler.flush()


__all__ = ["LOG_NAME", "log_path", "stage_output"]

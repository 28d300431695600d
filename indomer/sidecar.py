"""The sidecar beside a predictions file (``PREDS.jsonl.meta.json``): how the predictions
were made and against which split assignment. ``indomer baseline`` and ``indomer predict``
write one; ``predict`` (extending a file) and ``score``/``leaderboard`` (reading one) check
it here, one reading and one message for all three."""

from __future__ import annotations

import json
from pathlib import Path

from indomer.errors import DataError

META_SUFFIX = ".meta.json"


def sidecar_path(preds: str | Path) -> Path:
    """Where the sidecar of ``preds`` lies: ``PREDS.jsonl.meta.json``."""
    preds = Path(preds)
    return preds.with_name(preds.name + META_SUFFIX)


def other_assignment(side: Path, identity: dict | None) -> str | None:
    """The assignment sha256 the sidecar ``side`` records when it names the split of
    ``identity`` (``{"name", "sha256"}``) but another assignment of it: predictions about
    other clips under the same split name. None when they agree, or when there is nothing to
    compare (no identity, no sidecar, an unreadable one, or one of another split name)."""
    if identity is None or not side.is_file():
        return None
    try:
        made = json.loads(side.read_text(encoding="utf-8")).get("assignment")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    if not isinstance(made, dict) or made.get("name") != identity.get("name"):
        return None
    if made.get("sha256") == identity.get("sha256"):
        return None
    return str(made.get("sha256"))


def refuse_other_assignment(preds: Path, identity: dict | None, *, holder: str, fix: str) -> None:
    """The one-line :class:`DataError` when the sidecar of ``preds`` records another
    assignment of the split ``identity`` names than the one ``holder`` (the dataset, the
    references) holds now; ``fix`` says what to do instead."""
    side = sidecar_path(preds)
    made = other_assignment(side, identity)
    if made is None or identity is None:
        return
    raise DataError(
        f"{preds}: made against split '{identity.get('name')}' assignment {made[:12]} (see "
        f"{side.name}), but {holder} holds assignment {str(identity.get('sha256'))[:12]} of "
        f"that name; {fix}"
    )

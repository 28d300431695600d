"""The sidecar beside a predictions file (``PREDS.jsonl.meta.json``): how the predictions
were made and against which split assignment. ``indomer baseline`` and ``indomer predict``
write one; ``predict`` (extending a file) and ``score``/``leaderboard`` (reading one) check
it here, one reading for all three. Imports nothing of indomer."""

from __future__ import annotations

import json
from pathlib import Path

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

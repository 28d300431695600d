"""Split stage: one split name per labelled segment, speaker-disjoint (whole dataset).

:func:`indomer.split.plan_split` (grouped by source video until the speakers stage provides
speaker ids; by the speakers stage's split groups when its declared ``identity.json`` is
there), checked by the leakage guard. A build always ends with a dataset: too few groups
leave splits empty with a warning (``--strict`` refuses instead). The split document and
the warning go to the declared document ``split.json``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd

from indomer.config import BuildConfig, SplitConfig
from indomer.errors import DataError
from indomer.labels import TASKS
from indomer.stage import Context, DatasetStage, Inputs, Produced
from indomer.tail import EXAMPLE, IDENTITY, document_input


@dataclass(frozen=True)
class State:
    """The ``split:`` settings, and whether ``--strict`` refuses a split left empty."""

    settings: SplitConfig
    strict: bool = False


def split_config(cfg: BuildConfig) -> SplitConfig:
    """The split stage's settings are the config's ``split:`` section."""
    return cfg.split


def _setup(settings: SplitConfig, ctx: Context) -> State:
    return State(settings, ctx.strict)


def split_run(inputs: Inputs, state: State) -> Produced:
    """One split name per example, speaker-disjoint; the document goes to ``split.json``."""
    from indomer.split import default_name, fallback_warning, group_column, plan_split

    cfg = state.settings
    rows = [r for r in inputs.rows() if r.get("kind") == EXAMPLE]
    if not rows:
        raise DataError("no labelled segments left to split; see rejected.jsonl for why")
    df = pd.DataFrame(
        {
            k: pd.Series([r.get(k) for r in rows], dtype=object)
            for k in ("id", "source_id", "speaker_id", "speaker_group", *TASKS)
        }
    )
    identity = inputs.documents.get(IDENTITY)
    heard: list[str] = []

    # a build always ends with a dataset: too few groups leave splits empty, with a warning
    # (--strict refuses instead)
    checked, doc = plan_split(
        df,
        cfg.ratios,
        cfg.seed,
        cfg.stratify,
        cfg.name or default_name(cfg.seed),
        linking=identity,
        warn=heard.append,
        few_groups_ok=True,
    )
    empty = [s for s in doc["report"]["splits"] if not doc["report"]["sizes"].get(s)]
    empty += [s for s in doc["ratios"] if s not in doc["report"]["splits"]]
    if empty and state.strict:
        raise DataError(f"split: {heard[-1]} (stopped by --strict)")
    key, _, missing = group_column(checked)
    fallback = fallback_warning(key, missing, len(df))
    heard = [w for w in heard if w != fallback]
    warning = "; ".join([*([fallback] if fallback else []), *heard]) or None
    rows = [{"id": i, "split": s} for i, s in zip(checked["id"], checked["split"])]
    return Produced(rows, [], {"split.json": {"document": doc, "warning": warning}})


STAGE = DatasetStage(
    "split",
    split_run,
    configure=split_config,
    setup=_setup,
    # the speakers stage's identity record: its split groups decide, so its bytes are hashed
    inputs=functools.partial(document_input, IDENTITY, "identity"),
    needs=(IDENTITY,),
    outputs=("split.json",),
)

"""The leakage unit of each row (speaker, linked speaker group, or source video): what a
split keeps on one side and what a generation's split file is matched against. Kept below
both :mod:`indomer.split` and :mod:`indomer.generation`, so neither imports the other."""

from __future__ import annotations

import pandas as pd

from indomer.errors import DataError, first_few

#: The column of split-safe speaker groups (linked speakers).
GROUP_KEY = "speaker_group"
#: Group id prefix of rows without a speaker id, grouped by their source video.
SOURCE_PREFIX = "source:"


def present(values: pd.Series) -> pd.Series:
    """True where a string-ish id is present (not null, not blank)."""
    return values.notna() & (values.astype("string").str.strip().fillna("") != "")


def group_column(df: pd.DataFrame) -> tuple[str, pd.Series, int]:
    """The leakage unit of each row: ``(key, group ids, rows without speaker id)``.

    ``key`` is ``speaker_id`` when any row has one (rows without one fall back to a
    ``source:<source_id>`` group), else ``source_id``. A row with neither cannot be placed
    safely, so it is an error rather than a guess.
    """
    if len(df) == 0:
        raise DataError("no rows to group; build the dataset first")
    ids = df["id"] if "id" in df.columns else pd.Series(df.index.astype(str), index=df.index)
    if "speaker_id" in df.columns:
        has_speaker = present(df["speaker_id"])
    else:
        has_speaker = pd.Series(False, index=df.index)
    missing = int((~has_speaker).sum())
    if "speaker_group" in df.columns and present(df["speaker_group"]).any():
        # split-safe groups (linked speakers): coarser than speaker ids, never finer
        has_group = present(df["speaker_group"])
        if has_group.all():
            return GROUP_KEY, df["speaker_group"].astype(str).astype(object), missing
        source = df["source_id"].astype(str).astype(object)
        groups = df["speaker_group"].astype(str).astype(object).where(
            has_group, SOURCE_PREFIX + source
        )
        return GROUP_KEY, groups, missing
    if missing == 0:
        return "speaker_id", df["speaker_id"].astype(str).astype(object), 0
    if "source_id" in df.columns:
        has_source = present(df["source_id"])
    else:
        has_source = pd.Series(False, index=df.index)
    orphans = ids[~has_speaker & ~has_source].tolist()
    if orphans:
        raise DataError(
            f"{first_few(orphans)}: no speaker_id and no source_id, so a leak-free split cannot "
            "place these rows; fill source_id (the source video) or speaker_id"
        )
    source = df["source_id"].astype(str).astype(object)
    if missing == len(df):
        return "source_id", source, missing
    groups = df["speaker_id"].astype(str).astype(object).where(has_speaker, SOURCE_PREFIX + source)
    return "speaker_id", groups, missing


def with_groups(df: pd.DataFrame, linking: dict | None) -> pd.DataFrame:
    """``df`` with a ``speaker_group`` column from an identity record's ``groups`` (group ->
    speaker ids), unless it has one already; unchanged without a record."""
    if linking is None or not linking.get("groups"):
        return df
    if "speaker_group" in df.columns and present(df["speaker_group"]).any():
        return df
    if "speaker_id" not in df.columns:
        return df
    of = {spk: g for g, spks in linking["groups"].items() for spk in spks}
    groups = df["speaker_id"].map(lambda s: of.get(s, s) if isinstance(s, str) and s else None)
    return df.assign(speaker_group=groups.astype(object))


__all__ = ["GROUP_KEY", "SOURCE_PREFIX", "group_column", "present", "with_groups"]

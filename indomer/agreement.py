"""Inter-annotator agreement: Fleiss' kappa and Krippendorff's alpha, in plain numpy.

Both statistics start from one *count matrix* ``counts[i, v]`` = how many raters gave value
``v`` to item ``i``, so missing ratings (an annotator who skipped a segment) need no special
case: an item simply has fewer raters. Items with fewer than two ratings carry no
information about agreement and are left out of both statistics (and of ``items``).

Fleiss' kappa (nominal). With unequal numbers of raters ``n_i`` per item we use the usual
generalisation (Fleiss 1971 with per-item ``n_i``; Fleiss, Levin & Paik 2003, ch. 18):

    P_i   = (sum_v n_iv**2 - n_i) / (n_i (n_i - 1))     agreement within item i
    P_bar = mean_i P_i
    p_v   = sum_i n_iv / sum_i n_i                       pooled category shares
    P_e   = sum_v p_v**2
    kappa = (P_bar - P_e) / (1 - P_e)

With equal ``n_i`` this is exactly Fleiss' kappa (statsmodels' ``fleiss_kappa`` is the
reference in the tests).

Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"):
coincidence matrix ``o[c, k] = sum_i n_ic (n_ik - [c == k]) / (n_i - 1)``, marginals ``n_c``,
``n = sum_c n_c`` and ``alpha = 1 - (n - 1) sum o*d2 / sum n_c n_k d2`` with the squared
distance ``d2`` of the level: nominal ``[c != k]``, ordinal
``(sum_{g=c..k} n_g - (n_c + n_k) / 2)**2``, interval ``(c - k)**2``. The ``krippendorff``
package is the reference in the tests.

Undefined values (no item with two ratings, or every rating the same value so that chance
agreement is perfect) are returned as ``None``, never NaN, so they serialise to JSON null.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Literal

import numpy as np

Level = Literal["nominal", "ordinal", "interval"]
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval")


def count_matrix(units: Iterable[Iterable[Hashable | None]]) -> tuple[np.ndarray, list]:
    """Ratings per item (``None`` = missing) -> (items x values count matrix, sorted domain).

    The domain is sorted so that ordinal and interval levels see the values in order and the
    result does not depend on the order ratings arrive in.
    """
    rows = [[v for v in unit if v is not None] for unit in units]
    domain = sorted({v for row in rows for v in row})
    index = {v: j for j, v in enumerate(domain)}
    counts = np.zeros((len(rows), len(domain)), dtype=np.float64)
    for i, row in enumerate(rows):
        for v in row:
            counts[i, index[v]] += 1
    return counts, domain


def _pairable(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(f"counts must be a 2-d items x values matrix, got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("counts must be non-negative")
    return counts[counts.sum(axis=1) >= 2]


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa of an items x categories count matrix; raters per item may differ.

    Items with fewer than two ratings are ignored; ``None`` when kappa is undefined.
    """
    c = _pairable(counts)
    if c.shape[0] == 0:
        return None
    n_i = c.sum(axis=1)
    p_i = ((c * c).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_v = c.sum(axis=0) / n_i.sum()
    p_e = float((p_v * p_v).sum())
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def _squared_distances(domain: Sequence, n_v: np.ndarray, level: str) -> np.ndarray:
    v = len(domain)
    if level == "nominal":
        return 1.0 - np.eye(v)
    if level == "interval":
        x = np.asarray(domain, dtype=np.float64)
        return (x[:, None] - x[None, :]) ** 2
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_v)])
        lo = np.minimum.outer(np.arange(v), np.arange(v))
        hi = np.maximum.outer(np.arange(v), np.arange(v))
        between = cum[hi + 1] - cum[lo]
        return (between - (n_v[:, None] + n_v[None, :]) / 2.0) ** 2
    raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def krippendorff_alpha_counts(
    counts: np.ndarray, domain: Sequence, level: str = "nominal"
) -> float | None:
    """Krippendorff's alpha from an items x values count matrix and its (sorted) value domain.

    ``None`` when alpha is undefined (fewer than two pairable values, or no expected
    disagreement because all pairable values are equal).
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    c = _pairable(counts)
    if c.shape[1] != len(domain):
        raise ValueError(f"counts has {c.shape[1]} value columns but the domain has {len(domain)}")
    if c.shape[0] == 0:
        return None
    m = c.sum(axis=1)
    weighted = c / (m - 1)[:, None]
    o = weighted.T @ c - np.diag(weighted.sum(axis=0))
    n_v = o.sum(axis=1)
    n = float(n_v.sum())
    if n <= 1:
        return None
    d2 = _squared_distances(domain, n_v, level)
    expected = float((np.outer(n_v, n_v) * d2).sum())
    if expected <= 0.0:
        return None
    observed = float((o * d2).sum())
    return 1.0 - (n - 1.0) * observed / expected


def krippendorff_alpha(
    reliability_data: np.ndarray | Sequence[Sequence[float]], level: str = "nominal"
) -> float | None:
    """Krippendorff's alpha of a raters x items matrix of numbers with NaN for missing.

    The same layout as the ``krippendorff`` package's ``reliability_data``.
    """
    data = np.asarray(reliability_data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"reliability_data must be raters x items, got shape {data.shape}")
    units = [[float(x) for x in col if not np.isnan(x)] for col in data.T]
    counts, domain = count_matrix(units)
    return krippendorff_alpha_counts(counts, domain, level)


def field_agreement(
    ratings: Mapping[str, Mapping[str, Hashable | None]],
    level: str = "nominal",
    *,
    kappa: bool = True,
) -> dict:
    """Agreement of one field: ``ratings[item][rater] = value`` (``None`` = missing).

    Returns ``{"fleiss_kappa", "krippendorff_alpha", "items", "annotators", "level"}``:
    ``items`` counts the items with at least two ratings (the only ones that enter either
    statistic), ``annotators`` the distinct raters who rated those items, ``level`` the
    level of measurement used for alpha. Kappa is nominal by definition; pass
    ``kappa=False`` for continuous values, where it is reported as ``None``.
    """
    items = sorted(ratings)
    units = [[ratings[i][r] for r in sorted(ratings[i])] for i in items]
    counts, domain = count_matrix(units)
    used = [i for i, u in zip(items, units, strict=True) if sum(v is not None for v in u) >= 2]
    raters = {r for i in used for r, v in ratings[i].items() if v is not None}
    return {
        "fleiss_kappa": fleiss_kappa(counts) if kappa else None,
        "krippendorff_alpha": krippendorff_alpha_counts(counts, domain, level),
        "items": len(used),
        "annotators": len(raters),
        "level": level,
    }


def shown_coefficients(record: dict) -> tuple[str, str]:
    """Fleiss' kappa and Krippendorff's alpha of one field's agreement record as the card and
    the build summary print them: three decimals, or ``n/a`` when undefined."""
    kappa, alpha = (
        "n/a" if record.get(k) is None else f"{record[k]:.3f}"
        for k in ("fleiss_kappa", "krippendorff_alpha")
    )
    return kappa, alpha

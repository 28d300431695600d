"""Agreement statistics against textbook values and the reference packages."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from indomer.agreement import (
    count_matrix,
    field_agreement,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_counts,
)

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", example C:
# 4 observers, 12 units, values 1-5, missing data.
K2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]
# Fleiss (1971) as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories, kappa 0.210.
FLEISS_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorff_2011_worked_example(level: str, published: float) -> None:
    got = krippendorff_alpha(K2011, level)
    assert round(got, 3) == published
    assert got == pytest.approx(
        krippendorff.alpha(reliability_data=K2011, level_of_measurement=level), abs=1e-12
    )


def test_krippendorff_nominal_by_hand() -> None:
    # units: (a, a), (a, b), (b, b, b); o_aa = 2, o_ab = o_ba = 1, o_bb = 3;
    # n_a = 3, n_b = 4, n = 7; alpha = 1 - (n - 1) * 2 / (2 * n_a * n_b) = 1 - 12/24 = 0.5
    counts, domain = count_matrix([["a", "a"], ["a", "b", None], ["b", "b", "b"], ["a"]])
    assert domain == ["a", "b"]
    assert krippendorff_alpha_counts(counts, domain, "nominal") == pytest.approx(0.5, abs=1e-15)


def test_fleiss_textbook_example() -> None:
    got = fleiss_kappa(FLEISS_TABLE)
    assert round(got, 3) == 0.210
    assert got == pytest.approx(sm_fleiss_kappa(FLEISS_TABLE, method="fleiss"), abs=1e-12)


def test_fleiss_unequal_raters_by_hand() -> None:
    # items (a,a,b), (a,b), (b,b): P_i = 1/3, 0, 1 -> P_bar = 4/9;
    # p = (3/7, 4/7) -> P_e = 25/49; kappa = (4/9 - 25/49) / (24/49) = -29/216
    counts = np.array([[2, 1], [1, 1], [0, 2], [1, 0]])  # the last item (1 rating) is ignored
    assert fleiss_kappa(counts) == pytest.approx(-29 / 216, abs=1e-15)


def test_undefined_values_are_none() -> None:
    assert fleiss_kappa(np.array([[3, 0], [2, 0]])) is None  # one category only
    assert fleiss_kappa(np.array([[1, 0], [0, 1]])) is None  # no item with 2 ratings
    assert krippendorff_alpha([[1, 1, 1], [1, 1, NAN]], "interval") is None
    assert krippendorff_alpha([[1, NAN], [NAN, 2]], "nominal") is None
    with pytest.raises(ValueError, match="unknown level"):
        krippendorff_alpha(K2011, "ratio")


def test_field_agreement_shape() -> None:
    ratings = {
        "s1": {"A1": "pos", "A2": "pos", "A3": "neg"},
        "s2": {"A1": "neg", "A2": "neg", "A3": None},
        "s3": {"A1": "neu", "A4": None},  # one rating: not an item for agreement
    }
    got = field_agreement(ratings, "nominal")
    assert set(got) == {"fleiss_kappa", "krippendorff_alpha", "items", "annotators", "level"}
    assert (got["items"], got["annotators"], got["level"]) == (2, 3, "nominal")
    counts = np.array([[1, 0, 2], [2, 0, 0], [0, 1, 0]])  # neg, neu, pos
    assert got["fleiss_kappa"] == pytest.approx(fleiss_kappa(counts), abs=1e-15)
    json.dumps(got, allow_nan=False)
    assert field_agreement(ratings, "nominal", kappa=False)["fleiss_kappa"] is None


def _matrix(draw, values):
    raters = draw(st.integers(2, 6))
    units = draw(st.integers(1, 12))
    cells = draw(
        st.lists(st.one_of(st.just(NAN), values), min_size=raters * units, max_size=raters * units)
    )
    return np.array(cells, dtype=np.float64).reshape(raters, units)


@st.composite
def reliability_data(draw, level: str):
    if level == "interval":
        values = st.floats(-1, 1, allow_nan=False).map(lambda x: round(x, 2))
    else:
        values = st.integers(0, 4).map(float)
    return _matrix(draw, values)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_alpha_matches_krippendorff_package(level: str, data) -> None:
    matrix = data.draw(reliability_data(level))
    observed = matrix[~np.isnan(matrix)]
    assume(len(np.unique(observed)) >= 2)  # the package refuses a one-value domain
    if ((~np.isnan(matrix)).sum(axis=0) < 2).all():  # ... and data with no pairable unit
        assert krippendorff_alpha(matrix, level) is None
        return
    with np.errstate(all="ignore"):
        want = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    got = krippendorff_alpha(matrix, level)
    if got is None:
        assert not np.isfinite(want)
    else:
        assert got == pytest.approx(float(want), abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fleiss_matches_statsmodels_on_equal_raters(data) -> None:
    raters = data.draw(st.integers(2, 8))
    items = data.draw(st.integers(1, 15))
    categories = data.draw(st.integers(2, 5))
    labels = data.draw(
        st.lists(st.integers(0, categories - 1), min_size=raters * items, max_size=raters * items)
    )
    table = np.zeros((items, categories))
    for i, c in enumerate(labels):
        table[i // raters, c] += 1
    with np.errstate(all="ignore"):
        want = sm_fleiss_kappa(table, method="fleiss")
    got = fleiss_kappa(table)
    if got is None:
        assert not np.isfinite(want)
    else:
        assert got == pytest.approx(float(want), abs=1e-9)

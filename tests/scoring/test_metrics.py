"""``indomer.scoring.metrics``: the metrics core against scikit-learn, and the bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from sklearn import metrics as skm

from indomer.labels import label_set
from indomer.scoring.metrics import (
    HEADLINE,
    INVALID,
    MISSING,
    bootstrap_counts,
    confusion_matrix,
    lacking_classes,
    metrics_from_confusion,
    paired_p_value,
    percentile_ci,
    resampled_confusions,
    score_labels,
)
from indomer.scoring.reader import load_schema
from indomer.scoring.report import dump_json, format_report

OUTSIDE = "__invalid__"


# --------------------------------------------------------------------------------------------
# Metrics equal scikit-learn


@st.composite
def labelled(draw):
    k = draw(st.sampled_from([2, 3, 7]))
    n = draw(st.integers(min_value=1, max_value=60))
    # a restricted pool makes classes absent from the references or the predictions
    true_pool = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    pred_pool = draw(st.lists(st.integers(-1, k - 1), min_size=1, max_size=k + 1, unique=True))
    y_true = draw(st.lists(st.sampled_from(true_pool), min_size=n, max_size=n))
    y_pred = draw(st.lists(st.sampled_from(pred_pool), min_size=n, max_size=n))
    return k, np.array(y_true), np.array(y_pred)


def _names(ids: np.ndarray) -> list[str]:
    return [OUTSIDE if i < 0 else f"c{i}" for i in ids]


def _sklearn_macro_labels(t: list[str], p: list[str]) -> list[str]:
    """scikit-learn's ``labels=None`` classes (those in t or p) less the invalid marker."""
    return sorted((set(t) | set(p)) - {OUTSIDE})


def _assert_averages_equal_sklearn(m: dict, t: list[str], p: list[str]) -> None:
    """macro_f1, UA and weighted_f1 equal scikit-learn's over the classes present in t or p.

    Without invalid answers that is exactly ``labels=None``; with them, sklearn's default
    would make the marker a class of its own (F1 0), so the present label set is passed.
    """
    tol = {"abs": 1e-9}
    present = _sklearn_macro_labels(t, p)
    kw = {"labels": present, "zero_division": 0}
    assert m["macro_f1"] == pytest.approx(skm.f1_score(t, p, average="macro", **kw), **tol)
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(t, p, average="weighted", **kw), **tol)
    ua = skm.recall_score(t, p, average="macro", **kw)
    assert m["unweighted_accuracy"] == pytest.approx(ua, **tol)
    if OUTSIDE not in p:
        assert m["macro_f1"] == pytest.approx(
            skm.f1_score(t, p, average="macro", zero_division=0), **tol
        )
        assert m["unweighted_accuracy"] == pytest.approx(
            skm.recall_score(t, p, average="macro", zero_division=0), **tol
        )


def test_sklearn_default_counts_the_invalid_marker_as_a_class():
    # why the reference passes labels=: labels=None would average the marker's F1 of 0 in
    t, p = ["c0", "c1"], [OUTSIDE, "c1"]
    assert skm.f1_score(t, p, average="macro", zero_division=0) == pytest.approx(1 / 3)
    m = metrics_from_confusion(confusion_matrix([0, 1], [INVALID, 1], 2))
    assert m["macro_f1"] == 0.5
    _assert_averages_equal_sklearn(m, t, p)


@settings(max_examples=150, deadline=None)
@given(labelled())
def test_metrics_equal_sklearn(case):
    k, y_true, y_pred = case
    labels = [f"c{i}" for i in range(k)]
    t, p = _names(y_true), _names(y_pred)
    cm = confusion_matrix(y_true, y_pred, k)
    m = metrics_from_confusion(cm)
    tol = {"abs": 1e-9}
    np.testing.assert_array_equal(cm[:, :k], skm.confusion_matrix(t, p, labels=labels))
    assert cm.sum() == len(t)
    _assert_averages_equal_sklearn(m, t, p)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(t, p), **tol)
    prec, rec, f1, sup = skm.precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    np.testing.assert_allclose(m["precision"], prec, atol=1e-9, rtol=0)
    np.testing.assert_allclose(m["recall"], rec, atol=1e-9, rtol=0)
    np.testing.assert_allclose(m["f1"], f1, atol=1e-9, rtol=0)
    np.testing.assert_array_equal(m["support"], sup)
    assert m["present"].tolist() == [c in set(t) | set(p) for c in labels]


@settings(max_examples=60, deadline=None)
@given(labelled())
def test_score_labels_report_equals_sklearn_report(case):
    k, y_true, y_pred = case
    task = {2: "sentiment", 3: "sentiment", 7: "emotion"}[k]
    names = label_set(task).names
    y_true = np.minimum(y_true, len(names) - 1)
    y_pred = np.where(y_pred < 0, INVALID, np.minimum(y_pred, len(names) - 1))
    result = score_labels(task, y_true, y_pred, n_resamples=0)
    t = [names[i] for i in y_true]
    p = [OUTSIDE if i < 0 else names[i] for i in y_pred]
    report = skm.classification_report(t, p, labels=list(names), output_dict=True, zero_division=0)
    for name in names:
        for key, sk_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert result["per_class"][name][key] == pytest.approx(report[name][sk_key], abs=1e-9)
        assert result["per_class"][name]["support"] == report[name]["support"]
    assert result["n_invalid"] == int((y_pred < 0).sum())
    present = _sklearn_macro_labels(t, p)
    macro = skm.f1_score(t, p, labels=present, average="macro", zero_division=0)
    assert result["metrics"]["macro_f1"] == pytest.approx(macro, abs=1e-9)
    rows = np.array(result["confusion"]["matrix"]).sum(axis=1) + result["confusion"]["invalid"]
    assert rows.tolist() == [result["per_class"][n]["support"] for n in names]


def test_invalid_prediction_is_wrong_for_every_class():
    # one reference of class 0 answered with an invalid value: a FN of class 0, no FP anywhere
    m = metrics_from_confusion(confusion_matrix([0, 1], [INVALID, 1], 3))
    np.testing.assert_allclose(m["precision"], [0, 1, 0])
    np.testing.assert_allclose(m["recall"], [0, 1, 0])
    assert m["accuracy"] == 0.5
    # class 2 is neither referenced nor predicted: left out of both macro averages, and the
    # invalid answer is no class of its own
    np.testing.assert_array_equal(m["present"], [True, True, False])
    assert m["macro_f1"] == 0.5
    assert m["unweighted_accuracy"] == 0.5
    # a class predicted but never referenced is present: F1 0 and recall 0 in the averages
    m = metrics_from_confusion(confusion_matrix([0, 1], [2, 1], 3))
    assert m["macro_f1"] == pytest.approx(1 / 3)
    assert m["unweighted_accuracy"] == pytest.approx(1 / 3)
    # missing and invalid both land in the extra column
    cm = confusion_matrix([0, 1], [MISSING, INVALID], 2)
    np.testing.assert_array_equal(cm, [[0, 0, 1], [0, 0, 1]])
    # an id outside the label set is an invalid answer, not a crash
    r = score_labels("sentiment", [0, 1, 2], [9, 1, MISSING], n_resamples=0)
    assert (r["n_invalid"], r["n_missing"]) == (1, 1)
    assert r["confusion"]["invalid"] == [1, 0, 0] and r["confusion"]["missing"] == [0, 0, 1]


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 0], 3)
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 3)


def test_metrics_are_batched():
    one = confusion_matrix([0, 1, 2, 2], [0, 2, 2, INVALID], 3)
    two = confusion_matrix([0, 0, 1, 2], [1, 0, 1, 2], 3)
    batch = metrics_from_confusion(np.stack([one, two]))
    for i, cm in enumerate((one, two)):
        single = metrics_from_confusion(cm)
        for key, value in single.items():
            np.testing.assert_allclose(batch[key][i], value)


# --------------------------------------------------------------------------------------------
# Bootstrap


def test_resampled_confusions_by_hand():
    # segments: (true, pred, unit) = (0, 0, u0), (1, 0, u0), (1, 1, u1)
    y_true, y_pred, units = [0, 1, 1], [0, 0, 1], [0, 0, 1]
    counts = np.array([[2, 0], [0, 2], [1, 1]])
    cms = resampled_confusions(y_true, y_pred, units, counts, 2)
    # resample 0 takes unit 0 twice: its two segments twice each
    np.testing.assert_array_equal(cms[0], [[2, 0, 0], [2, 0, 0]])
    # resample 1 takes unit 1 twice
    np.testing.assert_array_equal(cms[1], [[0, 0, 0], [0, 2, 0]])
    # resample 2 is the original data
    np.testing.assert_array_equal(cms[2], confusion_matrix(y_true, y_pred, 2))
    acc = metrics_from_confusion(cms)["accuracy"]
    np.testing.assert_allclose(acc, [0.5, 1.0, 2 / 3])


def test_resample_that_misses_a_class_averages_over_the_classes_it_holds():
    # one segment per unit: (true, pred) = (0, 0), (1, 1), (2, 1)
    y_true, y_pred, units = [0, 1, 2], [0, 1, 1], [0, 1, 2]
    counts = np.array([[2, 1, 0], [0, 0, 3], [1, 1, 1], [0, 3, 0]])
    cms = resampled_confusions(y_true, y_pred, units, counts, 3)
    m = metrics_from_confusion(cms)
    # 0: refs 0 0 1, all right, class 2 nowhere -> 1 (the old every-class rule gave 2/3)
    # 1: refs 2 2 2 answered 1 1 1 -> classes 1 and 2 present, both F1 0
    # 2: the original sample -> F1 (1, 2/3, 0) over three classes; recall (1, 1, 0)
    # 3: refs 1 1 1, all right -> 1 (the old rule gave 1/3)
    np.testing.assert_allclose(m["macro_f1"], [1, 0, 5 / 9, 1], atol=1e-12, rtol=0)
    np.testing.assert_allclose(m["unweighted_accuracy"], [1, 0, 2 / 3, 1], atol=1e-12, rtol=0)
    np.testing.assert_allclose(m["accuracy"], [1, 0, 2 / 3, 1], atol=1e-12, rtol=0)
    per_class, n_any = lacking_classes(np.array([1, 1, 1]), m["support"])
    assert per_class.tolist() == [2, 1, 2]  # class 0 missed by 1 and 3, class 1 by 1, ...
    assert n_any == 3  # only resample 2 holds every class


@st.composite
def resampled(draw):
    k, y_true, y_pred = draw(labelled())
    n_units = draw(st.integers(1, min(6, y_true.size)))
    units = np.array(
        draw(st.lists(st.integers(0, n_units - 1), min_size=y_true.size, max_size=y_true.size))
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return k, y_true, y_pred, units, seed


@settings(max_examples=40, deadline=None)
@given(resampled())
def test_every_resample_equals_sklearn_on_its_expanded_sample(case):
    # each resample, written out segment by segment, scored by scikit-learn
    k, y_true, y_pred, units, seed = case
    _, codes = np.unique(units, return_inverse=True)
    counts = bootstrap_counts(int(codes.max()) + 1, 8, np.random.default_rng(seed))
    m = metrics_from_confusion(resampled_confusions(y_true, y_pred, codes, counts, k))
    for b in range(counts.shape[0]):
        take = np.repeat(np.arange(y_true.size), counts[b, codes])
        t, p = _names(y_true[take]), _names(y_pred[take])
        one = {key: m[key][b] for key in HEADLINE}
        _assert_averages_equal_sklearn(one, t, p)
        assert one["accuracy"] == pytest.approx(skm.accuracy_score(t, p), abs=1e-9)


def test_lacking_class_counts_match_a_loop_over_the_draws():
    rng = np.random.default_rng(5)
    y_true = np.array([0] * 30 + [1] * 12 + [2] * 2 + [3])  # class 3 once, class 4 never
    y_pred = rng.integers(-1, 5, y_true.size)
    units = rng.integers(0, 12, y_true.size)
    result = score_labels("emotion", y_true, y_pred, units, n_resamples=300, seed=11)
    _, codes = np.unique(units.astype(str), return_inverse=True)
    counts = bootstrap_counts(int(codes.max()) + 1, 300, np.random.default_rng(11))
    names = label_set("emotion").names
    want = {names[c]: 0 for c in range(4)}
    any_lacking = 0
    for row in counts:
        held = {int(c) for c, u in zip(y_true, codes) if row[u] > 0}
        missed = set(range(4)) - held
        for c in missed:
            want[names[c]] += 1
        any_lacking += bool(missed)
    boot = result["bootstrap"]
    assert boot["lacking_class"] == want
    assert boot["n_resamples_lacking_a_class"] == any_lacking
    assert want[names[3]] > 0 and want[names[0]] == 0  # the seed draws some misses
    none = score_labels("emotion", y_true, y_pred, units, n_resamples=0)["bootstrap"]
    assert none["lacking_class"] == {n: 0 for n in want}
    assert none["n_resamples_lacking_a_class"] == 0


def test_bootstrap_counts_draw_every_unit_count_times():
    counts = bootstrap_counts(5, 300, np.random.default_rng(3))
    assert counts.shape == (300, 5)
    assert (counts.sum(axis=1) == 5).all()
    np.testing.assert_array_equal(counts, bootstrap_counts(5, 300, np.random.default_rng(3)))
    assert not np.array_equal(counts, bootstrap_counts(5, 300, np.random.default_rng(4)))
    # each unit is drawn once per resample on average
    assert counts.mean() == pytest.approx(1.0, abs=0.1)


def test_two_unit_interval_is_hand_checkable_and_reported_undefined():
    # one speaker always right, one always wrong: a resample's accuracy is 0, 1/2 or 1 with
    # probabilities 1/4, 1/2, 1/4, so the 2.5th/97.5th percentiles are exactly 0 and 1
    y_true = np.zeros(10, dtype=int)
    y_pred = np.array([0] * 5 + [1] * 5)
    units = np.array([0] * 5 + [1] * 5)
    counts = bootstrap_counts(2, 1000, np.random.default_rng(0))
    boot = metrics_from_confusion(resampled_confusions(y_true, y_pred, units, counts, 3))
    assert percentile_ci(boot["accuracy"]) == [0.0, 1.0]
    # ... but two speakers say nothing a reader can trust: score withholds the interval
    result = score_labels("sentiment", y_true, y_pred, ["a"] * 5 + ["b"] * 5, seed=0)
    assert result["metrics"]["accuracy"] == 0.5
    assert result["ci95"] == {"macro_f1": None, "weighted_f1": None, "accuracy": None}
    reason = "only 2 speaker units to resample, fewer than 5"
    assert result["ci95_undefined"] == dict.fromkeys(
        ("macro_f1", "weighted_f1", "accuracy"), reason
    )
    assert result["bootstrap"]["n_units"] == 2


@pytest.mark.parametrize("n_units", [1, 4, 5])
def test_fewer_than_five_units_give_no_interval_and_no_p_value(n_units):
    # every unit holds every class, so no resample lacks one: only the unit count matters
    y_true = np.tile([0, 1, 2], 2 * n_units)
    y_pred = np.tile([0, 1, 1], 2 * n_units)
    units = np.repeat([f"spk{i}" for i in range(n_units)], 6)
    r = score_labels("sentiment", y_true, y_pred, units, y_other=np.zeros_like(y_true))
    assert r["bootstrap"]["n_units"] == n_units
    assert r["bootstrap"]["n_resamples_lacking_a_class"] == 0
    if n_units < 5:
        word = "unit" if n_units == 1 else "units"
        reason = f"only {n_units} speaker {word} to resample, fewer than 5"
        assert r["ci95"] == {"macro_f1": None, "weighted_f1": None, "accuracy": None}
        assert r["ci95_undefined"] == dict.fromkeys(("macro_f1", "weighted_f1", "accuracy"), reason)
        assert r["compare"]["ci95"] is None and r["compare"]["p_value"] is None
        assert r["compare"]["undefined"] == reason
        text = format_report(r)
        assert "  macro_f1             0.5556  [undefined]" in text
        assert f"95% CI undefined for macro_f1, weighted_f1, accuracy: {reason}; " in text
        assert "--bootstrap-unit segment" in text and "p undefined" in text
    else:
        # every resample holds every class in the same proportions: the interval is a point
        assert r["ci95_undefined"] == {}
        assert r["ci95"]["macro_f1"] == pytest.approx([5 / 9, 5 / 9])
        assert r["compare"]["undefined"] is None and r["compare"]["p_value"] == 0.0
    r["compare"]["other"] = "other.jsonl"  # score_predictions names the file
    Draft202012Validator(load_schema("score")).validate(r)


def test_most_resamples_lacking_a_class_leave_macro_f1_undefined():
    # five speakers, each the only one with their class: a resample holds every class only
    # when it draws each speaker once, with probability 5!/5^5 = 0.0384
    y_true = np.repeat(np.arange(5), 3)
    y_pred = np.repeat([0, 1, 2, 3, 0], 3)
    units = np.repeat(list("abcde"), 3)
    r = score_labels("emotion", y_true, y_pred, units, y_other=np.zeros_like(y_true), seed=3)
    counts = bootstrap_counts(5, 1000, np.random.default_rng(3))
    by_hand = int((counts != 1).any(axis=1).sum())  # not a permutation: some speaker missed
    assert r["bootstrap"]["n_resamples_lacking_a_class"] == by_hand
    assert 930 < by_hand < 990  # about 1000 * (1 - 0.0384)
    reason = f"{by_hand} of 1000 resamples lack a reference class"
    assert r["ci95"]["macro_f1"] is None
    assert r["ci95_undefined"]["macro_f1"].startswith(reason)
    assert set(r["ci95_undefined"]) == {"macro_f1"}
    # weighted F1 and accuracy give an absent class no weight: their intervals stand
    lo, hi = r["ci95"]["accuracy"]
    assert lo <= r["metrics"]["accuracy"] == 0.8 <= hi
    assert r["ci95"]["weighted_f1"] is not None
    assert r["compare"]["p_value"] is None and r["compare"]["undefined"].startswith(reason)
    text = format_report(r)
    assert f"resamples lacking a reference class: {by_hand} of 1000" in text
    assert f"95% CI undefined for macro_f1: {reason}" in text
    # the same speakers each holding every class: nothing is lacking, every interval stands
    even = score_labels(
        "emotion",
        np.tile(np.arange(5), 5),
        np.tile(np.arange(5), 5),
        np.repeat(list("abcde"), 5),
        seed=3,
    )
    assert even["ci95_undefined"] == {} and even["ci95"]["macro_f1"] == [1.0, 1.0]


def test_bootstrap_is_deterministic_under_seed():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(-1, 7, 200))
    units = rng.integers(0, 20, 200)
    a = score_labels("emotion", y_true, y_pred, units, n_resamples=300, seed=7)
    b = score_labels("emotion", y_true, y_pred, units, n_resamples=300, seed=7)
    c = score_labels("emotion", y_true, y_pred, units, n_resamples=300, seed=8)
    assert dump_json(a) == dump_json(b)
    assert a["ci95"] != c["ci95"]
    assert a["metrics"] == c["metrics"]


def test_speaker_unit_is_wider_than_segment_unit_when_speakers_cluster():
    # 10 speakers x 20 clips; half the speakers are always right, half always wrong
    n_spk, per = 10, 20
    y_true = np.zeros(n_spk * per, dtype=int)
    y_pred = np.repeat([0, 1] * (n_spk // 2), per)
    speakers = np.repeat(np.arange(n_spk), per)
    by_speaker = score_labels("sentiment", y_true, y_pred, speakers, n_resamples=1000)
    by_segment = score_labels("sentiment", y_true, y_pred, None, n_resamples=1000)
    width = {
        name: r["ci95"]["accuracy"][1] - r["ci95"]["accuracy"][0]
        for name, r in (("speaker", by_speaker), ("segment", by_segment))
    }
    # binomial theory: about 2 * 1.96 * sqrt(.25 / 10) = 0.62 vs sqrt(.25 / 200) -> 0.14
    assert width["speaker"] > 3 * width["segment"]
    assert 0.08 < width["segment"] < 0.2
    assert 0.4 < width["speaker"] < 0.8
    assert by_segment["bootstrap"]["n_units"] == n_spk * per


def test_compare_identical_systems():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 3, 80)
    y_pred = rng.integers(0, 3, 80)
    r = score_labels("sentiment", y_true, y_pred, rng.integers(0, 8, 80), y_other=y_pred)
    assert r["compare"]["delta"] == 0.0
    assert r["compare"]["ci95"] == [0.0, 0.0]
    assert r["compare"]["p_value"] == 1.0
    assert r["compare"]["macro_f1"] == r["metrics"]["macro_f1"]


def test_compare_clearly_better_system():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 3, 300)
    noisy = np.where(rng.random(300) < 0.5, y_true, (y_true + 1) % 3)
    units = rng.integers(0, 30, 300)
    better = score_labels("sentiment", y_true, y_true, units, y_other=noisy)
    worse = score_labels("sentiment", y_true, noisy, units, y_other=y_true)
    assert better["compare"]["delta"] > 0.3
    assert better["compare"]["p_value"] == 0.0
    assert better["compare"]["ci95"][0] > 0
    assert worse["compare"]["delta"] == -better["compare"]["delta"]
    assert worse["compare"]["p_value"] == 0.0
    assert worse["compare"]["ci95"][1] < 0
    # the main interval is the same with or without a comparison (same draws)
    alone = score_labels("sentiment", y_true, y_true, units)
    assert alone["ci95"] == better["ci95"]


def test_paired_p_value_definition():
    deltas = np.array([0.1, 0.2, 0.0, -0.1])
    assert paired_p_value(0.05, deltas) == 0.5  # 0.0 and -0.1 do not favour the winner
    assert paired_p_value(-0.05, deltas) == 0.75  # 0.1, 0.2 and the tie count against
    assert paired_p_value(0.0, deltas) == 1.0


def test_no_bootstrap_gives_null_intervals():
    r = score_labels("sentiment", [0, 1], [0, 1], n_resamples=0, y_other=[1, 1])
    assert r["ci95"] is None
    assert r["ci95_undefined"]["macro_f1"] == "not computed (--bootstrap 0)"
    assert r["compare"]["ci95"] is None and r["compare"]["p_value"] is None

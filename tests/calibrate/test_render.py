"""``indomer.calibrate.render``: the calibration report as a table, every figure in its column
(a hand-made report, so each number's place is known)."""

from __future__ import annotations

from indomer.calibrate.render import render

STATS = {"n": 4, "min": 0.1, "median": 0.5, "max": 0.9, "mean": 0.55}
POINT = {"threshold": 0.75, "miss_rate": 0.25, "false_merge_rate": 0.125}
REPORT = {
    "settings": {"min_solo": 2.0},
    "too_short": 3,
    "recordings": [{"uri": "rec1", "wav": "rec1.wav", "match": "exact"},
                   {"uri": "Réc2", "wav": "rec2.wav", "match": "folded"}],
    "voices": [{"speaker": "A"}, {"speaker": "B"}, {"speaker": "A"}],
    "models": {
        "resemblyzer": {
            "model": "resemblyzer 0.1",
            "same_person": STATS,
            "different_people": {**STATS, "n": 2},
            "pairs": {"same_recording": 7},
            "eer": {"rate": 0.2, **POINT},
            "at_miss_rate": [{"target_miss_rate": 0.05, **POINT}],
            "split_safe": {"margin": 0.02, **POINT, "components": 2, "people": 2,
                           "largest_component": 2},
            "voices": 3,
            "probability": {"eer": {"rate": 0.1}, "slope": 12.5, "intercept": -8.25},
        }
    },
}


def test_the_table_holds_every_figure_in_its_place():
    assert render(REPORT).splitlines() == [
        ("2 recordings, 3 voices (speaker x recording) with >= 2 s of solo speech, 2 speakers; "
        "3 shorter voices left out"),
        "matched: RTTM uri 'Réc2' -> rec2.wav (folded)",
        "",
        "model resemblyzer: resemblyzer 0.1",
        "pairs                 n      min   median      max     mean",
        "same person           4    0.100    0.500    0.900    0.550",
        "different people      2    0.100    0.500    0.900    0.550",
        "(7 pairs within one recording not scored)",
        "",
        "operating point            threshold    miss  false merge",
        "EER 0.200                     0.7500   0.250        0.125",
        "miss <= 0.05                  0.7500   0.250        0.125",
        "split-safe (margin 0.02)      0.7500   0.250        0.125",
        "split-safe single linkage: 2 groups of 2 people over 3 voices (largest 2)",
        ("probability of one person (cohort-normalised score, EER 0.100): logit p = 12.5000 * "
        "score -8.2500"),
    ]


def test_a_model_without_a_probability_fit_has_no_logit_line():
    model = {k: v for k, v in REPORT["models"]["resemblyzer"].items() if k != "probability"}
    text = render({**REPORT, "models": {"m": model}})
    assert text.endswith("over 3 voices (largest 2)\n") and "logit" not in text

"""The calibrated voice score -> probability mapping the speakers stage links voices with: a
``speakers calibrate --json`` record, or the shipped AMI one (a file read, kept out of the
numpy clustering)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from indomer.errors import DataError

#: The shipped calibration record of the resemblyzer defaults.
CALIBRATION_FILE = "calibration/resemblyzer-ami.json"
#: Largest calibration file read (a record is a few KB).
CALIBRATION_MAX_BYTES = 16 << 20


# --------------------------------------------------------------------------- calibration


def _read_calibration(path: str | Path | None) -> dict:
    """A ``speakers calibrate --json`` record: ``path``, or the shipped one (None); {} when
    the shipped one is absent or unreadable (a user's file that cannot be read is an error)."""
    import json
    from importlib import resources

    if path is None:
        try:
            text = resources.files("indomer").joinpath("data", *CALIBRATION_FILE.split("/"))
            return json.loads(text.read_text(encoding="utf-8"))
        except (FileNotFoundError, OSError, ValueError):
            return {}
    p = Path(path).expanduser()
    try:
        if p.stat().st_size > CALIBRATION_MAX_BYTES:
            raise DataError(f"{p}: larger than {CALIBRATION_MAX_BYTES >> 20} MB; give the JSON "
                            "that 'indomer speakers calibrate --json FILE' writes")
        from indomer.readjson import read_json  # the one bounded reader (DESIGN §7.14)

        doc = read_json(p)
    except OSError as exc:
        raise DataError(f"{p}: cannot read the calibration file ({exc.strerror}); fix "
                        "speakers.calibration") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{p}: not a JSON calibration record ({exc}); give the JSON that "
                        "'indomer speakers calibrate --json FILE' writes") from exc
    if not isinstance(doc, dict):
        raise DataError(f"{p}: expected a JSON object from 'indomer speakers calibrate'")
    return doc


def score_model(
    embedding: str,
    path: str | Path | None = None,
    *,
    face_same: float | None = None,
    face_different: float | None = None,
    prior: float | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[object | None, dict]:
    """The calibrated score -> probability mapping for ``embedding`` and where it comes from.

    ``path``: a ``speakers calibrate --json`` file (None: the shipped AMI record). A file
    without a probability fit for ``embedding`` (another model) is reported through ``log``
    with one line, and the shipped record is used when it fits the model; otherwise there is
    no model (None) and the split falls back to hard groups only. ``prior``: the share of
    pairs that are one person in this dataset, when known; it replaces the calibration set's
    (logistic regression bakes its prior into the intercept, so the shift is exact). Without
    it the model estimates the dataset's own from its scores
    (:func:`indomer.identity.estimate_prior`).
    """
    from indomer.identity import MIN_COHORT, ScoreModel

    def fit_of(doc: dict) -> dict | None:
        rec = (doc.get("models") or {}).get(embedding) if isinstance(doc, dict) else None
        prob = rec.get("probability") if isinstance(rec, dict) else None
        return prob if isinstance(prob, dict) and "slope" in prob else None

    where = f"indomer/data/{CALIBRATION_FILE}" if path is None else str(path)
    doc = _read_calibration(path)
    prob = fit_of(doc)
    if prob is None and path is not None:
        models = ", ".join(sorted((doc.get("models") or {}) if isinstance(doc, dict) else {}))
        if log is not None:
            log(f"{path}: no probability calibration for embedding {embedding!r} (it has "
                f"{models or 'none'}); using the shipped default; calibrate this model with "
                "'indomer speakers calibrate --embedding MODEL --json FILE'")
        doc, where = _read_calibration(None), f"indomer/data/{CALIBRATION_FILE}"
        prob = fit_of(doc)
    if prob is None:
        return None, {"source": "none: no calibration for this embedding model", "file": None}
    mean = prob.get("cohort_mean")
    intercept = float(prob["intercept"])
    cal_prior = prob.get("prior")
    if prior is not None and cal_prior:
        intercept += math.log(prior / (1 - prior)) - math.log(cal_prior / (1 - cal_prior))

    def density(block: object) -> tuple[float, float] | None:
        ok = isinstance(block, dict) and all(isinstance(block.get(k), (int, float))
                                             for k in ("mean", "sd"))
        return (float(block["mean"]), float(block["sd"])) if ok and block["sd"] > 0 else None

    model = ScoreModel(
        slope=float(prob["slope"]),
        intercept=intercept,
        cohort_mean=None if mean is None else np.asarray(mean, dtype=np.float64),
        min_cohort=int(prob.get("min_cohort", MIN_COHORT)),
        face_same=face_same,
        face_different=face_different,
        prior=(prior if prior is not None else cal_prior) if cal_prior else None,
        same=density(prob.get("same_person")),
        different=density(prob.get("different_people")),
        estimate_prior=prior is None,
    )
    info = {
        "source": doc.get("source") or where,
        "file": where,
        "score": prob.get("score"),
        "slope": model.slope,
        "intercept": model.intercept,
        "prior": prior if prior is not None and cal_prior else cal_prior,
        "prior_from": ("speakers.prior" if prior is not None and cal_prior
                       else "the calibration set"),
        "calibration_prior": cal_prior,
        "n_same": prob.get("n_same"),
        "n_different": prob.get("n_different"),
        "eer": prob.get("eer"),
    }
    return model, info

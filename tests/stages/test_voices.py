"""The voices stage (:mod:`indomer.stages.voices`): its settings are the ``speakers:``
section without the clustering fields (tuning the clustering never re-embeds a clip); the
per-source work itself is tested on real voices in tests/stages/test_speakers_stage.py."""

from __future__ import annotations

from types import SimpleNamespace

from indomer.config import fingerprint_settings
from indomer.speaker_settings import CLUSTER_FIELDS, ITEM_FIELDS, Settings
from indomer.stages import voices


def _cfg(section: dict) -> SimpleNamespace:
    return SimpleNamespace(settings=lambda name, cls: cls(**section) if name == "speakers"
                           else None)


def test_it_reads_the_speakers_section_and_is_a_model_stage():
    assert voices.STAGE.section == "speakers" and voices.STAGE.model
    assert voices.STAGE.tools_for is not None


def test_clustering_settings_do_not_change_its_fingerprint():
    plain = voices.STAGE.configure(_cfg({}))
    tuned = voices.STAGE.configure(_cfg({"threshold": 0.9, "overrides": "speakers.csv",
                                         "hard_p": 0.95, "min_voice_seconds": 5.0}))
    assert fingerprint_settings(plain) == fingerprint_settings(tuned)
    # an item setting does change it
    other = voices.STAGE.configure(_cfg({"on_mixed": "reject"}))
    assert fingerprint_settings(other) != fingerprint_settings(plain)
    assert set(ITEM_FIELDS) - {"embedding"} <= {f for f in fingerprint_settings(plain)}
    assert "overrides" in CLUSTER_FIELDS and isinstance(plain, Settings)

"""``indomer.speakers.clustering``: global speaker clustering exact on hand-made vectors,
scipy as the average-linkage reference, id stability, pins and faces as evidence, and the demo
corpus's real voices."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from speaker_fixtures import demo_voices, partition, unrelated_voices

from indomer.errors import DataError, UsageError
from indomer.identity import ScoreModel
from indomer.speakers.clustering import (
    RESEMBLYZER_THRESHOLD,
    ClipVoice,
    Linking,
    agglomerate,
    cluster_voices,
    decode_embedding,
    derived_id,
    encode_embedding,
    normalize,
)
from indomer.speakers.pins import Pins, read_overrides

DIM = 16


def unit(*coords: float) -> np.ndarray:
    v = np.zeros(DIM)
    v[: len(coords)] = coords
    return v / np.linalg.norm(v)


def at(angle_deg: float, axis: int = 0) -> np.ndarray:
    """A unit vector at ``angle_deg`` from basis vector ``axis`` towards ``axis + 1``."""
    v = np.zeros(DIM)
    t = np.radians(angle_deg)
    v[axis], v[axis + 1] = np.cos(t), np.sin(t)
    return v


def speakers(n_speakers: int, per: int, spread: float, seed: int) -> tuple[np.ndarray, list]:
    """``per`` noisy unit vectors around each of ``n_speakers`` random centres."""
    rng = np.random.default_rng(seed)
    centres = normalize(rng.standard_normal((n_speakers, 64)))
    x = np.repeat(centres, per, axis=0) + spread * rng.standard_normal((n_speakers * per, 64))
    return normalize(x), [i for i in range(n_speakers) for _ in range(per)]


# --------------------------------------------------------------------------- agglomerate


def test_average_linkage_does_not_chain():
    # A-B and B-C are close (cos 19 deg = 0.946, cos 21 deg = 0.934), A-C is not (cos 40 deg
    # = 0.766): single linkage at 0.93 would join all three; average linkage joins A-B, and
    # C's mean similarity to {A, B} is 0.850 < 0.93.
    x = np.stack([at(0), at(19), at(40)])
    assert agglomerate(x, 0.93).tolist() == [0, 0, 2]
    assert agglomerate(x, 0.70).tolist() == [0, 0, 0]
    assert agglomerate(x, 0.95).tolist() == [0, 1, 2]


def test_threshold_is_inclusive_and_labels_name_the_first_row():
    x = np.stack([at(0, 2), at(0), at(0, 4), at(0)])
    assert agglomerate(x, 1.0).tolist() == [0, 1, 2, 1]
    assert agglomerate(np.zeros((0, DIM)), 0.9).tolist() == []
    assert agglomerate(x[:1], 0.9).tolist() == [0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy_average_linkage(seed):
    from scipy.cluster.hierarchy import fcluster, linkage

    x, _ = speakers(12, 6, 0.07, seed)  # same-speaker cosine about 0.76: partial merges
    x = np.concatenate([x, normalize(np.random.default_rng(seed).standard_normal((20, 64)))])
    cut = 0.75
    ref = fcluster(linkage(x, method="average", metric="cosine"), 1 - cut, criterion="distance")
    ours = agglomerate(x, cut)
    assert partition(dict(enumerate(ours.tolist()))) == partition(dict(enumerate(ref.tolist())))


def test_dense_and_streamed_paths_and_block_sizes_agree():
    x, truth = speakers(30, 8, 0.04, 5)  # same-speaker cosine about 0.91
    base = agglomerate(x, 0.8)
    assert partition(dict(enumerate(base.tolist()))) == partition(dict(enumerate(truth)))
    np.testing.assert_array_equal(agglomerate(x, 0.8, dense_max=0), base)
    np.testing.assert_array_equal(agglomerate(x, 0.8, block=7), base)
    order = np.random.default_rng(0).permutation(len(x))
    shuffled = agglomerate(x[order], 0.8)
    assert partition(dict(zip(order.tolist(), shuffled.tolist()))) == partition(
        dict(enumerate(base.tolist()))
    )


def test_pins_start_together_and_different_pins_never_merge():
    x = np.stack([at(0), at(1), at(60), at(2)])
    # rows 0 and 2 share a pin: merged however far apart; row 1 and 3 join by similarity
    assert agglomerate(x, 0.9, ["p", None, "p", None]).tolist() == [0, 1, 0, 1]
    # {0, 2} and {1, 3} are 0.76 apart on average: a lower threshold joins them
    assert agglomerate(x, 0.7, ["p", None, "p", None]).tolist() == [0, 0, 0, 0]
    # rows 0 and 1 are near-identical but pinned to different people; row 3 joins the
    # nearer (row 1, 1 deg), and row 0 cannot follow it
    assert agglomerate(x, 0.9, ["p", "q", None, None]).tolist() == [0, 1, 2, 1]
    assert agglomerate(x, 0.9, ["p", "q", None, None], dense_max=0).tolist() == [0, 1, 2, 1]


# --------------------------------------------------------------------------- cluster_voices


def clip(cid: str, source: str, vec, **kw) -> ClipVoice:
    return ClipVoice(cid, source, None if vec is None else np.asarray(vec), **kw)


def test_sources_are_averaged_then_clustered_with_ids_from_members():
    clips = [
        clip("a1", "A", at(0)),
        clip("a2", "A", at(10)),  # source A's voice: 5 deg
        clip("b1", "B", at(4)),  # same person
        clip("c1", "C", at(0, 4)),
        clip("c2", "C", None),  # someone else; c2 had no voice
    ]
    res = cluster_voices(clips, 0.99)
    assert res.speaker_ids == {
        "a1": derived_id("a1"),
        "a2": derived_id("a1"),
        "b1": derived_id("a1"),
        "c1": derived_id("c1"),
        "c2": derived_id("c1"),
    }
    assert res.n_speakers == 2 and res.unused_pins == ()
    assert derived_id("a1") == "spk_" + hashlib.sha256(b"a1").hexdigest()[:12]


def test_adding_an_unrelated_source_keeps_every_id():
    clips = [clip("x1", "X", at(0)), clip("y1", "Y", at(3)), clip("z1", "Z", at(0, 2))]
    before = cluster_voices(clips, 0.95).speaker_ids
    after = cluster_voices([clip("a0", "A", at(0, 6)), *clips], 0.95).speaker_ids
    assert {k: after[k] for k in before} == before
    assert after["a0"] not in before.values()
    # a new source of an existing speaker joins it; its id is kept while the smallest
    # member stays the same
    joined = cluster_voices([*clips, clip("y2", "W", at(2))], 0.95).speaker_ids
    assert joined["y2"] == before["x1"] == joined["x1"]


def test_flagged_clips_do_not_shape_their_voice():
    # source A: one clean clip, one mixed clip pointing elsewhere; B matches A's clean voice
    clips = [clip("a1", "A", at(0)), clip("a2", "A", at(90), flagged=True), clip("b1", "B", at(2))]
    ids = cluster_voices(clips, 0.99).speaker_ids
    assert ids["a1"] == ids["a2"] == ids["b1"]
    # a source made only of flagged clips still gets a voice
    alone = cluster_voices([clip("c1", "C", at(0, 2), flagged=True)], 0.9).speaker_ids
    assert alone == {"c1": derived_id("c1")}


def test_diarization_labels_split_a_source_into_voices():
    clips = [
        clip("a1", "A", at(0), label="SPEAKER_00"),
        clip("a2", "A", at(0, 4), label="SPEAKER_01"),
        clip("a3", "A", None, label="SPEAKER_01"),
        clip("b1", "B", at(0, 4)),
    ]
    ids = cluster_voices(clips, 0.95).speaker_ids
    assert ids["a1"] == derived_id("a1")
    assert ids["a2"] == ids["a3"] == ids["b1"] == derived_id("a2")


def test_a_source_without_any_voice_has_no_speaker():
    ids = cluster_voices([clip("a1", "A", None), clip("b1", "B", at(0))], 0.9).speaker_ids
    assert ids == {"a1": None, "b1": derived_id("b1")}


def test_pins_name_clusters_and_keep_people_apart():
    clips = [
        clip("a1", "A", at(0)),
        clip("b1", "B", at(1)),
        clip("c1", "C", at(0.4)),
        clip("d1", "D", at(0, 4)),
        clip("d2", "D", at(0, 4)),
    ]
    pins = Pins(
        sources={"A": ("alice", "s.csv:2"), "B": ("bob", "s.csv:3"), "X": ("xavier", "s.csv:4")},
        clips={"d2": ("dora", "s.csv:5"), "zz": ("zed", "s.csv:6")},
    )
    res = cluster_voices(clips, 0.99, pins)
    # A and B sound the same but are pinned apart; C is nearer to A (0.4 deg against 0.6);
    # D's unpinned clip keeps a derived id, d2 its pin
    assert res.speaker_ids == {
        "a1": "alice",
        "b1": "bob",
        "c1": "alice",
        "d1": derived_id("d1"),
        "d2": "dora",
    }
    assert res.unused_pins == (
        "s.csv:4: source X is not in this build",
        "s.csv:6: clip zz is not in this build",
    )
    # one pin on two sources joins them whatever their voices
    far = cluster_voices(
        [clip("a1", "A", at(0)), clip("e1", "E", at(0, 6))],
        0.99,
        Pins(sources={"A": ("alice", "x"), "E": ("alice", "y")}),
    )
    assert far.speaker_ids == {"a1": "alice", "e1": "alice"}


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(DataError, match="a1: clip id appears twice"):
        cluster_voices([clip("a1", "A", at(0)), clip("a1", "B", at(0))], 0.9)
    with pytest.raises(DataError, match="b1: speaker embedding has 3 values, expected 16"):
        cluster_voices([clip("a1", "A", at(0)), clip("b1", "B", [1.0, 0.0, 0.0])], 0.9)
    with pytest.raises(DataError, match="b1: .*not all zero"):
        cluster_voices([clip("a1", "A", at(0)), clip("b1", "B", np.zeros(DIM))], 0.9)
    with pytest.raises(UsageError, match="threshold"):
        cluster_voices([], 1.5)
    with pytest.raises(DataError, match="derived speaker id"):
        cluster_voices(
            [clip("a1", "A", at(0))], 0.9, Pins(clips={"q": (derived_id("a1"), "s.csv:2")})
        )


def test_embedding_round_trip_and_damage():
    v = normalize(np.arange(1.0, 257.0)).astype(np.float32)
    text = encode_embedding(v)
    assert len(text) == 1368
    np.testing.assert_array_equal(decode_embedding(text), v)
    with pytest.raises(DataError, match="clip_9: speaker embedding is not base64"):
        decode_embedding("@@@", "clip_9")
    with pytest.raises(DataError, match="not base64 float32"):
        decode_embedding("AAA=", "clip_9")  # 2 bytes


# --------------------------------------------------------------------------- real voices


@pytest.mark.slow
def test_demo_corpus_partition_is_recovered_exactly():
    voices, truth = demo_voices()
    res = cluster_voices(voices, RESEMBLYZER_THRESHOLD)
    assert partition(res.speaker_ids) == partition(truth)
    # the voice shared by sources 1 and 4 is one speaker named by its smallest clip
    assert res.speaker_ids["clip_1_Sharing_1"] == res.speaker_ids["clip_4_Cooking_3"]
    assert res.speaker_ids["clip_1_Sharing_1"] == derived_id("clip_1_Sharing_1")
    assert res.n_speakers == 6


@pytest.mark.slow
def test_demo_ids_survive_an_unrelated_source():
    voices, _ = demo_voices()
    before = cluster_voices(voices, RESEMBLYZER_THRESHOLD).speaker_ids
    extra = unrelated_voices()
    after = cluster_voices([*extra, *voices], RESEMBLYZER_THRESHOLD).speaker_ids
    assert {k: after[k] for k in before} == before
    assert {after[v.id] for v in extra} == {derived_id(min(v.id for v in extra))}
    assert after[extra[0].id] not in before.values()


# --------------------------------------------------------------------------- linking


def model(slope: float = 10.0, intercept: float = -8.0, faces: bool = True) -> ScoreModel:
    """A score model for hand-made vectors: p = 0.5 at a normalised score of 0.8."""
    return ScoreModel(slope, intercept, None, 0, 0.9 if faces else None, 0.8 if faces else None)


LINK = Linking(0.95, 0.7, 0.9, 0.8, model())
F1, F2 = unit(1, 0, 0), unit(0, 1, 0)  # two people's faces (cosine 0)


def test_groups_are_hard_and_uncertain_pairs_only_weigh():
    # A and B: an uncertain voice pair; C: unlike both; no single linkage joins them
    clips = [clip("a1", "A", at(0)), clip("b1", "B", at(20)), clip("c1", "C", at(0, 4)),
             clip("d1", "D", at(0, 8))]
    res = cluster_voices(clips, LINK)
    ids, groups = res.speaker_ids, res.groups
    assert ids["a1"] != ids["b1"]  # cosine 0.940: not the same person by the best guess
    assert len({groups[c] for c in ("a1", "b1", "c1", "d1")}) == 4  # four hard groups
    assert groups["a1"] == "grp_" + derived_id("a1")[4:]  # named like the speaker
    (pair,) = [e for e in res.pairs if {e["source_a"], e["source_b"]} == {"A", "B"}]
    assert 0.5 < pair["p"] < 0.99 and pair["a"] < pair["b"]
    assert {pair["a"], pair["b"]} == {groups["a1"], groups["b1"]}
    assert pair["voice_cosine"] == pytest.approx(np.cos(np.radians(20)), abs=1e-4)
    assert pair["face_cosine"] is None and not pair["same_speaker_id"]
    # the pairs with C and D are unlikely (a cohort of two voices makes any two voices far
    # from it look a little alike)
    assert all(e["p"] < 0.1 for e in res.pairs if {e["source_a"], e["source_b"]} != {"A", "B"})
    # near-certain pairs (p >= hard_p) are one group
    sure = cluster_voices(clips, Linking(0.95, 0.7, model=model(), hard_p=0.6))
    assert sure.groups["a1"] == sure.groups["b1"] != sure.groups["c1"]


def test_faces_add_their_evidence_and_disagreements_are_listed():
    clips = [
        clip("a1", "A", at(0), face=F1),
        clip("b1", "B", at(30), face=F1),  # doubtful voice, same face: near certain
        clip("c1", "C", at(10), face=F2),  # close voice, another face: apart
        clip("d1", "D", at(0, 4), face=F1),  # same face, unrelated voice
        clip("e1", "E", at(0, 8)),
    ]
    res = cluster_voices(clips, LINK)
    assert res.groups["a1"] == res.groups["b1"]  # the faces confirm a plausible voice
    (ac,) = [e for e in res.pairs if {e["a"], e["b"]} == {res.groups["a1"], res.groups["c1"]}]
    assert ac["voice_p"] > 0.5 and ac["p"] < 0.05  # the faces differ: unlikely after all
    plain = cluster_voices(clips, Linking(0.95, 0.7, model=model(faces=False)))
    assert plain.speaker_ids["c1"] == plain.speaker_ids["a1"]  # by voice alone: one person
    flags = {frozenset((d["a"], d["b"])): d["flag"] for d in res.disagreements}
    assert flags[frozenset("AC")] == "voices match, faces differ"
    assert flags[frozenset("AD")] == "faces match, voices do not"
    assert not plain.disagreements


def test_a_cannot_link_pin_wins_over_matching_voices(tmp_path):
    p = tmp_path / "speakers.csv"
    p.write_text("source_id,not_same_as\nA,B\n", encoding="utf-8")
    pins = read_overrides(p)
    clips = [clip("a1", "A", at(0)), clip("b1", "B", at(2)), clip("c1", "C", at(1)),
             clip("d1", "D", at(0, 4))]
    res = cluster_voices(clips, LINK, pins)
    assert res.speaker_ids["a1"] != res.speaker_ids["b1"]
    assert res.speaker_ids["c1"] in (res.speaker_ids["a1"], res.speaker_ids["b1"])
    assert res.groups["a1"] != res.groups["b1"]
    assert not [e for e in res.pairs if {res.groups["a1"], res.groups["b1"]} == {e["a"], e["b"]}]
    # a must-link without a name: two unrelated voices become one person and one group
    p.write_text("source_id,same_as\nA,C\n", encoding="utf-8")
    far = [clip("a1", "A", at(0)), clip("c1", "C", at(0, 4))]
    res = cluster_voices(far, LINK, read_overrides(p))
    assert res.speaker_ids["a1"] == res.speaker_ids["c1"] == derived_id("a1")
    assert res.groups["a1"] == res.groups["c1"]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("source_id,speaker_id,same_as\nA,siti,\nB,ani,\nA,,B\n", ":4: same_as links sources"),
        ("source_id,speaker_id,not_same_as\nA,siti,\nB,siti,\nA,,B\n", ":4: not_same_as A and B"),
        ("source_id,speaker_id\nA,siti\nA,ani\n", ":3: A is pinned to 'ani' here and to 'siti'"),
    ],
)
def test_contradicting_pins_are_reported_and_the_rest_goes_on(tmp_path, text, problem):
    p = tmp_path / "speakers.csv"
    p.write_text(text, encoding="utf-8")
    res = cluster_voices([clip("a1", "A", at(0)), clip("b1", "B", at(0, 4))], LINK,
                         read_overrides(p))
    (line,) = [u for u in res.unused_pins if problem in u]
    assert line.startswith(str(p)) and "ignored" in line
    assert res.speaker_ids["a1"] is not None and res.speaker_ids["b1"] is not None

"""Issue 18's "done means", through the CLI a user runs (``indomer build CONFIG --out OUT``,
``indomer split``, ``indomer speakers review``) on corpora that are not the demo:

* six espeak-ng sources of four people, two of them off-screen, voices alike in pairs: the
  dataset's speaker ids are the true partition and no split puts a person on two sides;
* the AMI excerpt, one audio-only source per person and recording (20 sources, 14 people):
  50/50 over five seeds, both sides non-empty, the stated expected people on two sides no lower
  than the people on two sides (from the true identities);
* the review queue: a setting where the split does put a person on two sides (ratios
  0.4/0.3/0.3), the queue's first 15 answers written to speakers.csv, and after the rebuild no
  one is on two sides at any of five seeds.

The AMI corpus is built once per test session (about 40 CPU seconds); later builds rerun only the
speakers stage and the tail.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from filelock import FileLock
from identity_corpora import ami_config, ami_corpus, off_screen_corpus
from sessiondir import made_once

from indomer.cli import main
from indomer.dataset import available_splits, read_split

pytestmark = pytest.mark.slow


def _cli(*args: str) -> str:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, (args, res.output)
    return res.stdout


def _sides(out: Path, person_of: dict[str, str]) -> dict[str, set[str]]:
    """Person -> the splits holding their rows, from the shards and the true identities."""
    sides: dict[str, set[str]] = {}
    for split in available_splits(out):
        for source in read_split(out, split, columns=["source_id"])["source_id"]:
            sides.setdefault(person_of[source], set()).add(split)
    return sides


def _on_two_sides(out: Path, person_of: dict[str, str]) -> list[str]:
    return sorted(p for p, s in _sides(out, person_of).items() if len(s) > 1)


def _split(out: Path, ratios: str, seed: int) -> dict:
    name = f"seed{seed}-ratios{ratios.replace(',', '_')}"  # one split file each
    _cli("split", str(out), "--speaker-disjoint", "--ratios", ratios, "--seed", str(seed),
         "--stratify", "none", "--name", name)
    return json.loads((out / "splits" / f"{name}.json").read_text())


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# --------------------------------------------------------------------------- off-screen voices


def test_off_screen_synthetic_build_has_the_true_partition_and_a_leak_free_split(tmp_path):
    config, person_of = off_screen_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    _cli("build", str(config), "--out", str(out))
    speaker_of: dict[str, set[str]] = {}
    seen: dict[str, set[bool]] = {}
    for split in available_splits(out):
        df = read_split(out, split, columns=["source_id", "speaker_id", "face"])
        for source, speaker, face in zip(df["source_id"], df["speaker_id"], df["face"]):
            speaker_of.setdefault(source, set()).add(speaker)
            seen.setdefault(source, set()).add(face["detected"] > 0)
    # off-screen sources 2 and 4 show no face: their identity rests on the voice alone
    assert {s for s, f in seen.items() if f == {False}} == {"2", "4"}
    assert {s for s, f in seen.items() if f == {True}} == {"1", "3", "5", "6"}
    assert all(len(v) == 1 for v in speaker_of.values()), speaker_of
    found: dict[str, set[str]] = {}
    for source, (speaker,) in speaker_of.items():
        found.setdefault(speaker, set()).add(source)
    truth: dict[str, set[str]] = {}
    for source, person in person_of.items():
        truth.setdefault(person, set()).add(source)
    assert sorted(map(sorted, found.values())) == sorted(map(sorted, truth.values()))
    # the build's split, and re-splits at other seeds: no person on two sides, none empty
    for seed in (None, 1, 2):
        if seed is not None:
            _cli("split", str(out), "--speaker-disjoint", "--ratios", "0.6,0.2,0.2", "--seed",
                 str(seed), "--name", f"seed{seed}")
        sides = _sides(out, person_of)
        assert all(len(s) == 1 for s in sides.values()), (seed, sides)
        assert available_splits(out) == ["train", "validation", "test"], seed


# --------------------------------------------------------------------------- AMI

#: Both AMI tests share one build: under pytest-xdist, one worker if grouping works; either
#: way the build is made once per session and each test holds a lock while it rebuilds it.
ami_group = pytest.mark.xdist_group("identity-ami-build")


def _build_ami(folder: Path) -> None:
    config, person_of = ami_corpus(folder / "corpus")
    (folder / "truth.json").write_text(json.dumps(person_of), encoding="utf-8")
    cpu, wall = _cpu_seconds(), time.perf_counter()
    _cli("build", str(config), "--out", str(folder / "out"))
    print(f"AMI build: {_cpu_seconds() - cpu:.1f} CPU s, {time.perf_counter() - wall:.1f} s")


@pytest.fixture
def ami(tmp_path_factory):
    """(corpus folder, dataset, source -> speaker): the AMI corpus, built once per session,
    used by one test at a time (the tests rebuild it with other configs)."""
    folder = made_once(tmp_path_factory, "identity-ami", _build_ami)
    with FileLock(str(folder) + ".use.lock"):
        yield (folder / "corpus", folder / "out",
               json.loads((folder / "truth.json").read_text(encoding="utf-8")))


@ami_group
def test_ami_splits_50_50_state_a_risk_no_lower_than_what_happens(ami):
    corpus, out, person_of = ami
    assert len(person_of) == 20 and len(set(person_of.values())) == 14
    _cli("build", str(ami_config(corpus)), "--out", str(out))  # the plain config, no pins
    for seed in range(5):
        doc = _split(out, "0.5,0.5", seed)
        sizes = doc["report"]["sizes"]
        assert sizes["train"] > 0 and sizes["validation"] > 0, (seed, sizes)
        observed = len(_on_two_sides(out, person_of))
        assert doc["expected_people_on_two_sides"] >= observed, (seed, doc, observed)
        print(f"seed {seed}: stated {doc['expected_people_on_two_sides']}, observed {observed}")
    identity = json.loads(_cli("speakers", "review", str(out), "--json", "-"))
    assert identity["n_groups"] == 20  # nothing single-linked through uncertain voices


#: Settings tried in turn for one where the split does put a person on two sides before any
#: answer (found at the first: 0.4/0.3/0.3, seed 0, FEE087's two recordings); the rest keep
#: the test meaningful if the split search changes its choice.
LEAKY = [(r, seed) for r in ("0.4,0.3,0.3", "0.6,0.2,0.2", "0.8,0.1,0.1", "0.7,0.3")
         for seed in range(3)]


@ami_group
def test_ami_15_review_answers_leave_no_one_on_two_sides(ami):
    corpus, out, person_of = ami
    _cli("build", str(ami_config(corpus)), "--out", str(out))  # the plain config, no pins
    for ratios, seed in LEAKY:
        _split(out, ratios, seed)
        before = _on_two_sides(out, person_of)
        if before:
            break
    assert before, "no setting puts anyone on two sides, so the answers prove nothing"
    queue = json.loads(_cli("speakers", "review", str(out), "--json", "-"))["review"][:15]
    assert len(queue) == 15
    first = queue[0]
    # the table keeps long source ids apart (AMI ids run past 12 characters)
    assert f" {first['source_a']} " in _cli("speakers", "review", str(out), "--limit", "1")
    lines = ["source_id,speaker_id,same_as,not_same_as"]
    for e in queue:
        same = person_of[e["source_a"]] == person_of[e["source_b"]]
        lines.append(e["speakers_csv"]["same" if same else "different"])
    (corpus / "speakers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = ami_config(corpus, ratios=f"[{ratios.replace(',', ', ')}]", name="review.yaml",
                        extra="speakers: {overrides: speakers.csv}\n")
    _cli("build", str(config), "--out", str(out))
    assert _on_two_sides(out, person_of) == []  # the build's own split (seed 0)
    for s in range(5):
        doc = _split(out, ratios, s)
        assert _on_two_sides(out, person_of) == [], (ratios, s)
        print(f"after the answers, {ratios} seed {s}: stated "
              f"{doc['expected_people_on_two_sides']}, observed 0")
    print(f"before the answers ({ratios}, seed {seed}): {before} on two sides; answers: "
          f"{sum(',,,' not in x for x in lines[1:])} same, {sum(',,,' in x for x in lines[1:])}"
          " different")

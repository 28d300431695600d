"""``indomer split OUT --speaker-disjoint``: files, determinism, errors and the leak guard."""

from __future__ import annotations

import json
import shutil
from importlib import resources

import jsonschema
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from indomer.cli import main
from indomer.dataset import available_splits, read_split
from indomer.generation import write_dataset
from indomer.labels import emotion_to_sentiment
from indomer.split import NO_SPEAKER_WARNING, natural_key

TO_SENTIMENT = emotion_to_sentiment()


def make_dataset(out, n_groups: int = 40, seed: int = 0, speakers: bool = True):
    """A built dataset of ``n_groups`` source videos (two per speaker), as train + validation."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        n = int(rng.integers(1, 9))
        emos = rng.choice(
            ["neutral", "happiness", "sadness", "anger", "fear"],
            size=n,
            p=[0.6, 0.2, 0.1, 0.07, 0.03],
        )
        for i, emo in enumerate(emos):
            rows.append(
                {
                    "id": f"clip_{g}_Vlog_{i + 1}",
                    "source_id": str(g),
                    "segment_index": i + 1,
                    "topic": "Vlog",
                    "speaker_id": f"spk{g // 2}" if speakers else None,
                    "text": f"kalimat {g} {i}",
                    "emotion": str(emo),
                    "sentiment": TO_SENTIMENT[str(emo)],
                }
            )
    df = pd.DataFrame(rows)
    first = df["source_id"].astype(int) < n_groups * 3 // 4
    write_dataset(out, {"train": df[first], "validation": df[~first]})
    return df


def _rewrite(out, split, df):
    """Replace one split's rows, as one committed generation."""
    splits = {s: read_split(out, s) for s in available_splits(out)}
    splits[split] = df
    write_dataset(out, splits)


def _bytes(out) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for sub in ("data", "splits")
        for p in sorted((out / sub).glob("*"))
        if p.is_file()
    }


def _run(*args):
    return CliRunner().invoke(main, ["split", *map(str, args)])


def _schema():
    text = resources.files("indomer.schemas").joinpath("split.schema.json").read_text("utf-8")
    return json.loads(text)


def test_split_writes_a_leak_free_document_and_shards(tmp_path):
    out = tmp_path / "ds"
    df = make_dataset(out)
    res = _run(out, "--speaker-disjoint", "--seed", 5)
    assert res.exit_code == 0, res.output
    assert res.stderr == ""  # every row has a speaker id: no fallback warning
    doc = json.loads((out / "splits" / "speaker-disjoint.json").read_text())
    jsonschema.Draft202012Validator(_schema()).validate(doc)
    assert doc["name"] == "speaker-disjoint" and doc["seed"] == 5
    assert doc["ratios"] == {"train": 0.8, "validation": 0.1, "test": 0.1}
    assert doc["stratify"] == "emotion" and doc["group_key"] == "speaker_id"
    assert available_splits(out) == ["train", "validation", "test"]
    back = {s: read_split(out, s) for s in available_splits(out)}
    assert sorted(pd.concat(back.values())["id"]) == sorted(df["id"])
    for s, part in back.items():
        speakers = sorted(set(part["speaker_id"]), key=natural_key)
        assert doc["assignment"][s] == speakers
        for other, rest in back.items():
            if other != s:
                assert not set(part["speaker_id"]) & set(rest["speaker_id"])
    rep = doc["report"]
    assert rep["leak_free"] and all(v == [] for v in rep["overlap"].values())
    assert rep["sizes"] == {s: len(p) for s, p in back.items()}
    assert set(rep["class_counts"]) == {"emotion", "sentiment"}
    assert rep["class_counts"]["emotion"]["test"]["neutral"] == int(
        (back["test"]["emotion"] == "neutral").sum()
    )
    assert "max |proportion deviation| emotion" in res.stdout
    assert res.stdout.splitlines()[0].split()[:3] == ["split", "rows", "groups"]


def test_same_seed_gives_identical_bytes_and_another_seed_another_split(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make_dataset(a, n_groups=80, seed=1)  # 40 speakers: many near-optimal splits to pick from
    shutil.copytree(a, b, symlinks=True)
    assert _run(a, "--speaker-disjoint", "--seed", 3).exit_code == 0
    assert _run(b, "--speaker-disjoint", "--seed", 3).exit_code == 0
    first = _bytes(a)
    assert first == _bytes(b)
    assert first["splits/speaker-disjoint.json"].endswith(b"}\n")
    # re-splitting the output with the same seed changes nothing
    assert _run(a, "--speaker-disjoint", "--seed", 3).exit_code == 0
    assert _bytes(a) == first
    assert _run(a, "--speaker-disjoint", "--seed", 4, "--name", "seed4").exit_code == 0
    docs = [json.loads((a / "splits" / f"{n}.json").read_text())
            for n in ("speaker-disjoint", "seed4")]
    assert docs[0]["assignment"] != docs[1]["assignment"]


def test_a_split_of_the_same_name_is_never_replaced_silently(tmp_path):
    """Another assignment under an existing name is refused (naming both sha256) unless
    --replace, which replaces it and says so; official and other names stay beside it."""
    from indomer.dataset import assignment_sha256, split_identity

    out = tmp_path / "ds"
    make_dataset(out, n_groups=80, seed=1)
    assert _run(out, "--speaker-disjoint", "--seed", 3).exit_code == 0
    old = json.loads((out / "splits" / "speaker-disjoint.json").read_text())
    old_sha = assignment_sha256(old["assignment"])
    before = _bytes(out)
    res = _run(out, "--speaker-disjoint", "--seed", 4)
    assert res.exit_code == 2
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: ") and "splits/speaker-disjoint.json exists" in line
    assert old_sha[:12] in line and "--replace" in line and "--name" in line
    assert _bytes(out) == before  # nothing written
    res = _run(out, "--speaker-disjoint", "--seed", 4, "--replace")
    assert res.exit_code == 0, res.output
    new = json.loads((out / "splits" / "speaker-disjoint.json").read_text())
    new_sha = assignment_sha256(new["assignment"])
    assert new_sha != old_sha and new["seed"] == 4
    assert (f"replaced splits/speaker-disjoint.json: assignment sha256 {old_sha[:12]} -> "
            f"{new_sha[:12]}") in res.stderr
    assert split_identity(out) == {"name": "speaker-disjoint", "sha256": new_sha}
    assert f"(active; assignment sha256 {new_sha[:12]})" in res.stdout
    # other settings, other assignment: refused; other settings, same assignment: said
    res = _run(out, "--speaker-disjoint", "--seed", 4, "--stratify", "none")
    assert res.exit_code == 2 and "--replace" in res.stderr
    res = _run(out, "--speaker-disjoint", "--seed", 4, "--ratios", "0.8,0.1,0.1000000001")
    assert res.exit_code == 0, res.output
    assert (f"warning: rewrote splits/speaker-disjoint.json with other settings but the same "
            f"assignment (sha256 {new_sha[:12]})") in res.stderr
    assert split_identity(out) == {"name": "speaker-disjoint", "sha256": new_sha}


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--speaker-disjoint", "--ratios", "0.8,0.3"], "sum to 1.1"),
        (["--speaker-disjoint", "--ratios", "0.8"], "got 1 numbers"),
        (["--speaker-disjoint", "--ratios", "0.8,0.2,0,0"], "got 4 numbers"),
        (["--speaker-disjoint", "--ratios", "1,0"], "> 0"),
        (["--speaker-disjoint", "--ratios", "x,y"], "not numbers"),
        ([], "--speaker-disjoint"),
        (["--speaker-disjoint", "--name", "../evil"], "--name"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(tmp_path, args, needle):
    out = tmp_path / "ds"
    make_dataset(out, n_groups=8)
    before = _bytes(out)
    res = _run(out, *args)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert _bytes(out) == before


def test_missing_speaker_ids_group_by_source_video_with_a_warning(tmp_path):
    out = tmp_path / "ds"
    make_dataset(out, speakers=False)
    res = _run(out, "--speaker-disjoint", "--ratios", "0.8,0.2")
    assert res.exit_code == 0, res.output
    assert f"warning: {NO_SPEAKER_WARNING}" in res.stderr
    doc = json.loads((out / "splits" / "speaker-disjoint.json").read_text())
    assert doc["group_key"] == "source_id" and doc["report"]["rows_without_speaker"] > 0
    train, val = read_split(out, "train"), read_split(out, "validation")
    assert not set(train["source_id"]) & set(val["source_id"])


def test_some_missing_speaker_ids_warn_with_a_count(tmp_path):
    out = tmp_path / "ds"
    df = make_dataset(out)
    train = read_split(out, "train")
    train.loc[train["source_id"] == "0", "speaker_id"] = None
    _rewrite(out, "train", train)
    n = int((df["source_id"] == "0").sum())
    res = _run(out, "--speaker-disjoint")
    assert res.exit_code == 0, res.output
    assert f"warning: {n} of {len(df)} rows have no speaker id" in res.stderr
    doc = json.loads((out / "splits" / "speaker-disjoint.json").read_text())
    placed = [s for s, groups in doc["assignment"].items() if "source:0" in groups]
    assert len(placed) == 1


def test_going_from_three_splits_to_two_removes_the_test_shards(tmp_path):
    out = tmp_path / "ds"
    df = make_dataset(out)
    assert _run(out, "--speaker-disjoint").exit_code == 0
    assert available_splits(out) == ["train", "validation", "test"]
    res = _run(out, "--speaker-disjoint", "--ratios", "0.75,0.25", "--name", "two-way")
    assert res.exit_code == 0, res.output
    assert available_splits(out) == ["train", "validation"]
    doc = json.loads((out / "splits" / "two-way.json").read_text())
    assert set(doc["assignment"]) == {"train", "validation"}
    assert doc["report"]["sizes"] == {
        "train": len(read_split(out, "train")),
        "validation": len(read_split(out, "validation")),
    }
    assert sum(doc["report"]["sizes"].values()) == len(df)


def test_a_leaking_assignment_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    make_dataset(out)
    before = _bytes(out)

    def leaky(df, ratios, seed, stratify, **kwargs):
        # speaker spk0's first clip goes to test, the rest of spk0 to train
        split = pd.Series("train", index=df.index, dtype=object)
        split[df["speaker_id"] == "spk1"] = "validation"
        split[df.index[df["speaker_id"] == "spk0"][0]] = "test"
        return split

    monkeypatch.setattr("indomer.split.speaker_disjoint_split", leaky)
    res = _run(out, "--speaker-disjoint")
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "refusing to write a leaking split: speaker_id spk0 in both train and test" in lines[0]
    assert _bytes(out) == before and not list((out / "splits").glob("*.json"))


def test_the_card_and_provenance_describe_the_new_split(tmp_path):
    out = tmp_path / "ds"
    make_dataset(out, n_groups=12)
    assert _run(out, "--speaker-disjoint", "--name", "mine").exit_code == 0
    build = json.loads((out / "build.json").read_text())
    assert build["split"] == {"name": "mine", "file": "splits/mine.json"}
    assert build["rows"] == {s: len(read_split(out, s)) for s in available_splits(out)}
    assert "mine" in (out / "README.md").read_text()


def test_split_of_the_built_release_passes_validate(built, tmp_path):
    out = tmp_path / "release"
    shutil.copytree(built, out, symlinks=True)
    res = _run(out, "--speaker-disjoint", "--seed", 1)
    assert res.exit_code == 0, res.output
    assert NO_SPEAKER_WARNING in res.stderr
    doc = json.loads((out / "splits" / "speaker-disjoint.json").read_text())
    rep = doc["report"]
    assert rep["rows"] == 1944 and rep["total_groups"] == 207 and rep["leak_free"]
    assert sum(len(v) for v in doc["assignment"].values()) == 207
    assert all(rep["class_counts"]["emotion"][s]["fear"] > 0 for s in rep["splits"])
    assert rep["max_deviation"]["emotion"]["value"] < 0.01
    val = CliRunner().invoke(main, ["validate", str(out)])
    assert val.exit_code == 0, val.output


def test_linked_speakers_stay_together_and_the_split_states_its_risk(tmp_path):
    out = tmp_path / "ds"
    df = make_dataset(out, n_groups=40)
    # speakers spk0..spk3 are one hard group (pins, say); spk4/spk5 and spk6/spk7 are
    # probably one person each; spk8/spk9 unlikely
    pairs = [{"a": "spk4", "b": "spk5", "p": 0.9, "source_a": "4", "source_b": "5"},
             {"a": "spk6", "b": "spk7", "p": 0.8, "source_a": "6", "source_b": "7"},
             {"a": "spk8", "b": "spk9", "p": 0.002, "source_a": "8", "source_b": "9"}]
    speakers = {
        "operating_point": {
            "embedding": "resemblyzer",
            "threshold": 0.95,
            "hard_p": 0.99,
            "face_same": None,
            "face_different": None,
            "calibration": {"source": "a test", "slope": 11.0, "intercept": -7.0},
        },
        "groups": {"grp_a": ["spk0", "spk1", "spk2", "spk3"]},
        "pairs": pairs,
        "pairs_dropped_mass": 0.01,
        "disagreements": [],
    }
    splits = {s: read_split(out, s) for s in available_splits(out)}
    write_dataset(out, splits, {"command": "build CONFIG", "speakers": speakers})
    res = _run(out, "--speaker-disjoint", "--seed", 1)
    assert res.exit_code == 0, res.output
    assert "expected people on two sides:" in res.output and "calibrated on a test" in res.output
    doc = json.loads((out / "splits" / "speaker-disjoint.json").read_text())
    assert doc["group_key"] == "speaker_group" and doc["report"]["leak_free"]
    assert doc["linking"]["members"]["grp_a"] == ["spk0", "spk1", "spk2", "spk3"]
    where = {}
    for s in available_splits(out):
        for spk in read_split(out, s)["speaker_id"]:
            where.setdefault(spk, set()).add(s)
    assert len(set().union(*(where[f"spk{i}"] for i in range(4)))) == 1  # one side, together
    assert where["spk4"] == where["spk5"] and where["spk6"] == where["spk7"]  # the risk
    assert all(len(v) == 1 for v in where.values())
    # the stated number is the listed pairs on two sides plus the unlisted mass, spread
    fr = doc["report"]["fractions"].values()
    crossed = 0.002 if where["spk8"] != where["spk9"] else 0.0
    assert doc["expected_people_on_two_sides"] == pytest.approx(
        crossed + 0.01 * (1 - sum(f * f for f in fr)), abs=1e-4)
    assert [(e["a"], e["b"]) for e in doc["risk_pairs"]] == ([("spk8", "spk9")] if crossed
                                                              else [])
    assert sum(len(read_split(out, s)) for s in available_splits(out)) == len(df)
    card = (out / "README.md").read_text()
    assert "expected number of people on two sides" in card
    assert f"**{doc['expected_people_on_two_sides']:.2f}**" in card
    assert CliRunner().invoke(main, ["validate", str(out)]).exit_code == 0


def test_splits_coexist_and_activate_switches_the_shards(tmp_path):
    """Two named splits stay side by side; --activate makes the shards follow either, the
    build names it, and a name that is not there is one line."""
    from indomer.dataset import split_identity
    from indomer.generation import read_build

    out = tmp_path / "ds"
    make_dataset(out)
    assert _run(out, "--speaker-disjoint", "--seed", 1, "--name", "one").exit_code == 0
    first = {s: sorted(read_split(out, s)["id"]) for s in available_splits(out)}
    assert _run(out, "--speaker-disjoint", "--seed", 2, "--name", "two").exit_code == 0
    second = {s: sorted(read_split(out, s)["id"]) for s in available_splits(out)}
    assert first != second
    assert sorted(p.name for p in (out / "splits").glob("*.json")) == ["one.json", "two.json"]
    assert read_build(out)["split"]["name"] == "two"
    two = split_identity(out)
    res = _run(out, "--activate", "one")
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"active split of {out}: one (splits/one.json)"
    assert {s: sorted(read_split(out, s)["id"]) for s in available_splits(out)} == first
    assert read_build(out)["split"]["name"] == "one"
    assert split_identity(out)["sha256"] != two["sha256"]
    assert sorted(p.name for p in (out / "splits").glob("*.json")) == ["one.json", "two.json"]
    assert _run(out, "--activate", "two").exit_code == 0
    assert {s: sorted(read_split(out, s)["id"]) for s in available_splits(out)} == second
    assert split_identity(out) == two
    res = _run(out, "--activate", "three")
    assert res.exit_code == 2 and res.output.strip().count("\n") == 0
    assert "no splits/three.json" in res.output and "found: one, two" in res.output
    res = _run(out, "--activate", "one", "--speaker-disjoint")
    assert res.exit_code == 2 and "drop --speaker-disjoint" in res.output


def test_the_active_split_is_recorded_by_name_when_two_files_hold_one_assignment(tmp_path):
    """Issue 22: two split files with the same assignment (same seed and settings, two
    names): the one the last command made active is the one build.json and the card name,
    never the first file whose content matches the shards."""
    from indomer.generation import read_build

    out = tmp_path / "ds"
    make_dataset(out)
    for name in ("b", "a"):
        assert _run(out, "--speaker-disjoint", "--seed", 1, "--name", name).exit_code == 0
    a, b = (json.loads((out / "splits" / f"{n}.json").read_text()) for n in "ab")
    assert a["assignment"] == b["assignment"]
    assert read_build(out)["split"] == {"name": "a", "file": "splits/a.json"}
    card = (out / "README.md").read_text()
    assert "Split `a` was made" in card and "Full report: `splits/a.json`" in card
    assert _run(out, "--activate", "b").exit_code == 0
    assert read_build(out)["split"] == {"name": "b", "file": "splits/b.json"}
    # a later commit that names no new split (stats --plots) keeps the name it was given
    res = CliRunner().invoke(main, ["stats", str(out), "--plots", str(out / "figures")])
    assert res.exit_code == 0, res.output
    assert read_build(out)["split"]["name"] == "b"


def test_a_commit_naming_a_split_that_does_not_place_the_shards_is_refused(tmp_path):
    """The commit checks the named active split against the shards it writes: a name whose
    document puts the rows elsewhere is one DataError line, and nothing is committed."""
    from indomer.errors import DataError
    from indomer.generation import active, read_build, writing

    out = tmp_path / "ds"
    make_dataset(out)
    assert _run(out, "--speaker-disjoint", "--seed", 1, "--name", "one").exit_code == 0
    assert _run(out, "--speaker-disjoint", "--seed", 2, "--name", "two").exit_code == 0
    before = _bytes(out)
    refused = r"splits/one\.json: the active split does not place"
    with pytest.raises(DataError, match=refused), writing(out, base=True, must_exist=True) as gen:
        gen.commit(active(read_build(gen.path), "one"))  # the shards follow two
    assert _bytes(out) == before and read_build(out)["split"]["name"] == "two"

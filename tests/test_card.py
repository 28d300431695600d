"""The dataset card: a header the Hub and ``datasets`` accept, prose true for the build mode,
and every number equal to one counted independently from the release files or the shards."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter

import pyarrow.parquet as pq
import pytest
import truth
from click.testing import CliRunner
from demo_build import demo_dataset

from indomer.card import licence, release_source
from indomer.cli import main
from indomer.generation import current_generation, finalize

EMOTION = {
    "kemarahan": "anger",
    "jijik": "disgust",
    "ketakutan": "fear",
    "kebahagiaan": "happiness",
    "netral": "neutral",
    "kesedihan": "sadness",
    "surprise": "surprise",
}
SENTIMENT = {"negatif": "negative", "netral": "neutral", "positif": "positive"}


@pytest.fixture(scope="module")
def csv_rows(release_dir):
    with open(release_dir / "Annotations.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_dataset(tmp_path_factory)


def _card(out):
    return (out / "README.md").read_text(encoding="utf-8")


def _shard_truth(out, split):
    """Rows, file bytes and uncompressed row-group bytes of a split, from Parquet metadata."""
    rows = size = data = 0
    for p in sorted((out / "data").glob(f"{split}-*.parquet")):
        meta = pq.ParquetFile(p).metadata
        rows += meta.num_rows
        size += p.stat().st_size
        data += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return rows, size, data


# --------------------------------------------------------------------------- header


@pytest.mark.parametrize("which", ["release", "demo"])
def test_header_loads_as_a_hub_dataset_card_with_shard_numbers(which, built, demo):
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard
    from huggingface_hub.repocard_data import DatasetCardData

    out = built if which == "release" else demo
    card = DatasetCard.load(out / "README.md")
    assert isinstance(card.data, DatasetCardData)
    data = card.data.to_dict()
    # the same keys, re-validated by the metadata class itself
    DatasetCardData(ignore_metadata_errors=False, **data)
    splits = ["train", "validation"] + (["test"] if which == "demo" else [])
    assert data["language"] == ["id"]
    assert data["task_categories"] == [
        "text-classification",
        "audio-classification",
        "video-classification",
    ]
    assert {"emotion-recognition", "sentiment-analysis", "multimodal"} <= set(data["tags"])
    total = sum(_shard_truth(out, s)[0] for s in splits)
    assert data["size_categories"] == ["1K<n<10K" if total >= 1000 else "n<1K"]
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert configs["default"]["data_files"] == [
        {"split": s, "path": f"data/{s}-*.parquet"} for s in splits
    ]
    info = DatasetInfosDict.from_dataset_card_data(card.data)["default"]
    assert tuple(info.features["emotion"].names) == truth.EMOTIONS
    assert info.features["audio_sentiment"].names == ["negative", "neutral", "positive"]
    assert info.features["audio"].sampling_rate == 16000
    for s in splits:
        rows, _, data_bytes = _shard_truth(out, s)
        assert (info.splits[s].num_examples, info.splits[s].num_bytes) == (rows, data_bytes)
    assert info.download_size == sum(_shard_truth(out, s)[1] for s in splits)
    assert info.dataset_size == sum(_shard_truth(out, s)[2] for s in splits)
    if which == "release":
        assert (data["license"], data["license_name"]) == ("other", "indomer-upstream-unspecified")
        assert data["pretty_name"] == "IndoMER"
        assert (total, data["license_link"]) == (1944, "https://github.com/yanxm01/INDOMER")
    else:
        # every demo source is "CC0-1.0 (synthetic)" in sources.csv
        assert data["license"] == "cc0-1.0" and "license_name" not in data
        assert data["pretty_name"] == "IndoMER (built from raw sources)"
        assert total == 19


# --------------------------------------------------------------------------- release prose


def test_release_card_counts_equal_the_release_files(built, csv_rows, release_dir):
    card = _card(built)
    val = {
        r["sample_id"] for r in json.loads((release_dir / "7_Class/7_class_val.json").read_text())
    }
    split_of = {r["video_name"].removesuffix(".mp4"): r for r in csv_rows}
    assert len(split_of) == 1944 and len(val) == 356

    def line(task, mapping, names):
        out = []
        for i, (release, name) in enumerate(
            sorted(mapping.items(), key=lambda kv: names.index(kv[1]))
        ):
            tr = sum(1 for k, r in split_of.items() if k not in val and mapping[r[task]] == name)
            va = sum(1 for k, r in split_of.items() if k in val and mapping[r[task]] == name)
            out.append(f"| {i} | {name} | {release} | {tr} | {va} | {tr + va} |")
        return out

    emotions = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]
    for expected in line("emotion", EMOTION, emotions):
        assert expected in card
    assert "| 2 | fear | ketakutan | 5 | 4 | 9 |" in card
    for task in ("sentiment", "text_sentiment", "audio_sentiment", "video_sentiment"):
        block = card.split(f"### {task.replace('_', ' ').capitalize()}\n")[1].split("###")[0]
        for expected in line(task, SENTIMENT, ["negative", "neutral", "positive"]):
            assert expected in block, (task, expected)
    assert "| segments | 1944 | 1588 | 356 |" in card
    assert "| source videos | 207 | 173 | 34 |" in card
    assert "| speakers | unknown | unknown | unknown |" in card
    assert "| male / female speakers | unknown | unknown | unknown |" in card
    assert "Durations are unknown" in card and "| hours |" not in card
    topics = Counter(
        "Opinion" if (t := r["video_name"].split("_")[2]) == "Opinions" else t for r in csv_rows
    )
    for topic, n in topics.items():
        assert f"| {topic} | {n} |" in card
    assert "| `text` | string | transcript as spoken (no normalisation) | 1944 of 1944 |" in card
    assert "| `audio` | Audio | 16 kHz mono WAV (HF `Audio`) | 0 of 1944 |" in card


def test_release_card_cross_modal_table_matches_a_hand_count(built, csv_rows):
    card = _card(built)

    def agree(a, b):
        return sum(SENTIMENT[r[a]] == SENTIMENT[r[b]] for r in csv_rows)

    n = len(csv_rows)
    for a, b in [
        ("text_sentiment", "sentiment"),
        ("audio_sentiment", "sentiment"),
        ("video_sentiment", "sentiment"),
        ("text_sentiment", "audio_sentiment"),
        ("text_sentiment", "video_sentiment"),
        ("audio_sentiment", "video_sentiment"),
    ]:
        k = agree(a, b)
        assert f"| {a} = {b} | {k} | {n} | {k / n:.4f} |" in card
    assert agree("text_sentiment", "sentiment") == 1326
    three = sum(
        len({r["text_sentiment"], r["audio_sentiment"], r["video_sentiment"]}) == 1
        for r in csv_rows
    )
    assert f"| all three modalities equal | {three} | {n} | {three / n:.4f} |" in card
    # rows: overall sentiment; columns: text sentiment
    neg = Counter(SENTIMENT[r["text_sentiment"]] for r in csv_rows if r["sentiment"] == "negatif")
    assert f"| negative | {neg['negative']} | {neg['neutral']} | {neg['positive']} |" in card


def test_release_card_prose_split_annotation_and_known_issues(built):
    card = _card(built)
    assert "public IndoMER annotation release" in card and "byte-identical" in card
    assert "Split `official` is the release's own train/val split" in card
    assert "Rows are grouped by `source_id` (207 groups); groups in two splits: 0" in card
    assert "| train | 1588 | 173 |" in card and "| validation | 356 | 34 |" in card
    official = json.loads((built / "splits" / "official.json").read_text())
    dev = official["report"]["max_deviation"]["emotion"]
    assert f"| emotion | {dev['value']:.4f} | {dev['class']} | {dev['split']} |" in card
    assert "no agreement figure can be computed" in card
    assert "- 15 transcripts in `Annotations.csv` are GBK mojibake" in card
    assert "- Rows rejected by the build: 0" in card
    assert "indomer score preds.jsonl --refs ." in card and "Macro-F1" in card
    assert "arXiv:2512.19379" in card and "@article{omnimer2025" in card
    assert "Sources and processing" not in card


def test_the_card_lists_every_split_with_its_sides_and_assignment(built, tmp_path):
    """official and two user splits: each listed with active or not, its rows per side on
    these shards, its assignment's sha256 and how to remake it."""
    from indomer.dataset import assignment_sha256, read_split

    out = tmp_path / "ds"
    shutil.copytree(built, out, symlinks=True)
    official = json.loads((out / "splits" / "official.json").read_text())
    for extra in (["--name", "mine", "--seed", "3", "--ratios", "0.7,0.3"], ["--seed", "4"]):
        res = CliRunner().invoke(main, ["split", str(out), "--speaker-disjoint", *extra])
        assert res.exit_code == 0, res.output
    card = _card(out)
    assert "### Every split" in card
    rows = {}
    for line in card.split("### Every split", 1)[1].splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    assert set(rows) == {"official", "mine", "speaker-disjoint"}
    docs = {n: json.loads((out / "splits" / f"{n}.json").read_text()) for n in rows}
    # active: the one the shards follow, whose sides are the shards' row counts
    assert [n for n, c in rows.items() if c[1] == "yes"] == ["speaker-disjoint"]
    assert rows["speaker-disjoint"][2:5] == [
        str(len(read_split(out, s))) for s in ("train", "validation", "test")
    ]
    assert rows["mine"][2:5] == [str(docs["mine"]["report"]["sizes"]["train"]),
                                 str(docs["mine"]["report"]["sizes"]["validation"]), "-"]
    assert rows["official"][2:5] == [str(official["report"]["sizes"]["train"]),
                                     str(official["report"]["sizes"]["validation"]), "-"]
    for n, cells in rows.items():
        assert cells[5] == f"`{assignment_sha256(docs[n]['assignment'])[:12]}`"
        assert cells[7] == "unknown"  # no speaker ids in the release: not known
    assert rows["mine"][6] == ("`indomer split --speaker-disjoint --seed 3 --ratios 0.7,0.3 "
                               "--stratify emotion`")
    assert rows["official"][6] == "the release's own split"


def test_resplit_rewrites_the_card_with_the_new_split(built, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(built, out, symlinks=True)
    res = CliRunner().invoke(main, ["split", str(out), "--speaker-disjoint", "--seed", "3"])
    assert res.exit_code == 0, res.output
    card = _card(out)
    doc = json.loads((out / "splits" / "speaker-disjoint.json").read_text())
    sizes = doc["report"]["sizes"]
    assert sum(sizes.values()) == 1944 and set(sizes) == {"train", "validation", "test"}
    for s, n in sizes.items():
        assert f"num_examples: {n}" in card
        assert f"| {s} | {n} | {doc['report']['groups'][s]} |" in card
    assert "Split `speaker-disjoint` was made by `indomer split --speaker-disjoint`" in card
    assert "(seed 3, ratios train 0.8, validation 0.1, test 0.1, stratified by `emotion`)" in card
    assert (
        f"| segments | 1944 | {sizes['train']} | {sizes['validation']} | {sizes['test']} |" in card
    )
    croissant = json.loads((out / "croissant.json").read_text())
    shards = {d["@id"] for d in croissant["distribution"] if d["@type"] == "cr:FileObject"}
    assert shards == {f"data/{s}-00000-of-00001.parquet" for s in sizes}


def test_release_with_annotator_sheets_describes_the_merge(release_dir, tmp_path):
    sheet = tmp_path / "sheets" / "s.csv"
    sheet.parent.mkdir()
    sheet.write_text(truth.SHEET, encoding="utf-8")
    out = tmp_path / "ds"
    args = ["build", "--release", str(release_dir), "--out", str(out)]
    res = CliRunner().invoke(main, [*args, "--annotations", str(sheet.parent)])
    assert res.exit_code == 0, res.output
    card = _card(out)
    assert "a value chosen by at least two annotators and by more of them" in card
    assert "2 of 1944 segments carry votes; 2 have an `adjudicated` value and 1 of them" in card
    assert "The other 1942 segments keep the release's final labels, without votes." in card
    assert "| emotion | " in card and "| 2 | 3 |" in card  # 2 items, 3 annotators
    assert "no agreement figure can be computed" not in card


# --------------------------------------------------------------------------- raw prose


def test_raw_card_tells_how_the_demo_was_made(demo):
    card = _card(demo)
    build = json.loads((demo / "build.json").read_text())
    assert release_source(build) is None and "# IndoMER (built from raw sources)" in card
    # nothing from the release-mode story
    for phrase in ("mojibake", "repaired_texts", "Annotations.csv", "public release has none"):
        assert phrase not in card
    with open(demo.parent / "corpus" / "sources.csv", encoding="utf-8", newline="") as fh:
        sources = list(csv.DictReader(fh))
    assert len(sources) == 7 and "7 source videos (`sources.csv`):" in card
    for s in sources:
        rec = build["sources"][s["source_id"]]
        assert (
            f"| {s['source_id']} | {s['topic']} | {s['license']} | local file (path not recorded) "
            f"| {rec['duration']:g} | {rec['sha256'][:12]} |"
        ) in card
    assert "- Segmentation: natural pauses found by voice-activity detection (silero-vad" in card
    assert "min_pause 0.3" in card and "No person checked the boundaries." in card
    assert (
        "- Transcripts: manual for 18 segments, from `transcripts.csv`, as spoken (not "
        "normalised); machine drafts (Whisper ASR, `asr`) for 1 segment that no person checked: "
        "`clip_5_Health_3`."
    ) in card
    assert "cut with ffmpeg to 16000 Hz mono WAV" in card
    vad = build["stages"]["segment"]["tools"]["vad"]
    assert "| segment | ffmpeg version " in card and f"; vad {vad} | 19 | 0 |" in card
    # durations are known: hours and speech rate computed here from the shards
    starts_ends = []
    n_words = 0
    from indomer.stats import words

    for p in sorted((demo / "data").glob("*.parquet")):
        t = pq.read_table(p, columns=["start", "end", "text"]).to_pylist()
        starts_ends += [(r["start"], r["end"]) for r in t]
        n_words += sum(len(words(r["text"])) for r in t)
    secs = sum(e - s for s, e in starts_ends)
    assert f"| hours | {round(secs / 3600, 4)} |" in card
    assert f"| speech rate (words per second) | {round(n_words / secs, 4)} |" in card
    assert "Durations are unknown" not in card
    # the annotation procedure and the 7 expert decisions of the demo sheets
    assert "19 of 19 segments carry votes; 19 have an `adjudicated` value and 7 of them" in card
    assert "| emotion | -0.024 | -0.006 | nominal | 19 | 3 |" in card
    assert "Split `speaker-disjoint`" in card
    assert "(seed 0, ratios train 0.5, validation 0.25, test 0.25, stratified by `emotion`)" in card
    assert "Media embedded: 19 audio and 19 video clips; 0 segments lack audio" in card
    assert "| `video` | Video | MP4, H.264/AAC (HF `Video`) | 19 of 19 |" in card


def test_text_origin_says_which_texts_are_machine_drafts():
    from indomer.card import _text_origin

    raw = {"command": "build CONFIG"}
    assert _text_origin({**raw, "config": {"transcripts": "t.csv"}}).startswith("manual, from")
    assert "segments table `s.csv`" in _text_origin({**raw, "config": {"segments": "s.csv"}})
    counted = {**raw, "config": {}, "text_sources": {"asr": 2, "manual": 18},
               "machine_text": ["clip_1_A_2", "clip_3_B_1"]}
    assert _text_origin(counted) == (
        "manual for 18 segments, as spoken (not normalised); machine drafts (Whisper ASR, "
        "`asr`) for 2 segments that no person checked: `clip_1_A_2`, `clip_3_B_1`."
    )
    assert "no transcript file was given" in _text_origin({**raw, "config": {}})


def test_licence_follows_the_sources():
    raw = {"command": "build CONFIG"}
    same = {**raw, "sources": {"1": {"license": "CC-BY-4.0"}, "2": {"license": "cc-by-4.0 (ok)"}}}
    assert licence(same)["license"] == "cc-by-4.0"
    assert licence(same)["url"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    mixed = {**raw, "sources": {"1": {"license": "CC-BY-4.0"}, "2": {"license": "YouTube"}}}
    lic = licence(mixed)
    assert (lic["license"], lic["license_name"]) == ("other", "mixed-source-licences")
    assert "CC-BY-4.0; YouTube" in lic["text"]
    unstated = {**raw, "sources": {"1": {"license": None}}}
    assert licence(unstated)["license"] == "other" and "unstated" in licence(unstated)["text"]
    assert licence({"command": "build --release"})["license"] == "other"
    assert licence({})["license_name"] == "indomer-upstream-unspecified"


def test_finalize_is_deterministic_and_needs_shards(built, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(built, out, symlinks=True)
    gen = current_generation(out)
    before = {p.name: p.read_bytes() for p in gen.iterdir() if p.is_file()}
    build = json.loads((gen / "build.json").read_text(encoding="utf-8"))
    finalize(gen, build)
    after = {p.name: p.read_bytes() for p in gen.iterdir() if p.is_file()}
    assert after == before and {"README.md", "croissant.json", "build.json"} <= set(after)
    from indomer.errors import DataError

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no shards under data/"):
        finalize(tmp_path / "empty", {})

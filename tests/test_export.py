"""``indomer export``: ms-swift and LLaMA-Factory records of the demo (with media and the
three auxiliary targets) and of the release (text only), read back by the frameworks' own
dataset loading code (tests/framework_loaders.py: ms-swift 4.6.0's ``load_dataset`` and
LLaMA-Factory 0.9.5's loader and converter, which need no model weights), then held field by
field against the frameworks' documented formats, cited per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from demo_build import demo_dataset

from indomer.cli import main
from indomer.dataset import shard_paths, write_split
from indomer.labels import label_set
from indomer.textparse import parse_label

HERE = Path(__file__).resolve().parent
#: Where tools/install.sh (test extra) installs ms-swift and LLaMA-Factory with --no-deps.
LOADERS = HERE.parent / ".cache" / "framework-loaders"
PROSODY_RE = re.compile(
    r"^pitch (low|mid|high), pitch range (low|mid|high), loudness (low|mid|high), "
    r"speaking rate (low|mid|high)$"
)


def run(*args: str):
    return CliRunner().invoke(main, ["export", *map(str, args)])


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return demo_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def swift(demo: Path, tmp_path_factory) -> Path:
    to = tmp_path_factory.mktemp("exp") / "swift"
    res = run(demo, "--format", "ms-swift", "--to", to)
    assert res.exit_code == 0, res.output
    return to


@pytest.fixture(scope="module")
def lf(demo: Path, tmp_path_factory) -> Path:
    to = tmp_path_factory.mktemp("exp") / "lf"
    res = run(demo, "--format", "llamafactory", "--split", "train", "--to", to)
    assert res.exit_code == 0, res.output
    return to


def parquet_media(dataset: Path, split: str) -> dict[str, dict]:
    rows = {}
    for p in shard_paths(dataset, split):
        for r in pq.read_table(p, columns=["id", "audio", "video"]).to_pylist():
            rows[r["id"]] = r
    return rows


def user_turn(rec: dict) -> str:
    return next(m["content"] for m in rec["messages"] if m["role"] == "user")


def answer(rec: dict) -> str:
    return rec["messages"][-1]["content"]


def task_of(rec: dict) -> str:
    text = user_turn(rec)
    for key, task in [
        ("Which emotion", "emotion"),
        ("overall sentiment", "sentiment"),
        ("Which words", "keywords"),
        ("facial expression", "face"),
        ("prosody", "prosody"),
    ]:
        if key in text:
            return task
    raise AssertionError(text)


def load_json_rows(path: Path, cache: Path) -> list[dict]:
    """The records as ``datasets``' JSON builder yields them (what both frameworks call for a
    local file)."""
    import datasets

    ds = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))
    return list(ds)


def read_back(fmt: str, cache: Path, *args: str) -> dict:
    """Run tests/framework_loaders.py on the export with the installed frameworks."""
    if not ((LOADERS / "swift").is_dir() and (LOADERS / "llamafactory").is_dir()):
        pytest.fail(
            f"{LOADERS}: ms-swift and LLaMA-Factory missing; run bash tools/install.sh test"
        )
    env = {
        **os.environ,
        "PYTHONPATH": str(LOADERS),
        "DISABLE_VERSION_CHECK": "1",  # LLaMA-Factory pins datasets<=4.0; its loader runs on 5
        "HF_DATASETS_CACHE": str(cache),
        "MODELSCOPE_CACHE": str(cache / "modelscope"),
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.run(
        [sys.executable, str(HERE / "framework_loaders.py"), fmt, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_ms_swift_records_as_ms_swift_reads_them(swift: Path, demo: Path, tmp_path: Path) -> None:
    """ms-swift 4.6.0 (source read at commit 3602360a562313afbf2ef6065fdf61f271a2c5b9):
    ``swift.dataset.load_dataset`` runs RowPreprocessor._check_messages (roles in {system,
    user, assistant, ...}, no None content) and _cast_mm_data (``videos`` lists of paths) in
    swift/dataset/preprocessor/core.py; swift/template/vision_utils.py (_check_path) opens a
    relative media path from the current folder (or ROOT_IMAGE_DIR), so the README's command
    runs from the export folder. Qwen2.5-Omni hears the mp4's own audio with
    USE_AUDIO_IN_VIDEO (docs/source_en/Instruction/Command-line-parameters.md), so a record
    names the video only and has one <video> per video."""
    raw = [json.loads(line) for line in (swift / "train.jsonl").read_text().splitlines()]
    got = read_back("ms-swift", tmp_path, str(swift / "train.jsonl"))
    assert len(raw) == len(got["rows"]) == 5 * 9  # 9 train clips of the demo, five tasks
    assert got["columns"] == ["dataset", "messages", "videos"]  # "dataset" is ms-swift's own
    media = parquet_media(demo, "train")
    seen = set()
    for rec, row in zip(raw, got["rows"], strict=True):
        assert set(rec) == {"messages", "videos"}
        assert row["messages"] == rec["messages"] and row["videos"] == rec["videos"]
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert all(m["content"] for m in row["messages"])
        user = user_turn(rec)
        assert user.startswith("<video>") and user.count("<video>") == len(rec["videos"]) == 1
        assert "<audio>" not in user
        (video,) = rec["videos"]
        assert not os.path.isabs(video) and video.startswith("media/")
        assert row["resolved"] == [str(swift.resolve() / video)]
        clip = Path(video).stem
        assert (swift / video).read_bytes() == media[clip]["video"]["bytes"]
        seen.add(clip)
    assert seen == set(media)
    assert sorted(p.name for p in (swift / "media").iterdir()) == sorted(f"{c}.mp4" for c in media)


def test_llamafactory_records_as_llamafactory_reads_them(
    lf: Path, demo: Path, tmp_path: Path
) -> None:
    """LLaMA-Factory 0.9.5 (source read at commit ff6d4d12eeb035d6ce06805a5733dd7b29f2ac30):
    its loader reads the dataset_info.json entry (src/llamafactory/data/parser.py,
    DatasetAttr.join), loads the file and converts each record with
    SharegptDatasetConverter (src/llamafactory/data/converter.py: system tag first, then
    user/assistant alternating; media found at ``os.path.join(media_dir, path)``, media_dir
    defaulting to dataset_dir); the qwen2_omni plugin's _validate_messages (mm_plugin.py)
    then checks one <video>/<audio> per video/audio. With use_audio_in_video,
    Qwen2OmniPlugin also wants equal lists and each <video> followed by an <audio>.
    data/mllm_video_audio_demo.json is the model record."""
    info = json.loads((lf / "dataset_info.json").read_text())
    entry = info["indomer_train"]
    assert entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "messages", "videos": "videos", "audios": "audios"}
    raw = json.loads((lf / entry["file_name"]).read_text())
    got = read_back("llamafactory", tmp_path, str(lf), "indomer_train")
    assert got["media_dir"] == str(lf)
    assert len(raw) == len(got["rows"]) == 45  # 9 train clips, five tasks
    media = parquet_media(demo, "train")
    for rec, row in zip(raw, got["rows"], strict=True):
        assert set(rec) == {"messages", "videos", "audios"}
        assert row["system"] == rec["messages"][0]["content"]
        assert row["prompt"] + row["response"] == rec["messages"][1:]
        assert [m["role"] for m in row["prompt"] + row["response"]] == ["user", "assistant"]
        user = row["prompt"][0]["content"]
        assert user.startswith("<video><audio>")
        assert user.count("<video>") == len(rec["videos"]) == len(rec["audios"]) == 1
        (video,), (audio,) = rec["videos"], rec["audios"]
        assert row["videos"] == [os.path.join(str(lf), video)]  # found in media_dir
        assert row["audios"] == [os.path.join(str(lf), audio)]
        clip = Path(video).stem
        assert Path(audio).stem == clip and audio.endswith(".wav")
        assert (lf / video).read_bytes() == media[clip]["video"]["bytes"]
        assert (lf / audio).read_bytes() == media[clip]["audio"]["bytes"]


def test_demo_records_carry_the_three_auxiliary_targets(swift: Path) -> None:
    manifest = json.loads((swift / "export.json").read_text())
    assert manifest["records"] == {
        "emotion": 9,
        "sentiment": 9,
        "keywords": 9,
        "face": 9,
        "prosody": 9,
    }
    assert manifest["skipped"] == []
    recs = [json.loads(line) for line in (swift / "train.jsonl").read_text().splitlines()]
    by_task: dict[str, list[dict]] = {}
    for r in recs:
        by_task.setdefault(task_of(r), []).append(r)
    emotions = set(label_set("emotion").names)
    assert {answer(r) for r in by_task["face"]} <= emotions
    assert all(PROSODY_RE.match(answer(r)) for r in by_task["prosody"])
    # terciles of the split: every bucket word is used for each measure
    for i, name in enumerate(["pitch", "pitch range", "loudness", "speaking rate"]):
        words = {PROSODY_RE.match(answer(r)).group(i + 1) for r in by_task["prosody"]}
        assert words == {"low", "mid", "high"}, name
    assert set(manifest["prosody"]["edges"]) == {"pitch", "range", "loudness", "rate"}
    # keywords: the stems distinctive of the clip's own class that its transcript has
    kw = manifest["keywords"]["by_class"]
    # the demo's train split has 9 clips, at most two of a class: few stems stand out
    assert any(kw.values()) and manifest["keywords"]["computed_from"] == "train"
    for i in range(0, len(recs), 5):  # one clip's records: the five tasks in order
        emotion, _, keywords, _, _ = (answer(r) for r in recs[i : i + 5])
        if answer(recs[i + 2]) != "none":
            assert set(keywords.split(", ")) <= {w for w, _ in kw[emotion]}
    assert any(answer(r) != "none" for r in by_task["keywords"])
    assert manifest["prompts"]["version"] == 1
    assert len(manifest["prompts"]["sha256"]) == 64


def test_prompts_name_the_labels_in_english_and_indonesian(swift: Path) -> None:
    from indomer.export import load_prompts

    prompts = load_prompts()
    recs = [json.loads(line) for line in (swift / "train.jsonl").read_text().splitlines()]
    for task in ("emotion", "sentiment"):
        names_id = prompts["tasks"][task]["names_id"]
        ls = label_set(task)
        assert list(names_id) == list(ls.names)
        user = next(user_turn(r) for r in recs if task_of(r) == task)
        for name in ls.names:
            indo = names_id[name]
            assert indo != name or name == "neutral" and indo == "netral"
            assert ls.canonical(indo) == name  # the scorer reads an Indonesian answer too
            assert f"{name} ({indo})" in user
        # every answer is a label the scorer parses to itself
        for r in recs:
            if task_of(r) == task:
                assert parse_label(answer(r), task) == answer(r)


def test_export_is_deterministic_and_reruns_over_itself(
    swift: Path, demo: Path, tmp_path: Path
) -> None:
    def tree(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    again = tmp_path / "again"
    assert run(demo, "--format", "ms-swift", "--to", again).exit_code == 0
    assert tree(again) == tree(swift)
    (again / "media" / "clip_1_Sharing_1.mp4").write_bytes(b"stale")
    res = run(demo, "--format", "ms-swift", "--to", again)  # a previous export: replaced
    assert res.exit_code == 0, res.output
    assert tree(again) == tree(swift)
    # no temp folder left; the lock file stays (removing it would race a waiting writer)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".again.export-lock", "again"]


def test_a_second_export_into_the_same_folder_is_refused(swift: Path, demo: Path,
                                                        tmp_path: Path) -> None:
    import fcntl

    to = tmp_path / "busy"
    with open(tmp_path / ".busy.export-lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # as a running export holds it
        res = run(demo, "--format", "ms-swift", "--to", to)
    assert res.exit_code == 2
    assert res.output.strip() == (
        f"error: --to {to}: another indomer export is writing this folder; wait for it to "
        "finish, or choose another folder"
    )
    assert not to.exists()
    assert run(demo, "--format", "ms-swift", "--to", to).exit_code == 0  # the lock went


def test_an_export_killed_between_its_renames_leaves_the_old_export(
    swift: Path, demo: Path, tmp_path: Path
) -> None:
    """The swap is two renames (DIR aside, the new one in): killed between them, DIR is
    missing and the old export waits beside it; the next run puts it back first."""
    import shutil

    from indomer.export import _recover

    to = tmp_path / "out"
    shutil.copytree(swift, to)
    before = {p.relative_to(to): p.read_bytes() for p in to.rglob("*") if p.is_file()}
    os.replace(to, tmp_path / ".out.export-old")  # the state after the first rename
    (tmp_path / ".out.export-partial").mkdir()  # and a new export not yet renamed in
    _recover(to)
    assert {p.relative_to(to): p.read_bytes() for p in to.rglob("*") if p.is_file()} == before
    res = run(demo, "--format", "ms-swift", "--to", to)
    assert res.exit_code == 0, res.output
    assert not (tmp_path / ".out.export-partial").exists()


def test_bad_input_is_one_line(demo: Path, tmp_path: Path) -> None:
    cases = [
        (["--format", "axolotl", "--to", tmp_path / "a"], "--format 'axolotl': unknown"),
        (["--format", "ms-swift", "--tasks", "emotion,gaze", "--to", tmp_path / "b"],
         "--tasks: unknown task 'gaze'"),
        (["--format", "ms-swift", "--split", "dev", "--to", tmp_path / "c"], "no 'dev' split"),
    ]  # fmt: skip
    busy = tmp_path / "busy"
    busy.mkdir()
    # a file of the user's where the export would write: refused, never replaced (files the
    # export would not write are left alone: tests/test_hostile.py)
    (busy / "train.jsonl").write_text("mine\n")
    cases.append((["--format", "ms-swift", "--to", busy],
                  "train.jsonl: exists and was not written by indomer export"))
    cases.append((["--format", "ms-swift", "--to", demo / "x"], "inside the dataset"))
    for args, expected in cases:
        res = run(demo, *args)
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert (busy / "train.jsonl").read_text() == "mine\n"
    assert sorted(p.name for p in busy.iterdir()) == ["train.jsonl"]


def test_release_export_is_text_only_and_names_skipped_clips(built: Path, tmp_path: Path) -> None:
    to = tmp_path / "lf"
    res = run(built, "--format", "llamafactory", "--to", to)
    assert res.exit_code == 0, res.output
    assert "skipped face for 1588 clip(s), no video" in res.output
    assert "skipped prosody for 1588 clip(s), no audio" in res.output
    info = json.loads((to / "dataset_info.json").read_text())
    assert info["indomer_train"]["columns"] == {"messages": "messages"}
    rows = load_json_rows(to / "train.json", tmp_path / "hf")
    assert len(rows) == 3 * 1588
    assert all(set(r) == {"messages"} for r in rows)
    got = read_back("llamafactory", tmp_path / "hf", str(to), "indomer_train")
    assert len(got["rows"]) == 3 * 1588
    assert all(r["videos"] == [] and r["audios"] == [] for r in got["rows"])
    assert not any("<video>" in m["content"] or "<audio>" in m["content"]
                   for r in rows for m in r["messages"])  # fmt: skip
    assert not (to / "media").exists()
    manifest = json.loads((to / "export.json").read_text())
    skipped = {(s["task"], s["id"]) for s in manifest["skipped"]}
    assert len(skipped) == 2 * 1588
    assert {t for t, _ in skipped} == {"face", "prosody"}
    # the release's keywords, Sastrawi stems: marah (marah, kemarahan) for anger, ...
    kw = {c: {w for w, _ in ws} for c, ws in manifest["keywords"]["by_class"].items()}
    assert "marah" in kw["anger"] and "takut" in kw["fear"] and "senang" in kw["happiness"]


def test_keywords_come_from_the_exported_split_only(tmp_path: Path) -> None:
    """A stem only in validation never reaches the train export; exporting validation
    finds it, so the check can fail."""
    import pandas as pd

    out = tmp_path / "ds"

    def split(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "id": [r[0] for r in rows],
                "source_id": [r[0].split("_")[1] for r in rows],
                "text": [r[1] for r in rows],
                "emotion": [r[2] for r in rows],
                "sentiment": [
                    {"sadness": "negative", "happiness": "positive"}.get(r[2], "neutral")
                    for r in rows
                ],
            }
        )

    train = [(f"clip_{i}_T_1", t, e) for i, (t, e) in enumerate(
        [("sedih kucing", "sadness"), ("sedih hilang", "sadness"), ("sedih pergi", "sadness"),
         ("senang makan", "happiness"), ("senang rumah", "happiness"), ("senang main", "happiness"),
         ("buku meja", "neutral"), ("kursi meja", "neutral")], start=1)]  # fmt: skip
    valid = [(f"clip_{i}_V_1", t, e) for i, (t, e) in enumerate(
        [("kemarahan", "anger"), ("marah", "anger"), ("marah kesal", "anger"), ("marah", "anger"),
         ("senang makan", "happiness"), ("buku meja", "neutral")], start=20)]  # fmt: skip
    write_split(out, "train", split(train))
    write_split(out, "validation", split(valid))
    for name in ("train", "validation"):
        res = run(out, "--format", "ms-swift", "--split", name, "--tasks", "keywords",
                  "--to", tmp_path / name)  # fmt: skip
        assert res.exit_code == 0, res.output
    kw_train = json.loads((tmp_path / "train" / "export.json").read_text())["keywords"]
    kw_valid = json.loads((tmp_path / "validation" / "export.json").read_text())["keywords"]
    assert kw_train["computed_from"] == "train"
    assert "marah" in {w for w, _ in kw_valid["by_class"]["anger"]}
    words_train = {w for ws in kw_train["by_class"].values() for w, _ in ws}
    assert words_train == {"sedih", "senang"}
    records = (tmp_path / "train" / "train.jsonl").read_text()
    assert "marah" not in records
    assert records.count('"videos"') == 0  # no media in this dataset: text-only records


def _resplit_once(out: Path):
    """An action for a fault point: commit a re-split of ``out`` (its first call only), which
    moves clips between train and validation and collects the generation read before."""
    from indomer.split import resplit

    done: list[bool] = []

    def action() -> None:
        if not done:
            done.append(True)
            resplit(out, ratios=(0.5, 0.5), seed=7, name="moved", warn=lambda m: None)

    return action, done


@pytest.mark.parametrize("point", ["snapshot", "read"])
def test_export_during_a_concurrent_split_reads_the_old_generation(
    built: Path, tmp_path: Path, point: str
) -> None:
    """Issue 22: a split committed while export reads (after it pinned its generation, or
    between its reads of the ids and of the rows) gives the old dataset whole, never a
    KeyError; the collected generation's files stay readable through the snapshot."""
    import shutil

    from indomer.dataset import read_split
    from indomer.faults import at

    out = tmp_path / "ds"
    shutil.copytree(built, out, symlinks=True)
    old_train = sorted(read_split(out, "train", columns=["id"])["id"])
    old_build = json.loads((out / "build.json").read_text())
    action, done = _resplit_once(out)
    with at(point, action):
        res = run(out, "--format", "ms-swift", "--split", "train", "--tasks", "emotion",
                  "--to", tmp_path / "x")  # fmt: skip
    assert done, "the split was not committed during the export"
    assert res.exit_code == 0, res.output
    new_train = sorted(read_split(out, "train", columns=["id"])["id"])
    assert new_train != old_train  # the split did change the dataset under the export
    records = (tmp_path / "x" / "train.jsonl").read_text().splitlines()
    manifest = json.loads((tmp_path / "x" / "export.json").read_text())
    assert len(records) + len(manifest["skipped"]) == len(old_train) != len(new_train)
    assert {s["id"] for s in manifest["skipped"]} <= set(old_train)
    assert [s["sha256"] for s in manifest["source_shards"]] == [
        f["sha256"] for f in old_build["outputs"]["splits"]["train"]["files"]
    ]


def test_export_after_a_split_committed_reads_the_new_generation(
    built: Path, tmp_path: Path
) -> None:
    """The other half of old-or-new: a split committed before export pins its generation
    gives the new assignment (the test above can tell the two apart)."""
    import shutil

    out = tmp_path / "ds"
    shutil.copytree(built, out, symlinks=True)
    _resplit_once(out)[0]()
    new_build = json.loads((out / "build.json").read_text())
    res = run(out, "--format", "ms-swift", "--split", "train", "--tasks", "emotion",
              "--to", tmp_path / "x")  # fmt: skip
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "x" / "export.json").read_text())
    assert [s["sha256"] for s in manifest["source_shards"]] == [
        f["sha256"] for f in new_build["outputs"]["splits"]["train"]["files"]
    ]
    assert manifest["records"]["emotion"] == new_build["rows"]["train"]

"""The build config: one validation, one-line errors naming file:line and key, typed settings,
and the input tables it declares (sources, segments, transcripts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field

from indomer.config import (
    BuildConfig,
    SplitConfig,
    fingerprint_settings,
    load_config,
    make_settings,
    read_segments,
    read_sources,
    read_transcripts,
)
from indomer.errors import DataError, UsageError
from indomer.stages import fetch


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "sources.csv").write_text("source_id,url_or_path,topic,license\n")
    (tmp_path / "tables" / "segments.csv").write_text("id,source_id,start,end\n")
    (tmp_path / "sheets").mkdir()
    (tmp_path / "sheets" / "a.csv").write_text("x\n")
    return tmp_path


def write(project: Path, text: str) -> Path:
    path = project / "build.yaml"
    path.write_text(text)
    return path


GOOD = """\
sources: tables/sources.csv
segments: tables/segments.csv
annotations: sheets
split:
  ratios: [0.8, 0.2]
  seed: 3
fetch:
  max_height: 480
probe:
"""


def test_a_good_config_resolves_paths_against_its_folder(project, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path.parent)  # the working directory must not matter
    cfg = load_config(write(project, GOOD))
    assert cfg.sources == project / "tables" / "sources.csv"
    assert cfg.segments == project / "tables" / "segments.csv"
    assert cfg.transcripts is None
    assert cfg.annotations == (project / "sheets",)
    assert cfg.split == SplitConfig(ratios=(0.8, 0.2), seed=3)
    assert cfg.settings("fetch", fetch.Settings) == fetch.Settings(max_height=480)
    assert cfg.settings("probe", None) is None  # "probe:" with nothing is the defaults
    assert cfg.settings("cut", fetch.Settings) == fetch.Settings()  # absent section: defaults
    assert cfg.document["split"] == {"ratios": [0.8, 0.2], "seed": 3}
    assert cfg.where("fetch.max_height") == f"{cfg.path}:8"


@pytest.mark.parametrize(
    "text, expected",
    [
        (GOOD + "sourcez: x\n", ":10: sourcez: unknown key; expected one of align, annotations,"),
        ("annotations: sheets\n", ": sources: missing; add it"),
        (GOOD.replace("seed: 3", "seed: -1"), ":6: split.seed: -1 is less than the minimum of 0"),
        (GOOD.replace("[0.8, 0.2]", "[0.8, 0.3]"), ":5: split.ratios sum to 1.1, not 1;"),
        (GOOD.replace("[0.8, 0.2]", "[1.0]"), ":5: split.ratios: [1.0] is too short"),
        (
            GOOD.replace("  seed: 3", "  sed: 3"),
            ":6: split.sed: unknown key; expected one of name,",
        ),
        (GOOD.replace("tables/segments.csv", "nope.csv"), ":2: segments: no such file "),
        (
            GOOD.replace("annotations: sheets", "annotations: [sheets, gone]"),
            ":3: annotations[1]: no such file or folder ",
        ),
        (
            GOOD.replace("annotations: sheets", "annotations: 3"),
            ":3: annotations: expected a path or a list of paths",
        ),
        (GOOD.replace("max_height: 480", "max_height: [480"), ":9: not valid YAML"),
        (GOOD.replace("probe:", "probe: 3"), ":9: probe: 3 is not a mapping; fix the value"),
        ("- a\n- b\n", ": expected a mapping of keys"),
    ],
)
def test_bad_configs_are_one_line_naming_the_key(project, text, expected):
    path = write(project, text)
    with pytest.raises(UsageError) as info:
        load_config(path)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message, message


BOMB = "".join(
    f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]\n"
    for prev, name in zip("abcdefgh", "bcdefghi")
)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            GOOD + "segment: &x {a: *x}\n",
            (":10: segment.a: a YAML alias refers to a value that contains it (recursive); "
             "write the value out instead of the alias"),
        ),
        ("a: &x [*x]\n" + GOOD, ":1: a[0]: a YAML alias refers to a value that contains it"),
        # billion laughs: 10**9 values if expanded; refused after MAX_YAML_VALUES
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + BOMB + GOOD,
         ":5: e: YAML aliases expand to more than 100000 values; a build config is small"),
        (GOOD + "segment:\n  threshold: .nan\n",
         ":11: segment.threshold: .nan is not a finite number; give a number such as 0.5"),
        (GOOD + "cut:\n  sizes: [1, -.inf]\n", ":11: cut.sizes[1]: -.inf is not a finite number"),
        (GOOD.replace("[0.8, 0.2]", "[.NaN, 0.2]"), ":5: split.ratios[0]: .nan is not a finite"),
        (GOOD.replace("seed: 3", "seed: 1.0e+999"), ":6: split.seed: .inf is not a finite number"),
    ],
)
def test_recursive_aliases_bombs_and_non_finite_numbers_are_refused(project, text, expected):
    import time

    path = write(project, text)
    started = time.monotonic()
    with pytest.raises(UsageError) as info:
        load_config(path)
    assert time.monotonic() - started < 10  # bounded: neither recursion nor 10**9 values
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    assert expected in message, message


def test_anchors_and_merge_keys_within_bounds_still_load(project):
    text = GOOD.replace("fetch:\n  max_height: 480\n", "fetch: &f\n  max_height: 480\n")
    cfg = load_config(write(project, text + "cut:\n  <<: *f\n"))
    assert cfg.sections["cut"] == {"max_height": 480} == cfg.sections["fetch"]


@pytest.mark.parametrize(
    "topic, shown, hint",
    [
        ("Health & Food", "'Health & Food'", "HealthFood"),
        ("Q_A", "'Q_A'", "QA"),
        ("Resep2", "'Resep2'", "Resep"),
        ("Masakan-Padang", "'Masakan-Padang'", "MasakanPadang"),
        ("Kuliner…", "'Kuliner…'", "Kuliner"),
    ],
)
def test_a_topic_that_cannot_make_segment_ids_refuses_the_config(project, topic, shown, hint):
    from indomer.release import ID_RE
    from indomer.rows import segment_id

    sources = project / "tables" / "sources.csv"
    sources.write_text(
        "source_id,url_or_path,topic,license\n"
        "1,a.mp4,Cooking,CC0\n"
        "2,b.mp4,,CC0\n"  # blank: rejected per row by read_sources, not here
        f'3,c.mp4,"{topic}",CC0\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError) as info:
        load_config(write(project, GOOD))
    assert info.value.exit_code == 1
    assert str(info.value) == (
        f"{sources}:4: topic {shown} cannot be part of a segment id clip_<source>_<Topic>_<n>; "
        f"use letters only (A-Z, a-z), e.g. {hint}"
    )
    assert not ID_RE.match(segment_id("3", topic, 1))
    sources.write_text("source_id,url_or_path,topic,license\n1,a.mp4,Opinions,CC0\n")
    assert load_config(write(project, GOOD)).sources == sources  # the alias of Opinion is fine
    assert ID_RE.match(segment_id("1", "Opinion", 1))


def test_inputs_with_a_byte_order_mark_are_read(project):
    bom = "\ufeff"
    (project / "tables" / "sources.csv").write_text(
        bom + "source_id,url_or_path,topic,license\n1,a.mp4,Cooking,CC0\n", encoding="utf-8"
    )
    path = project / "build.yaml"
    path.write_text(bom + GOOD, encoding="utf-8")
    cfg = load_config(path)
    assert cfg.split == SplitConfig(ratios=(0.8, 0.2), seed=3)
    assert cfg.where("sources") == f"{path}:1"
    videos, rejected = read_sources(cfg.sources)
    assert [(v.source_id, v.topic) for v in videos] == [("1", "Cooking")] and rejected == []
    segments = project / "tables" / "segments.csv"
    segments.write_text(bom + "id,source_id,start,end\nclip_1_Cooking_1,1,0,2.5\n")
    given, rejected = read_segments(segments, {"1": "Cooking"})
    assert [(s.id, s.end) for s in given["1"]] == [("clip_1_Cooking_1", 2.5)] and rejected == []
    transcripts = project / "t.csv"
    transcripts.write_text(bom + "id,text\nclip_1_Cooking_1,Halo semua\n", encoding="utf-8")
    assert read_transcripts(transcripts) == ({"clip_1_Cooking_1": "Halo semua"}, [])


def test_the_published_schema_is_emitted_from_the_models_that_validate():
    """One layer validates: schemas/build_config.schema.json is what the pydantic models
    emit, stage sections included, so the file and the check cannot drift apart."""
    from indomer.config import STAGE_SECTIONS
    from indomer.pipeline import config_schema_text, config_sections

    assert tuple(config_sections()) == STAGE_SECTIONS  # every stage section is typed
    root = Path(__file__).resolve().parents[1]
    published = (root / "schemas" / "build_config.schema.json").read_text(encoding="utf-8")
    assert published == config_schema_text(), (
        "regenerate: python -c \"from indomer.pipeline import config_schema_text as t; "
        "print(t(), end='')\" > schemas/build_config.schema.json"
    )
    import json

    doc = json.loads(published)
    assert doc["required"] == ["sources"] and doc["additionalProperties"] is False
    defs = doc["$defs"]
    assert defs["SplitConfigSection"]["properties"]["seed"]["minimum"] == 0
    # every stage section is typed by its Settings dataclass, bounds included
    crf = defs["CutSection"]["properties"]["crf"]
    assert (crf["minimum"], crf["maximum"]) == (0, 51)
    assert defs["SpeakersSection"]["properties"]["hard_p"]["exclusiveMinimum"] == 0.5
    assert defs["FacesSection"]["additionalProperties"] is False
    assert set(defs["VoicesSection"]["properties"]) == {"resources"}
    assert "num_gpus" in defs["ResourcesSection"]["properties"]


def test_the_published_schema_accepts_the_demo_config_and_refuses_a_bad_bound(tmp_path):
    """An editor validating with the published schema sees what the build sees."""
    import json

    import jsonschema
    import yaml

    from indomer.demo.corpus import make_corpus
    from indomer.pipeline import config_schema_text

    validator = jsonschema.Draft202012Validator(json.loads(config_schema_text()))
    doc = yaml.safe_load(make_corpus(tmp_path / "demo").read_text(encoding="utf-8"))
    assert list(validator.iter_errors(doc)) == []
    bad = {**doc, "cut": {"crf": 99, "resources": {"num_cpus": 1, "custom": {"acc": 1}}}}
    (error,) = validator.iter_errors(bad)  # cut: neither a valid section nor null
    assert [(list(e.absolute_path), e.validator) for e in error.context] == [
        (["cut", "crf"], "maximum"), (["cut"], "type")]


#: Every range a stage's Settings class once checked itself, now one pydantic bound each:
#: (section, key, bad value, what the one line says after ``section.key: value``).
BOUNDS = [
    ("fetch", "max_height", 0, "is less than the minimum of 1"),
    ("fetch", "retries", -1, "is less than the minimum of 0"),
    ("fetch", "socket_timeout", 0, "is less than or equal to the minimum of 0.0"),
    ("segment", "threshold", 1.0, "is greater than or equal to the maximum of 1.0"),
    ("segment", "min_pause", -0.1, "is less than the minimum of 0.0"),
    ("segment", "min_clip", -1, "is less than the minimum of 0.0"),
    ("segment", "pad", -0.01, "is less than the minimum of 0.0"),
    ("segment", "min_speech", -0.1, "is less than the minimum of 0.0"),
    ("cut", "crf", 52, "is greater than the maximum of 51"),
    ("cut", "preset", "fastest",
     ("is not one of 'ultrafast', 'superfast', 'veryfast', 'faster', 'fast', "
     "'medium', 'slow', 'slower', 'veryslow' or 'placebo'")),
    ("cut", "audio_rate", 4000, "is less than the minimum of 8000"),
    ("cut", "max_height", 8, "is less than the minimum of 16"),
    ("cut", "clips_per_process", 0, "is less than the minimum of 1"),
    ("align", "method", "mfa", "is not one of 'wav2vec2' or 'whisper'"),
    ("align", "device", "tpu", "is not one of 'auto', 'cpu' or 'cuda'"),
    ("align", "min_similarity", 0, "is less than or equal to the minimum of 0.0"),
    ("align", "batch_size", 0, "is less than the minimum of 1"),
    ("align", "threads", -1, "is less than the minimum of 0"),
    ("align", "model", "", "is too short (at least 1 character(s))"),
    ("align", "asr_model", "", "is too short (at least 1 character(s))"),
    ("faces", "sample_fps", 0, "is less than or equal to the minimum of 0.0"),
    ("faces", "detector", "dlib", "is not one of 'hog' or 'haar'"),
    ("faces", "min_face", 1.0, "is greater than or equal to the maximum of 1.0"),
    ("faces", "max_height", 23, "is less than the minimum of 24"),
    ("faces", "scale_factor", 1.0, "is less than or equal to the minimum of 1.0"),
    ("faces", "min_neighbors", -1, "is less than the minimum of 0"),
    ("faces", "min_iou", 1.5, "is greater than the maximum of 1.0"),
    ("faces", "min_single", -0.5, "is less than the minimum of 0.0"),
    ("faces", "on_no_face", "drop", "is not one of 'flag' or 'reject'"),
    ("faces", "threads", 0, "is less than the minimum of 1"),
    ("faces", "identity_frames", 0, "is less than the minimum of 1"),
    ("speakers", "embedding", "", "is too short (at least 1 character(s))"),
    ("speakers", "threshold", 0, "is less than or equal to the minimum of 0.0"),
    ("speakers", "link_threshold", 1.5, "is greater than the maximum of 1.0"),
    ("speakers", "prior", 0, "is less than or equal to the minimum of 0.0"),
    ("speakers", "hard_p", 0.5, "is less than or equal to the minimum of 0.5"),
    ("speakers", "min_voice_seconds", -1, "is less than the minimum of 0.0"),
    ("speakers", "min_primary_share", 1.5, "is greater than the maximum of 1.0"),
    ("speakers", "max_overlap", -0.1, "is less than the minimum of 0.0"),
    ("speakers", "min_speaker_time", -1, "is less than the minimum of 0.0"),
    ("speakers", "threads", 0, "is less than the minimum of 1"),
    ("speakers", "on_mixed", "drop", "is not one of 'flag' or 'reject'"),
]


@pytest.mark.parametrize("section, key, value, said", BOUNDS,
                         ids=[f"{s}.{k}" for s, k, _, _ in BOUNDS])
def test_a_stage_setting_out_of_range_is_one_line_naming_the_file_line_and_key(
    project, section, key, value, said
):
    """Issue 22: the Settings classes no longer check their own ranges; the config's pydantic
    model (the one validator, built from the Settings' bounds) refuses each bad value with
    the config file, the line, the key and what was expected, as a usage error (exit 2)."""
    from indomer.pipeline import config_sections

    path = write(project, GOOD + f"{section}:\n  {key}: {value!r}\n")
    cfg = load_config(path)
    with pytest.raises(UsageError) as info:
        cfg.settings(section, config_sections()[section])
    assert str(info.value) == f"{path}:11: {section}.{key}: {value!r} {said}; fix the value"
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "section, text, said",
    [
        ("segment", "{min_clip: 5, max_clip: 4}",
         "segment: max_clip (4) must be greater than min_clip (5)"),
        ("speakers", "{embedding: x/y, threshold: 0.6}",
         "speakers: threshold and link_threshold: required with embedding 'x/y'"),
        ("speakers", "{threshold: 0.6, link_threshold: 0.7}",
         "speakers: link_threshold (0.7) must not exceed threshold (0.6)"),
    ],
)
def test_what_two_settings_say_together_is_one_line_naming_the_section(
    project, section, text, said
):
    from indomer.pipeline import config_sections

    path = write(project, GOOD + f"{section}: {text}\n")
    with pytest.raises(UsageError) as info:
        load_config(path).settings(section, config_sections()[section])
    assert str(info.value).startswith(f"{path}:10: {said}")  # the section's line


def test_a_build_with_a_bad_stage_setting_exits_2_before_any_work(project, tmp_path):
    from click.testing import CliRunner

    from indomer.cli import main

    path = write(project, GOOD + "cut:\n  crf: 99\n")
    res = CliRunner().invoke(main, ["build", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert res.output.strip() == (
        f"error: {path}:11: cut.crf: 99 is greater than the maximum of 51; fix the value")
    assert not (tmp_path / "out" / "work").exists()


@dataclass(frozen=True)
class Bounded:
    share: Annotated[float, Field(gt=0, le=1)] = 0.5


def test_a_bound_declared_on_a_settings_field_is_checked():
    with pytest.raises(UsageError) as info:
        make_settings(Bounded, {"share": 1.5}, "demo", lambda key: f"cfg.yaml:[{key}]")
    assert str(info.value) == (
        "cfg.yaml:[demo.share]: demo.share: 1.5 is greater than the maximum of 1.0; fix the value"
    )
    assert make_settings(Bounded, {"share": 1}, "demo") == Bounded(share=1.0)


def test_missing_config_file(tmp_path):
    with pytest.raises(UsageError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


@dataclass(frozen=True)
class DemoSettings:
    rate: int = 16000
    gain: float = 1.0
    name: str | None = None
    sizes: tuple[int, ...] = (1, 2)
    flag: bool = False
    retries: int = field(default=3, metadata={"fingerprint": False})

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")


def test_stage_settings_are_typed_by_the_dataclass():
    def where(key: str) -> str:
        return f"cfg.yaml:[{key}]"

    s = make_settings(DemoSettings, {"gain": 2, "sizes": [3, 4], "name": None}, "demo", where)
    assert s == DemoSettings(gain=2.0, sizes=(3, 4))  # int accepted for float, list -> tuple
    cases = {
        "rat": "cfg.yaml:[demo.rat]: demo.rat: unknown setting; the demo stage knows flag, gain,",
        "rate": "cfg.yaml:[demo.rate]: demo.rate: '16k' is not a int; fix the value",
        "flag": "demo.flag: 1 is not a bool",
        "gain": "demo.gain: True is not a float",
    }
    values = {"rat": 1, "rate": "16k", "flag": 1, "gain": True}
    for key, expected in cases.items():
        with pytest.raises(UsageError) as info:
            make_settings(DemoSettings, {key: values[key]}, "demo", where)
        assert expected in str(info.value)
    with pytest.raises(UsageError, match=r"^cfg.yaml:\[demo\]: demo: rate must be > 0, got 0$"):
        make_settings(DemoSettings, {"rate": 0}, "demo", where)


def test_fingerprint_leaves_out_settings_that_do_not_change_the_output():
    fp = fingerprint_settings(DemoSettings(retries=9, sizes=(5,)))
    assert fp == {"rate": 16000, "gain": 1.0, "name": None, "sizes": [5], "flag": False}
    assert fingerprint_settings(fetch.Settings(retries=0)) == {"max_height": 720}
    assert fingerprint_settings(None) == {}


def test_a_section_for_a_stage_without_settings_is_refused(project):
    cfg = load_config(write(project, GOOD + "  x: 1\n"))
    with pytest.raises(UsageError, match=r":10: probe.x: the probe stage takes no settings"):
        cfg.settings("probe", None)


def test_a_section_for_a_stage_not_in_the_pipeline_is_refused(project):
    from indomer.pipeline import ItemStage, Runner

    cfg = load_config(write(project, GOOD + "align:\n  model: x\n"))
    with pytest.raises(UsageError, match=r":10: align: this pipeline has no align stage yet"):
        Runner(cfg, project / "out", [ItemStage("fetch", print, settings=lambda: fetch.Settings)])


# --------------------------------------------------------------------------- tables


def test_read_sources(tmp_path):
    (tmp_path / "v").mkdir()
    path = tmp_path / "sources.csv"
    sha = "ab" * 32
    path.write_text(
        "\ufeffsource_id,url_or_path,topic,license,sha256\n"
        f"2,v/two.mp4,Opinions,CC-BY,{sha.upper()}\n"
        "1,https://example.org/watch?v=x,Cooking,CC0,\n"
        "\n"
        "3,/abs/three.mkv,Travel,,\n"
        "1,v/dup.mp4,Cooking,CC0,\n"
        "4,v/four.mp4,Cooking,CC0,xyz\n"
        "5,,Cooking,CC0,\n"
        "6,a,b\n"
        "7,javascript:alert(1),Cooking,x,\n"
    )
    videos, rejected = read_sources(path)
    by_id = {v.source_id: v for v in videos}
    assert [v.source_id for v in videos] == ["1", "2", "3", "7"]
    assert by_id["1"].url == "https://example.org/watch?v=x" and by_id["1"].path is None
    assert by_id["2"].path == str(tmp_path / "v" / "two.mp4") and by_id["2"].url is None
    assert by_id["2"].topic == "Opinion" and by_id["2"].sha256 == sha
    assert by_id["3"].path == "/abs/three.mkv" and by_id["3"].license is None
    assert by_id["7"].url == "javascript:alert(1)"  # refused by fetch, with the others
    got = {(r["id"], r["where"]): r["reason"] for r in rejected}
    assert got == {
        ("1", "sources.csv:6"): "duplicate source_id (first at line 3)",
        ("4", "sources.csv:7"): "sha256 'xyz' is not 64 hex digits",
        ("5", "sources.csv:8"): "blank url_or_path",
        (None, "sources.csv:9"): "wrong number of cells",
    }
    assert all(r["stage"] == "fetch" and r["fix"] for r in rejected)


def test_read_sources_needs_its_columns(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("id,url\n1,x\n")
    with pytest.raises(DataError, match=r"s.csv:1: missing column\(s\) source_id, url_or_path"):
        read_sources(path)
    path.write_bytes(b"source_id,url_or_path,topic,license\n1,\xff,x,y\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_sources(path)


def test_read_segments(tmp_path):
    path = tmp_path / "segments.csv"
    path.write_text(
        "id,source_id,start,end,text\n"
        "b,1,5.0,7.5,kedua\n"
        "a,1,0,2,pertama\n"
        "c,2,1,2,\n"
        "../d,1,8,9,x\n"
        "a,1,3,4,again\n"
        "e,9,1,2,x\n"
        "f,1,4,3,x\n"
        "g,1,nan,3,x\n"
    )
    given, rejected = read_segments(path, {"1": "Cooking", "2": "Travel"})
    assert [(s.id, s.segment_index, s.start, s.end, s.text) for s in given["1"]] == [
        ("a", 1, 0.0, 2.0, "pertama"),
        ("b", 2, 5.0, 7.5, "kedua"),
    ]
    assert given["2"][0].topic == "Travel" and given["2"][0].text is None
    reasons = {r["where"]: r["reason"] for r in rejected}
    assert reasons["segments.csv:5"] == "unsafe segment id '../d'"
    assert reasons["segments.csv:6"] == "duplicate id (first at line 3)"
    assert reasons["segments.csv:7"].startswith("source_id '9' is not in the sources table")
    assert reasons["segments.csv:8"] == "start/end '4'/'3': not seconds, 0 <= start < end"
    assert reasons["segments.csv:9"].startswith("start/end 'nan'/'3'")
    assert all(r["stage"] == "segment" for r in rejected)


def test_read_transcripts(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,text\na,"Halo, apa kabar?"\nb,\na,lagi\n')
    texts, rejected = read_transcripts(path)
    assert texts == {"a": "Halo, apa kabar?"}
    assert [(r["id"], r["where"], r["reason"]) for r in rejected] == [
        ("b", "t.csv:3", "blank id or text"),
        ("a", "t.csv:4", "duplicate transcript"),
    ]


def test_config_is_picklable_for_pool_workers(project):
    import pickle

    cfg = load_config(write(project, GOOD))
    again = pickle.loads(pickle.dumps(cfg))
    assert isinstance(again, BuildConfig) and again.split == cfg.split

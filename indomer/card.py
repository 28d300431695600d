"""The dataset card (README.md) and the Croissant document, rendered from the shards' numbers.

:func:`indomer.generation.finalize` computes the shard manifest and statistics of every new
generation and hands them here, so the card can never quote a number that the files do not
support. Both build modes hand it one build.json shape; the prose differs only by what that
data says of the rows' origin (:func:`release_source`: the release it read, or the source
videos a raw build names) and by the active split's ``method``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from indomer import __version__
from indomer.agreement import shown_coefficients
from indomer.croissant import croissant_document
from indomer.dataset import SPLITS, hf_features
from indomer.errors import IndomerError
from indomer.labels import MODALITY_TASKS, TASKS, emotion_to_sentiment, label_set
from indomer.readjson import read_json

PAPER_CITATION = """@article{omnimer2025,
  title   = {OmniMER: Indonesian Multimodal Emotion Recognition via Auxiliary-Enhanced LLM Adaptation},
  journal = {arXiv preprint arXiv:2512.19379},
  year    = {2025},
  url     = {https://arxiv.org/abs/2512.19379}
}"""
PAPER_URL = "https://arxiv.org/abs/2512.19379"
UPSTREAM = "yanxm01/INDOMER"
UPSTREAM_URL = f"https://github.com/{UPSTREAM}"
RAW_TITLE = "IndoMER (built from raw sources)"
#: Licence ids the Hub accepts that a sources.csv is likely to name -> their SPDX ids.
HUB_LICENSES: dict[str, str] = {
    "apache-2.0": "Apache-2.0",
    "mit": "MIT",
    "cc0-1.0": "CC0-1.0",
    "cc-by-2.0": "CC-BY-2.0",
    "cc-by-3.0": "CC-BY-3.0",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-3.0": "CC-BY-SA-3.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-nc-4.0": "CC-BY-NC-4.0",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0",
    "cc-by-nd-4.0": "CC-BY-ND-4.0",
    "cc-by-nc-nd-4.0": "CC-BY-NC-ND-4.0",
    "odc-by": "ODC-By-1.0",
    "pddl": "PDDL-1.0",
    "unlicense": "Unlicense",
}
#: What each column holds, for the card's column table (types come from the HF features).
COLUMN_MEANINGS: dict[str, str] = {
    "id": "segment id, `clip_<source>_<Topic>_<n>`",
    "source_id": "source video id",
    "segment_index": "position in the source video, from 1",
    "topic": "normalised topic (`Opinions` -> `Opinion`)",
    "speaker_id": "global speaker id (same person across videos = same id)",
    "start": "start in the source video, seconds",
    "end": "end in the source video, seconds",
    "text": "transcript as spoken (no normalisation)",
    "words": (
        "aligned words `{word, start, end, score}`, times in seconds from the clip's start "
        "(the row's own audio and video start at 0); null times: not aligned"
    ),
    "emotion": "overall (multimodal) emotion",
    "sentiment": "overall (multimodal) sentiment",
    "text_sentiment": "sentiment of the words only",
    "audio_sentiment": "sentiment of the voice only",
    "video_sentiment": "sentiment of the picture only",
    "emotion_intensity": "0-3 where annotated",
    "annotations": "raw votes `{annotator, field, value}`",
    "adjudicated": "the final label came from the expert, not a majority",
    "audio": "16 kHz mono WAV (HF `Audio`)",
    "video": "MP4, H.264/AAC (HF `Video`)",
    "face": (
        "face-track summary `{frames, detected, multiple, box, continuity, flagged}`: sampled "
        "frames, frames with exactly one face, with several, the median box `[x, y, w, h]` as "
        "fractions of the frame, the share of consecutive samples on one track, and whether "
        "the clip does not show one face most of the time"
    ),
    "speaker_check": (
        "what the speaker check heard `{n_speakers, primary_share, overlap, flagged}`: voices "
        "with enough speech in the clip, the main one's share of the speech, the share spoken "
        "over, and whether the main speaker does not hold the clip (null: not checked)"
    ),
}


# --------------------------------------------------------------------------- mode and licence


def release_source(build: dict) -> dict | None:
    """build.json's ``source`` when the rows are the public release's (it names the release
    it read, ``spec``), else None. Both build modes write one build.json shape; the card
    renders what it holds, and this is the one fact about the origin it reads."""
    src = build.get("source")
    return src if isinstance(src, dict) and "spec" in src else None


def _title(build: dict) -> str:
    """The dataset's name: the release's, or IndoMER built from the source videos it names."""
    return "IndoMER" if release_source(build) or not build.get("sources") else RAW_TITLE


def _licence_id(text: str | None) -> str | None:
    """``"CC0-1.0 (synthetic)"`` -> ``"cc0-1.0"`` when the Hub knows it, else None."""
    if not text:
        return None
    key = re.sub(r"\(.*?\)", "", text).strip().lower().replace(" ", "-")
    return key if key in HUB_LICENSES else None


def licence(build: dict) -> dict:
    """The card's licence fields (Hub ids), plus ``text`` for prose and ``url`` for Croissant.

    The source videos' own licences (a raw build names them): one Hub id when they all agree,
    else ``other`` naming the mix. No source videos (the release): the annotations carry no
    stated licence, so ``other``.
    """
    if not build.get("sources"):
        return {
            "license": "other",
            "license_name": "indomer-upstream-unspecified",
            "license_link": UPSTREAM_URL,
            "text": "The IndoMER authors released the annotations without a stated licence; "
            "ask them before redistributing. The indomer tooling is Apache-2.0.",
            "url": None,
        }
    named = sorted({(s.get("license") or "unstated") for s in build.get("sources", {}).values()})
    ids = {_licence_id(n) for n in named}
    if len(ids) == 1 and None not in ids:
        (hub,) = ids
        return {
            "license": hub,
            "text": f"Every source video is licensed {named[0]}, so this card declares {hub}; "
            "check that the transcripts and annotator sheets are released on the same terms.",
            "url": f"https://spdx.org/licenses/{HUB_LICENSES[hub]}.html",
        }
    return {
        "license": "other",
        "license_name": "mixed-source-licences",
        "license_link": "README.md",
        "text": "Source videos carry different or unstated licences ("
        + "; ".join(named)
        + "); the Sources table gives each one. Check them before redistributing.",
        "url": None,
    }


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M"


# --------------------------------------------------------------------------- YAML header


def _yaml_feature(name: str, feat) -> dict:
    if isinstance(feat, list):
        inner = feat[0]
        if inner.get("_type") == "Value":
            return {"name": name, "list": inner["dtype"]}
        return {"name": name, "list": [_yaml_feature(k, v) for k, v in inner.items()]}
    kind = feat.get("_type")
    if kind == "Value":
        return {"name": name, "dtype": feat["dtype"]}
    if kind == "ClassLabel":
        names = {str(i): n for i, n in enumerate(feat["names"])}
        return {"name": name, "dtype": {"class_label": {"names": names}}}
    if kind == "Audio":
        return {"name": name, "dtype": {"audio": {"sampling_rate": feat["sampling_rate"]}}}
    if kind == "Video":
        return {"name": name, "dtype": "video"}
    return {"name": name, "struct": [_yaml_feature(k, v) for k, v in feat.items()]}


def card_header(manifest: dict, n_total: int, build: dict | None = None) -> dict:
    """The YAML metadata block the Hub reads: license, language, configs, dataset_info."""
    build = build or {}
    splits = manifest["splits"]
    lic = licence(build)
    header: dict = {k: lic[k] for k in ("license", "license_name", "license_link") if k in lic}
    if "license_name" in lic:
        header["license_details"] = lic["text"]
    header.update(
        {
            "language": ["id"],
            "pretty_name": _title(build),
            "task_categories": [
                "text-classification",
                "audio-classification",
                "video-classification",
            ],
            "tags": ["emotion-recognition", "sentiment-analysis", "multimodal", "indonesian"],
            "size_categories": [_size_category(n_total)],
            "configs": [
                {
                    "config_name": "default",
                    "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits],
                }
            ],
            "dataset_info": {
                "features": [_yaml_feature(k, v) for k, v in hf_features().items()],
                "splits": [
                    {"name": s, "num_bytes": info["data_bytes"], "num_examples": info["rows"]}
                    for s, info in splits.items()
                ],
                "download_size": sum(i["bytes"] for i in splits.values()),
                "dataset_size": sum(i["data_bytes"] for i in splits.values()),
            },
        }
    )
    return header


# --------------------------------------------------------------------------- prose helpers


def _n(v) -> str:
    return "unknown" if v is None else str(v)


def _table(head: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines + [""]


def _class_table(stats: dict, task: str) -> list[str]:
    splits = list(stats["splits"])
    ls = label_set(task)
    rows = []
    for i, name in enumerate(ls.names):
        counts = [stats["splits"][s]["classes"][task][name] for s in splits]
        rows.append([i, name, ls.release[name], *counts, stats["overall"]["classes"][task][name]])
    return _table(["id", "label", "release string", *splits, "all"], rows)


def _type_of(feat) -> str:
    if isinstance(feat, list):
        return "list<struct>" if "_type" not in feat[0] else f"list<{feat[0]['dtype']}>"
    kind = feat.get("_type")
    if kind == "Value":
        return feat["dtype"]
    if kind == "ClassLabel":
        return "ClassLabel"
    if kind in ("Audio", "Video"):
        return kind
    return "struct"


def _summary_section(stats: dict) -> list[str]:
    ov, s = stats["overall"], stats["splits"]
    cols = [ov, *s.values()]
    rows = []
    for label, key in (
        ("segments", "segments"),
        ("source videos", "videos"),
        ("speakers", "speakers"),
        ("topics", "topics"),
        ("words per segment (mean)", "words_per_segment"),
        ("vocabulary (case-folded word types)", "vocabulary"),
        ("segments without text", "segments_without_text"),
    ):
        rows.append([label, *(_n(c.get(key)) for c in cols)])
    genders = sorted({g for c in cols for g in (c.get("gender") or {})})
    if genders:
        for g in genders:
            rows.append(
                [f"segments, gender {g}", *((c.get("gender") or {}).get(g, 0) for c in cols)]
            )
    else:
        rows.append(["male / female speakers", *(["unknown"] * len(cols))])
    if "duration" in ov:
        for label, key in (
            ("segments with a duration", "segments_with_duration"),
            ("hours", "total_hours"),
            ("mean segment seconds", "mean_seconds"),
            ("speech rate (words per second)", "speech_rate_wps"),
        ):
            rows.append([label, *(_n(c.get("duration", {}).get(key)) for c in cols)])
    lines = ["## Statistics\n"] + _table(["", "all", *s], rows)
    if "duration" not in ov:
        lines.append(
            "Durations are unknown: the shards have neither start/end times nor embedded audio, "
            "so hours, mean duration and speech rate cannot be computed.\n"
        )
    if ov["speakers"] is None:
        lines.append(
            "No row has a speaker id, so the speaker count is unknown and splits are grouped "
            "by source video. There is no gender column; the male/female split is unknown.\n"
        )
    elif not genders:
        lines.append("There is no gender column; the male/female split is unknown.\n")
    lines.append("### Topics\n")
    lines += _table(["topic", "segments"], [[t, n] for t, n in stats["topics"].items()])
    return lines


def _cross_modal_section(stats: dict) -> list[str]:
    cm = stats["cross_modal"]
    rows = []
    for t, v in cm["vs_sentiment"].items():
        rows.append([f"{t} = sentiment", v["agree"], v["n"], _rate(v["rate"])])
    for pair, v in cm["pairwise"].items():
        a, b = pair.split("/")
        rows.append([f"{a} = {b}", v["agree"], v["n"], _rate(v["rate"])])
    rows.append(["all three modalities equal", *_triple(cm["all_modalities"])])
    rows.append(["all three equal sentiment", *_triple(cm["all_with_sentiment"])])
    lines = [
        "## Cross-modal agreement\n",
        (
            "How often each modality's sentiment label equals the overall (multimodal) sentiment "
            "label and the other modalities' labels, over segments where both labels exist:\n"
        ),
    ]
    lines += _table(["comparison", "agree", "of", "rate"], rows)
    for t in MODALITY_TASKS:
        conf = cm["confusion"][t]
        lines.append(f"Overall sentiment (rows) against `{t}` (columns):\n")
        lines += _table(
            ["sentiment", *conf["labels"]],
            [[n, *r] for n, r in zip(conf["labels"], conf["matrix"])],
        )
    return lines


def _rate(r) -> str:
    return "n/a" if r is None else f"{r:.4f}"


def _triple(v: dict) -> list:
    return [v["agree"], v["n"], _rate(v["rate"])]


def _columns_section(stats: dict, build: dict) -> list[str]:
    n = stats["overall"]["segments"]
    feats = hf_features()
    rows = [
        [f"`{c}`", _type_of(f), COLUMN_MEANINGS.get(c, ""), f"{stats['columns'].get(c, 0)} of {n}"]
        for c, f in feats.items()
    ]
    lines = [
        "## Structure and columns\n",
        (
            "One row per segment, one Parquet file set per split under `data/` (configs in the "
            "header above). Label columns are `ClassLabel`s: Parquet stores the id, "
            "`datasets` shows the name, and `croissant.json` maps ids to names. Columns the "
            "source does not provide are null; the last column counts the rows that have a value.\n"
        ),
    ]
    lines += _table(["column", "type", "meaning", "rows with a value"], rows)
    media = build.get("media")
    if media:
        lines.append(
            f"Media embedded: {media['audio']} audio and {media['video']} video clips; "
            f"{len(media['missing_audio'])} segments lack audio and "
            f"{len(media['missing_video'])} lack video (listed in `build.json`).\n"
        )
    elif media is None:  # a build that embeds clips always says how many
        lines.append("No media are embedded (the public release has none).\n")
    return lines


def _labels_section(stats: dict) -> list[str]:
    rule = emotion_to_sentiment()
    by = {s: [e for e, v in rule.items() if v == s] for s in label_set("sentiment").names}
    lines = [
        "## Labels\n",
        (
            "ClassLabel ids follow the order below (`schemas/labels.yaml` in indomer); the release "
            "string is how the public IndoMER release writes the label (Indonesian).\n"
        ),
        "- `emotion`: the dominant emotion of the whole clip (words, voice and face together).",
        "- `sentiment`: the overall (multimodal) sentiment of the clip. The label scheme ties it "
        "to emotion ("
        + "; ".join(f"{', '.join(v)} -> {k}" for k, v in by.items() if v)
        + "); rows breaking that rule are counted under Known issues.",
        (
            "- `text_sentiment`, `audio_sentiment`, `video_sentiment`: the sentiment of one "
            "modality alone (the words, the voice, the picture), same three classes.\n"
        ),
        "### Emotion\n",
    ]
    lines += _class_table(stats, "emotion")
    for task in ("sentiment", *MODALITY_TASKS):
        lines.append(f"### {task.replace('_', ' ').capitalize()}\n")
        lines += _class_table(stats, task)
    return lines


def _splits_section(build: dict, split_doc: dict | None) -> list[str]:
    lines = ["## Splits\n"]
    if not split_doc:
        return lines + ["No split report in `splits/` matches these shards.\n"]
    rep = split_doc.get("report", {})
    key = split_doc.get("group_key")
    unit = {"speaker_id": "speaker", "speaker_group": "group of linked speakers"}.get(
        key, "source video"
    )
    if split_doc.get("method") == "official":
        lines.append(
            f"Split `{split_doc.get('name')}` is the release's own train/val split (val is "
            "called `validation` here), kept as released."
        )
    else:
        given = split_doc.get("ratios", {})
        ratios = ", ".join(f"{k} {given[k]:g}" for k in SPLITS if k in given)
        lines.append(
            f"Split `{split_doc.get('name')}` was made by `indomer split --speaker-disjoint` "
            f"(seed {split_doc.get('seed')}, ratios {ratios}, stratified by "
            f"`{split_doc.get('stratify')}`): whole groups (one group per {unit}) are assigned to "
            "splits by a seeded search that first keeps each split within "
            f"{100 * split_doc.get('size_tolerance', 0):g}% of its target size where it can, then "
            "keeps every split's class proportions close to the whole."
        )
    overlap = sum(len(v) for v in rep.get("overlap", {}).values())
    lines.append(
        f"Rows are grouped by `{key}` ({rep.get('total_groups')} groups); "
        f"groups in two splits: {overlap} (leak-free: {str(rep.get('leak_free')).lower()}). "
        f"Full report: `{build.get('split', {}).get('file')}`.\n"
    )
    link = split_doc.get("linking")
    if link:
        lines += _linking_lines(split_doc)
    if key not in ("speaker_id", "speaker_group") and rep.get("rows_without_speaker"):
        lines.append(
            f"{rep['rows_without_speaker']} rows have no speaker id, so the unit is the source "
            "video: a person who appears in two videos could sit in two splits.\n"
        )
    sizes, groups = rep.get("sizes", {}), rep.get("groups", {})
    rows = [[s, sizes.get(s), groups.get(s)] for s in rep.get("splits", [])]
    lines += _table(["split", "rows", f"groups ({key})"], rows)
    devs = rep.get("max_deviation", {})
    if devs:
        lines.append("Largest class-proportion deviation of a split from the whole:\n")
        lines += _table(
            ["task", "deviation", "class", "split"],
            [[t, f"{d['value']:.4f}", d.get("class"), d.get("split")] for t, d in devs.items()],
        )
    return lines


def _made_by(entry: dict) -> str:
    """How a split was made, as the command that remakes it."""
    if entry.get("method") == "official":
        return "the release's own split"
    if entry.get("method") != "speaker-disjoint":
        return str(entry.get("method") or "unknown")
    ratios = entry.get("ratios") or {}
    shown = ",".join(f"{ratios[k]:g}" for k in SPLITS if k in ratios)
    return (f"`indomer split --speaker-disjoint --seed {entry.get('seed')} --ratios {shown} "
            f"--stratify {entry.get('stratify')}`")


def _every_split(entries: list[dict]) -> list[str]:
    """``### Every split``: each ``splits/NAME.json``, whether the shards follow it, its rows
    per side on these shards, its assignment's sha256 (what predictions record), how it was
    made and its expected people on two sides. Computed by the commit; laid out here."""
    if not entries:
        return []
    lines = [
        "### Every split\n",
        ("Splits coexist in `splits/`; the shards follow the active one "
         "(`indomer split . --activate NAME` switches). Predictions and scores record a "
         "split's name and the sha256 of its assignment, and `indomer score` refuses predictions made "
         "against another assignment of the same name.\n"),
    ]
    rows = []
    for e in entries:
        counts = e.get("rows")
        if counts is None:
            sides = [f"places {e.get('placed')} of {e.get('total')} clips"] + [""] * 2
        else:
            sides = [counts.get(s, "-") if s in counts else "-" for s in SPLITS]
        expected = e.get("expected_people_on_two_sides")
        rows.append([
            f"`{e.get('name')}`", "yes" if e.get("active") else "no", *sides,
            f"`{e.get('sha256', '')[:12]}`", _made_by(e),
            "unknown" if expected is None else f"{expected:.2f}",
        ])
    lines += _table(["split", "active", *SPLITS, "assignment sha256", "made by",
                     "expected people on two sides"], rows)
    return lines


def _linking_lines(split_doc: dict) -> list[str]:
    """How the split groups were formed, and the split's stated risk."""
    link = split_doc.get("linking") or {}
    op = link.get("operating_point") or {}
    cal = op.get("calibration") or {}
    expected = split_doc.get("expected_people_on_two_sides")
    text = (
        f"Speaker ids are a best guess (voice cosine >= {op.get('threshold')} with "
        f"`{op.get('embedding')}`). Identity between sources is a probability: the voice score "
        "after subtracting the mean of the dataset's other voices"
        + (", plus the face score where both sources show a face" if op.get("face_same")
           is not None else "")
        + f", mapped by a calibration on {cal.get('source')}; pins are certain. Sources that "
        f"share a speaker id or reach p >= {op.get('hard_p')} form one group. "
        f"{link.get('n_speakers')} speaker ids form {link.get('n_groups')} groups."
    )
    if expected is None:
        text += " Without a probability calibration the split cannot state its risk."
    else:
        text += (
            f" The split minimises, and states, the expected number of people on two sides: "
            f"**{expected:.2f}** (the pairs that contribute most are listed in the split "
            "report; `indomer speakers review` ranks the pairs whose answer lowers it most)."
        )
    return [text + "\n"]


def _agreement_table(agreement: dict) -> list[str]:
    rows = []
    for field, a in agreement.items():
        kappa, alpha = shown_coefficients(a)
        rows.append([field, kappa, alpha, a.get("level"), a.get("items"), a.get("annotators")])
    return _table(
        ["field", "Fleiss' kappa", "Krippendorff's alpha", "alpha level", "items", "annotators"],
        rows,
    )


def _annotation_section(build: dict, stats: dict) -> list[str]:
    lines = ["## Annotation\n"]
    agreement = build.get("agreement")
    voted = stats["columns"].get("annotations", 0)
    n = stats["overall"]["segments"]
    if not agreement:
        lines.append(
            "The public release gives one final label per segment and field; it includes no "
            "individual votes, annotator counts or guidelines, so no agreement figure can be "
            f"computed from it. The authors' procedure is described in the OmniMER paper "
            f"({PAPER_URL}).\n"
        )
        return lines
    lines.append(
        "Annotators filled one sheet row per segment (`annotations/GUIDELINE.md` in indomer): "
        "overall sentiment as a score in [-1, 1] (below -0.1 negative, above 0.1 positive, "
        "neutral between), the dominant emotion with its intensity 0-3, and the sentiment of "
        "the words, the voice and the picture separately. indomer merges the sheets per "
        "segment and field: a value chosen by at least two annotators and by more of them than "
        "any other value wins; otherwise the expert's vote decides (`adjudicated` is true); "
        "otherwise the field stays empty and is reported. Every vote is kept in `annotations`."
    )
    lines.append(
        f"\n{voted} of {n} segments carry votes; {stats['columns'].get('adjudicated', 0)} have "
        f"an `adjudicated` value and {stats['overall'].get('adjudicated', 0)} of them were decided by the expert.\n"
    )
    if voted < n:  # only the release has labels without votes
        lines.append(
            f"The other {n - voted} segments keep the release's final labels, without votes.\n"
        )
    lines.append("Agreement among the regular annotators (expert votes excluded):\n")
    lines += _agreement_table(agreement)
    return lines


def _sources_section(build: dict) -> list[str]:
    """Raw builds: where the videos came from, their licences, how they were cut and transcribed."""
    cfg = build.get("config", {})
    stages = build.get("stages", {})
    sources = build.get("sources", {})
    lines = ["## Sources and processing\n"]
    rows = []
    for sid, s in sorted(sources.items(), key=lambda kv: (len(kv[0]), kv[0])):
        dur = "unknown" if s.get("duration") is None else f"{s['duration']:g}"
        url = s.get("url") or "local file (path not recorded)"
        sha = (s.get("sha256") or "")[:12] or "unknown"
        rows.append([sid, s.get("topic"), s.get("license") or "unstated", url, dur, sha])
    lines.append(f"{len(sources)} source videos (`{cfg.get('sources', 'sources.csv')}`):\n")
    lines += _table(["source", "topic", "licence", "URL", "seconds", "sha256 (first 12)"], rows)
    seg = stages.get("segment", {})
    if cfg.get("segments"):
        lines.append(
            f"- Segmentation: start and end times come from the segments table "
            f"(`{cfg['segments']}`), given by the builder."
        )
    else:
        settings = seg.get("settings", {})
        shown = ", ".join(f"{k} {v}" for k, v in sorted(settings.items()))
        vad = seg.get("tools", {}).get("vad", "a voice-activity detector")
        lines.append(
            f"- Segmentation: natural pauses found by voice-activity detection ({vad}; "
            f"{shown}). No person checked the boundaries."
        )
    cut = stages.get("cut", {}).get("settings", {})
    if cut:
        lines.append(
            f"- Clips: cut with ffmpeg to {cut.get('audio_rate')} Hz mono WAV and H.264/AAC MP4 "
            f"(crf {cut.get('crf')}, preset {cut.get('preset')})."
        )
    lines.append("- Transcripts: " + _text_origin(build) + "\n")
    order = ("fetch", "probe", "segment", "cut", "align", "speakers", "merge", "split")
    names = sorted(stages, key=lambda k: (order.index(k) if k in order else len(order), k))
    rows = []
    for name in names:
        rec = stages[name]
        tools = "; ".join(_tool(k, v) for k, v in sorted(rec.get("tools", {}).items())) or "-"
        st = rec.get("stats", {})
        rows.append([name, tools, _n(st.get("kept")), _n(st.get("rejected"))])
    if rows:
        lines.append(
            "Pipeline stages, the tools and models that shaped the rows, and what they kept:\n"
        )
        lines += _table(["stage", "tools and models", "kept", "rejected"], rows)
    return lines


def _tool(name: str, version) -> str:
    """``ffmpeg version 5.1 Copyright ...`` -> ``ffmpeg version 5.1``; else ``name version``."""
    text = str(version).split(" Copyright")[0].strip()
    return text if text.lower().startswith(name.lower()) else f"{name} {text}"


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _text_origin(build: dict) -> str:
    """Where ``text`` came from: manual transcripts, the segments table, or machine drafts.

    A build that records ``text_sources`` (segments per origin, e.g. ``{"manual": 18,
    "asr": 2}``) is reported by those counts; otherwise the config says which input gave it.
    """
    cfg = build.get("config", {})
    counted = build.get("text_sources")
    if counted:
        parts = []
        manual = counted.get("manual", 0)
        if manual:
            where = f", from `{cfg['transcripts']}`" if cfg.get("transcripts") else ""
            parts.append(f"manual for {_count(manual, 'segment')}{where}, as spoken (not normalised)")
        machine = counted.get("asr", 0)
        if machine:
            ids = build.get("machine_text") or []
            shown = ", ".join(f"`{i}`" for i in ids[:10]) + (" and more" if len(ids) > 10 else "")
            parts.append(
                f"machine drafts (Whisper ASR, `asr`) for {_count(machine, 'segment')} that no "
                "person checked" + (f": {shown}" if shown else "")
            )
        if counted.get("none"):
            parts.append(f"none for {_count(counted['none'], 'segment')}")
        return "; ".join(parts) + "."
    if cfg.get("transcripts"):
        return f"manual, from `{cfg['transcripts']}`, as spoken (not normalised)."
    if cfg.get("segments"):
        return f"the `text` column of the segments table `{cfg['segments']}`, where given."
    return "no transcript file was given; segments without text have an empty `text`."


def _known_issues(build: dict, stats: dict) -> list[str]:
    ov = stats["overall"]
    lines = ["## Known issues\n"]
    if release_source(build):
        repaired = build.get("repaired_texts", [])
        lines.append(
            f"- {len(repaired)} transcripts in `Annotations.csv` are GBK mojibake (e.g. `it¡¯s`); "
            "the clean JSON text was used. They are listed in `build.json` under "
            "`repaired_texts`."
        )
        lines.append(
            "- The upstream README quotes segment, video and speaker counts that no released "
            f"file supports; this card counts {ov['segments']} segments in {ov['videos']} videos."
        )
        lines.append(
            "- No speaker ids are released, so splits are grouped by source video; the same "
            "person may appear in two videos."
        )
        unresolved = (stats.get("waiting") or {}).get("unresolved")
        if unresolved:
            lines.append(
                f"- {unresolved} clip(s) are unresolved: the annotator sheets reached no "
                "majority and no expert settled them, so they are not in the shards (not even "
                "with the release's label) until an expert row for each joins the sheets; ids "
                "in `build.json` under `waiting`."
            )
    else:
        if ov.get("segments_without_text"):
            lines.append(f"- {ov['segments_without_text']} segments have no transcript.")
        if ov["speakers"] is None:
            lines.append(
                "- No speaker ids: splits are grouped by source video, so one person in two "
                "videos may sit in two splits."
            )
        waiting = stats.get("waiting") or {}
        if waiting.get("unlabelled"):
            lines.append(
                f"- {waiting['unlabelled']} cut clip(s) wait for labels and are not in the "
                "shards (`indomer annotate export OUT --to DIR` hands them to annotators)."
            )
        if waiting.get("unresolved"):
            lines.append(
                f"- {waiting['unresolved']} clip(s) are unresolved: the annotators reached no "
                "majority and no expert settled them, so they are not in the shards until "
                "adjudicated (`indomer annotate export OUT --to DIR --only unresolved` makes "
                "the expert's tasks; ids in `build.json` under `waiting`)."
            )
        for w in build.get("warnings", []):
            if not (ov["speakers"] is None and w.startswith("no speaker ids")):
                lines.append(f"- Build warning: {w}")
    media = build.get("media") or {}
    missing = len(media.get("missing_audio", [])) + len(media.get("missing_video", []))
    if missing:
        lines.append(
            f"- Missing media: {len(media.get('missing_audio', []))} audio and "
            f"{len(media.get('missing_video', []))} video clips (ids in `build.json`)."
        )
    bad_files = len(media.get("rejected_audio", [])) + len(media.get("rejected_video", []))
    if bad_files:
        lines.append(
            f"- Clip files refused (not a regular file in the media folder, or not decodable): "
            f"{len(media.get('rejected_audio', []))} audio and "
            f"{len(media.get('rejected_video', []))} video; their rows are kept without that "
            "medium (reasons in `rejected.jsonl`)."
        )
    lines.append(
        f"- Rows rejected by the build: {build.get('rejected', 0)} (see `rejected.jsonl`)."
    )
    lines.append(
        f"- Rows breaking the emotion->sentiment rule: {len(build.get('rule_violations', []))}.\n"
    )
    return lines


def _intro(build: dict, stats: dict) -> list[str]:
    ov = stats["overall"]
    version = build.get("indomer", __version__)
    lead = (
        f"Indonesian monologue video clips ({ov['segments']} segments from {ov['videos']} source "
        "videos, one speaker per clip) labelled with seven emotions and three-way sentiment, "
        "overall and per modality (text, audio, video). "
    )
    if not release_source(build):
        return [
            f"# {_title(build)}\n",
            "## Summary\n",
            lead + f"Built with indomer {version} from raw sources (`indomer build "
            f"{build.get('source', {}).get('config', 'CONFIG')}`): the source videos listed "
            "under Sources and processing, cut into clips and labelled from annotator sheets. It uses the label "
            f"scheme of the IndoMER dataset (OmniMER paper, {PAPER_URL}); it is not the "
            "public release.\n",
        ]
    src = build.get("source", {})
    origin = (
        f"`{src['spec']}`" if str(src.get("spec", "")).startswith("github:") else "a local copy"
    )
    verified = (
        f", byte-identical to the files of `{UPSTREAM}` at the pinned data commit"
        if src.get("verified")
        else ""
    )
    return [
        "# IndoMER\n",
        "## Summary\n",
        lead + f"Built with indomer {version} from the public IndoMER annotation release "
        f"({UPSTREAM_URL}; read from {origin}{verified}), the data behind the OmniMER paper "
        f"({PAPER_URL}).\n",
    ]


#: Figures drawn into the dataset folder (``indomer stats OUT --plots OUT/figures``) are
#: published with it; ``figures.json`` records the build hash they were drawn from.
FIGURES_DIR = "figures"
FIGURE_TITLES = {
    "modality_sentiment": "Per-modality sentiment against the multimodal label",
    "emotion_long_tail": "The emotion long tail",
    "topics": "Segments per topic",
    "durations": "Clip durations",
    "classes_per_split": "Class counts per split",
}


#: Heading of the card section that ``indomer push --results`` fills.
RESULTS_HEAD = "## Results"


def fresh_figures(out: Path, build_hash: str | None) -> list[str]:
    """The figure files under OUT/figures drawn from the current shards (else none).

    Figures drawn before a re-split or rebuild describe other shards, so they are neither
    linked from the card nor pushed until ``indomer stats --plots`` draws them again.
    """
    index = Path(out) / FIGURES_DIR / "figures.json"
    try:
        doc = read_json(index)
    except IndomerError:
        return []
    if not isinstance(doc, dict):
        return []
    if not build_hash or doc.get("build_hash") != build_hash:
        return []
    names = [n for n in doc.get("files", []) if (Path(out) / FIGURES_DIR / n).is_file()]
    return sorted(names, key=lambda n: list(FIGURE_TITLES).index(Path(n).stem)
                  if Path(n).stem in FIGURE_TITLES else len(FIGURE_TITLES))


def _figures_section(names: list[str]) -> list[str]:
    if not names:
        return []
    lines = ["## Figures\n", "Drawn from these shards by `indomer stats . --plots figures`.\n"]
    for n in names:
        title = FIGURE_TITLES.get(Path(n).stem, Path(n).stem)
        lines.append(f"![{title}]({FIGURES_DIR}/{n})\n")
    return lines


def results_section(boards: list[dict]) -> list[str]:
    """``## Results``: one leaderboard table per (task, split), as ``indomer leaderboard`` wrote
    it (the tables arrive computed; this only lays them out). Empty without boards."""
    if not boards:
        return []
    from indomer.leaderboard import format_markdown

    lines = [
        f"{RESULTS_HEAD}\n",
        (
            "Systems ranked by `indomer leaderboard` on this dataset (macro-F1 is the headline; "
            "intervals and paired p-values come from a bootstrap over speakers, or source "
            "videos when speaker ids are absent).\n"
        ),
    ]
    for board in boards:
        lines.append(
            f"### {board['task']}, {board['split']} split (indomer "
            f"{board['versions']['indomer']})\n"
        )
        lines.append(format_markdown(board))
    return lines


def with_results(card: str, boards: list[dict]) -> str:
    """``card`` with its ``## Results`` section replaced by (or given) the one for ``boards``.

    The section goes before ``## Scoring`` (else at the end); a card pushed again with other
    tables keeps one Results section.
    """
    section = "\n".join(results_section(boards))
    start = card.find(f"\n{RESULTS_HEAD}\n")
    if start >= 0:
        end = card.find("\n## ", start + 1)
        end = len(card) if end < 0 else end + 1
        card = card[: start + 1] + card[end:]
    if not section:
        return card
    at = card.find("\n## Scoring\n")
    if at < 0:
        return card.rstrip("\n") + "\n\n" + section
    return card[: at + 1] + section + "\n" + card[at + 1 :]


def render_card(
    build: dict,
    stats: dict,
    manifest: dict,
    split_doc: dict | None,
    figures: list[str],
    results: list[dict] | None = None,
    splits: list[dict] | None = None,
) -> str:
    """The whole README.md: YAML header plus prose whose numbers all come from ``stats``.

    It renders what it is given (:func:`indomer.generation.finalize` computes it all; the
    ``results`` leaderboards come from ``indomer leaderboard``) and reads nothing from disk.
    """
    ov = stats["overall"]
    header = yaml.safe_dump(
        card_header(manifest, ov["segments"], build), sort_keys=False, allow_unicode=True
    )
    parts = [f"---\n{header}---\n", *_intro(build, stats)]
    parts.append(
        "```python\nfrom datasets import load_dataset\n\n"
        'ds = load_dataset("path/to/this/folder")  # or the Hub id it was pushed to\n'
        'ds["train"].features["emotion"].names  # ClassLabel names, in id order\n```\n'
    )
    parts += _columns_section(stats, build)
    parts += _labels_section(stats)
    parts += _summary_section(stats)
    parts += _cross_modal_section(stats)
    parts += _figures_section(figures)
    if build.get("sources"):
        parts += _sources_section(build)
    parts += _splits_section(build, split_doc)
    parts += _every_split(splits or [])
    parts += _annotation_section(build, stats)
    parts += _known_issues(build, stats)
    lic = licence(build)
    parts += ["## Licence\n", lic["text"] + "\n"]
    parts += results_section(results or [])
    parts.append("## Scoring\n")
    parts.append(
        "```\nindomer score preds.jsonl --refs . --split validation --task all --json scores.json\n"
        "```\n"
        '`preds.jsonl` holds one `{"id": ..., "emotion": ..., "sentiment": ...}` per line (label '
        "names, release strings or free model text). Macro-F1 (over the classes present in the references or the predictions, as scikit-learn's default) is the headline "
        "metric, with weighted F1, accuracy, unweighted accuracy and bootstrap 95% intervals "
        "resampled by speaker (source video when speaker ids are absent).\n"
    )
    parts.append("## Files\n")
    parts.append(
        "`data/` the Parquet shards; `splits/` split assignments with leakage reports; "
        "`build.json` provenance (inputs with sha256, versions, shard checksums); "
        "`croissant.json` Croissant 1.0 metadata; `rejected.jsonl` dropped rows and why"
        + ("; `figures/` the figures above" if figures else "")
        + ".\n"
    )
    parts.append("## Citation\n")
    parts.append(f"```bibtex\n{PAPER_CITATION}\n```\n")
    return "\n".join(parts)


def croissant_for(build: dict, stats: dict, manifest: dict) -> dict:
    """The Croissant document of this build, with the card's licence and description."""
    lic = licence(build)
    ov = stats["overall"]
    raw = not release_source(build)
    description = (
        f"Indonesian monologue video segments ({ov['segments']} segments, {ov['videos']} source "
        "videos) labelled with seven emotions and three-way sentiment, overall and per "
        "modality. "
        + (
            "Built by indomer from raw sources."
            if raw
            else "Built by indomer from the public IndoMER annotation release."
        )
    )
    return croissant_document(
        manifest,
        name=_title(build),
        description=description,
        license_=lic["url"] or lic["text"],
        url=None if raw else UPSTREAM_URL,
        cite=PAPER_CITATION,
    )


__all__ = [
    "TASKS",
    "card_header",
    "croissant_for",
    "licence",
    "render_card",
]

"""The dataset card (README.md) and the output half of build.json, recomputed from the shards.

``refresh(out)`` is called after every command that changes shards (build, split), so the
card can never quote a number that the files do not support.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import yaml

from indomer import __version__
from indomer.dataset import available_splits, hf_features, shard_paths
from indomer.errors import DataError
from indomer.fsutil import write_json_atomic, write_text_atomic
from indomer.labels import MODALITY_TASKS, TASKS, label_set
from indomer.split import group_column
from indomer.stats import compute_stats, load_light

PAPER_CITATION = """@article{omnimer2025,
  title   = {OmniMER: Indonesian Multimodal Emotion Recognition via Auxiliary-Enhanced LLM Adaptation},
  journal = {arXiv preprint arXiv:2512.19379},
  year    = {2025},
  url     = {https://arxiv.org/abs/2512.19379}
}"""


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shard_manifest(out: Path) -> dict:
    """Per-split shard files with sha256, bytes and rows, and one hash over them all."""
    splits = {}
    lines = []
    for split in available_splits(out):
        files = []
        for p in shard_paths(out, split):
            rel = p.relative_to(out).as_posix()
            digest = _file_sha256(p)
            rows = pq.ParquetFile(p).metadata.num_rows
            files.append({"path": rel, "sha256": digest, "bytes": p.stat().st_size, "rows": rows})
            lines.append(f"{rel} {digest}")
        splits[split] = {
            "files": files,
            "rows": sum(f["rows"] for f in files),
            "bytes": sum(f["bytes"] for f in files),
        }
    return {"splits": splits, "build_hash": hashlib.sha256("\n".join(lines).encode()).hexdigest()}


def current_split_file(out: Path, df: pd.DataFrame) -> str | None:
    """The ``splits/*.json`` whose assignment matches the shards now on disk (first by name)."""
    folder = Path(out) / "splits"
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            key = doc["group_key"]
            where = {str(g): s for s, groups in doc["assignment"].items() for g in groups}
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            continue
        if key not in df.columns:
            continue
        groups = (
            group_column(df)[1].astype("string")
            if key == "speaker_id"
            else df[key].astype("string")
        )
        if all(where.get(g) == s for g, s in zip(groups, df["split"])):
            return path.relative_to(out).as_posix()
    return None


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


def card_header(manifest: dict, n_total: int) -> dict:
    """The YAML metadata block the Hub reads: license, language, configs, dataset_info."""
    splits = manifest["splits"]
    size = (
        "n<1K"
        if n_total < 1_000
        else "1K<n<10K"
        if n_total < 10_000
        else "10K<n<100K"
        if n_total < 100_000
        else "100K<n<1M"
    )
    return {
        "license": "other",
        "license_name": "indomer-upstream-unspecified",
        "license_details": "The IndoMER authors released the annotations without a stated licence; "
        "ask them before redistributing. The indomer tooling is Apache-2.0.",
        "language": ["id"],
        "pretty_name": "IndoMER",
        "task_categories": ["text-classification", "audio-classification", "video-classification"],
        "tags": ["emotion-recognition", "sentiment-analysis", "multimodal", "indonesian"],
        "size_categories": [size],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits],
            }
        ],
        "dataset_info": {
            "features": [_yaml_feature(k, v) for k, v in hf_features().items()],
            "splits": [
                {"name": s, "num_bytes": info["bytes"], "num_examples": info["rows"]}
                for s, info in splits.items()
            ],
            "download_size": sum(i["bytes"] for i in splits.values()),
            "dataset_size": sum(i["bytes"] for i in splits.values()),
        },
    }


def _class_table(stats: dict, task: str) -> list[str]:
    splits = list(stats["splits"])
    ls = label_set(task)
    head = "| label | release string | " + " | ".join(splits) + " | all |"
    lines = [head, "|" + "---|" * (len(splits) + 3)]
    for name in ls.names:
        counts = [stats["splits"][s]["classes"][task][name] for s in splits]
        total = stats["overall"]["classes"][task][name]
        lines.append(
            f"| {name} | {ls.release[name]} | " + " | ".join(map(str, counts)) + f" | {total} |"
        )
    return lines


def render_card(out: Path, build: dict, stats: dict, manifest: dict, split_doc: dict | None) -> str:
    """The whole README.md: YAML header plus prose whose numbers all come from ``stats``."""
    ov = stats["overall"]
    header = yaml.safe_dump(
        card_header(manifest, ov["segments"]), sort_keys=False, allow_unicode=True
    )
    s = stats["splits"]
    parts = [f"---\n{header}---\n", "# IndoMER\n"]
    parts.append(
        "Indonesian monologue video clips labelled with seven emotions and three-way sentiment, "
        "overall and per modality (text, audio, video), one speaker per clip. Built with "
        f"indomer {build.get('indomer', __version__)} from "
        f"{build.get('source', {}).get('kind', 'the public IndoMER release')}.\n"
    )
    parts.append("## Summary\n")
    parts.append("| | " + " | ".join(["all", *s]) + " |")
    parts.append("|---|" + "---|" * (len(s) + 1))
    for label, key in (
        ("segments", "segments"),
        ("source videos", "videos"),
        ("speakers", "speakers"),
        ("topics", "topics"),
        ("words per segment (mean)", "words_per_segment"),
        ("vocabulary (case-folded word types)", "vocabulary"),
    ):
        vals = [ov.get(key), *(s[k].get(key) for k in s)]
        parts.append(
            f"| {label} | " + " | ".join("unknown" if v is None else str(v) for v in vals) + " |"
        )
    if "duration" in ov:
        d = ov["duration"]
        parts.append(f"| hours of audio | {d['total_hours']} |" + " |" * len(s))
        parts.append(f"| mean segment seconds | {d['mean_seconds']} |" + " |" * len(s))
    parts.append("")
    if ov["speakers"] is None:
        parts.append(
            "Speaker ids are not part of the public release, so the speaker count is unknown and "
            "splits are grouped by source video.\n"
        )
    parts.append("## Labels\n")
    parts.append("ClassLabel ids follow the order below (`schemas/labels.yaml` in indomer).\n")
    parts.append("### Emotion\n")
    parts += _class_table(stats, "emotion") + [""]
    for task in ("sentiment", *MODALITY_TASKS):
        parts.append(f"### {task.replace('_', ' ').capitalize()}\n")
        parts += _class_table(stats, task) + [""]
    parts.append("## Structure\n")
    parts.append(
        "One row per segment. Columns: `id`, `source_id`, `segment_index`, `topic`, `speaker_id`, "
        "`start`, `end`, `text` (transcript as spoken), `words` (aligned words), `emotion`, "
        "`sentiment`, `text_sentiment`, `audio_sentiment`, `video_sentiment` (ClassLabel), "
        "`emotion_intensity`, `annotations` (raw votes), `adjudicated`, `audio` (16 kHz mono wav), "
        "`video` (mp4), `face`. Columns the source does not provide are null.\n"
    )
    media = build.get("media")
    if media:
        parts.append(
            f"Media embedded: {media['audio']} audio and {media['video']} video clips; "
            f"{len(media['missing_audio'])} segments lack audio and {len(media['missing_video'])} lack video.\n"
        )
    else:
        parts.append("No media are embedded (the public release has none).\n")
    parts.append("## Topics\n")
    parts.append("| topic | segments |\n|---|---|")
    parts += [f"| {t} | {n} |" for t, n in stats["topics"].items()]
    parts.append("")
    parts.append("## Splits\n")
    if split_doc:
        rep = split_doc.get("report", split_doc)
        dev = rep.get("max_deviation", {}).get("emotion", {})
        parts.append(
            f"Split `{split_doc.get('name')}` groups rows by `{split_doc.get('group_key')}`; "
            f"no group appears in two splits (overlap: "
            f"{sum(len(v) for v in rep.get('overlap', {}).values())} groups). "
            f"Largest emotion class-proportion deviation from the whole: "
            f"{dev.get('value', float('nan')):.4f} ({dev.get('class')} in {dev.get('split')}). "
            f"Full report: `{build.get('split', {}).get('file')}`.\n"
        )
    else:
        parts.append("No split report matches these shards.\n")
    agreement = build.get("agreement")
    parts.append("## Annotation\n")
    if agreement:
        parts.append("Agreement among annotators (expert votes excluded):\n")
        parts.append(
            "| field | Fleiss' kappa | Krippendorff's alpha | alpha level | items | annotators |\n"
            "|---|---|---|---|---|---|"
        )
        for field, a in agreement.items():
            kappa, alpha = (
                "n/a" if a.get(k) is None else f"{a[k]:.3f}"
                for k in ("fleiss_kappa", "krippendorff_alpha")
            )
            parts.append(
                f"| {field} | {kappa} | {alpha} | {a.get('level')} | {a.get('items')} | {a.get('annotators')} |"
            )
        parts.append("")
    else:
        parts.append(
            "The public release carries final labels only; no raw votes, so no agreement figures "
            "can be computed from it.\n"
        )
    parts.append("## Known issues\n")
    repaired = build.get("repaired_texts", [])
    rejected = build.get("rejected", 0)
    violations = build.get("rule_violations", [])
    parts.append(
        f"- {len(repaired)} transcripts in `Annotations.csv` are GBK mojibake (e.g. `it¡¯s`); the clean "
        "JSON text was used. They are listed in `build.json` under `repaired_texts`."
    )
    parts.append(f"- Rows rejected by the build: {rejected} (see `rejected.jsonl`).")
    parts.append(f"- Rows breaking the emotion→sentiment rule: {len(violations)}.")
    parts.append(
        "- The upstream README quotes 1,946 segments, 208 videos and speaker counts that no released "
        f"file supports; this card counts {ov['segments']} segments in {ov['videos']} videos.\n"
    )
    parts.append("## Scoring\n")
    parts.append(
        "```\nindomer score preds.jsonl --refs . --split validation --task all --json scores.json\n```\n"
        '`preds.jsonl` holds one `{"id": ..., "emotion": ..., "sentiment": ...}` per line; macro-F1 '
        "over every class is the headline metric.\n"
    )
    parts.append("## Citation\n")
    parts.append(f"```bibtex\n{PAPER_CITATION}\n```\n")
    return "\n".join(parts)


def refresh(out: Path) -> dict:
    """Recompute build.json's outputs and rewrite README.md from the shards on disk."""
    out = Path(out)
    build_path = out / "build.json"
    build = json.loads(build_path.read_text(encoding="utf-8")) if build_path.is_file() else {}
    if not available_splits(out):
        raise DataError(f"{out}: no shards under data/; build the dataset first")
    manifest = shard_manifest(out)
    stats = compute_stats(out)
    df = load_light(out)
    split_file = current_split_file(out, df)
    split_doc = None
    if split_file:
        split_doc = json.loads((out / split_file).read_text(encoding="utf-8"))
        build["split"] = {"name": split_doc.get("name"), "file": split_file}
    else:
        build.pop("split", None)
    build["outputs"] = manifest
    build["rows"] = {k: v["rows"] for k, v in manifest["splits"].items()}
    write_json_atomic(build_path, build)
    write_text_atomic(out / "README.md", render_card(out, build, stats, manifest, split_doc))
    return build


__all__ = ["TASKS", "card_header", "refresh", "render_card", "shard_manifest"]

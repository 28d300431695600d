"""``croissant.json``: MLCommons Croissant 1.0 metadata for the Parquet shards of a build.

Written by :func:`indomer.card.refresh` next to the card, from the same shard manifest, so
tools that read Croissant (mlcroissant, search engines, TFDS, PyTorch loaders) see the same
files, checksums, columns and label names as ``datasets`` does. Label columns hold
ClassLabel ids; each one references an enumeration record set that maps id -> name (and the
Indonesian release string), the Croissant way to say "categorical".
"""

from __future__ import annotations

from pathlib import Path

from indomer import __version__
from indomer.dataset import SPLITS
from indomer.fsutil import write_json_atomic
from indomer.labels import TASKS, label_set

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
#: The JSON-LD context of Croissant 1.0, as the specification publishes it.
CONTEXT: dict = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
FILESET = "parquet-shards"
RECORDS = "segments"
PARQUET = "application/x-parquet"

#: Scalar columns: (Croissant data type, description). Labels and nested columns are below.
SCALARS: dict[str, tuple[str, str]] = {
    "id": ("sc:Text", "Segment id, e.g. clip_1_Cooking_1."),
    "source_id": ("sc:Text", "Id of the source video the segment was cut from."),
    "segment_index": ("sc:Integer", "Position of the segment in its source video, from 1."),
    "topic": ("sc:Text", "Normalised topic of the source video."),
    "speaker_id": ("sc:Text", "Global speaker id (null where unknown)."),
    "start": ("sc:Float", "Start in the source video, seconds (null where unknown)."),
    "end": ("sc:Float", "End in the source video, seconds (null where unknown)."),
    "text": ("sc:Text", "Transcript as spoken, not normalised."),
    "emotion_intensity": ("sc:Integer", "Emotion intensity 0-3 where annotated."),
    "adjudicated": ("sc:Boolean", "True when the final label came from the expert."),
}
#: Nested columns: their sub-fields and data types.
NESTED: dict[str, tuple[str, dict[str, str]]] = {
    "words": (
        "Aligned words; a word that could not be aligned has null times.",
        {"word": "sc:Text", "start": "sc:Float", "end": "sc:Float", "score": "sc:Float"},
    ),
    "annotations": (
        "Raw annotator votes where available.",
        {"annotator": "sc:Text", "field": "sc:Text", "value": "sc:Text"},
    ),
}
MEDIA: dict[str, tuple[str, str]] = {
    "audio": ("sc:AudioObject", "16 kHz mono WAV bytes of the segment (null where absent)."),
    "video": ("sc:VideoObject", "MP4 (H.264/AAC) bytes of the segment (null where absent)."),
}


def _src(column: str, json_path: str | None = None) -> dict:
    src: dict = {"fileSet": {"@id": FILESET}, "extract": {"column": column}}
    if json_path:
        src["transform"] = {"jsonPath": json_path}
    return src


def _enum_id(task: str) -> str:
    return "emotion_labels" if task == "emotion" else "sentiment_labels"


def _enumeration(base: str) -> dict:
    ls = label_set(base)
    rs = f"{base}_labels"
    return {
        "@type": "cr:RecordSet",
        "@id": rs,
        "name": rs,
        "description": f"The {base} label set: ClassLabel id, canonical name and the string "
        "the public IndoMER release uses.",
        "dataType": "sc:Enumeration",
        "key": {"@id": f"{rs}/id"},
        "field": [
            {"@type": "cr:Field", "@id": f"{rs}/id", "name": "id", "dataType": "sc:Integer"},
            {"@type": "cr:Field", "@id": f"{rs}/name", "name": "name", "dataType": "sc:Text"},
            {
                "@type": "cr:Field",
                "@id": f"{rs}/release",
                "name": "release",
                "dataType": "sc:Text",
            },
        ],
        "data": [
            {f"{rs}/id": i, f"{rs}/name": n, f"{rs}/release": ls.release[n]}
            for i, n in enumerate(ls.names)
        ],
    }


def _segment_fields(splits: list[str]) -> list[dict]:
    fields: list[dict] = [
        {
            "@type": "cr:Field",
            "@id": f"{RECORDS}/split",
            "name": "split",
            "description": "Split of the segment, from the shard file name.",
            "dataType": "sc:Text",
            "source": {
                "fileSet": {"@id": FILESET},
                "extract": {"fileProperty": "fullpath"},
                "transform": {
                    "regex": rf"^(?:.*/)?({'|'.join(splits)})(?:-\d{{5}}-of-\d{{5}}\.parquet)?$"
                },
            },
            "references": {"field": {"@id": "splits/name"}},
        }
    ]

    def scalar(name: str, dtype: str, desc: str) -> dict:
        return {
            "@type": "cr:Field",
            "@id": f"{RECORDS}/{name}",
            "name": name,
            "description": desc,
            "dataType": dtype,
            "source": _src(name),
        }

    for name in ("id", "source_id", "segment_index", "topic", "speaker_id", "start", "end", "text"):
        fields.append(scalar(name, *SCALARS[name]))
    for name, (desc, subs) in NESTED.items():
        fields.append(
            {
                "@type": "cr:Field",
                "@id": f"{RECORDS}/{name}",
                "name": name,
                "description": desc,
                "repeated": True,
                "subField": [
                    {
                        "@type": "cr:Field",
                        "@id": f"{RECORDS}/{name}/{sub}",
                        "name": sub,
                        "dataType": dtype,
                        "source": _src(name, f"[*].{sub}"),
                    }
                    for sub, dtype in subs.items()
                ],
            }
        )
    for task in TASKS:
        ls = label_set(task)
        names = ", ".join(f"{i} {n}" for i, n in enumerate(ls.names))
        field = scalar(task, "sc:Integer", f"ClassLabel id of {task.replace('_', ' ')}: {names}.")
        field["references"] = {"field": {"@id": f"{_enum_id(task)}/id"}}
        fields.append(field)
    for name in ("emotion_intensity", "adjudicated"):
        fields.append(scalar(name, *SCALARS[name]))
    for name, (dtype, desc) in MEDIA.items():
        f = scalar(name, dtype, desc)
        f["source"] = _src(name, "bytes")
        fields.append(f)
    face = [("frames", "sc:Integer", False), ("detected", "sc:Integer", False)]
    face.append(("box", "sc:Float", True))
    fields.append(
        {
            "@type": "cr:Field",
            "@id": f"{RECORDS}/face",
            "name": "face",
            "description": "Face-track summary: frames seen, frames with a face, mean box "
            "(null when there is no video).",
            "subField": [
                {
                    "@type": "cr:Field",
                    "@id": f"{RECORDS}/face/{sub}",
                    "name": sub,
                    "dataType": dtype,
                    **({"repeated": True} if repeated else {}),
                    "source": _src("face", sub),
                }
                for sub, dtype, repeated in face
            ],
        }
    )
    check = [
        ("n_speakers", "sc:Integer"),
        ("primary_share", "sc:Float"),
        ("overlap", "sc:Float"),
        ("flagged", "sc:Boolean"),
    ]
    fields.append(
        {
            "@type": "cr:Field",
            "@id": f"{RECORDS}/speaker_check",
            "name": "speaker_check",
            "description": "What the speaker check heard: voices with enough speech, the main "
            "one's share, the share spoken over, and whether the clip is flagged (null when "
            "not checked).",
            "subField": [
                {
                    "@type": "cr:Field",
                    "@id": f"{RECORDS}/speaker_check/{sub}",
                    "name": sub,
                    "dataType": dtype,
                    "source": _src("speaker_check", sub),
                }
                for sub, dtype in check
            ],
        }
    )
    return fields


def croissant_document(
    manifest: dict, *, name: str, description: str, license_: str, url: str | None, cite: str
) -> dict:
    """The Croissant JSON-LD for the shards listed in ``manifest`` (see card.shard_manifest)."""
    splits = [s for s in SPLITS if s in manifest["splits"]]
    distribution: list[dict] = []
    for s in splits:
        for f in manifest["splits"][s]["files"]:
            distribution.append(
                {
                    "@type": "cr:FileObject",
                    "@id": f["path"],
                    "name": f["path"],
                    "description": f"Parquet shard of the {s} split ({f['rows']} rows).",
                    "contentUrl": f["path"],
                    "contentSize": f"{f['bytes']} B",
                    "encodingFormat": PARQUET,
                    "sha256": f["sha256"],
                }
            )
    distribution.append(
        {
            "@type": "cr:FileSet",
            "@id": FILESET,
            "name": FILESET,
            "description": "Every Parquet shard (the file objects above, with their sha256).",
            "encodingFormat": PARQUET,
            "includes": "data/*.parquet",
        }
    )
    split_rs = {
        "@type": "cr:RecordSet",
        "@id": "splits",
        "name": "splits",
        "description": "The splits of this build.",
        "dataType": "cr:Split",
        "key": {"@id": "splits/name"},
        "field": [
            {"@type": "cr:Field", "@id": "splits/name", "name": "name", "dataType": "sc:Text"}
        ],
        "data": [{"splits/name": s} for s in splits],
    }
    doc = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": name,
        "description": description,
        "conformsTo": CONFORMS_TO,
        "citeAs": cite,
        "license": license_,
        "inLanguage": "id",
        "keywords": ["emotion recognition", "sentiment analysis", "multimodal", "Indonesian"],
        "version": __version__,
        "distribution": distribution,
        "recordSet": [
            split_rs,
            _enumeration("emotion"),
            _enumeration("sentiment"),
            {
                "@type": "cr:RecordSet",
                "@id": RECORDS,
                "name": RECORDS,
                "description": "One record per segment (one row of the Parquet shards).",
                "field": _segment_fields(splits),
            },
        ],
    }
    if url:
        doc["url"] = url
    return doc


def write_croissant(out: Path, doc: dict) -> Path:
    """Write ``croissant.json`` (sorted keys, so the same build gives the same bytes)."""
    path = Path(out) / "croissant.json"
    write_json_atomic(path, doc)
    return path


__all__ = ["CONFORMS_TO", "croissant_document", "write_croissant"]

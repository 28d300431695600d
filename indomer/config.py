"""The raw-mode build config (YAML): validated once, typed, recorded in build.json.

One layer validates it: pydantic v2, strict. The document's shape is :class:`Document`; the
``split:`` section, each stage's ``resources:`` and each stage section (``fetch:``,
``segment:``, ...) are checked against the field types (and ``Annotated`` bounds) of their
frozen dataclasses (:class:`SplitConfig`, :class:`Resources`, the stage's ``Settings``), so a
stage adds a setting by adding a field and nothing here changes; the dataclass's own
``__post_init__`` then checks what one field cannot say alone.
The Settings classes check no range of their own: a bound is an ``Annotated`` pydantic
``Field`` on the field, so it is checked here with the file, line and key, and published.
``schemas/build_config.schema.json`` is emitted from the same models, each stage section
typed by its Settings (:func:`json_schema`; a test holds the file to it), not a second
validator. Every problem is one line that names the
config file, the line and the key, so the user knows what to edit. Relative paths resolve
against the config file's folder, so a config and its tables can be moved together.

The config's input tables (sources, segments, transcripts) are read here too: they are
what the config declares, and their row problems become ``rejected.jsonl`` entries with
file:line instead of stopping the build.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from indomer.errors import DataError, UsageError, require_columns
from indomer.rows import SAFE_ID, Segment, Video

#: Config sections that hold one stage's settings (``voices:`` holds only ``resources:``: its
#: settings are the ``speakers:`` section's).
STAGE_SECTIONS: tuple[str, ...] = (
    "fetch", "probe", "segment", "cut", "align", "voices", "faces", "speakers"
)
#: What ``STAGE.resources`` may say (``indomer build --engine ray``; the local engine uses
#: ``--jobs``). None of it changes a byte of the output, so none of it is fingerprinted.
RESOURCE_KEYS: dict[str, str] = {
    "num_cpus": "CPUs each worker of the stage holds (number >= 0)",
    "num_gpus": "GPUs each worker holds (number >= 0; fractions share a GPU)",
    "memory": "bytes of memory each worker reserves (integer)",
    "concurrency": "workers of the stage at once (integer >= 1)",
    "batch_size": "items handed to a worker per call (integer >= 1)",
    "custom": "custom Ray resources each worker holds, e.g. {accelerator: 1}",
}
#: A URL is "scheme:" with a scheme of two or more characters (so ``C:\x`` stays a path).
URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):")
#: Topic spellings that name the same topic (the release writes both).
TOPIC_ALIASES = {"Opinions": "Opinion"}
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
#: The ``<Topic>`` of a segment id ``clip_<source>_<Topic>_<n>`` (as ``release.ID_RE`` and the
#: scorer parse it): letters only, so the id stays a safe file name and parses back.
TOPIC_RE = re.compile(r"^[A-Za-z]+\Z")
#: Most values a config's YAML may expand to, aliases included (a config holds dozens).
MAX_YAML_VALUES = 100_000


# --------------------------------------------------------------------------- the document


#: A number of a resource or a share of the data: at least 0.
NonNegative = Annotated[float, Field(ge=0)]
#: A split's share of the clips.
Ratio = Annotated[float, Field(gt=0, le=1)]


@dataclass(frozen=True)
class SplitConfig:
    """How the shards stage splits: speaker-disjoint (source video until speakers exist)."""

    ratios: Annotated[tuple[Ratio, ...], Field(min_length=2, max_length=3)] = (0.8, 0.1, 0.1)
    seed: Annotated[int, Field(ge=0)] = 0
    stratify: Literal["emotion", "sentiment", "none"] = "emotion"
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")] | None = None

    def __post_init__(self) -> None:
        total = sum(self.ratios)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"split.ratios sum to {total:g}, not 1; give train,validation[,test] fractions "
                "summing to 1, e.g. [0.8, 0.1, 0.1]"
            )


@dataclass(frozen=True)
class Resources:
    """What one per-item stage's workers hold on a Ray cluster (``STAGE.resources``)."""

    num_cpus: NonNegative | None = None
    num_gpus: NonNegative | None = None
    memory: Annotated[int, Field(ge=0)] | None = None
    concurrency: Annotated[int, Field(ge=1)] | None = None
    batch_size: Annotated[int, Field(ge=1)] = 1
    custom: tuple[tuple[Annotated[str, Field(min_length=1)], NonNegative], ...] = ()

    def ray_options(self) -> dict[str, Any]:
        """The options Ray's ``.options()`` takes for one task or actor of the stage."""
        opts: dict[str, Any] = {}
        if self.num_cpus is not None:
            opts["num_cpus"] = self.num_cpus
        if self.num_gpus is not None:
            opts["num_gpus"] = self.num_gpus
        if self.memory is not None:
            opts["memory"] = self.memory
        if self.custom:
            opts["resources"] = dict(self.custom)
        return opts


def parse_resources(section: str, obj: Any, where) -> Resources:
    """``STAGE.resources`` -> :class:`Resources`, one line naming the key on a problem."""
    key = f"{section}.resources"
    if obj is None:
        return Resources()
    if not isinstance(obj, Mapping):
        raise UsageError(f"{where(key)}: {key}: expected a mapping of {', '.join(RESOURCE_KEYS)}")
    values = dict(obj)
    custom = values.get("custom")
    if "custom" in values and not (
        isinstance(custom, Mapping) and all(isinstance(n, str) for n in custom)
    ):
        k = f"{key}.custom"
        raise UsageError(
            f"{where(k)}: {k}: expected a mapping of resource names to numbers >= 0, "
            "e.g. {accelerator: 1}"
        )
    if custom is not None:
        values["custom"] = tuple(sorted(custom.items()))
    try:
        fields = section_model(Resources).model_validate(_tuples(values))
    except ValidationError as exc:
        err = _first(exc)
        name = str(err["loc"][0])
        k = f"{key}.{name}"
        if err["type"] == "extra_forbidden":
            raise UsageError(
                f"{where(k)}: {k}: unknown resource key; expected one of "
                f"{', '.join(RESOURCE_KEYS)}"
            ) from None
        if name == "custom":
            raise UsageError(
                f"{where(k)}: {k}: expected a mapping of resource names to numbers >= 0, "
                "e.g. {accelerator: 1}"
            ) from None
        raise UsageError(f"{where(k)}: {k}: {obj[name]!r}; expected {RESOURCE_KEYS[name]}") from None
    return Resources(**{n: getattr(fields, n) for n in values})


@dataclass(frozen=True)
class BuildConfig:
    """A validated build config; paths are absolute, stage sections raw until a stage asks."""

    path: Path
    sources: Path
    annotations: tuple[Path, ...] = ()
    segments: Path | None = None
    transcripts: Path | None = None
    split: SplitConfig = SplitConfig()
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    document: Mapping[str, Any] = field(default_factory=dict)
    lines: Mapping[str, int] = field(default_factory=dict)
    resources: Mapping[str, Resources] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The folder relative paths resolve against."""
        return self.path.parent

    def where(self, key: str) -> str:
        """``config.yaml:LINE`` of a dotted key (the file alone when the key is absent)."""
        return locate(self.path, self.lines, key)

    def settings(self, section: str, cls: type | None) -> Any:
        """The stage's ``Settings`` built from its section; unknown keys are one-line errors."""
        obj = dict(self.sections.get(section) or {})
        if cls is None:
            if obj:
                key = min(obj)
                raise UsageError(
                    f"{self.where(f'{section}.{key}')}: {section}.{key}: the {section} stage "
                    "takes no settings; remove the key"
                )
            return None
        return make_settings(cls, obj, section, self.where)

    def sha256(self) -> str:
        """sha256 of the config file bytes (build.json records it)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- validation


#: A path in the config: relative to the config file's folder.
PathText = Annotated[str, Field(min_length=1)]
#: A stage section: the keys are the fields of the stage's Settings dataclass (empty or null:
#: the defaults), plus ``resources:`` for ``--engine ray``, which never changes the output.
StageSection = Annotated[
    dict[str, Any] | None,
    Field(
        description="Settings of one stage; the keys are the fields of the stage's Settings "
        "dataclass (empty or null: the defaults), plus resources: (num_cpus, num_gpus, memory, "
        "concurrency, batch_size, custom) for --engine ray, which never change the output."
    ),
]


#: Strict: a YAML ``1`` is no bool and ``"16k"`` no int; an unknown key is an error.
_STRICT = ConfigDict(strict=True, extra="forbid")


@cache
def section_model(cls: type) -> type[BaseModel]:
    """The strict pydantic model of a frozen dataclass's init fields (types, ``Annotated``
    bounds and defaults as the dataclass declares them): what a config section is checked
    against before the dataclass itself is built."""
    hints = _field_types(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=f.default_factory)
        else:
            default = ...
        fields[f.name] = (hints.get(f.name, Any), default)
    model = create_model(f"{cls.__name__}Section", __config__=_STRICT, **fields)
    model.__doc__ = cls.__doc__
    return model


class Document(BaseModel):
    """indomer raw-mode build config (indomer build CONFIG.yaml --out OUT)."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        title="indomer raw-mode build config (indomer build CONFIG.yaml --out OUT)",
    )

    sources: PathText = Field(
        description="CSV with columns source_id, url_or_path, topic, license[, sha256]."
    )
    segments: PathText | None = Field(
        None,
        description="Optional CSV with columns id, source_id, start, end[, text]; without it "
        "the segment stage finds natural pauses.",
    )
    transcripts: PathText | None = Field(
        None,
        description="Optional CSV with columns id, text (the manual transcript of each "
        "segment, as spoken).",
    )
    annotations: PathText | Annotated[tuple[PathText, ...], Field(min_length=1)] | None = Field(
        None,
        description="Optional annotator sheets: one path, or a list of CSV files and folders "
        "of them. Without them (or for clips they do not label) the build runs every per-clip "
        "stage and waits for labels (indomer annotate export).",
    )
    split: section_model(SplitConfig) | None = None  # type: ignore[valid-type]
    fetch: StageSection = None
    probe: StageSection = None
    segment: StageSection = None
    cut: StageSection = None
    align: StageSection = None
    voices: Annotated[
        dict[str, Any] | None,
        Field(
            description="Only resources: (engine ray); the voice settings are the speakers: "
            "section's."
        ),
    ] = None
    faces: StageSection = None
    speakers: StageSection = None


@cache
def _resources_model() -> type[BaseModel]:
    """``STAGE.resources`` as written in YAML (``custom`` a mapping; :func:`parse_resources`
    turns it into the dataclass's pairs): :class:`Resources`' own model otherwise."""
    model = create_model(
        "ResourcesSection",
        __base__=section_model(Resources),
        custom=(dict[Annotated[str, Field(min_length=1)], NonNegative],
                Field(default_factory=dict)),
    )
    model.__doc__ = "What the stage's workers hold with --engine ray; never changes the output."
    return model


def stage_section_model(section: str, cls: type | None) -> type[BaseModel]:
    """The model of one stage section: the fields of its Settings dataclass
    (:func:`section_model`: the model :func:`make_settings` validates with) plus
    ``resources:``; a stage without settings (``cls`` None) takes only ``resources:``."""
    base = section_model(cls) if cls is not None else BaseModel
    extra = {} if cls is not None else {"__config__": _STRICT}
    model = create_model(
        f"{section.title()}Section",
        __base__=base,
        resources=(_resources_model() | None, None),
        **extra,
    )
    model.__doc__ = (cls.__doc__ if cls is not None else None) or f"The {section}: section."
    return model


def json_schema(sections: Mapping[str, type | None]) -> dict:
    """The JSON Schema of the build config (what ``schemas/build_config.schema.json`` holds,
    for editors and other tools), emitted from :class:`Document` with each stage section
    typed by its Settings dataclass (``sections``: section -> class, None for a stage that
    takes only ``resources:``; the pipeline knows them, :func:`indomer.pipeline.config_schema`):
    every type and bound the config is checked against is in it."""
    typed = {
        name: (stage_section_model(name, cls) | None, None) for name, cls in sections.items()
    }
    model = create_model("Document", __base__=Document, **typed)
    model.__doc__ = Document.__doc__
    doc = model.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/indomer/indomer/schemas/build_config.schema.json",
        "description": "Relative paths resolve against the folder holding the config file. "
        "Each stage section (fetch, probe, segment, cut, ...) holds the fields of that "
        "stage's Settings dataclass, plus resources: for --engine ray.",
        **{k: v for k, v in doc.items() if k != "description"},
    }


def schema_text(sections: Mapping[str, type | None]) -> str:
    """``schemas/build_config.schema.json`` as written (:func:`json_schema`); regenerate the
    file with ``python -c "from indomer.pipeline import config_schema_text as t;
    print(t(), end='')" > schemas/build_config.schema.json``."""
    return json.dumps(json_schema(sections), indent=2, ensure_ascii=False) + "\n"


def _tuples(value: Any) -> Any:
    """YAML lists as tuples: strict validation takes a tuple for a tuple field (the frozen
    dataclasses hold tuples), and a list nowhere."""
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _first(exc: ValidationError) -> dict:
    """The shallowest, first-in-file problem (what the user sees first)."""
    return min(exc.errors(), key=lambda e: (len(e["loc"]), _dotted(e["loc"])))


#: How a strict type error names what was expected.
_TYPE_NAMES = {
    "int_type": "int",
    "bool_type": "bool",
    "float_type": "float",
    "string_type": "str",
    "tuple_type": "list",
    "dict_type": "mapping",
    "none_required": "null",
}


def _value_at(doc: Any, loc: tuple) -> Any:
    for part in loc:
        try:
            doc = doc[part]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def _message(err: dict, doc: Any, where, prefix: tuple = (), known: str = "") -> str:
    """One line for a validation error, naming the key (and for unknown keys, the known ones)."""
    loc = prefix + tuple(err["loc"])
    key = _dotted(loc)
    kind = err["type"]
    value = _value_at(doc, tuple(err["loc"]))
    if kind == "extra_forbidden":
        return f"{where(key)}: {key}: unknown key; expected one of {known}"
    if kind == "missing":
        parent = _dotted(loc[:-1])
        return f"{where(parent or key)}: {key}: missing; add it (see schemas/build_config.schema.json)"
    if kind == "value_error":
        reason = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        section = _dotted(prefix) or key
        return f"{where(section)}: {section}: {reason}"
    if kind in _TYPE_NAMES:
        return f"{where(key)}: {key}: {value!r} is not a {_TYPE_NAMES[kind]}; fix the value"
    ctx = err.get("ctx") or {}
    said = {
        "greater_than_equal": lambda: f"is less than the minimum of {ctx['ge']}",
        "greater_than": lambda: f"is less than or equal to the minimum of {ctx['gt']}",
        "less_than_equal": lambda: f"is greater than the maximum of {ctx['le']}",
        "less_than": lambda: f"is greater than or equal to the maximum of {ctx['lt']}",
        "too_short": lambda: f"is too short (at least {ctx['min_length']})",
        "too_long": lambda: f"is too long (at most {ctx['max_length']})",
        "string_too_short": lambda: f"is too short (at least {ctx['min_length']} character(s))",
        "string_pattern_mismatch": lambda: f"does not match {ctx['pattern']!r}",
        "literal_error": lambda: f"is not one of {ctx['expected']}",
    }.get(kind)
    what = said() if said else err["msg"][:1].lower() + err["msg"][1:]
    return f"{where(key)}: {key}: {value!r} {what}; fix the value"


def locate(path: Path, lines: Mapping[str, int], key: str) -> str:
    """``path:LINE`` of a dotted key, else of its nearest present parent, else ``path``."""
    line = lines.get(key)
    while line is None and "." in key:
        key = key.rsplit(".", 1)[0]
        line = lines.get(key)
    return f"{path}:{line}" if line else str(path)


def _key_lines(node: yaml.Node, prefix: str, out: dict[str, int]) -> None:
    """Map each dotted key path to its 1-based line, for errors that point at the line."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            name = f"{prefix}.{k.value}" if prefix else str(k.value)
            out[name] = k.start_mark.line + 1
            _key_lines(v, name, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            name = f"{prefix}[{i}]"
            out[name] = v.start_mark.line + 1
            _key_lines(v, name, out)


def _dotted(path: typing.Iterable) -> str:
    text = ""
    for p in path:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text


def _read_yaml(path: Path, text: str) -> tuple[Any, dict[str, int]]:
    """(document, line of each dotted key) of a YAML text, parsed once, refusing what cannot
    be a config: a recursive alias, aliases that expand past :data:`MAX_YAML_VALUES` values,
    nesting too deep for the parser."""
    loader = yaml.SafeLoader(text)
    lines: dict[str, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        _check_expansion(path, node)
        _key_lines(node, "", lines)  # before construction, which rewrites merge keys (<<)
        doc = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{where}: not valid YAML ({problem}); fix the syntax") from None
    except RecursionError:
        raise UsageError(
            f"{path}: the YAML is nested too deeply to be a build config; flatten it"
        ) from None
    finally:
        loader.dispose()
    return doc, lines


def _check_expansion(path: Path, root: yaml.Node) -> None:
    """Walk the node graph as the loaded document would expand it (aliases share a node):
    a node met again below itself is a recursive alias, and the walk stops after
    :data:`MAX_YAML_VALUES` values, so an alias bomb costs no more than that."""
    seen = 0
    on_path: set[int] = set()
    # (node, dotted key, line of the key, leaving?) ; leaving marks the end of a subtree
    stack: list[tuple[yaml.Node, str, int, bool]] = [(root, "", root.start_mark.line + 1, False)]
    while stack:
        node, key, line, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        name = key or "(top)"
        if id(node) in on_path:
            raise UsageError(
                f"{path}:{line}: {name}: a YAML alias refers to a value that contains it "
                "(recursive); write the value out instead of the alias"
            )
        seen += 1
        if seen > MAX_YAML_VALUES:
            top = re.split(r"[.\[]", key, maxsplit=1)[0] or "(top)"
            raise UsageError(
                f"{path}:{line}: {top}: YAML aliases expand to more than {MAX_YAML_VALUES} "
                "values; a build config is small, write the values out instead of nesting aliases"
            )
        if isinstance(node, yaml.ScalarNode):
            continue
        on_path.add(id(node))
        stack.append((node, key, line, True))
        children: list[tuple[yaml.Node, str, int]] = []
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                label = k.value if isinstance(k, yaml.ScalarNode) else "?"
                child = f"{key}.{label}" if key else str(label)
                children += [(k, child, k.start_mark.line + 1), (v, child, k.start_mark.line + 1)]
        elif isinstance(node, yaml.SequenceNode):
            children = [(v, f"{key}[{i}]", line) for i, v in enumerate(node.value)]
        stack.extend((n, k, ln, False) for n, k, ln in reversed(children))


def _check_finite(doc: Any, where) -> None:
    """Refuse ``.nan`` / ``.inf`` anywhere: no setting means "not a number", and NaN passes
    every ``<`` / ``>`` range check (``split.ratios: [.nan, ...]`` would sum to NaN)."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        value, key = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            spelled = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
            raise UsageError(
                f"{where(key)}: {key or '(top)'}: {spelled} is not a finite number; "
                "give a number such as 0.5, or remove the key for the default"
            )
        if isinstance(value, dict):
            stack.extend((v, f"{key}.{k}" if key else str(k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{key}[{i}]") for i, v in enumerate(value))


def check_topics(path: Path) -> None:
    """Refuse a sources.csv whose topic can never be part of a segment id.

    Segment ids are ``clip_<source>_<Topic>_<n>`` and the release, the scorer and the
    bootstrap parse them back with ``<Topic>`` = letters only (:data:`TOPIC_RE`); a topic
    such as ``Health & Food`` or ``Q_A`` would give ids that are unsafe as file names or
    that parse to the wrong source, so the whole config is refused before any work.
    Blank cells and malformed rows are left to :func:`read_sources`, which rejects the row.
    """
    for line, cells in read_table(path, ("source_id", "url_or_path", "topic", "license")):
        topic = (cells or {}).get("topic")
        if topic and not TOPIC_RE.match(TOPIC_ALIASES.get(topic, topic)):
            hint = re.sub(r"[^A-Za-z]", "", topic) or "Cooking"
            raise DataError(
                f"{path}:{line}: topic {topic!r} cannot be part of a segment id "
                f"clip_<source>_<Topic>_<n>; use letters only (A-Z, a-z), e.g. {hint}"
            )


def load_config(path: str | Path) -> BuildConfig:
    """Read and validate a build config; a problem is one :class:`UsageError` line (exit 2),
    or a :class:`DataError` (exit 1) for a sources.csv topic that cannot make segment ids."""
    path = Path(path).absolute()
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the text
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file; give the build config YAML") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the config ({exc}); save it as UTF-8") from exc
    doc, lines = _read_yaml(path, text)
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: expected a mapping of keys (sources:, annotations:, ...)")

    def cfg_where(key: str) -> str:
        return locate(path, lines, key)

    _check_finite(doc, cfg_where)

    try:
        Document.model_validate(_tuples(doc))
    except ValidationError as exc:
        err = _first(exc)
        if err["loc"] and err["loc"][0] == "annotations" and err["type"] != "extra_forbidden":
            raise UsageError(
                f"{cfg_where('annotations')}: annotations: expected a path or a list of paths "
                "(sheet CSV files or folders)"
            ) from None
        fields = Document.model_fields if len(err["loc"]) < 2 else SplitConfig.__dataclass_fields__
        raise UsageError(_message(err, doc, cfg_where, known=", ".join(sorted(fields)))) from None

    def resolve(key: str, value: str, kind: str) -> Path:
        p = Path(value).expanduser()
        p = p if p.is_absolute() else path.parent / p
        ok = p.is_dir() if kind == "dir" else p.is_file() if kind == "file" else p.exists()
        if not ok:
            what = {"file": "file", "dir": "folder", "any": "file or folder"}[kind]
            raise UsageError(f"{cfg_where(key)}: {key}: no such {what} {p}; fix the path")
        return p

    # No sheets yet is a build before labels: every per-clip stage runs, the merge waits.
    one_sheet = isinstance(doc.get("annotations"), str)
    sheets = [doc["annotations"]] if one_sheet else list(doc.get("annotations") or [])
    split = dict(doc.get("split") or {})
    if "ratios" in split:
        split["ratios"] = tuple(float(r) for r in split["ratios"])
    cfg = BuildConfig(
        path=path,
        sources=resolve("sources", doc["sources"], "file"),
        segments=resolve("segments", doc["segments"], "file") if doc.get("segments") else None,
        transcripts=(
            resolve("transcripts", doc["transcripts"], "file") if doc.get("transcripts") else None
        ),
        annotations=tuple(
            resolve("annotations" if one_sheet else f"annotations[{i}]", s, "any")
            for i, s in enumerate(sheets)
        ),
        split=_split_config(split, cfg_where),
        sections={
            k: {n: v for n, v in dict(doc.get(k) or {}).items() if n != "resources"}
            for k in STAGE_SECTIONS
            if k in doc
        },
        document=doc,
        lines=lines,
        resources={
            k: parse_resources(k, doc[k]["resources"], cfg_where)
            for k in STAGE_SECTIONS
            if isinstance(doc.get(k), Mapping) and "resources" in doc[k]
        },
    )
    check_topics(cfg.sources)  # after the config's own problems (exit 2), the table's (exit 1)
    return cfg


def _split_config(split: dict, where) -> SplitConfig:
    """The validated ``split:`` section (its types were checked with the document)."""
    try:
        return SplitConfig(**split)
    except ValueError as exc:
        raise UsageError(f"{where('split.ratios')}: {exc}") from None


# --------------------------------------------------------------------------- stage settings


def _field_types(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except (NameError, TypeError):
        return {}


def make_settings(
    cls: type, obj: Mapping[str, Any], section: str, where=lambda key: "config"
) -> Any:
    """``cls(**obj)`` for a frozen Settings dataclass, checked by its :func:`section_model`
    first, with one-line errors naming the key."""
    try:
        fields = section_model(cls).model_validate(_tuples(dict(obj)))
    except ValidationError as exc:
        err = _first(exc)
        if err["type"] == "extra_forbidden":
            key = f"{section}.{err['loc'][0]}"
            known = ", ".join(sorted(f.name for f in dataclasses.fields(cls) if f.init))
            raise UsageError(
                f"{where(key)}: {key}: unknown setting; the {section} stage knows {known or '(none)'}"
            ) from None
        raise UsageError(_message(err, obj, where, prefix=(section,))) from None
    try:
        return cls(**{name: getattr(fields, name) for name in obj})
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where(section)}: {section}: {exc}") from None


def fingerprint_settings(settings: Any) -> dict:
    """The settings that change a stage's output (fields with ``metadata={"fingerprint": False}``
    such as retries or timeouts are left out, so tuning them does not redo work)."""
    if settings is None:
        return {}
    if not dataclasses.is_dataclass(settings):
        return {"value": repr(settings)}
    out = {}
    for f in dataclasses.fields(settings):
        if f.metadata.get("fingerprint", True):
            value = getattr(settings, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


# --------------------------------------------------------------------------- input tables


def reject(stage: str, row_id: str | None, reason: str, fix: str, where: str | None = None) -> dict:
    """A ``rejected.jsonl`` entry (the same keys for every stage)."""
    entry = {"stage": stage, "id": row_id, "reason": reason, "fix": fix}
    if where:
        entry["where"] = where
    return entry


def read_table(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> list:
    """(line, {column: stripped text or None}) per non-blank row of a UTF-8 CSV.

    A file that cannot be a table (not UTF-8, missing columns) is a :class:`DataError`.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}); check the path") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 (byte {exc.start}); save it as 'CSV UTF-8'") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        require_columns(path, header, required, ",".join(required)
                        + (f"[,{','.join(optional)}]" if optional else ""))
        rows = []
        prev = reader.line_num
        for cells in reader:
            line = prev + 1
            prev = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                rows.append((line, None))
                continue
            rows.append((line, {h: (c.strip() or None) for h, c in zip(header, cells)}))
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: unreadable CSV ({exc}); re-save it") from exc
    return rows


def _table_rows(path: Path, required: tuple[str, ...], optional: tuple[str, ...], stage: str,
                rejected: list[dict]) -> Iterator[tuple[int, str, dict[str, str]]]:
    """``(line, file:line, cells)`` of each well-formed row of an input table; a row with the
    wrong number of cells goes to ``rejected`` (for ``stage``) instead."""
    for line, cells in read_table(path, required, optional):
        where = f"{path.name}:{line}"
        if cells is None:
            rejected.append(reject(stage, None, "wrong number of cells",
                                   "quote cells holding a comma and keep one cell per column",
                                   where))
        else:
            yield line, where, cells


def read_sources(path: Path) -> tuple[list[Video], list[dict]]:
    """sources.csv -> Video rows (url or resolved local path) and rejected rows.

    Ids and URL schemes are checked again by the fetch stage (its own contract); here a row
    is refused only when it cannot become a Video at all (blank cells, duplicate id).
    """
    videos: dict[str, Video] = {}
    first: dict[str, int] = {}
    rejected: list[dict] = []
    for line, where, cells in _table_rows(path, ("source_id", "url_or_path", "topic", "license"),
                                          ("sha256",), "fetch", rejected):
        sid = cells["source_id"]
        blank = [c for c in ("source_id", "url_or_path", "topic") if not cells[c]]
        if blank:
            rejected.append(
                reject("fetch", sid, f"blank {', '.join(blank)}", "fill in the cells", where)
            )
            continue
        if sid in first:
            rejected.append(
                reject(
                    "fetch",
                    sid,
                    f"duplicate source_id (first at line {first[sid]})",
                    "give every source video its own id",
                    where,
                )
            )
            continue
        sha = (cells.get("sha256") or "").lower() or None
        if sha is not None and not _SHA_RE.match(sha):
            rejected.append(
                reject(
                    "fetch",
                    sid,
                    f"sha256 {cells['sha256']!r} is not 64 hex digits",
                    "copy the output of 'sha256sum FILE' or leave the cell empty",
                    where,
                )
            )
            continue
        first[sid] = line
        target = cells["url_or_path"]
        if URL_RE.match(target):
            url, local = target, None
        else:
            p = Path(target).expanduser()
            url, local = None, str(p if p.is_absolute() else (path.parent / p).absolute())
        topic = TOPIC_ALIASES.get(cells["topic"], cells["topic"])
        videos[sid] = Video(
            source_id=sid, topic=topic, url=url, path=local, license=cells["license"], sha256=sha
        )
    return [videos[k] for k in sorted(videos)], rejected


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def read_segments(path: Path, topics: Mapping[str, str]) -> tuple[dict[str, list], list[dict]]:
    """segments.csv -> {source_id: [Segment, ...] in time order} and rejected rows.

    ``topics`` maps each known source id to its topic; ``segment_index`` is the position by
    start time within the source (from 1), as in the release's ``clip_<src>_<Topic>_<n>``.
    """
    rejected: list[dict] = []
    seen: dict[str, int] = {}
    by_source: dict[str, list[tuple[float, float, str, str | None]]] = {}
    for line, where, cells in _table_rows(path, ("id", "source_id", "start", "end"), ("text",),
                                          "segment", rejected):
        sid, src = cells["id"], cells["source_id"]
        start, end = _number(cells["start"]), _number(cells["end"])
        problem = None
        if not sid or not SAFE_ID.fullmatch(sid):
            problem = (f"unsafe segment id {sid!r}", "use letters, digits, '_' or '-'")
        elif sid in seen:
            problem = (f"duplicate id (first at line {seen[sid]})", "give each segment its own id")
        elif src not in topics:
            problem = (
                f"source_id {src!r} is not in the sources table (or was rejected there)",
                "fix the source_id or add the source",
            )
        elif start is None or end is None or not 0 <= start < end:
            problem = (
                f"start/end {cells['start']!r}/{cells['end']!r}: not seconds, 0 <= start < end",
                "write times in seconds, e.g. 12.5",
            )
        if problem:
            rejected.append(reject("segment", sid, problem[0], problem[1], where))
            continue
        seen[sid] = line
        by_source.setdefault(src, []).append((start, end, sid, cells.get("text")))
    out: dict[str, list] = {}
    for src in sorted(by_source):
        ordered = sorted(by_source[src])
        out[src] = [
            Segment(
                id=sid,
                source_id=src,
                segment_index=i,
                topic=topics[src],
                start=start,
                end=end,
                text=text,
            )
            for i, (start, end, sid, text) in enumerate(ordered, start=1)
        ]
    return out, rejected


def read_transcripts(path: Path) -> tuple[dict[str, str], list[dict]]:
    """transcripts.csv (id, text) -> {segment id: text as spoken} and rejected rows."""
    texts: dict[str, str] = {}
    rejected: list[dict] = []
    for _, where, cells in _table_rows(path, ("id", "text"), (), "merge", rejected):
        if not cells["id"] or not cells["text"]:
            rejected.append(
                reject("merge", cells["id"], "blank id or text", "fill both cells", where)
            )
        elif cells["id"] in texts:
            rejected.append(
                reject("merge", cells["id"], "duplicate transcript", "keep one row per id", where)
            )
        else:
            texts[cells["id"]] = cells["text"]
    return texts, rejected


__all__ = [
    "STAGE_SECTIONS",
    "TOPIC_RE",
    "BuildConfig",
    "SplitConfig",
    "check_topics",
    "fingerprint_settings",
    "load_config",
    "make_settings",
    "read_segments",
    "read_sources",
    "read_transcripts",
]

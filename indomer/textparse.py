"""Turn a prediction value (a label name, an alias or free model text) into a canonical label.

Models answer in sentences ("The speaker sounds happy.", "Emosi: sedih"), so the scorer reads
label mentions out of the text, in English and Indonesian, using the aliases of
``schemas/labels.yaml`` as the vocabulary. The rule is conservative, because a lenient parser
inflates scores: a text is read as a label only when, after dropping negated mentions
("not happy", "tidak senang"), exactly one label is named. Anything else (no label, two
different labels, only negated labels) is invalid and scored as wrong. Nothing is inferred
across tasks: "happy" is an emotion, not a sentiment answer.
"""

from __future__ import annotations

import re
from functools import cache

from indomer.labels import fold, label_set

#: Words that negate a label mentioned shortly after them (English and Indonesian, incl. slang).
NEGATORS: frozenset[str] = frozenset(
    # English
    ["not", "no", "never", "without", "neither", "nor", "hardly", "barely", "cannot", "non"]
    + ["lack", "lacks", "lacking"]
    # Indonesian, with colloquial forms
    + ["tidak", "tak", "bukan", "belum", "tanpa", "jangan", "bukanlah", "tidaklah"]
    + ["nggak", "ngga", "gak", "ga", "enggak", "engga", "kagak", "ndak"]
)
#: Words that end a negation's reach ("not happy but sad", "bukan senang melainkan sedih").
BOUNDARIES: frozenset[str] = frozenset(
    ["but", "rather", "instead", "however", "although", "though", "yet", "so", "and"]
    + ["tapi", "tetapi", "melainkan", "namun", "justru", "malah", "sedangkan", "dan", "sehingga"]
)
#: A mention joined to a negated one by only one of these is negated too ("not happy or sad").
LIST_JOINERS: frozenset[str] = frozenset({"or", "nor", "and", "atau", "maupun", "dan", ",", "/"})
#: How many words before a mention a negator may stand ("not at all happy").
NEGATION_WINDOW = 3
#: Phrases whose words are aliases but which do not name that label ("luar biasa" means
#: "extraordinary", not "biasa" = neutral). They are removed before matching.
NOT_LABELS: tuple[str, ...] = ("luar biasa",)

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.,;:!?()\[\]\"/|\n-]")
_SUFFIXES: tuple[str, ...] = ("nya", "lah", "kah", "pun")


@cache
def _vocabulary(task: str) -> tuple[dict[tuple[str, ...], str], int]:
    """Alias word tuples -> canonical name, and the longest alias length in words."""
    vocab = {tuple(alias.split()): name for alias, name in label_set(task).aliases.items()}
    return vocab, max(len(k) for k in vocab)


def _tokens(text: str) -> list[str]:
    folded = fold(text.replace("\u2019", "'").replace("`", "'"))
    for phrase in NOT_LABELS:
        folded = re.sub(rf"\b{re.escape(phrase)}\b", " , ", folded)
    return _TOKEN_RE.findall(folded)


def _is_negator(token: str) -> bool:
    return token in NEGATORS or token.endswith("n't")


def mentions(text: str, task: str) -> list[tuple[str, bool]]:
    """Every label mention in ``text`` as ``(canonical name, negated)``, in reading order."""
    vocab, longest = _vocabulary(task)
    tokens = _tokens(text)
    found: list[tuple[str, bool]] = []
    i = 0
    last_end = 0
    while i < len(tokens):
        hit = None
        for size in range(min(longest, len(tokens) - i), 0, -1):
            words = tuple(tokens[i : i + size])
            name = vocab.get(words)
            if name is None and size == 1:
                name = _strip_suffix(words[0], vocab)
            if name is not None:
                hit = (name, size)
                break
        if hit is None:
            i += 1
            continue
        name, size = hit
        gap = tokens[last_end:i]
        negated = bool(found) and found[-1][1] and len(gap) == 1 and gap[0] in LIST_JOINERS
        for j in range(i - 1, max(last_end, i - NEGATION_WINDOW) - 1, -1):
            tok = tokens[j]
            if not tok[0].isalnum() or tok in BOUNDARIES:
                break
            if negated or _is_negator(tok):
                negated = True
                break
        found.append((name, negated))
        i += size
        last_end = i
    return found


def _strip_suffix(word: str, vocab: dict[tuple[str, ...], str]) -> str | None:
    """Indonesian enclitics: "sedihnya", "marahlah" name the same label as their stem."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            name = vocab.get((word[: -len(suffix)],))
            if name is not None:
                return name
    return None


def parse_label(value: object, task: str) -> str | None:
    """The canonical label ``value`` names for ``task``, or None when it is invalid.

    A label name or alias (any case or accents) is taken as is; free text is read with
    :func:`mentions` and must name exactly one label, not negated. Non-strings are invalid.
    """
    if not isinstance(value, str):
        return None
    ls = label_set(task)
    direct = ls.canonical(value)
    if direct is not None:
        return direct
    named = {name for name, negated in mentions(value, task) if not negated}
    return named.pop() if len(named) == 1 else None

"""Indonesian text normalisation for the aligners, with a map back to the transcript's tokens.

A forced aligner can only place what it can hear: ``Rp5.000`` is spoken *lima ribu rupiah*,
``50%`` *lima puluh persen*, ``dll.`` *dan lain lain*. :func:`normalize` turns a transcript
into such spoken words (lowercase ``a-z`` and inner apostrophes, numbers spelled out with
num2words' Indonesian, ``lang="id"``) and remembers which whitespace tokens of the transcript
each word came from, so the aligned times can be put back on the transcript's own tokens
(:func:`token_times`): the ``words`` column shows what the transcriber wrote, never the
normalised form. :func:`match_words` aligns two word sequences (a transcript and an ASR
output) for the Whisper word-timing method. Pure Python: no torch, no models.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from indomer.errors import MissingExtraError

# --------------------------------------------------------------------------- tables

#: Abbreviations spelled out (keys lowercase, without the final period). Only forms that are
#: not also everyday words: ``no`` and ``dr`` need their period (``No. 5``, ``dr. Budi``).
ABBREVIATIONS: dict[str, str] = {
    "dll": "dan lain lain",
    "dsb": "dan sebagainya",
    "dst": "dan seterusnya",
    "dkk": "dan kawan kawan",
    "tsb": "tersebut",
    "ybs": "yang bersangkutan",
    "yth": "yang terhormat",
    "bpk": "bapak",
    "sdr": "saudara",
    "sdri": "saudari",
    "jl": "jalan",
    "jln": "jalan",
    "tgl": "tanggal",
    "hlm": "halaman",
    "yg": "yang",
    "dgn": "dengan",
    "utk": "untuk",
    "tdk": "tidak",
    "krn": "karena",
    "spt": "seperti",
    "sbg": "sebagai",
    "s.d": "sampai dengan",
    "s/d": "sampai dengan",
    "a.n": "atas nama",
    "prof": "profesor",
    "km": "kilometer",
    "kg": "kilogram",
    "cm": "sentimeter",
    "vs": "versus",
}
#: Abbreviations that count only with their period (``dr.`` but not ``dr``).
DOTTED_ABBREVIATIONS: dict[str, str] = {
    "dr": "dokter",
    "drg": "dokter gigi",
    "ir": "insinyur",
    "bp": "bapak",
    "h": "haji",
    "hj": "hajah",
    "rp": "rupiah",
}
#: Currency signs and codes written before the amount; spoken after it (*lima ribu rupiah*).
CURRENCIES: dict[str, str] = {
    "rp": "rupiah",
    "idr": "rupiah",
    "us$": "dolar amerika",
    "usd": "dolar amerika",
    "$": "dolar",
    "€": "euro",
    "eur": "euro",
    "£": "pound",
    "¥": "yen",
    "sgd": "dolar singapura",
}
#: Scale words after an amount (``Rp5 juta``, ``5rb``); the currency is spoken after them.
SCALES: dict[str, str] = {
    "ribu": "ribu", "rb": "ribu", "k": "ribu",
    "juta": "juta", "jt": "juta",
    "miliar": "miliar", "milyar": "miliar", "m": "miliar",
    "triliun": "triliun", "t": "triliun",
}
#: Symbols inside or between tokens, as spoken.
SYMBOLS: dict[str, str] = {
    "&": "dan",
    "+": "plus",
    "=": "sama dengan",
    "%": "persen",
    "‰": "permil",
    "°": "derajat",
    "@": "et",
    "$": "dolar",
    "€": "euro",
    "£": "pound",
    "¥": "yen",
}
#: Indonesian letter names, for acronyms read letter by letter (``KPK``: *ka pe ka*).
LETTERS: dict[str, str] = {
    "a": "a", "b": "be", "c": "ce", "d": "de", "e": "e", "f": "ef", "g": "ge", "h": "ha",
    "i": "i", "j": "je", "k": "ka", "l": "el", "m": "em", "n": "en", "o": "o", "p": "pe",
    "q": "ki", "r": "er", "s": "es", "t": "te", "u": "u", "v": "ve", "w": "we", "x": "eks",
    "y": "ye", "z": "zet",
}
DIGITS = ("nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan")
#: Numbers at or above this are read digit by digit (phone and account numbers).
MAX_CARDINAL = 10**15

_OPENERS = "\"'“”‘’«»([{<"
_CLOSERS = "\"'“”‘’«»)]}>.,!?;:…"
_DASHES = {"-", "–", "—", "--"}
_NUM = r"\d+(?:[.,]\d+)*"
_CURRENCY_RE = re.compile(
    r"^(rp\.?|idr|us\$|usd|\$|€|eur|£|¥|sgd)(" + _NUM + r")?([a-z]+)?$"
)
_ORDINAL_RE = re.compile(r"^ke-?(\d+)$")
_TIME_RE = re.compile(r"^([01]?\d|2[0-4])[.:]([0-5]\d)$")
_RANGE_RE = re.compile(r"^(" + _NUM + r")[-–](" + _NUM + r")$")
_FRACTION_RE = re.compile(r"^(\d+)/(\d+)$")
_REDUP_RE = re.compile(r"^([a-z]{3,})2$")


# --------------------------------------------------------------------------- numbers


def _num2words() -> Callable[..., str]:
    try:
        from num2words import num2words
    except ImportError:
        raise MissingExtraError("num2words", "align") from None
    return num2words


def _digits(text: str) -> list[str]:
    return [DIGITS[int(ch)] for ch in text if ch.isdigit()]


def cardinal(n: int) -> list[str]:
    """``n`` in Indonesian words (``2024`` -> dua ribu dua puluh empat)."""
    if n < 0:
        return ["minus", *cardinal(-n)]
    if n >= MAX_CARDINAL:
        return _digits(str(n))
    return _num2words()(n, lang="id").replace("-", " ").split()


def number_words(text: str) -> list[str] | None:
    """Spoken words for a written number, or None when ``text`` is not one.

    Indonesian writes thousands with dots and decimals with a comma (``1.250.000,50``);
    English forms from code-switching are read too: several comma groups of three digits
    are thousands (``1,000,000``) and a dot before other than three digits is a decimal
    point (``3.14``). Decimals are read digit by digit after *koma*; a leading zero
    (``007``, ``0812``) makes the whole number digit by digit, as it is read aloud.
    """
    text = text.strip()
    sign: list[str] = []
    if text[:1] in "+-−" and len(text) > 1:
        sign = ["plus"] if text[0] == "+" else ["minus"]
        text = text[1:]
    if not text or not text[0].isdigit() or not text[-1].isdigit():
        return None
    if re.fullmatch(r"\d+", text):
        if len(text) > 1 and text[0] == "0":
            return sign + _digits(text)
        return sign + cardinal(int(text))
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?", text):  # 1.250.000 / 1.250,5
        whole, _, frac = text.partition(",")
        integer = int(whole.replace(".", ""))
    elif re.fullmatch(r"\d{1,3}(?:,\d{3}){2,}(?:\.\d+)?", text):  # 1,000,000(.5)
        whole, _, frac = text.partition(".")
        integer = int(whole.replace(",", ""))
    elif re.fullmatch(r"\d+[.,]\d+", text):  # 3,5 (Indonesian) or 3.14 (English)
        whole, frac = re.split(r"[.,]", text)
        integer = int(whole)
    else:
        return None
    words = sign + cardinal(integer)
    if frac:
        words += ["koma", *_digits(frac)]
    return words


# --------------------------------------------------------------------------- tokens


def _fold(text: str) -> str:
    """Accents removed (``café`` -> ``cafe``), typographic apostrophes made plain; case kept."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _strip(token: str) -> str:
    """``token`` without surrounding quotes, brackets and sentence punctuation."""
    start, end = 0, len(token)
    while start < end and token[start] in _OPENERS:
        start += 1
    while end > start and token[end - 1] in _CLOSERS:
        end -= 1
    return token[start:end]


def _with_period(token: str) -> str:
    """Lowercase ``token`` stripped like :func:`_strip` but keeping a final period."""
    core = token.lstrip(_OPENERS).rstrip(_CLOSERS.replace(".", ""))
    return _fold(core).lower()


def _is_acronym(run: str) -> bool:
    """``KPK``, ``DPR``, ``TV``, ``SMA``: capitals read letter by letter (not ``YA``, ``ASEAN``)."""
    if not (2 <= len(run) <= 5 and run.isascii() and run.isalpha() and run.isupper()):
        return False
    low = run.lower()
    if not any(v in low for v in "aiueo"):
        return True
    return len(run) <= 3 and low not in COMMON_SHORT_WORDS


#: Short words that a shouting transcript may write in capitals: read as words, not letters.
COMMON_SHORT_WORDS = frozenset({
    "ya", "iya", "aku", "dia", "ada", "ini", "itu", "apa", "mau", "oke", "ok", "sih", "kok",
    "deh", "dan", "di", "ke", "dari", "aja", "nah", "wah", "oh", "ah", "eh", "ayo", "tak",
    "pun", "lah", "kan", "tau", "ga", "gak", "bu", "pak", "om", "kamu", "mas", "mba", "kak",
    "yuk", "no", "yes", "wow",
})
_RUNS_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*|\d+(?:[.,]\d+)*|.", re.DOTALL)


def _generic(core: str, acronyms: bool = True) -> list[str]:
    """Letters as lowercase words, digit runs as numbers, symbols as words, the rest silent.

    An acronym (``KTP`` in ``KTP-nya``) and a lone letter (``S.H.``, ``M. Nasir``) are read
    by their Indonesian letter names.
    """
    words: list[str] = []
    runs = _RUNS_RE.findall(_fold(core))
    for i, run in enumerate(runs):
        between_digits = 0 < i < len(runs) - 1 and runs[i - 1][0].isdigit() \
            and runs[i + 1][0].isdigit()
        if run[0].isdigit():
            words += number_words(run) or _digits(run)
        elif run.lower() in ("x", "×") and between_digits:
            words.append("kali")
        elif run == "/" and between_digits:
            words.append("per")
        elif run[0].isascii() and run[0].isalpha():
            if acronyms and _is_acronym(run):
                words += [LETTERS[ch] for ch in run.lower()]
            elif len(run) == 1:
                words.append(LETTERS[run.lower()])
            else:
                words.append(run.lower())
        elif run in SYMBOLS:
            words += SYMBOLS[run].split()
    return words


def _suffixed(amount: list[str], suffix: str) -> list[str]:
    if suffix in ("an", "-an"):  # 1990-an, 90an: "... sembilan puluhan"
        return amount[:-1] + [amount[-1] + "an"]
    return amount + NUMBER_SUFFIXES.get(suffix, [SCALES.get(suffix, suffix)])


NUMBER_SUFFIXES: dict[str, list[str]] = {
    "%": ["persen"], "‰": ["permil"], "°": ["derajat"], "°c": ["derajat", "celsius"],
    "°f": ["derajat", "fahrenheit"], "x": ["kali"],
}
_NUMBER_SUFFIX_RE = re.compile(r"^(" + _NUM + r")(%|‰|°c|°f|°|rb|jt|k|x|-?an)$")
_PHONE_RE = re.compile(r"^(?:\+|0)[\d\-. ()]+$")


def spoken(token: str, *, prev: str | None = None, acronyms: bool = True) -> list[str]:
    """The spoken words of one whitespace token.

    ``prev`` is the token before it (``pukul 7.30`` is a time, ``7.30`` alone a decimal);
    ``acronyms=False`` reads capitals as words (a transcript written in capitals).
    """
    core = re.sub(r"[.,]-$", "", _strip(token.strip()))  # Rp5.000,- (price notation)
    if not core:
        return []
    low = _fold(core).lower()
    dotted = _with_period(token)
    if dotted.endswith(".") and dotted.rstrip(".") in DOTTED_ABBREVIATIONS:
        return DOTTED_ABBREVIATIONS[dotted.rstrip(".")].split()
    if low.rstrip(".") in ABBREVIATIONS:
        return ABBREVIATIONS[low.rstrip(".")].split()
    if _PHONE_RE.match(low) and sum(ch.isdigit() for ch in low) >= 8:
        return (["plus"] if low[0] == "+" else []) + _digits(low)
    if (m := _CURRENCY_RE.match(low)) and (m.group(2) or m.group(3) is None):
        amount = number_words(m.group(2)) if m.group(2) else []
        scale = m.group(3)
        if amount is not None and (scale is None or scale in SCALES):
            words = list(amount) + ([SCALES[scale]] if scale else [])
            return words + CURRENCIES[m.group(1).rstrip(".")].split()
    if (m := _NUMBER_SUFFIX_RE.match(low)) and (amount := number_words(m.group(1))):
        return _suffixed(amount, m.group(2))
    if m := _ORDINAL_RE.match(low):
        n = int(m.group(1))
        return ["pertama"] if n == 1 else _num2words()(n, lang="id", to="ordinal").split()
    clock = prev is not None and _fold(_strip(prev)).lower() in ("pukul", "jam")
    if (m := _TIME_RE.match(low)) and (clock or ":" in low or len(m.group(1)) == 2):
        hour, minute = cardinal(int(m.group(1))), int(m.group(2))
        return hour if minute == 0 else hour + cardinal(minute)
    if m := _RANGE_RE.match(low):
        a, b = number_words(m.group(1)), number_words(m.group(2))
        if a is not None and b is not None:
            return a + ["sampai"] + b
    if m := _FRACTION_RE.match(low):
        a, b = int(m.group(1)), int(m.group(2))
        special = {(1, 2): ["setengah"], (1, 4): ["seperempat"]}
        return special.get((a, b)) or cardinal(a) + ["per"] + cardinal(b)
    if m := _REDUP_RE.match(low):  # informal reduplication: anak2 = anak-anak
        return [m.group(1), m.group(1)]
    if (words := number_words(low)) is not None:
        return words
    return _generic(core, acronyms)


# --------------------------------------------------------------------------- transcripts


@dataclass(frozen=True)
class Group:
    """Transcript tokens (indices) and the spoken words they make together."""

    tokens: tuple[int, ...]
    words: tuple[str, ...]


@dataclass(frozen=True)
class Normalized:
    """A transcript split on whitespace, and its spoken words grouped by token."""

    tokens: tuple[str, ...]
    groups: tuple[Group, ...]

    @property
    def words(self) -> tuple[str, ...]:
        """Every spoken word, in order: what the aligner sees."""
        return tuple(w for g in self.groups for w in g.words)

    @property
    def text(self) -> str:
        """The spoken words joined by single spaces."""
        return " ".join(self.words)

    @property
    def owners(self) -> tuple[int, ...]:
        """For each spoken word, the index of its group."""
        return tuple(i for i, g in enumerate(self.groups) for _ in g.words)

    @property
    def speakable(self) -> int:
        """Tokens that have spoken words (a lone ``—`` or ``...`` has none)."""
        return sum(len(g.tokens) for g in self.groups if g.words)


def _low(token: str) -> str:
    return _fold(_strip(token)).lower()


def _currency_key(token: str) -> str | None:
    low = _low(token).rstrip(".")
    return low if low in CURRENCIES else None


def _scale_key(token: str) -> str | None:
    """A written-out scale word after an amount (``juta``, ``rb``; not the bare letters)."""
    low = _low(token).rstrip(".")
    return low if low in SCALES and len(low) > 1 else None


def _is_amount(token: str) -> bool:
    low = _low(token)
    if not low or not any(ch.isdigit() for ch in low):
        return False
    return (number_words(low) is not None or _NUMBER_SUFFIX_RE.match(low) is not None
            or _CURRENCY_RE.match(low) is not None)


def _shouting(tokens: Sequence[str]) -> bool:
    """A transcript written mostly in capitals: its capitals are not acronyms."""
    letters = [ch for t in tokens for ch in t if ch.isalpha()]
    return len(letters) >= 12 and sum(ch.islower() for ch in letters) < 0.1 * len(letters)


def normalize(text: str) -> Normalized:
    """Spoken words of ``text`` grouped by the whitespace tokens they come from.

    Tokens are read one by one (:func:`spoken`), except where the reading order differs
    from the writing order or one reading spans tokens: ``Rp 5.000`` and ``Rp5 juta`` (the
    currency is spoken last), ``50 %``, ``No. 7`` (*nomor*; a lone ``no.`` stays English),
    and a dash between two numbers (``10 - 20``: *sampai*). Such tokens form one group and
    later share its times.
    """
    tokens = tuple(text.split())
    acronyms = not _shouting(tokens)
    groups: list[Group] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        cur = _currency_key(tok)
        m = _CURRENCY_RE.match(_low(tok))
        if cur is not None and nxt is not None and _is_amount(nxt):
            # Rp 5.000 [juta]: amount, scale, then the currency
            span = [i, i + 1]
            words = spoken(nxt, prev=tok, acronyms=acronyms)
            if i + 2 < len(tokens) and (scale := _scale_key(tokens[i + 2])) is not None:
                span.append(i + 2)
                words.append(SCALES[scale])
            groups.append(Group(tuple(span), (*words, *CURRENCIES[cur].split())))
            i = span[-1] + 1
        elif m and m.group(2) and m.group(3) is None and nxt is not None \
                and (scale := _scale_key(nxt)) is not None:
            # Rp5 juta: the scale word comes before the currency
            amount = number_words(m.group(2)) or _digits(m.group(2))
            words = (*amount, SCALES[scale], *CURRENCIES[m.group(1).rstrip(".")].split())
            groups.append(Group((i, i + 1), words))
            i += 2
        elif nxt is not None and _strip(nxt) in ("%", "‰") \
                and (amount := number_words(_low(tok))) is not None:
            groups.append(Group((i, i + 1), (*amount, SYMBOLS[_strip(nxt)])))
            i += 2
        elif _with_period(tok) == "no." and nxt is not None and _is_amount(nxt):
            groups.append(Group((i,), ("nomor",)))
            i += 1
        elif tok in _DASHES and prev is not None and nxt is not None \
                and _is_amount(prev) and _is_amount(nxt):
            groups.append(Group((i,), ("sampai",)))
            i += 1
        else:
            groups.append(Group((i,), tuple(spoken(tok, prev=prev, acronyms=acronyms))))
            i += 1
    return Normalized(tokens, tuple(groups))


# --------------------------------------------------------------------------- times back


@dataclass(frozen=True)
class WordTime:
    """Where the aligner placed one spoken word (seconds) and how sure it was (0-1 or None)."""

    start: float
    end: float
    score: float | None = None


def token_times(
    norm: Normalized,
    placed: Sequence[WordTime | None],
    *,
    offset: float = 0.0,
    ndigits: int = 6,
) -> list[dict[str, Any]]:
    """The transcript's tokens with times: ``{word, start, end, score}`` per token, in order.

    ``placed`` holds one entry per spoken word (:attr:`Normalized.words`), None where the
    aligner could not place it. A group is timed only when every one of its words was
    placed: start of its first, end of its last, mean score; otherwise its tokens get null
    times and score, never a guess. Tokens of one group share the times. ``offset`` is
    added to every time (clip seconds to source-video seconds).
    """
    if len(placed) != len(norm.words):
        raise ValueError(f"token_times: {len(placed)} placements for {len(norm.words)} words")
    out: list[dict[str, Any]] = [
        {"word": t, "start": None, "end": None, "score": None} for t in norm.tokens
    ]
    k = 0
    for group in norm.groups:
        mine = placed[k: k + len(group.words)]
        k += len(group.words)
        if not mine or any(p is None for p in mine):
            continue
        start = round(min(p.start for p in mine) + offset, ndigits)
        end = round(max(p.end for p in mine) + offset, ndigits)
        scores = [p.score for p in mine if p.score is not None]
        score = round(sum(scores) / len(scores), 4) if len(scores) == len(mine) else None
        for t in group.tokens:
            out[t].update(start=start, end=end, score=score)
    return out


# --------------------------------------------------------------------------- matching


def similarity(a: str, b: str) -> float:
    """1.0 for equal words, difflib's ratio otherwise (0 when either is empty)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def match_words(
    reference: Sequence[str],
    hypothesis: Sequence[str],
    *,
    min_similarity: float = 0.7,
    min_fuzzy_length: int = 3,
) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, increasing in both, matching reference word i to hypothesis word j.

    A monotone alignment (Needleman-Wunsch with free gaps) that maximises the summed
    similarity of the pairs; a pair counts only when the words are equal, or both have at
    least ``min_fuzzy_length`` letters and :func:`similarity` reaches ``min_similarity``
    (an ASR slip such as *mengenak* for *mengenal*). Ties go to the earliest pairing, so
    the result depends only on the inputs.
    """
    n, m = len(reference), len(hypothesis)
    if n == 0 or m == 0:
        return []

    def pair_score(a: str, b: str) -> float:
        if a == b:
            return 1.0
        if min(len(a), len(b)) < min_fuzzy_length:
            return 0.0
        s = similarity(a, b)
        return s if s >= min_similarity else 0.0

    # best[i][j]: best total for reference[i:] against hypothesis[j:]
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = best[i], best[i + 1]
        for j in range(m - 1, -1, -1):
            s = pair_score(reference[i], hypothesis[j])
            take = s + below[j + 1] if s > 0 else -1.0
            row[j] = max(take, below[j], row[j + 1])
    pairs: list[tuple[int, int]] = []
    i = j = 0
    eps = 1e-12
    while i < n and j < m:
        s = pair_score(reference[i], hypothesis[j])
        if s > 0 and abs(best[i][j] - (s + best[i + 1][j + 1])) <= eps:
            pairs.append((i, j))
            i += 1
            j += 1
        elif abs(best[i][j] - best[i][j + 1]) <= eps:
            j += 1
        else:
            i += 1
    return pairs


__all__ = [
    "Group",
    "Normalized",
    "WordTime",
    "cardinal",
    "match_words",
    "normalize",
    "number_words",
    "similarity",
    "spoken",
    "token_times",
]

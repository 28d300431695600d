"""Indonesian spoken forms for the aligner, and the map back to the transcript's own tokens."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indomer.textnorm import (
    WordTime,
    match_words,
    normalize,
    number_words,
    spoken,
    token_times,
)


def groups(text: str) -> list[tuple[str, str]]:
    """(tokens of a group, its spoken words) for every group of ``text``."""
    n = normalize(text)
    return [(" ".join(n.tokens[i] for i in g.tokens), " ".join(g.words)) for g in n.groups]


@pytest.mark.parametrize(
    "written, words",
    [
        ("5", "lima"),
        ("2024", "dua ribu dua puluh empat"),
        ("5.000", "lima ribu"),
        ("1.250.000", "satu juta dua ratus lima puluh ribu"),
        ("1.250,50", "seribu dua ratus lima puluh koma lima nol"),
        ("3,5", "tiga koma lima"),
        ("3.14", "tiga koma satu empat"),  # English decimal point (code-switching)
        ("1,000,000", "satu juta"),  # English thousands
        ("007", "nol nol tujuh"),
        ("-5", "minus lima"),
        (
            "10000000000000000",
            "satu nol nol nol nol nol nol nol nol nol nol nol nol nol nol nol nol",
        ),
    ],
)
def test_numbers_in_indonesian(written, words):
    assert " ".join(number_words(written)) == words


@pytest.mark.parametrize("token", ["abc", "5a", "", "1.2.3.4,5,6", "."])
def test_non_numbers_are_not_numbers(token):
    assert number_words(token) is None


@pytest.mark.parametrize(
    "token, words",
    [
        ("Rp5.000", "lima ribu rupiah"),
        ("Rp5.000,-", "lima ribu rupiah"),
        ("Rp.10.000", "sepuluh ribu rupiah"),
        ("Rp5jt", "lima juta rupiah"),
        ("$10", "sepuluh dolar"),
        ("US$5", "lima dolar amerika"),
        ("50%", "lima puluh persen"),
        ("30°C", "tiga puluh derajat celsius"),
        ("5rb", "lima ribu"),
        ("3x", "tiga kali"),
        ("ke-3", "ketiga"),
        ("ke-1", "pertama"),
        ("1990-an", "seribu sembilan ratus sembilan puluhan"),
        ("1/2", "setengah"),
        ("3/4", "tiga per empat"),
        ("10-20", "sepuluh sampai dua puluh"),
        ("07.30", "tujuh tiga puluh"),
        ("19:00", "sembilan belas"),
        ("0812-3456-7890", "nol delapan satu dua tiga empat lima enam tujuh delapan sembilan nol"),
        ("dll.", "dan lain lain"),
        ("dsb.", "dan sebagainya"),
        ("Bpk.", "bapak"),
        ("dr.", "dokter"),
        ("yg", "yang"),
        ("KPK", "ka pe ka"),
        ("DPR,", "de pe er"),
        ("KTP-nya", "ka te pe nya"),
        ("S.H.", "es ha"),
        ("anak2", "anak anak"),
        ("anak-anak", "anak anak"),
        ("meeting-nya", "meeting nya"),
        ("café", "cafe"),
        ("I’m", "i'm"),
        ("(Saya)", "saya"),
        ("“online”", "online"),
        ("—", ""),
        ("...", ""),
        ("&", "dan"),
    ],
)
def test_spoken_form_of_one_token(token, words):
    assert " ".join(spoken(token)) == words


def test_context_decides_times_and_abbreviations():
    # a dotted time after "pukul" is a clock time; alone it is a decimal number
    assert groups("pukul 7.30") == [("pukul", "pukul"), ("7.30", "tujuh tiga puluh")]
    assert groups("nilai 7.30") == [("nilai", "nilai"), ("7.30", "tujuh koma tiga nol")]
    # "No." is "nomor" before a number, English "no" otherwise
    assert groups("No. 7")[0] == ("No.", "nomor")
    assert groups("I said no.")[-1] == ("no.", "no")
    # capitals in a shouted transcript are words, not acronyms
    assert groups("SAYA TIDAK MAU PERGI KE SANA YA")[-1] == ("YA", "ya")
    assert groups("Kata dia YA di BNI")[-3:] == [("YA", "ya"), ("di", "di"), ("BNI", "be en i")]


def test_currency_amount_and_scale_are_spoken_in_reading_order():
    assert groups("bayar Rp 5.000 saja") == [
        ("bayar", "bayar"),
        ("Rp 5.000", "lima ribu rupiah"),
        ("saja", "saja"),
    ]
    assert groups("Rp 2,5 juta") == [("Rp 2,5 juta", "dua koma lima juta rupiah")]
    assert groups("Rp5 juta.") == [("Rp5 juta.", "lima juta rupiah")]
    assert groups("USD 1,500,000") == [("USD 1,500,000", "satu juta lima ratus ribu dolar amerika")]
    assert groups("naik 50 %") == [("naik", "naik"), ("50 %", "lima puluh persen")]
    assert groups("10 - 20 orang") == [
        ("10", "sepuluh"),
        ("-", "sampai"),
        ("20", "dua puluh"),
        ("orang", "orang"),
    ]
    assert groups("ya - tidak") == [("ya", "ya"), ("-", ""), ("tidak", "tidak")]


TRANSCRIPT = "Harganya Rp5.000, naik 50% — so worth it, kata dr. Budi!"


def test_times_go_back_to_the_transcripts_own_tokens():
    n = normalize(TRANSCRIPT)
    assert n.tokens == tuple(TRANSCRIPT.split())
    assert n.text == (
        "harganya lima ribu rupiah naik lima puluh persen so worth it kata dokter budi"
    )
    # place spoken word k at [k, k + 0.5) seconds, score 0.5 + k/100
    placed = [WordTime(k, k + 0.5, 0.5 + k / 100) for k in range(len(n.words))]
    words = token_times(n, placed, offset=100.0)
    assert [w["word"] for w in words] == TRANSCRIPT.split()
    by = {w["word"]: w for w in words}
    assert (by["Harganya"]["start"], by["Harganya"]["end"]) == (100.0, 100.5)
    # Rp5.000, = lima ribu rupiah = spoken words 1..3
    assert (by["Rp5.000,"]["start"], by["Rp5.000,"]["end"]) == (101.0, 103.5)
    assert by["Rp5.000,"]["score"] == pytest.approx((0.51 + 0.52 + 0.53) / 3, abs=1e-4)
    # 50% = lima puluh persen = words 5..7
    assert (by["50%"]["start"], by["50%"]["end"]) == (105.0, 107.5)
    # English code-switching keeps its words one to one
    assert (by["so"]["start"], by["worth"]["start"], by["it,"]["start"]) == (108.0, 109.0, 110.0)
    assert (by["dr."]["start"], by["Budi!"]["start"]) == (112.0, 113.0)
    # the dash is not spoken: no times, never a guess
    assert by["—"] == {"word": "—", "start": None, "end": None, "score": None}
    assert n.speakable == len(n.tokens) - 1


def test_a_group_with_an_unplaced_word_gets_null_times():
    n = normalize("bayar Rp5.000 sekarang")
    placed: list[WordTime | None] = [WordTime(k, k + 0.5, 0.9) for k in range(len(n.words))]
    placed[2] = None  # "ribu" of "lima ribu rupiah"
    words = token_times(n, placed)
    assert words[1] == {"word": "Rp5.000", "start": None, "end": None, "score": None}
    assert words[0]["start"] == 0.0 and words[2]["start"] == 4.0
    # a group spanning tokens shares its times
    n2 = normalize("Rp 5 juta")
    shared = token_times(
        n2, [WordTime(1.0, 1.2, 0.8), WordTime(1.2, 1.5, 0.8), WordTime(1.5, 2.0, 0.8)]
    )
    assert [(w["word"], w["start"], w["end"]) for w in shared] == [
        ("Rp", 1.0, 2.0),
        ("5", 1.0, 2.0),
        ("juta", 1.0, 2.0),
    ]
    with pytest.raises(ValueError, match="placements"):
        token_times(n2, [])


def test_match_words_pairs_equal_and_near_words_in_order():
    ref = ["saya", "senang", "bertemu", "dengan", "kamu", "hari", "ini"]
    hyp = ["sayang", "senang", "bertemu", "mengenak", "kamu", "hari", "hari", "ini"]
    pairs = match_words(ref, hyp)
    assert [(ref[i], hyp[j]) for i, j in pairs] == [
        ("saya", "sayang"),
        ("senang", "senang"),
        ("bertemu", "bertemu"),
        ("kamu", "kamu"),
        ("hari", "hari"),
        ("ini", "ini"),
    ]
    assert match_words(ref, []) == [] and match_words([], hyp) == []
    # short words only match exactly; similarity 1.0 turns fuzzy matching off
    assert match_words(["di"], ["dia"]) == []
    assert match_words(["ibu"], ["hibu"]) == [(0, 0)]  # three letters may be near
    assert match_words(["mengenal"], ["mengenak"], min_similarity=1.0) == []
    assert match_words(["mengenal"], ["mengenak"]) == [(0, 0)]
    # ties go to the earliest pairing
    assert match_words(["ya"], ["ya", "ya"]) == [(0, 0)]


word = st.text(alphabet=st.sampled_from(list("aAbB5.,%-Rp$é’()!? dll")), max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(word, max_size=8))
def test_normalize_covers_every_token_once_and_speaks_only_letters(parts):
    text = " ".join(parts)
    n = normalize(text)
    assert n.tokens == tuple(text.split())
    covered = [t for g in n.groups for t in g.tokens]
    assert covered == list(range(len(n.tokens)))
    assert all(re.fullmatch(r"[a-z]+(?:'[a-z]+)*", w) for w in n.words)
    assert len(n.owners) == len(n.words)

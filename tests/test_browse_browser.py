"""``indomer browse`` in a real browser: Debian's Chromium driven by Playwright (tests/browser.py).

Every check compares what the page shows with the dataset's own values, read from the shards
here: the row count, a filter by emotion, seeking by a click on a word and the word lit at
``currentTime``, the annotators' votes, a predictions file's errors and confusion cells, the
``--html`` page from ``file://`` (with and without media), a release build (no media), and no
console error anywhere. The clip played is a later clip of a multi-clip source (it does not
start at 0 in its source): word times count from the clip's start (DESIGN §3), so its words
light while spoken and a click seeks inside the clip. The run also takes a screenshot like
the README's (docs/browse.png), into a temporary folder: tests never write the tree.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from browser import Console, chromium
from demo_build import demo_dataset

from indomer import browse
from indomer.dataset import available_splits, read_split, snapshot
from indomer.labels import label_set

READY = "body[data-ready='1']"

pytestmark = pytest.mark.slow


def _clips(out: Path) -> pd.DataFrame:
    """Every clip of the dataset (all splits), label names, as the shards hold them."""
    root = snapshot(out).root
    frames = []
    for split in available_splits(root):
        df = read_split(
            root,
            split,
            columns=[
                "id", "source_id", "segment_index", "start", "end", "emotion", "speaker_id",
                "words", "annotations", "video",
            ],
        )
        df["split"] = split
        df["has_video"] = [v is not None and v.get("bytes") is not None for v in df["video"]]
        frames.append(df.drop(columns=["video"]))
    return pd.concat(frames, ignore_index=True).sort_values("id", ignore_index=True)


def _natural(a: str, b: str) -> int:
    """The page's sort order: digit runs as numbers, the rest by code point."""
    x, y = re.findall(r"\d+|\D+", a), re.findall(r"\d+|\D+", b)
    for p, q in zip(x, y, strict=False):
        if p == q:
            continue
        if p[0].isdigit() and q[0].isdigit():
            return (int(p) - int(q)) or (len(p) - len(q))
        return -1 if p < q else 1
    return len(x) - len(y)


def _sorted(frame: pd.DataFrame, key: str, reverse: bool = False) -> list[str]:
    """Ids sorted by ``key`` in the page's order (reversed on demand), ties by id."""

    def cmp(r: tuple, s: tuple) -> int:
        return (-1 if reverse else 1) * _natural(r[0], s[0]) or _natural(r[1], s[1])

    pairs = sorted(zip(frame[key], frame["id"], strict=True), key=functools.cmp_to_key(cmp))
    return [i for _, i in pairs]


def _lit(words: list[dict], t: float) -> int:
    """Index of the word whose [start, end) holds ``t`` (the first such), else -1."""
    for i, w in enumerate(words):
        if w["start"] is not None and w["end"] is not None and w["start"] <= t < w["end"]:
            return i
    return -1


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return demo_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def clips(demo: Path) -> pd.DataFrame:
    return _clips(demo)


@pytest.fixture(scope="module")
def systems(clips: pd.DataFrame, tmp_path_factory) -> dict:
    """Two predictions files with known answers: A is wrong on every third clip (the next
    label) and gives one unparseable answer; B is wrong on every fourth clip."""
    names = label_set("emotion").names
    folder = tmp_path_factory.mktemp("preds")
    a, b = {}, {}
    for i, (seg_id, ref) in enumerate(zip(clips["id"], clips["emotion"], strict=True)):
        nxt = names[(names.index(ref) + 1) % len(names)]
        a[seg_id] = nxt if i % 3 == 0 else ref
        b[seg_id] = nxt if i % 4 == 0 else ref
    invalid = clips["id"].iloc[1]
    a[invalid] = "no idea, sorry"
    paths = []
    for name, answers in (("system-a.jsonl", a), ("system-b.jsonl", b)):
        path = folder / name
        path.write_text(
            "".join(json.dumps({"id": k, "emotion": v}) + "\n" for k, v in answers.items()),
            encoding="utf-8",
        )
        paths.append(path)
    parsed_a = {k: (None if k == invalid else v) for k, v in a.items()}
    return {"paths": paths, "a": parsed_a, "b": b}


@pytest.fixture(scope="module")
def url(demo: Path, systems: dict):
    srv = browse.make_server(demo, systems["paths"], port=0, warn=lambda m: None)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.url
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def context():
    with chromium() as ctx:
        yield ctx


@pytest.fixture
def page(context):
    """A fresh tab whose console errors fail the test."""
    tab = context.new_page()
    console = Console(tab)
    yield tab
    errors = list(console.errors)
    tab.close()
    assert errors == [], errors


def _rows(page) -> list[str]:
    return page.eval_on_selector_all("#clips tbody tr", "els => els.map(e => e.dataset.id)")


def test_browser_starts():
    """The browser itself: no skip when it is missing, a failure naming what to install."""
    with chromium() as ctx:
        tab = ctx.new_page()
        tab.set_content("<p id=x>ok</p>")
        assert tab.inner_text("#x") == "ok"


def test_rows_and_emotion_filter(page, url: str, clips: pd.DataFrame):
    page.goto(url)
    page.wait_for_selector(READY)
    assert sorted(_rows(page)) == sorted(clips["id"])
    assert page.get_attribute("#count", "data-count") == str(len(clips))
    emotion, _ = Counter(clips["emotion"]).most_common(1)[0]
    page.select_option("select[name=emotion]", emotion)
    page.wait_for_function(f"location.hash.includes('emotion={emotion}')")
    want = sorted(clips.loc[clips["emotion"] == emotion, "id"])
    assert sorted(_rows(page)) == want
    assert len(want) < len(clips)
    # sorting: a click on a header sorts by it (ties by id), a second click reverses
    page.click("#clips th[data-key='speaker']")
    page.wait_for_function("location.hash.includes('sort=speaker')")
    chosen = clips.loc[clips["emotion"] == emotion]
    assert _rows(page) == _sorted(chosen, "speaker_id")
    page.click("#clips th[data-key='speaker']")
    page.wait_for_function("location.hash.includes('sort=-speaker')")
    assert _rows(page) == _sorted(chosen, "speaker_id", reverse=True)
    # the filter lives in the URL: a fresh tab with that address shows the same view
    address = page.url
    other = page.context.new_page()
    try:
        other.goto(address)
        other.wait_for_selector(READY)
        assert sorted(_rows(other)) == want
        assert other.eval_on_selector("select[name=emotion]", "e => e.value") == emotion
    finally:
        other.close()
    # free-text search in the transcripts, on top of the filter
    page.goto(url + "#q=" + "zzzz-no-such-word")
    page.wait_for_selector(READY)
    page.wait_for_function("document.querySelector('#count').dataset.count === '0'")


def _timed_clip(clips: pd.DataFrame) -> pd.Series:
    """A later clip of a multi-clip source (it starts past 1 s in its source), with video,
    at least four timed words and annotator votes; its word times lie inside the clip."""
    per_source = Counter(clips["source_id"])
    for _, row in clips.iterrows():
        timed = [w for w in row["words"] if w["start"] is not None]
        if (
            row["has_video"]
            and per_source[row["source_id"]] > 1
            and row["segment_index"] > 1
            and row["start"] > 1.0
            and len(timed) >= 4
            and len(row["annotations"]) >= 2
        ):
            length = row["end"] - row["start"]
            assert all(0 <= w["start"] <= w["end"] <= length + 0.25 for w in timed), row["id"]
            return row
    raise AssertionError(
        "the demo has no later clip of a multi-clip source with video, four timed words "
        "and votes"
    )


def _seek_by_word(page, words: list[dict]) -> None:
    """Click timed words and check the seek and the word lit at currentTime."""
    page.wait_for_function("document.querySelector('#player').readyState >= 1")
    timed = [i for i, w in enumerate(words) if w["start"] is not None]
    for i in (timed[2], timed[0], timed[-1]):
        start = words[i]["start"]
        page.click(f"#words .w[data-index='{i}']")
        page.wait_for_function(
            "s => { const v = document.querySelector('#player');"
            " return !v.seeking && Math.abs(v.currentTime - s) < 0.05; }",
            arg=start,
        )
        t = page.eval_on_selector("#player", "v => v.currentTime")
        assert abs(t - start) < 0.05
        # inside the clip: word times count from its start, not from its source's
        assert t < page.eval_on_selector("#player", "v => v.duration")
        lit = page.eval_on_selector_all(
            "#words .w.current", "els => els.map(e => +e.dataset.index)"
        )
        assert lit == [_lit(words, t)], (t, lit)
    # Range support: the browser can seek, so the media element knows seekable time
    assert page.eval_on_selector("#player", "v => v.seekable.length") >= 1


def test_clip_seek_highlight_and_votes(page, url: str, clips: pd.DataFrame):
    row = _timed_clip(clips)
    words = list(row["words"])
    media: list[int] = []
    page.on("response", lambda r: media.append(r.status) if "/media/video/" in r.url else None)
    page.goto(f"{url}#clip={row['id']}")
    page.wait_for_selector(READY)
    page.wait_for_selector("#clip-id")
    assert page.inner_text("#clip-id") == row["id"]
    shown = page.eval_on_selector_all("#words .w", "els => els.map(e => e.textContent)")
    assert shown == [w["word"] for w in words]
    greyed = page.eval_on_selector_all(
        "#words .w.unaligned", "els => els.map(e => +e.dataset.index)"
    )
    assert greyed == [i for i, w in enumerate(words) if w["start"] is None or w["end"] is None]
    _seek_by_word(page, words)
    assert 206 in media and set(media) <= {200, 206}, media  # the player asked for byte ranges
    # while it plays from its first timed word, the lit word follows currentTime
    first = next(w["start"] for w in words if w["start"] is not None)
    page.eval_on_selector(
        "#player", "(v, s) => { v.muted = true; v.currentTime = s; return v.play(); }", first
    )
    page.wait_for_timeout(600)
    page.eval_on_selector("#player", "v => v.pause()")
    page.wait_for_function("document.querySelector('#player').paused")
    t = page.eval_on_selector("#player", "v => v.currentTime")
    lit = page.eval_on_selector_all("#words .w.current", "els => els.map(e => +e.dataset.index)")
    want = _lit(words, t)
    assert lit == ([want] if want >= 0 else []), (t, lit)
    votes = page.eval_on_selector_all(
        "#votes [data-field]",
        "els => els.map(e => [e.dataset.annotator, e.dataset.field, e.textContent])",
    )
    want = [[v["annotator"], v["field"], v["value"]] for v in row["annotations"]]
    assert sorted(votes) == sorted(want) and len(votes) == len(want)
    finals = page.eval_on_selector_all(
        "#votes .final", "els => els.map(e => [e.dataset.field, e.textContent])"
    )
    assert all(value == row[field] for field, value in finals if field == "emotion")
    # the speaker's other clips link to them
    others = sorted(
        clips.loc[(clips["speaker_id"] == row["speaker_id"]) & (clips["id"] != row["id"]), "id"]
    )
    assert (
        sorted(page.eval_on_selector_all("#others a", "as => as.map(a => a.textContent)")) == others
    )


def test_screenshot_for_the_readme(page, demo: Path, clips: pd.DataFrame, systems, tmp_path):
    """A picture like docs/browse.png: a clip open, paused on a lit word, one system's
    answers beside (written to a temporary folder; refresh docs/ by copying it by hand)."""
    shot = tmp_path / "browse.png"
    srv = browse.make_server(demo, systems["paths"][1:], port=0, warn=lambda m: None)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        row = _timed_clip(clips)
        page.goto(f"{srv.url}#clip={row['id']}")
        page.wait_for_function("document.querySelector('#player')?.readyState >= 2")
        words = list(row["words"])
        i = [j for j, w in enumerate(words) if w["start"] is not None][1]
        page.click(f"#words .w[data-index='{i}']")
        page.wait_for_function(
            "(() => { const v = document.querySelector('#player');"
            " return !v.seeking && v.readyState >= 3; })()"
        )
        page.wait_for_selector("#words .w.current")
        page.mouse.move(5, 5)  # no hover effects in the picture
        # cosmetic only: Chromium's media controls fade their seek spinner out (~0.5 s)
        page.wait_for_timeout(800)
        page.screenshot(path=str(shot))
    finally:
        srv.shutdown()
        srv.server_close()
    assert shot.stat().st_size > 10_000


def test_prediction_errors_confusion_and_differ(page, url: str, clips: pd.DataFrame, systems):
    ref = dict(zip(clips["id"], clips["emotion"], strict=True))
    a, b = systems["a"], systems["b"]
    page.goto(url)
    page.wait_for_selector(READY)
    page.select_option("select[name=errors]", "0:emotion")
    errors_a = sorted(k for k, v in a.items() if v != ref[k])
    page.wait_for_function(f"document.querySelector('#count').dataset.count === '{len(errors_a)}'")
    assert sorted(_rows(page)) == errors_a
    wrong_cells = page.locator("tr td.wrong[data-col='sys:0:emotion']").count()
    assert wrong_cells == len(errors_a)
    # every non-empty cell of system A's confusion matrix opens exactly its clips
    page.goto(url)
    page.wait_for_selector(READY)
    matrix = "table.confusion[data-system='0'][data-task='emotion']"
    cells = page.eval_on_selector_all(
        f"{matrix} td[data-count]:not([data-count='0'])",
        "tds => tds.map(t => [t.dataset.ref, t.dataset.pred, +t.dataset.count])",
    )
    assert sum(n for _, _, n in cells) == len(a)
    for r, p, n in cells:
        page.click(f"{matrix} td[data-ref='{r}'][data-pred='{p}'] button")
        want = sorted(k for k, v in a.items() if ref[k] == r and (v or "(invalid)") == p)
        page.wait_for_function(f"document.querySelector('#count').dataset.count === '{len(want)}'")
        assert sorted(_rows(page)) == want and len(want) == n
        page.click("#clear-cell")
        page.wait_for_function(f"document.querySelector('#count').dataset.count === '{len(ref)}'")
    # two systems: the clips where their answers differ
    page.select_option("select[name=differ]", "emotion")
    differ = sorted(k for k in ref if a[k] != b[k])
    page.wait_for_function(f"document.querySelector('#count').dataset.count === '{len(differ)}'")
    assert sorted(_rows(page)) == differ
    page.goto(url + "#errors=0:emotion&clip=" + errors_a[0])
    page.wait_for_selector("#answers")
    answers = page.eval_on_selector_all(
        "#answers tr td.wrong, #answers tr td.right", "tds => tds.map(t => t.className)"
    )
    assert answers[0] == "wrong"


def test_static_html_from_disk(page, demo: Path, clips: pd.DataFrame, systems, tmp_path: Path):
    plain = browse.write_html(demo, tmp_path / "review.html", systems["paths"][:1], warn=print)
    page.goto(plain.resolve().as_uri())
    page.wait_for_selector(READY)
    assert sorted(_rows(page)) == sorted(clips["id"])
    emotion = clips["emotion"].iloc[0]
    page.select_option("select[name=emotion]", emotion)
    assert sorted(_rows(page)) == sorted(clips.loc[clips["emotion"] == emotion, "id"])
    row = _timed_clip(clips)
    page.goto(plain.resolve().as_uri() + f"#clip={row['id']}")
    page.wait_for_selector("#clip-id")
    assert page.locator("#player").count() == 0  # media only with --with-media
    assert page.locator(".nomedia").count() == 1
    # --with-media: the clips are inside the file, and seeking works from disk
    full = browse.write_html(demo, tmp_path / "full.html", with_media=True, warn=print)
    page.goto(full.resolve().as_uri() + f"#clip={row['id']}")
    page.wait_for_selector("#player")
    _seek_by_word(page, list(row["words"]))


def test_release_build_is_text_only(page, built: Path):
    from indomer.dataset import read_split as rs

    ids = sorted(i for s in available_splits(built) for i in rs(built, s, columns=["id"])["id"])
    srv = browse.make_server(built, port=0, warn=lambda m: None)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        page.goto(srv.url)
        page.wait_for_selector(READY)
        assert page.get_attribute("#count", "data-count") == str(len(ids))
        page.goto(f"{srv.url}#clip={ids[0]}")
        page.wait_for_selector("#clip-id")
        assert page.locator("#player").count() == 0
        assert "text only" in page.inner_text(".nomedia")
        page.goto(f"{srv.url}#clip=no_such_clip")
        page.wait_for_selector("#clip h2")
        assert page.inner_text("#clip h2") == "unknown clip"
    finally:
        srv.shutdown()
        srv.server_close()


def test_transcripts_and_answers_are_text_not_markup(page, tmp_path: Path):
    """Text from the dataset or a predictions file is shown as text, never run as markup."""
    from indomer.generation import write_dataset

    evil = "</script><script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
    out = tmp_path / "ds"
    row = {
        "id": "clip_1_Cooking_1",
        "source_id": "1",
        "text": evil,
        "words": [{"word": evil, "start": 0.0, "end": 1.0, "score": 1.0}],
        "emotion": "anger",
        "annotations": [{"annotator": evil, "field": "emotion", "value": evil}],
    }
    write_dataset(out, {"train": pd.DataFrame([row])})
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"id": row["id"], "emotion": evil}) + "\n", encoding="utf-8")
    problems: list[str] = []
    file = browse.write_html(out, tmp_path / "page.html", [preds], warn=problems.append)
    page.goto(file.resolve().as_uri() + "#clip=" + row["id"])
    page.wait_for_selector("#clip-id")
    assert page.evaluate("window.pwned") is None
    assert page.get_attribute("td.text", "title") == evil
    assert page.inner_text("#words .w") == evil
    assert page.eval_on_selector("#votes [data-field]", "e => e.textContent") == evil
    assert page.locator("img").count() == 0
    assert len(problems) == 1 and "name no label" in problems[0]


# --------------------------------------------------------------------------- layout (issue 20)


def test_layout_at_1280_px(page, url: str, clips: pd.DataFrame):
    """At 1,280 px the transcript is in view beside the id, with a clip open too, and the id
    column stays put while the table scrolls sideways; rows come in natural id order."""
    page.set_viewport_size({"width": 1280, "height": 800})
    for address in (url, f"{url}#clip={clips['id'].iloc[0]}"):
        page.goto(address)
        page.wait_for_selector(READY)
        box = page.locator("#clips tbody tr").first.locator("td.text").bounding_box()
        pane = page.locator(".scroll").bounding_box()
        assert box is not None and box["width"] > 100, address
        assert box["x"] + 100 <= pane["x"] + pane["width"] <= 1280, (address, box, pane)
    first_id = page.locator("#clips tbody tr").first.locator("td.id")
    before = first_id.bounding_box()["x"]
    scrolled = page.eval_on_selector(
        ".scroll", "s => { s.scrollLeft = s.scrollWidth; return s.scrollLeft; }"
    )
    assert scrolled > 0  # the table is wider than its pane
    page.wait_for_timeout(50)
    assert first_id.bounding_box()["x"] == pytest.approx(before, abs=1)
    # natural order: split by split (train, validation, test), ids with numbers as numbers
    order = {"train": 0, "validation": 1, "test": 2}
    ranked = sorted(
        zip(clips["split"], clips["id"], strict=True),
        key=lambda r: (order[r[0]], browse.natural_key(r[1])),
    )
    assert _rows(page) == [i for _, i in ranked]


def test_vote_table_uses_people_names_in_fixed_order(page, url: str, clips: pd.DataFrame):
    row = _timed_clip(clips)
    page.goto(f"{url}#clip={row['id']}")
    page.wait_for_selector("#votes")
    heads = page.eval_on_selector_all(
        "#votes th[data-field-head]", "els => els.map(e => [e.dataset.fieldHead, e.textContent])"
    )
    fields = {v["field"] for v in row["annotations"]}
    want = [[f, name] for f, name in browse.VOTE_FIELDS if f in fields]
    want += [[f, f] for f in sorted(fields - {f for f, _ in browse.VOTE_FIELDS})]
    assert heads == want and len(heads) >= 3
    assert all("_" not in name for _, name in heads if _ in dict(browse.VOTE_FIELDS))


def test_scores_on_the_page_equal_indomer_score(page, url: str, demo: Path, systems, tmp_path):
    """The predictions view gives each system's macro-F1, accuracy and intervals per split,
    the numbers 'indomer score' prints for the file's lines of that split, and names the
    split assignment."""
    from indomer.scoring import score_predictions

    page.goto(url)
    page.wait_for_selector("#scores table")
    rows = page.eval_on_selector_all(
        "#scores tr.score",
        "trs => trs.map(t => [t.dataset.system, t.dataset.split, t.dataset.task,"
        " +t.dataset.macroF1, +t.dataset.accuracy,"
        " [...t.querySelectorAll('td')].map(d => d.textContent)])",
    )
    build = json.loads((demo / "build.json").read_text())
    name = build["split"]["name"]
    assert f"'{name}'" in page.inner_text("#scores caption")
    assert f"split '{name}'" in page.inner_text("#summary")
    splits = available_splits(snapshot(demo).root)
    assert sorted((r[0], r[1]) for r in rows) == sorted(
        (str(i), s) for i in range(len(systems["paths"])) for s in splits
    )
    for i, split, task, macro, acc, cells in rows:
        ids = set(read_split(snapshot(demo).root, split, columns=["id"])["id"])
        src = systems["paths"][int(i)]
        part = tmp_path / f"{i}-{split}.jsonl"
        part.write_text(
            "".join(ln for ln in src.read_text().splitlines(True) if json.loads(ln)["id"] in ids)
        )
        want = score_predictions(part, demo, split, task)
        assert macro == want["metrics"]["macro_f1"] and acc == want["metrics"]["accuracy"]
        assert cells[4] == f"{want['metrics']['macro_f1']:.4f}"
        ci = (want.get("ci95") or {}).get("macro_f1")
        if ci is not None:
            assert cells[5] == f"[{ci[0]:.4f}, {ci[1]:.4f}]"
        else:  # too few speakers in the demo's splits, say: undefined, and why
            assert cells[5] == "undefined"
            assert want["ci95_undefined"]["macro_f1"] in cells[10]


def test_release_build_shows_unaligned_as_unknown(page, built: Path):
    srv = browse.make_server(built, port=0, warn=lambda m: None)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        page.goto(srv.url)
        page.wait_for_selector(READY)
        cells = page.eval_on_selector_all(
            "#clips td[data-col='unaligned']", "tds => [...new Set(tds.map(t => t.textContent))]"
        )
        assert cells == ["unknown"]
        first = page.locator("#clips tbody tr").first.get_attribute("data-id")
        page.goto(f"{srv.url}#clip={first}")
        page.wait_for_selector("#no-word-times")
    finally:
        srv.shutdown()
        srv.server_close()

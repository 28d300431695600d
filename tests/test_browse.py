"""``indomer browse`` without a browser: HTTP Range answers, 404s, id checks, predictions with
problems, the static page, and that nothing is written into the dataset.

The dataset here is written in a second with :func:`indomer.generation.write_dataset`; its
"media" are known bytes, so every byte range served can be checked exactly. The browser
tests (tests/test_browse_browser.py) use the demo build with real video.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from indomer import browse
from indomer.cli import main
from indomer.generation import write_dataset

N_TRAIN = 140  # > 2 row groups of 64 media rows: the media cache must evict
EVIL = "</script><script>window.pwned=1</script> <!-- &amp; {{js}} {{data}}"


def _media(seg: int, kind: str, size: int) -> dict:
    seed = hashlib.sha256(f"{kind}{seg}".encode()).digest()
    data = (seed * (size // len(seed) + 1))[:size]
    return {"bytes": data, "path": f"clip_{seg}.{'mp4' if kind == 'video' else 'wav'}"}


def _rows(ids: list[int], media: bool) -> pd.DataFrame:
    rows = []
    for i in ids:
        rows.append(
            {
                "id": f"clip_{i}_Cooking_1",
                "source_id": str(i),
                "segment_index": 1,
                "topic": "Cooking",
                "speaker_id": f"S{i % 3}",
                "start": 0.0,
                "end": 2.0,
                "text": EVIL if i == 1 else f"kata satu {i}",
                "words": [
                    {"word": "kata", "start": 0.1, "end": 0.5, "score": 0.9},
                    {"word": "satu", "start": None, "end": None, "score": None},
                ],
                "emotion": ["anger", "happiness", "neutral"][i % 3],
                "sentiment": ["negative", "positive", "neutral"][i % 3],
                "annotations": [
                    {"annotator": "A1", "field": "emotion", "value": "anger"},
                    {"annotator": "A2", "field": "emotion", "value": "happiness"},
                ],
                "adjudicated": i % 2 == 0,
                "video": _media(i, "video", 5000 + i) if media else None,
                "audio": _media(i, "audio", 3000) if media else None,
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browse") / "ds"
    write_dataset(
        out,
        {
            "train": _rows(list(range(1, N_TRAIN + 1)), media=True),
            "validation": _rows([1001, 1002], media=False),
        },
        {"command": "test", "machine_text": ["clip_2_Cooking_1"]},
    )
    return out


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links followed) with its sha256: to prove nothing changed."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def server(dataset: Path):
    warnings: list[str] = []
    srv = browse.make_server(dataset, port=0, warn=warnings.append)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    assert warnings == []


def _get(srv, path: str, headers: dict | None = None, method: str = "GET"):
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- Range parsing


@pytest.mark.parametrize(
    ("header", "size", "want"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=10-", 100, (10, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-500", 100, (0, 99)),
        ("bytes=90-500", 100, (90, 99)),
        ("bytes=99-99", 100, (99, 99)),
        ("bytes=100-", 100, "unsatisfiable"),
        ("bytes=100-200", 100, "unsatisfiable"),
        ("bytes=-0", 100, "unsatisfiable"),
        ("bytes=5-2", 100, None),  # invalid: ignored, the whole file
        ("bytes=0-1,5-6", 100, None),  # several ranges: the whole file (RFC 9110 allows it)
        ("items=0-1", 100, None),
        ("bytes=-", 100, None),
        ("bytes=0-", 0, "unsatisfiable"),
    ],
)
def test_parse_range(header, size, want):
    assert browse.parse_range(header, size) == want


# --------------------------------------------------------------------------- the server


def test_binds_loopback_by_default(dataset: Path):
    srv = browse.make_server(dataset, port=0)
    try:
        assert srv.server_address[0] == "127.0.0.1"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", srv.url)
    finally:
        srv.server_close()


def test_page_and_data(server, dataset: Path):
    status, headers, body = _get(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'id="indomer-data"' not in body  # served pages fetch data.json
    status, headers, body = _get(server, "/data.json")
    assert status == 200
    data = json.loads(body)
    assert data["dataset"]["clips"] == N_TRAIN + 2
    assert data["dataset"]["splits"] == {"train": N_TRAIN, "validation": 2}
    clips = {c["id"]: c for c in data["clips"]}
    one = clips["clip_3_Cooking_1"]
    assert one["emotion"] == "anger" and one["sentiment"] == "negative"
    assert one["media"] == ["video", "audio"]
    assert one["unaligned"] == 1 and one["words"][1] == ["satu", None, None]
    assert one["agreement"] == "1/2"
    assert one["speaker_flag"] is None and one["face_flag"] is None  # nothing checked
    assert one["votes"][0] == {"annotator": "A1", "field": "emotion", "value": "anger"}
    assert clips["clip_2_Cooking_1"]["draft"] is True and one["draft"] is False
    assert clips["clip_1001_Cooking_1"]["media"] == []
    assert clips["clip_1_Cooking_1"]["text"] == EVIL


def test_media_whole_and_ranges(server):
    want = _media(7, "video", 5007)["bytes"]
    path = "/media/video/clip_7_Cooking_1"
    status, headers, body = _get(server, path)
    assert status == 200 and body == want
    assert headers["Accept-Ranges"] == "bytes" and headers["Content-Type"] == "video/mp4"
    assert int(headers["Content-Length"]) == len(want)

    status, headers, body = _get(server, path, {"Range": "bytes=100-199"})
    assert status == 206 and body == want[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(want)}"
    assert int(headers["Content-Length"]) == 100

    status, headers, body = _get(server, path, {"Range": "bytes=5000-"})
    assert status == 206 and body == want[5000:]
    assert headers["Content-Range"] == f"bytes 5000-5006/{len(want)}"

    status, headers, body = _get(server, path, {"Range": "bytes=-7"})
    assert status == 206 and body == want[-7:]

    status, headers, body = _get(server, path, {"Range": f"bytes={len(want)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(want)}"

    status, headers, body = _get(server, path, method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(want)

    status, _, body = _get(server, "/media/audio/clip_7_Cooking_1", {"Range": "bytes=0-3"})
    assert status == 206 and body == _media(7, "audio", 3000)["bytes"][:4]


def test_media_across_row_groups_stays_bounded(dataset: Path):
    b = browse.load(dataset, warn=lambda m: None)
    groups = {ref.group for ref in b.media.values()}
    assert len(groups) == 3  # 140 media rows in groups of 64
    for i in (1, 70, 135, 2, 139):
        seg = f"clip_{i}_Cooking_1"
        assert b.media_bytes(seg, "video") == _media(i, "video", 5000 + i)["bytes"]
        assert len(b._cache) <= browse.CACHED_GROUPS


@pytest.mark.parametrize(
    "path",
    [
        "/media/video/clip_999_Cooking_1",  # not in the dataset
        "/media/video/clip_1001_Cooking_1",  # in the dataset, no media (validation)
        "/media/video/..%2F..%2Fbuild.json",
        "/media/video/%2Fetc%2Fpasswd",
        "/media/subtitles/clip_7_Cooking_1",
        "/media/video/clip_7_Cooking_1/extra",
        "/../../../etc/passwd",
        "/build.json",
        "/data/train-00000-of-00001.parquet",
        "/README.md",
        "/favicon.ico",
    ],
)
def test_unknown_paths_are_404(server, path: str):
    status, _, body = _get(server, path)
    assert status == 404, path
    assert body == b"not found\n"


@pytest.mark.parametrize(
    ("host", "status"),
    [("localhost:8765", 200), ("127.0.0.1", 200), ("evil.example:8765", 403), ("", 403)],
)
def test_only_loopback_hosts_are_answered(server, host: str, status: int):
    """A web page elsewhere cannot read the dataset through DNS rebinding."""
    host_, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host_, port, timeout=10)
    try:
        conn.putrequest("GET", "/data.json", skip_host=True)
        if host:
            conn.putheader("Host", host)
        conn.endheaders()
        assert conn.getresponse().status == status
    finally:
        conn.close()


def test_clip_ids_checked_before_lookup(dataset: Path, monkeypatch):
    b = browse.load(dataset, warn=lambda m: None)
    looked: list = []
    monkeypatch.setattr(b, "media", _Spy(b.media, looked))
    assert b.media_bytes("../../etc/passwd", "video") is None
    assert b.media_bytes("clip_7_Cooking_1", "bogus") is None
    assert looked == []
    assert b.media_bytes("clip_7_Cooking_1", "video") is not None
    assert looked == [("clip_7_Cooking_1", "video")]


class _Spy(dict):
    def __init__(self, base: dict, seen: list) -> None:
        super().__init__(base)
        self.seen = seen

    def get(self, key, default=None):
        self.seen.append(key)
        return super().get(key, default)


def test_server_never_writes_into_the_dataset(dataset: Path, server, tmp_path: Path):
    before = _tree(dataset)
    _get(server, "/data.json")
    _get(server, "/media/video/clip_7_Cooking_1", {"Range": "bytes=0-10"})
    browse.write_html(dataset, tmp_path / "page.html", with_media=True, warn=lambda m: None)
    assert _tree(dataset) == before


# --------------------------------------------------------------------------- predictions


def _write(path: Path, lines: list) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), "utf-8"
    )
    return path


def test_predictions_answers_and_problems(dataset: Path, tmp_path: Path):
    good = _write(
        tmp_path / "sys.jsonl",
        [
            {"id": "clip_3_Cooking_1", "emotion": "marah"},  # alias of anger: right
            {"id": "clip_4_Cooking_1", "emotion": "The speaker sounds sad."},  # wrong
            {"id": "clip_5_Cooking_1", "emotion": "happy or sad"},  # two labels: invalid
            {"id": "clip_nope", "emotion": "anger"},  # not in the dataset
        ],
    )
    warnings: list[str] = []
    b = browse.load(dataset, [good], warn=warnings.append)
    (sys_,) = b.systems
    assert sys_.tasks == ["emotion"]
    assert sys_.answers == {
        "clip_3_Cooking_1": {"emotion": "anger"},
        "clip_4_Cooking_1": {"emotion": "sadness"},
        "clip_5_Cooking_1": {"emotion": None},
    }
    assert any("1 ids are not in the dataset: clip_nope" in w for w in warnings)
    assert any("1 emotion answers name no label" in w and "clip_5_Cooking_1" in w for w in warnings)
    assert b.payload()["problems"] == warnings


def test_unreadable_predictions_warn_and_the_page_still_opens(dataset: Path, tmp_path: Path):
    bad = _write(tmp_path / "bad.jsonl", [{"id": "clip_3_Cooking_1", "emotion": "anger"}, "{oops"])
    dup = _write(
        tmp_path / "dup.jsonl",
        [
            {"id": "clip_3_Cooking_1", "emotion": "anger"},
            {"id": "clip_3_Cooking_1", "emotion": "x"},
        ],
    )
    warnings: list[str] = []
    srv = browse.make_server(
        dataset, [bad, dup, tmp_path / "missing.jsonl"], port=0, warn=warnings.append
    )
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        status, _, body = _get(srv, "/data.json")
    finally:
        srv.shutdown()
        srv.server_close()
    assert status == 200
    data = json.loads(body)
    assert data["systems"] == []
    assert len(warnings) == 3 and data["problems"] == warnings
    assert warnings[0].startswith(f"{bad}:2: not valid JSON")
    assert warnings[1].startswith(f"{dup}: duplicate ids: clip_3_Cooking_1 (lines 1, 2)")
    assert warnings[2].startswith(f"{tmp_path / 'missing.jsonl'}: cannot read predictions")
    assert all(w.endswith("left out of the page") for w in warnings)


def test_cli_reports_prediction_problems_on_stderr(dataset: Path, tmp_path: Path):
    bad = _write(tmp_path / "bad.jsonl", ["[1, 2]"])
    page = tmp_path / "out.html"
    res = CliRunner().invoke(
        main, ["browse", str(dataset), "--preds", str(bad), "--html", str(page)]
    )
    assert res.exit_code == 0, res.output
    assert f"warning: {bad}:1: expected a JSON object" in res.stderr
    assert page.is_file()


# --------------------------------------------------------------------------- the static page


def _inlined(page: str, element: str) -> object:
    m = re.search(
        rf'<script type="application/json" id="{element}">(.*?)</script>', page, re.DOTALL
    )
    assert m, element
    return json.loads(m.group(1))


def test_html_inlines_data_safely(dataset: Path, tmp_path: Path):
    page = tmp_path / "review.html"
    res = CliRunner().invoke(main, ["browse", str(dataset), "--html", str(page)])
    assert res.exit_code == 0, res.output
    assert str(page) in res.stdout
    text = page.read_text("utf-8")
    data = _inlined(text, "indomer-data")
    assert data["dataset"]["clips"] == N_TRAIN + 2
    assert {c["id"]: c["text"] for c in data["clips"]}["clip_1_Cooking_1"] == EVIL
    assert EVIL not in text  # the transcript cannot close the <script> element
    assert 'id="indomer-media"' not in text
    again = tmp_path / "again.html"
    CliRunner().invoke(main, ["browse", str(dataset), "--html", str(again)])
    assert again.read_bytes() == page.read_bytes()  # deterministic


def test_html_with_media_embeds_every_clip(dataset: Path, tmp_path: Path):
    page = tmp_path / "media.html"
    browse.write_html(dataset, page, with_media=True, warn=lambda m: None)
    import base64

    media = _inlined(page.read_text("utf-8"), "indomer-media")
    assert len(media) == 2 * N_TRAIN
    assert base64.b64decode(media["video/clip_9_Cooking_1"]) == _media(9, "video", 5009)["bytes"]


# --------------------------------------------------------------------------- bad input


def test_cli_errors_are_one_line(dataset: Path, tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(main, ["browse", str(tmp_path / "nowhere")])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "no such folder" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(main, ["browse", str(empty), "--html", str(tmp_path / "x.html")])
    assert res.exit_code == 2 and "no shards under data/" in res.output
    res = runner.invoke(main, ["browse", str(dataset), "--with-media"])
    assert res.exit_code == 2 and "--with-media only applies to --html" in res.output
    res = runner.invoke(main, ["browse", str(dataset), "--html", str(dataset / "page.html")])
    assert res.exit_code == 2 and "--html" in res.output and "inside the indomer dataset" in res.output
    assert not (dataset / "page.html").exists()
    res = runner.invoke(main, ["browse", str(dataset), "--port", "70000"])
    assert res.exit_code == 2 and res.output.startswith("error: ")


def test_port_in_use_is_one_line(dataset: Path):
    srv = browse.make_server(dataset, port=0)
    try:
        port = srv.server_address[1]
        res = CliRunner().invoke(main, ["browse", str(dataset), "--port", str(port)])
        assert res.exit_code == 2
        assert f"cannot listen on 127.0.0.1:{port}" in res.output and "Traceback" not in res.output
    finally:
        srv.server_close()


def test_command_prints_its_url_and_serves(dataset: Path):
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("indomer")), "browse", str(dataset), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line + proc.stderr.read()
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
        conn.request("GET", "/data.json")
        assert json.loads(conn.getresponse().read())["dataset"]["clips"] == N_TRAIN + 2
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------- page fields


def test_agreement_leaves_experts_out():
    votes = [
        {"annotator": "A1", "field": "emotion", "value": "takut"},
        {"annotator": "A2", "field": "emotion", "value": "fear"},
        {"annotator": "A3", "field": "emotion", "value": "neutral"},
        {"annotator": "E", "field": "role", "value": "expert"},
        {"annotator": "E", "field": "emotion", "value": "fear"},
    ]
    assert browse._agreement(votes, "fear") == "2/3"
    assert browse._agreement(votes[3:4], "fear") is None


def test_speaker_checks_travel_in_the_shards_to_a_copied_dataset(tmp_path: Path):
    """Issue 22: the speaker check is a shard column (``speaker_check``), so a copy of the
    dataset folder alone (no work/) keeps its flags; a clip not checked shows none."""
    import shutil

    out = tmp_path / "built"
    df = _rows([3, 4, 5], media=False)
    df["speaker_check"] = [
        {"flagged": True, "n_speakers": 2, "primary_share": 0.55, "overlap": 0.1},
        {"flagged": False, "n_speakers": 1, "primary_share": 1.0, "overlap": 0.0},
        None,
    ]
    write_dataset(out, {"train": df}, {"command": "test"})
    (out / "work").mkdir()  # a raw build's work folder, which the copy leaves behind
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, symlinks=True, ignore=shutil.ignore_patterns("work"))
    assert not (copy / "work").exists()
    clips = {c["id"]: c for c in browse.load(copy, warn=lambda m: None).clips}
    assert clips["clip_3_Cooking_1"]["speaker_flag"] is True
    assert clips["clip_3_Cooking_1"]["speaker_check"] == {
        "flagged": True, "n_speakers": 2, "primary_share": 0.55,
    }  # fmt: skip
    assert clips["clip_4_Cooking_1"]["speaker_flag"] is False
    assert clips["clip_5_Cooking_1"]["speaker_flag"] is None


def test_a_dataset_without_the_speaker_check_column_still_reads(dataset: Path, tmp_path: Path):
    """Shards written before the column existed: browse shows no flags, never an error."""
    import pyarrow.parquet as pq

    copy = tmp_path / "old"
    write_dataset(copy, {"train": _rows([3], media=False)}, {"command": "test"})
    for shard in (copy / "data").glob("*.parquet"):
        table = pq.read_table(shard)
        target = shard.resolve()
        target.unlink()
        pq.write_table(table.drop_columns(["speaker_check"]), target)
    clips = browse.load(copy, warn=lambda m: None).clips
    assert [c["speaker_flag"] for c in clips] == [None]


def test_a_collected_generation_keeps_serving_its_media(dataset: Path, tmp_path: Path):
    """The page's generation is pinned (its shards held open): a writer that switches
    generations and collects this one changes no byte the running page serves."""
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy, symlinks=True)
    warnings: list[str] = []
    srv = browse.make_server(copy, port=0, warn=warnings.append)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        for shard in (srv.browser.root / "data").glob("train-*.parquet"):
            shard.unlink()  # as if a writer had switched generations and collected this one
        status, _, body = _get(srv, "/media/video/clip_7_Cooking_1")
    finally:
        srv.shutdown()
        srv.server_close()
    assert status == 200 and body == _media(7, "video", 5007)["bytes"]
    assert warnings == []


# --------------------------------------------------------------------------- layout data (issue 20)


def _natural_cmp(a: str, b: str) -> int:
    """app.js's natural(): digit runs as numbers (shorter first on ties), the rest by code
    point; the reference the server's sort key must agree with."""
    x, y = re.findall(r"[0-9]+|[^0-9]+", a), re.findall(r"[0-9]+|[^0-9]+", b)
    for p, q in zip(x, y, strict=False):
        if p == q:
            continue
        if p[0] in "0123456789" and q[0] in "0123456789":
            return (int(p) - int(q)) or (len(p) - len(q))
        return -1 if p < q else 1
    return len(x) - len(y)


def test_natural_key_orders_as_the_page_does():
    import functools
    import itertools

    ids = [
        "clip_10_Cooking_1", "clip_2_Cooking_1", "clip_2_Cooking_10", "clip_2_Cooking_9",
        "clip_02_Cooking_1", "clip_1a", "clip_1", "clip_1-x", "clip_1_", "clip_", "10", "9",
        "a", "-a", "clip_1.5", "Clip_3", "clip_١٢",
    ]  # fmt: skip
    want = sorted(ids, key=functools.cmp_to_key(_natural_cmp))
    assert sorted(ids, key=browse.natural_key) == want
    assert want.index("clip_2_Cooking_9") < want.index("clip_2_Cooking_10")
    assert want.index("clip_2_Cooking_1") < want.index("clip_10_Cooking_1")
    for a, b in itertools.combinations(ids, 2):  # the key agrees pair by pair
        c = _natural_cmp(a, b)
        assert (browse.natural_key(a) < browse.natural_key(b)) == (c < 0), (a, b)


def test_clips_in_natural_order_within_each_split(dataset: Path):
    data = browse.load(dataset, warn=lambda m: None).payload()
    ids = [c["id"] for c in data["clips"]]
    train = [f"clip_{i}_Cooking_1" for i in range(1, N_TRAIN + 1)]
    assert ids == train + ["clip_1001_Cooking_1", "clip_1002_Cooking_1"]  # _2 before _10


def test_unaligned_is_unknown_without_word_times(tmp_path: Path):
    out = tmp_path / "ds"
    rows = pd.DataFrame(
        [
            {"id": "clip_1_Cooking_1", "source_id": "1", "text": "a b", "words": None},
            {"id": "clip_1_Cooking_2", "source_id": "1", "text": "a b", "words": []},
        ]
    )
    write_dataset(out, {"train": rows})
    data = browse.load(out, warn=lambda m: None).payload()
    assert [c["unaligned"] for c in data["clips"]] == [None, None]
    assert data["dataset"]["word_times"] is False


def test_unaligned_counts_where_words_exist(dataset: Path):
    data = browse.load(dataset, warn=lambda m: None).payload()
    assert {c["unaligned"] for c in data["clips"]} == {1}
    assert data["dataset"]["word_times"] is True


def test_votes_in_fixed_field_order_experts_last():
    rec = {
        "id": "clip_1_Cooking_1",
        "annotations": [
            {"annotator": "E", "field": "role", "value": "expert"},
            {"annotator": "E", "field": "emotion", "value": "fear"},
            {"annotator": "B", "field": "video_sentiment", "value": "negative"},
            {"annotator": "B", "field": "zz_note", "value": "x"},
            {"annotator": "B", "field": "emotion", "value": "fear"},
            {"annotator": "B", "field": "role", "value": "annotator"},
            {"annotator": "A", "field": "sentiment_score", "value": "-0.5"},
            {"annotator": "A", "field": "emotion_intensity", "value": "2"},
            {"annotator": "A", "field": "emotion", "value": "anger"},
        ],
    }
    row = browse._clip_row(rec, "train", set())
    got = [(v["annotator"], v["field"]) for v in row["votes"]]
    assert got == [
        ("B", "role"),
        ("B", "emotion"),
        ("B", "video_sentiment"),
        ("B", "zz_note"),
        ("A", "emotion"),
        ("A", "emotion_intensity"),
        ("A", "sentiment_score"),
        ("E", "role"),
        ("E", "emotion"),
    ]
    assert row["agreement"] == "0/2"  # the expert does not vote


def test_payload_names_vote_fields_for_people(dataset: Path):
    data = browse.load(dataset, warn=lambda m: None).payload()
    fields = dict(data["vote_fields"])
    assert [f for f, _ in data["vote_fields"]][:3] == ["role", "emotion", "emotion_intensity"]
    assert fields["text_sentiment"] == "text sentiment"
    assert all("_" not in name for name in fields.values())


def _score_cli(preds: Path, refs: Path, split: str, *extra: str) -> dict:
    res = CliRunner().invoke(
        main,
        ["score", str(preds), "--refs", str(refs), "--split", split, "--json", "-", *extra],
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout[res.stdout.index("{") :])


def test_system_scores_equal_indomer_score(dataset: Path, tmp_path: Path):
    """The page's macro-F1, accuracy and intervals per split are those 'indomer score' prints
    for that split (the file's other splits left out; --allow-missing where it is partial)."""
    names = ["anger", "happiness", "neutral"]
    lines, val_lines, train_lines = [], [], []
    for i in [1001, 1002, *range(1, 41)]:
        ref = names[i % 3]
        answer = names[(i + 1) % 3] if i % 4 == 0 else ref  # wrong on every 4th
        line = {"id": f"clip_{i}_Cooking_1", "emotion": answer}
        lines.append(line)
        (val_lines if i > 1000 else train_lines).append(line)
    both = _write(tmp_path / "both.jsonl", lines)
    val = _write(tmp_path / "val.jsonl", val_lines)
    train = _write(tmp_path / "train.jsonl", train_lines)
    b = browse.load(dataset, [both], warn=lambda m: None)
    scores = {(s["split"], s["task"]): s for s in b.payload()["systems"][0]["scores"]}
    assert sorted(scores) == [("train", "emotion"), ("validation", "emotion")]
    for split, path, extra in (("validation", val, ()), ("train", train, ("--allow-missing",))):
        want = _score_cli(path, dataset, split, *extra)["emotion"]
        got = scores[(split, "emotion")]
        assert got["macro_f1"] == want["metrics"]["macro_f1"]
        assert got["accuracy"] == want["metrics"]["accuracy"]
        assert got["ci95"]["macro_f1"] == (want["ci95"] or {}).get("macro_f1")
        assert got["ci95"]["accuracy"] == (want["ci95"] or {}).get("accuracy")
        assert (got["n"], got["n_missing"], got["n_invalid"]) == (
            want["n"],
            want["n_missing"],
            want["n_invalid"],
        )
        assert got["bootstrap"] == want["bootstrap"]
        want_undefined = {
            k: v for k, v in want["ci95_undefined"].items() if k in ("macro_f1", "accuracy")
        }
        assert got["ci95_undefined"] == want_undefined
    assert scores[("train", "emotion")]["n_missing"] == N_TRAIN - 40
    assert scores[("validation", "emotion")]["accuracy"] == 1.0  # 1001, 1002: none a 4th

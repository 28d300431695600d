"""``indomer predict`` against a local server that speaks the OpenAI chat protocol as vLLM does
(tests/openai_server.py), through the real ``openai`` client: every clip answered once, the
content parts vLLM takes for Qwen2.5-Omni (decoded and compared with the shard bytes),
concurrency, resume after ``kill -9``, retries on 429/500/timeouts/malformed answers, one-line
errors, and the API key never leaving the Authorization header."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from demo_build import demo_dataset
from openai_server import FakeOpenAI, Received, free_port

from indomer import predict as lib
from indomer.cli import main
from indomer.dataset import read_split, write_split
from indomer.labels import label_set

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"
MODEL = "qwen2.5-omni-test"
N_SMALL = 24


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def small(built: Path, tmp_path_factory) -> Path:
    """24 clips of the release's validation split (text only, as a release build is)."""
    out = tmp_path_factory.mktemp("small") / "dataset"
    rows = read_split(built, "validation").sort_values("id").iloc[:N_SMALL]
    write_split(out, "validation", rows)
    return out


@pytest.fixture(scope="module")
def small_rows(small: Path) -> list[dict]:
    return read_split(small, "validation").to_dict("records")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return demo_dataset(tmp_path_factory)


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.fixture(autouse=True)
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry delays, recorded instead of slept (the policy is checked, not the clock)."""
    seen: list[float] = []
    monkeypatch.setattr(lib, "_pause", lambda stop, seconds: seen.append(seconds))
    return seen


def truth_answerer(rows: list[dict], task: str = "emotion"):
    """Answer each clip's true label in Indonesian free text, found by its transcript."""
    by_text = {r["text"].strip(): r[task] for r in rows}
    release = label_set(task).release

    def answer(req: Received) -> str:
        for text, label in by_text.items():
            if text and text in req.text:
                return f"Emosi pembicara: {release[label]}."
        return "no idea"

    return answer


@pytest.fixture
def server(small_rows):
    with FakeOpenAI(model=MODEL, api_key=KEY, answer=truth_answerer(small_rows)) as srv:
        yield srv


def run(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def predict_args(dataset: Path, srv: FakeOpenAI, preds: Path, *extra: object) -> list[object]:
    return [
        "predict", dataset, "--endpoint", srv.url, "--model", MODEL, "--split", "validation",
        "--modalities", "text", "--out", preds, *extra,
    ]  # fmt: skip


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def score_json(preds: Path, dataset: Path, split: str, *extra: str) -> dict:
    res = run("score", preds, "--refs", dataset, "--split", split, "--json", "-", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def one_error_line(res) -> str:
    """The command failed with exactly one ``error: ...`` line and no traceback."""
    assert res.exit_code != 0
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    return err[0]


# --------------------------------------------------------------------------- the happy path


def test_every_clip_answered_once_and_scored(small, small_rows, server, tmp_path):
    preds = tmp_path / "preds.jsonl"
    res = run(*predict_args(small, server, preds, "--concurrency", 3))
    assert res.exit_code == 0, res.output
    got = lines(preds)
    assert [g["id"] for g in got] == [r["id"] for r in small_rows]  # dataset order, once each
    sha = lib.prompt_for("emotion", ("text",)).sha256
    for g in got:
        assert set(g) == {
            "id", "emotion", "model", "prompt_sha256", "prompt_version", "modalities",
            "finish_reason",
        }  # fmt: skip
        assert g["model"] == MODEL and g["prompt_sha256"] == sha and g["modalities"] == "text"
        assert g["emotion"].startswith("Emosi pembicara: ")  # the raw answer, kept as sent
    assert len(server.chat_requests()) == N_SMALL
    # the scorer parses the Indonesian free text: every answer is right
    result = score_json(preds, small, "validation")
    assert result["emotion"]["n"] == N_SMALL and result["emotion"]["n_invalid"] == 0
    assert result["emotion"]["metrics"]["accuracy"] == 1.0
    # the request: a system turn and the prompt of schemas/prompts.yaml with the transcript
    transcript = small_rows[0]["text"].strip()
    (req,) = [r for r in server.chat_requests() if transcript in r.text]
    body = req.body
    assert body["model"] == MODEL and body["temperature"] == 0.0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    text = body["messages"][1]["content"][-1]["text"]
    # as indomer export writes its user turns: the instruction, then the transcript line
    assert text.endswith(
        f"Answer with the English label only.\nTranscript / Transkrip: {transcript}"
    )
    assert text.startswith("Which emotion does the speaker express?")
    assert "surprise (keterkejutan)" in text
    assert body["messages"][0]["content"].startswith("You are an expert in multimodal emotion")
    assert "mm_processor_kwargs" not in body


def test_sentiment_task_is_stored_under_its_key(small, small_rows, tmp_path):
    preds = tmp_path / "preds.jsonl"
    with FakeOpenAI(model=MODEL, answer=lambda req: "Sentimen: positif") as srv:
        res = run(*predict_args(small, srv, preds, "--task", "sentiment"))
        assert res.exit_code == 0, res.output
        assert "negative (negatif)" in srv.chat_requests()[0].text
    assert all(g["sentiment"] == "Sentimen: positif" for g in lines(preds))
    result = score_json(preds, small, "validation")
    want = sum(r["sentiment"] == "positive" for r in small_rows) / N_SMALL
    assert result["sentiment"]["metrics"]["accuracy"] == pytest.approx(want)


@pytest.mark.parametrize(
    ("modalities", "parts", "kwargs"),
    [
        ("text,audio,video", ["video_url", "text"], {"use_audio_in_video": True}),
        ("video", ["video_url", "text"], None),
        ("audio", ["input_audio", "text"], None),
        ("text,audio", ["input_audio", "text"], None),
    ],
)
def test_media_content_parts_carry_the_shard_bytes(demo, tmp_path, modalities, parts, kwargs):
    """Qwen2.5-Omni on vLLM: the mp4 as a video_url data URL (with its own audio track via
    mm_processor_kwargs.use_audio_in_video), the wav as input_audio; decoded by the server and
    compared with the bytes in the shard."""
    rows = {r["id"]: r for r in read_split(demo, "test").to_dict("records")}
    preds = tmp_path / "preds.jsonl"
    with FakeOpenAI(model=MODEL, api_key=KEY) as srv:
        res = run(
            "predict", demo, "--endpoint", srv.url, "--model", MODEL, "--split", "test",
            "--modalities", modalities, "--out", preds,
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        reqs = srv.chat_requests()
    assert len(reqs) == len(rows) == len(lines(preds))
    by_text = {r["text"].strip(): r for r in rows.values()}
    for req in reqs:
        user = req.body["messages"][-1]["content"]
        assert [p["type"] for p in user] == parts
        assert req.body.get("mm_processor_kwargs") == kwargs
        if "text" in modalities:
            (row,) = [r for t, r in by_text.items() if t in req.text]
        else:  # no transcript sent: find the clip by its media
            kind = req.media[0][0]
            (row,) = [r for r in rows.values() if r[kind]["bytes"] == req.media[0][1]]
            assert row["text"].strip() not in req.text
        kind, data = req.media[0]
        assert len(req.media) == 1
        assert data == row[kind]["bytes"]  # byte-identical to the shard
        if kind == "video":
            assert user[0]["video_url"]["url"].startswith("data:video/mp4;base64,")
        else:
            assert user[0]["input_audio"]["format"] == "wav"
    assert sorted(g["id"] for g in lines(preds)) == sorted(rows)


# --------------------------------------------------------------------------- concurrency


def test_concurrency_sends_n_requests_at_once_and_never_more(small, server, tmp_path):
    """The server holds the first 4 requests until 4 are in flight together: only a client
    that really keeps 4 open gets past it; the peak also shows it never opens a fifth."""
    server.gate(4)
    preds = tmp_path / "preds.jsonl"
    res = run(*predict_args(small, server, preds, "--concurrency", 4))
    assert res.exit_code == 0, res.output
    assert server.peak == 4
    ids = [g["id"] for g in lines(preds)]
    assert len(ids) == len(set(ids)) == N_SMALL == len(server.chat_requests())
    # answers arrive in any order; the finished file is in dataset order: same bytes as one
    # request at a time
    one = tmp_path / "one.jsonl"
    assert run(*predict_args(small, server, one, "--concurrency", 1)).exit_code == 0
    assert server.peak == 4 and one.read_bytes() == preds.read_bytes()


# --------------------------------------------------------------------------- resume


def _cli(*args: object) -> list[str]:
    return [sys.executable, "-c", "from indomer.cli import main; main()", *map(str, args)]


def test_resume_after_sigkill_answers_every_id_once(small, small_rows, server, tmp_path):
    """kill -9 after k answers (the server holds every later request, so the point is exact),
    then rerun: only the other ids are asked, each exactly once, and score accepts the file."""
    k = 7
    preds = tmp_path / "preds.jsonl"
    server.hold_after(k)
    proc = subprocess.Popen(
        _cli(*predict_args(small, server, preds, "--concurrency", 3)),
        cwd=ROOT,
        env={**os.environ, "OPENAI_API_KEY": KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        # k answers on disk and the next requests held in the server: mid-run, in flight
        while not (
            preds.exists()
            and preds.read_bytes().count(b"\n") >= k
            and len(server.chat_requests()) > k
        ):
            if proc.poll() is not None:
                pytest.fail(f"predict ended early: {proc.stdout.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("predict wrote fewer than k answers in 120 s")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        server.release()
    first = lines(preds)
    assert len(first) == k  # every fsync'd answer survived, nothing torn
    asked_before = len(server.chat_requests())
    assert asked_before > k  # requests were in flight when it died

    res = run(*predict_args(small, server, preds, "--concurrency", 3))
    assert res.exit_code == 0, res.output
    assert f"({N_SMALL - k} now, {k} before;" in res.stdout
    assert len(server.chat_requests()) - asked_before == N_SMALL - k
    got = lines(preds)
    ids = [g["id"] for g in got]
    assert ids == [r["id"] for r in small_rows]  # each id once, in dataset order
    kept = {f["id"] for f in first}
    assert sorted(first, key=lambda g: g["id"]) == [g for g in got if g["id"] in kept]
    assert score_json(preds, small, "validation")["emotion"]["n"] == N_SMALL


def test_torn_last_line_is_dropped_and_asked_again(small, server, tmp_path):
    preds = tmp_path / "preds.jsonl"
    assert run(*predict_args(small, server, preds)).exit_code == 0
    data = preds.read_bytes()
    last = json.loads(data.splitlines()[-1])["id"]
    preds.write_bytes(data[:-25])  # a kill in the middle of the last write
    before = len(server.chat_requests())
    res = run(*predict_args(small, server, preds))
    assert res.exit_code == 0, res.output
    assert f"dropped a torn last line (id {last}" in res.stderr
    assert len(server.chat_requests()) == before + 1
    assert preds.read_bytes() == data  # same answers, same order, same bytes


def test_a_second_run_on_the_same_file_is_refused(small, server, tmp_path):
    preds = tmp_path / "preds.jsonl"
    holder = lib.Appender(preds)  # what a running predict holds
    try:
        line = one_error_line(run(*predict_args(small, server, preds)))
    finally:
        holder.close()
    assert "another 'indomer predict' is writing" in line and str(preds) in line
    assert server.chat_requests() == []


def test_a_file_from_another_model_is_not_extended(small, server, tmp_path):
    preds = tmp_path / "preds.jsonl"
    assert run(*predict_args(small, server, preds)).exit_code == 0
    args = predict_args(small, server, preds)
    args[args.index(MODEL)] = "other-model"
    line = one_error_line(run(*args))
    assert f"{preds}:1:" in line and "other-model" in line and "choose another --out" in line


# --------------------------------------------------------------------------- faults


def test_429_500_timeout_and_malformed_answers_are_retried(small, server, tmp_path, pauses):
    """One request each: 429 with Retry-After 7 (honoured), 500, no answer within --timeout,
    a cut JSON body; then the clip is answered, once."""
    server.script(("429", {"retry_after": 7}), "500", "slow", "malformed")
    preds = tmp_path / "preds.jsonl"
    res = run(*predict_args(small, server, preds, "--concurrency", 1, "--timeout", 0.5))
    assert res.exit_code == 0, res.output
    reqs = server.chat_requests()
    assert [r.outcome for r in reqs[:5]] == ["429", "500", "slow", "malformed", "ok"]
    assert len({r.text for r in reqs[:5]}) == 1  # the same clip, five times
    assert len(reqs) == N_SMALL + 4
    assert len(lines(preds)) == N_SMALL
    assert "4 retries" in res.stdout
    # Retry-After wins; otherwise exponential backoff with jitter in [0.75, 1] of the step
    assert pauses[0] == 7.0
    for attempt, pause in enumerate(pauses[1:], start=1):
        step = lib.BACKOFF_BASE * 2**attempt
        assert 0.75 * step <= pause <= step


def test_retries_run_out_in_one_line(small, server, tmp_path, pauses):
    server.script("500", "500", "500")
    preds = tmp_path / "preds.jsonl"
    line = one_error_line(
        run(*predict_args(small, server, preds, "--retries", 2, "--concurrency", 1))
    )
    assert "HTTP 500" in line and "CUDA out of memory" in line and "after 3 tries" in line
    assert len(pauses) == 2
    assert not preds.exists()  # nothing answered: no empty file left behind


def test_endpoint_down_is_one_line(small, tmp_path, pauses):
    url = f"http://127.0.0.1:{free_port()}/v1"
    preds = tmp_path / "preds.jsonl"
    res = run(
        "predict", small, "--endpoint", url, "--model", MODEL, "--split", "validation",
        "--modalities", "text", "--retries", 1, "--out", preds,
    )  # fmt: skip
    line = one_error_line(res)
    assert url in line and "cannot connect" in line and "after 2 tries" in line
    assert res.exit_code == 1 and not preds.exists()


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("html", ["answered HTTP 200 with text/html", "an HTML page", "http://HOST:8000/v1"]),
        ("empty", ["has no choices", "choices[0].message.content"]),
    ],
)
def test_html_or_no_choices_is_one_line_at_once(small, server, tmp_path, fault, expected):
    server.always = fault
    line = one_error_line(
        run(*predict_args(small, server, tmp_path / "p.jsonl", "--retries", 3, "--concurrency", 1))
    )
    assert server.url in line
    for part in expected:
        assert part in line
    assert len(server.chat_requests()) == 1  # not retried


def test_unknown_model_is_one_line_without_retry(small, server, tmp_path):
    args = predict_args(small, server, tmp_path / "p.jsonl", "--concurrency", 1)
    args[args.index(MODEL)] = "no-such-model"
    line = one_error_line(run(*args))
    assert "HTTP 404" in line and "no-such-model" in line and "/models" in line
    assert len(server.chat_requests()) == 1


# --------------------------------------------------------------------------- the key


def test_the_key_travels_only_in_the_authorization_header(small, server, tmp_path):
    preds = tmp_path / "preds.jsonl"
    outputs = []
    res = run(*predict_args(small, server, preds, "--dry-run"))
    assert res.exit_code == 0 and "Authorization: Bearer <$OPENAI_API_KEY, not shown>" in res.stdout
    outputs.append(res.output)
    res = run(*predict_args(small, server, preds))
    assert res.exit_code == 0
    outputs.append(res.output)
    server.always = "500"
    res = run(
        *predict_args(small, server, tmp_path / "other.jsonl", "--retries", 0, "--concurrency", 1)
    )
    assert "HTTP 500" in one_error_line(res)
    outputs.append(res.output)
    for text in [*outputs, preds.read_text()]:
        assert KEY not in text and KEY[8:20] not in text
    reqs = server.chat_requests()
    assert len(reqs) == N_SMALL + 1
    for req in reqs:
        assert req.headers["authorization"] == f"Bearer {KEY}"
        others = {k: v for k, v in req.headers.items() if k != "authorization"}
        assert KEY not in json.dumps(others) and KEY.encode() not in req.raw


def test_a_refused_key_is_one_line_that_does_not_show_it(small, tmp_path, monkeypatch):
    """The server (like OpenAI's) echoes the wrong key in its 401 message; indomer does not."""
    wrong = "sk-wrong-0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("MY_KEY", wrong)
    with FakeOpenAI(model=MODEL, api_key=KEY) as srv:
        args = predict_args(
            small, srv, tmp_path / "p.jsonl", "--api-key-env", "MY_KEY", "--concurrency", 1
        )
        res = run(*args)
        line = one_error_line(res)
        assert len(srv.chat_requests()) == 1  # not retried
        assert wrong in srv.chat_requests()[0].headers["authorization"]
    assert "HTTP 401" in line and "$MY_KEY" in line
    assert wrong not in res.output


def test_a_key_pasted_as_the_variable_name_is_not_echoed(small, server, tmp_path):
    res = run(*predict_args(small, server, tmp_path / "p.jsonl", "--api-key-env", KEY))
    line = one_error_line(res)
    assert res.exit_code == 2 and "NAME of an environment variable" in line
    assert KEY not in res.output


# --------------------------------------------------------------------------- bad input


def test_dry_run_prints_the_first_request_and_sends_nothing(demo, tmp_path):
    preds = tmp_path / "preds.jsonl"
    with FakeOpenAI(model=MODEL) as srv:
        res = run("predict", demo, "--endpoint", srv.url, "--model", MODEL, "--out", preds,
                  "--split", "test", "--dry-run")  # fmt: skip
        assert srv.requests == []
    assert res.exit_code == 0, res.output
    head, _, body = res.stdout.partition("\n\n")
    body, _, tally = body.rstrip("\n").rpartition("\n")  # the summary line comes last
    assert head.splitlines() == [
        f"POST {srv.url}/chat/completions",
        "Authorization: Bearer <$OPENAI_API_KEY, not shown>",
        "Content-Type: application/json",
    ]
    req = json.loads(body)
    first = read_split(demo, "test").iloc[0]
    url = req["messages"][1]["content"][0]["video_url"]["url"]
    assert url == f"data:video/mp4;base64,<{len(first['video']['bytes'])} bytes, not shown>"
    assert req["mm_processor_kwargs"] == {"use_audio_in_video": True}
    assert first["text"].strip() in req["messages"][1]["content"][1]["text"]
    assert tally.startswith("dry run: 5 clip(s) of 5 to ask")  # the demo's test split
    assert not preds.exists()


def test_clips_without_media_are_skipped_and_named(demo, tmp_path):
    """Two clips lose their video: they are listed (stderr and PREDS.skipped.jsonl), the others
    answered, and score --allow-missing accepts the file."""
    rows = read_split(demo, "test")
    gone = sorted(rows["id"])[:2]
    rows["video"] = [None if i in gone else v for i, v in zip(rows["id"], rows["video"])]
    partial = tmp_path / "partial"
    write_split(partial, "test", rows)
    preds = tmp_path / "preds.jsonl"
    with FakeOpenAI(model=MODEL) as srv:
        res = run("predict", partial, "--endpoint", srv.url, "--model", MODEL, "--split", "test",
                  "--modalities", "video", "--out", preds)  # fmt: skip
        assert len(srv.chat_requests()) == len(rows) - 2
    assert res.exit_code == 0, res.output
    warning = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: skipped")]
    assert len(warning) == 1 and "2 clip(s) without video" in warning[0]
    assert all(i in warning[0] for i in gone)
    skipped = preds.with_name("preds.jsonl.skipped.jsonl")
    assert lines(skipped) == [{"id": i, "lacks": ["video"]} for i in gone]
    assert sorted(g["id"] for g in lines(preds)) == sorted(set(rows["id"]) - set(gone))
    assert "(2 skipped)" in res.stdout or "2 skipped" in res.stdout
    assert score_json(preds, partial, "test", "--allow-missing")["emotion"]["n_missing"] == 2


def test_a_release_build_has_no_media_to_send(small, server, tmp_path):
    line = one_error_line(
        run(*predict_args(small, server, tmp_path / "p.jsonl", "--modalities", "text,video"))
    )
    assert f"none of the {N_SMALL} clips" in line and "has video" in line
    assert "--modalities text" in line
    assert server.chat_requests() == []


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--task", "arousal", "--task 'arousal': expected one of emotion, sentiment"),
        ("--modalities", "text,smell", "expected a comma-separated subset of text, audio, video"),
        ("--concurrency", "0", "--concurrency 0: expected at least 1"),
        ("--endpoint", "localhost:8000", "expected the API base URL"),
        ("--split", "test", "no 'test' split (found: validation)"),
    ],
)
def test_bad_options_are_one_line(small, server, tmp_path, option, value, expected):
    args = predict_args(small, server, tmp_path / "p.jsonl")
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    line = one_error_line(run(*args))
    assert expected in line
    assert server.chat_requests() == []


# --------------------------------------------------------------------------- the protocol


def test_the_fake_server_speaks_what_the_openai_client_parses():
    """Its answers validate as the client's ChatCompletion type, and its error bodies become
    the client's typed errors with their messages and headers (so the fake cannot drift)."""
    import openai
    from openai.types.chat import ChatCompletion

    with FakeOpenAI(model=MODEL, api_key=KEY, answer=lambda req: "netral") as srv:
        client = openai.OpenAI(api_key=KEY, base_url=srv.url, max_retries=0, timeout=5)
        done = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert isinstance(done, ChatCompletion) and done.choices[0].message.content == "netral"
        ChatCompletion.model_validate(done.model_dump(), strict=True)
        assert client.models.list().data[0].id == MODEL
        srv.script(("429", {"retry_after": 3}))
        with pytest.raises(openai.RateLimitError) as rate:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        assert rate.value.response.headers["retry-after"] == "3"
        assert rate.value.body["message"] == "Rate limit reached"
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="nope", messages=[{"role": "user", "content": "x"}]
            )
        bad = openai.OpenAI(api_key="wrong", base_url=srv.url, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.BadRequestError):  # vLLM refuses an unknown content part
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": [{"type": "smell"}]}]
            )
        part = {"type": "input_audio", "input_audio": {"data": "not base64!", "format": "wav"}}
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": [part]}]
            )


def test_without_the_extra_it_says_which_to_install(small, server, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)  # import openai -> ImportError
    preds = tmp_path / "p.jsonl"
    line = one_error_line(run(*predict_args(small, server, preds)))
    assert line == "error: openai is not installed; install it with: pip install 'indomer[predict]'"
    assert not preds.exists() and server.chat_requests() == []


def test_help_does_not_import_the_client():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from indomer.cli import main\n"
        "res = CliRunner().invoke(main, ['predict', '--help'])\n"
        "assert res.exit_code == 0, res.output\n"
        "print(sorted(m for m in ('openai', 'httpx', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- hostile servers


def test_a_trickling_answer_meets_the_total_deadline(small, server, tmp_path, pauses):
    """A body sent one byte every 0.2 s would take minutes; --timeout 1 is a total per
    request, so the request is given up after about a second, retried, then one line."""
    server.script(("trickle", {"interval": 0.2}), ("trickle", {"interval": 0.2}))
    preds = tmp_path / "preds.jsonl"
    line = one_error_line(
        run(*predict_args(small, server, preds, "--concurrency", 1, "--timeout", 1,
                          "--retries", 1))
    )
    assert "no complete answer within --timeout 1 s" in line and "after 2 tries" in line
    assert [r.outcome for r in server.chat_requests()] == ["trickle", "trickle"]
    assert not preds.exists()


def test_a_huge_answer_is_stored_cut_and_flagged(small, small_rows, tmp_path):
    long = "bahagia " * 5000  # 40,000 bytes
    with FakeOpenAI(model=MODEL, api_key=KEY, answer=lambda req: long) as srv:
        preds = tmp_path / "preds.jsonl"
        res = run(*predict_args(small, srv, preds, "--max-answer", 1000))
    assert res.exit_code == 0, res.output
    got = lines(preds)
    assert len(got) == N_SMALL
    for g in got:
        assert g["truncated"] is True
        assert g["emotion"] == long.encode()[:1000].decode()
    assert lib.cap_answer(lib.Answer("é" * 3, None), 5) == lib.Answer("éé", None, True)
    assert lib.cap_answer(lib.Answer("short", "stop"), 5) == lib.Answer("short", "stop")


# --------------------------------------------------------------------------- split assignment


def test_predictions_name_the_assignment_and_score_refuses_another(built, tmp_path):
    """predict's sidecar records the active split's name and assignment sha256: the same
    dataset scores the file; after a re-split under the same name, score refuses it in one
    line, and predict will not extend it."""
    import shutil

    from indomer.dataset import split_identity

    ds = tmp_path / "ds"
    shutil.copytree(built, ds, symlinks=True)
    assert run("split", ds, "--speaker-disjoint", "--seed", 1).exit_code == 0
    identity = split_identity(ds)
    assert identity is not None and identity["name"] == "speaker-disjoint"
    rows = read_split(ds, "validation").to_dict("records")
    preds = tmp_path / "preds.jsonl"
    with FakeOpenAI(model=MODEL, api_key=KEY, answer=truth_answerer(rows)) as srv:
        res = run(*predict_args(ds, srv, preds))
        assert res.exit_code == 0, res.output
        side = json.loads((tmp_path / "preds.jsonl.meta.json").read_text(encoding="utf-8"))
        assert side["assignment"] == identity
        assert side["split"] == "validation" and side["model"] == MODEL
        assert side["prompt_sha256"] == lib.prompt_for("emotion", ("text",)).sha256
        # without a re-split: scored
        result = score_json(preds, ds, "validation")
        assert result["emotion"]["n"] == len(rows)
        assert result["emotion"]["assignment"] == identity
        # re-split under the same name: refused, naming both assignments
        res = run("split", ds, "--speaker-disjoint", "--seed", 2, "--replace")
        assert res.exit_code == 0, res.output
        now = split_identity(ds)
        assert now["name"] == identity["name"] and now["sha256"] != identity["sha256"]
        line = one_error_line(run("score", preds, "--refs", ds, "--split", "validation"))
        assert (f"made against split 'speaker-disjoint' assignment {identity['sha256'][:12]}"
                in line and now["sha256"][:12] in line)
        # and predict does not append answers about the new clips to the old file
        before = preds.read_bytes()
        line = one_error_line(run(*predict_args(ds, srv, preds)))
        assert "choose another --out" in line and identity["sha256"][:12] in line
        assert preds.read_bytes() == before


def test_a_split_committed_during_the_long_read_changes_nothing_it_reads(
    built, small_rows, tmp_path
):
    """Issue 22: predict streams the split for hours; a ``split`` committed after it read the
    ids (here between the ids and the first batch of clips, at the reader's ``read`` fault
    point) leaves it asking exactly the clips of the generation it started on."""
    import shutil

    from indomer.faults import at
    from indomer.split import resplit

    out = tmp_path / "ds"
    shutil.copytree(built, out, symlinks=True)
    old = read_split(out, "validation", columns=["id"])["id"].tolist()
    reads: list[int] = []

    def commit_on_second_read() -> None:
        reads.append(1)
        if len(reads) == 2:  # the first batch of the clips, after the ids were read
            resplit(out, ratios=(0.5, 0.5), seed=7, name="moved", warn=lambda m: None)

    preds = tmp_path / "preds.jsonl"
    with (
        FakeOpenAI(model=MODEL, api_key=KEY, answer=lambda req: "netral") as srv,
        at("read", commit_on_second_read),
    ):
        res = run(*predict_args(out, srv, preds, "--concurrency", 4))
    assert len(reads) >= 2
    assert res.exit_code == 0, res.output
    new = read_split(out, "validation", columns=["id"])["id"].tolist()
    assert sorted(new) != sorted(old)  # the split did move clips under the run
    assert [g["id"] for g in lines(preds)] == old

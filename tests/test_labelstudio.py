"""The Label Studio client layer without a server: its one-line errors (token, URL, HTTP
failures), project lookup by title and the task bookkeeping push relies on. The round trip
through a real server is tests/test_annotate_labelstudio.py."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from label_studio_sdk.core.api_error import ApiError

from indomer import labelstudio as lsmod
from indomer.errors import DataError, UsageError

URL = "http://127.0.0.1:8080"


def test_the_summary_line_counts_what_push_did():
    result = lsmod.PushResult(project_id=7, title="indomer demo", created=True,
                              storages=["/a", "/b"], imported=3, unchanged=1, predictions=2)
    assert result.line(URL + "/") == (
        "created project 'indomer demo' (id 7) at http://127.0.0.1:8080/, 2 media folder(s) "
        "connected: 3 task(s) imported, 0 updated, 1 unchanged, 2 pre-annotation(s) added; "
        "open http://127.0.0.1:8080/projects/7/"
    )


def test_the_token_comes_from_the_named_variable_only(monkeypatch):
    monkeypatch.delenv("MY_LS_TOKEN", raising=False)
    with pytest.raises(UsageError, match=r"^--token-env MY_LS_TOKEN: the environment variable "
                                         r"MY_LS_TOKEN is not set; copy the token"):
        lsmod.client(URL, "MY_LS_TOKEN")
    monkeypatch.setenv("MY_LS_TOKEN", "  secret  ")
    assert lsmod._token("MY_LS_TOKEN") == "secret"
    with pytest.raises(UsageError, match=r"^--labelstudio 'localhost:8080': expected an http"):
        lsmod.client("localhost:8080", "MY_LS_TOKEN")


def boom(exc: Exception):
    def fn(*args, **kwargs):
        raise exc
    return fn


def test_sdk_failures_become_one_line_naming_the_server_and_the_request():
    assert lsmod._call(URL, "list projects", lambda x, y=0: x + y, 1, y=2) == 3
    with pytest.raises(UsageError) as info:
        lsmod._call(URL, "create project", boom(ApiError(status_code=401,
                                                         body={"detail": "Invalid token"})))
    assert str(info.value) == (
        f'{URL}: create project: HTTP 401 ({{"detail": "Invalid token"}}); the token is not '
        "accepted: check the token variable (--token-env) and that its user may do this"
    )
    with pytest.raises(DataError, match=r"^http://127.0.0.1:8080: import tasks: HTTP 500: a\s"
                                        r"b$"):
        lsmod._call(URL, "import tasks", boom(ApiError(status_code=500, body="a\n  b")))
    with pytest.raises(UsageError, match=r"cannot reach Label Studio \(ConnectError: refused\); "
                                         r"start it"):
        lsmod._call(URL, "list projects", boom(httpx.ConnectError("refused")))


def fake_server(titles: list[str], tasks: list[dict] | None = None) -> SimpleNamespace:
    projects = [SimpleNamespace(id=i + 1, title=t) for i, t in enumerate(titles)]
    rows = [SimpleNamespace(**t) for t in tasks or []]
    return SimpleNamespace(
        projects=SimpleNamespace(list=lambda title, page_size: iter(projects)),
        tasks=SimpleNamespace(list=lambda project, page_size: iter(rows)),
    )


def test_a_project_is_found_by_its_exact_title_and_two_of_one_title_are_refused():
    ls = fake_server(["indomer demo2", "indomer demo", "other"])
    assert lsmod.find_project(ls, URL, "indomer demo").id == 2
    assert lsmod.find_project(ls, URL, "indomer") is None
    twice = fake_server(["indomer demo", "x", "indomer demo"])
    with pytest.raises(UsageError, match=r"2 projects are titled 'indomer demo' \(ids 1, 3\)"):
        lsmod.find_project(twice, URL, "indomer demo")


def test_the_default_title_names_the_dataset_folder(tmp_path):
    assert lsmod._project_name(tmp_path / "my-build", None) == "indomer my-build"
    assert lsmod._project_name(Path("x"), "Batch 2") == "Batch 2"
    with pytest.raises(UsageError, match=r"^--project: give a non-empty project title$"):
        lsmod._project_name(Path("x"), "  ")


def test_tasks_are_matched_by_clip_id_and_predictions_by_model_version():
    ls = fake_server([], tasks=[
        {"data": {"clip_id": "clip_1_A_1"}, "predictions": [{"model_version": "m1"}]},
        {"data": {"other": 1}, "predictions": []},
        {"data": None, "predictions": None},
        {"data": {"clip_id": "clip_1_A_2"},
         "predictions": [SimpleNamespace(model_version="m2"), {"model_version": ""}]},
    ])
    by_clip = lsmod._tasks_by_clip(ls, URL, 1)
    assert sorted(by_clip) == ["clip_1_A_1", "clip_1_A_2"]
    assert lsmod._model_versions(by_clip["clip_1_A_1"]) == {"m1"}
    assert lsmod._model_versions(by_clip["clip_1_A_2"]) == {"m2"}
    assert lsmod._same({"a": 1, "b": [2]}, {"b": [2], "a": 1})
    assert not lsmod._same({"a": 1}, {"a": 1.5})

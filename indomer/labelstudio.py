"""``indomer annotate push|pull``: a Label Studio project in one command each way.

``push`` turns a build's clips into Label Studio tasks (:func:`indomer.annotate.labelstudio_tasks`,
the very tasks ``annotate export`` writes) and makes the server hold them: the project (found
by its title, created when absent), its label config, one local-files storage per clip folder
(so the player can fetch the media) and the tasks, matched by ``clip_id``: a clip the project
lacks is imported, one whose data changed is updated, and a model's answers become
pre-annotations once per model version. Running it twice changes nothing the second time.

``pull`` downloads the project's JSON export and reads it with ``annotate import``
(:func:`indomer.annotate.import_export`) into pseudonymised sheets. The export holds the
annotators' e-mail addresses, so it only passes through a private temporary file.

Both talk to the server through the official ``label-studio-sdk`` client (legacy tokens and
personal access tokens alike); the token comes from an environment variable, never from the
command line, and is never printed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from indomer.errors import DataError, MissingExtraError, UsageError

if TYPE_CHECKING:
    from indomer.annotate import TaskOptions

DEFAULT_TOKEN_ENV = "LABEL_STUDIO_API_KEY"
#: Seconds one request may take (an import of a few thousand tasks included).
TIMEOUT = 300.0


@dataclass
class PushResult:
    """What ``push`` did to the project (counts; the project's id and title)."""

    project_id: int
    title: str
    created: bool = False
    config_updated: bool = False
    storages: list[str] = field(default_factory=list)  # folders newly connected
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    predictions: int = 0

    def line(self, url: str) -> str:
        state = "created" if self.created else "updated"
        config = ", label config replaced" if self.config_updated else ""
        storages = f", {len(self.storages)} media folder(s) connected" if self.storages else ""
        return (
            f"{state} project '{self.title}' (id {self.project_id}) at {url}{config}{storages}: "
            f"{self.imported} task(s) imported, {self.updated} updated, {self.unchanged} "
            f"unchanged, {self.predictions} pre-annotation(s) added; open "
            f"{url.rstrip('/')}/projects/{self.project_id}/"
        )


def _token(token_env: str) -> str:
    value = os.environ.get(token_env, "").strip()
    if not value:
        raise UsageError(
            f"--token-env {token_env}: the environment variable {token_env} is not set; copy "
            "the token from Label Studio (Account & Settings) and run: export "
            f"{token_env}=TOKEN (see the README's Label Studio section)"
        )
    return value


def client(url: str, token_env: str = DEFAULT_TOKEN_ENV) -> Any:
    """The SDK's ``LabelStudio`` client for ``url`` with the token in ``$token_env``."""
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--labelstudio {url!r}: expected an http:// or https:// URL")
    token = _token(token_env)
    try:
        from label_studio_sdk import LabelStudio
    except ImportError:
        raise MissingExtraError(
            "annotate push/pull need the Label Studio SDK; run: pip install 'indomer[annotate]'"
        ) from None
    return LabelStudio(base_url=url.rstrip("/"), api_key=token, timeout=TIMEOUT)


def _call(url: str, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """One SDK call; its failures as one line that names the server and what was asked."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body, default=str)
        body = " ".join(str(body).split())[:300]
        if exc.status_code in (401, 403):
            raise UsageError(
                f"{url}: {what}: HTTP {exc.status_code} ({body}); the token is not accepted: "
                "check the token variable (--token-env) and that its user may do this"
            ) from None
        raise DataError(f"{url}: {what}: HTTP {exc.status_code}: {body}") from None
    except httpx.HTTPError as exc:
        raise UsageError(
            f"{url}: cannot reach Label Studio ({type(exc).__name__}: {exc}); start it "
            "(label-studio start) or fix --labelstudio"
        ) from None


def find_project(ls: Any, url: str, title: str) -> Any | None:
    """The project titled exactly ``title`` (None when absent; two of that title: an error)."""
    pager = _call(url, "list projects", ls.projects.list, title=title, page_size=100)
    found = [p for p in _call(url, "list projects", list, pager) if p.title == title]
    if len(found) > 1:
        ids = ", ".join(str(p.id) for p in found)
        raise UsageError(
            f"{url}: {len(found)} projects are titled '{title}' (ids {ids}); rename one in "
            "Label Studio or choose another --project"
        )
    return found[0] if found else None


def _project_name(out: Path, project: str | None) -> str:
    name = project if project is not None else f"indomer {Path(out).absolute().name}"
    if not name.strip():
        raise UsageError("--project: give a non-empty project title")
    return name


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _tasks_by_clip(ls: Any, url: str, project_id: int) -> dict[str, Any]:
    pager = _call(url, "list tasks", ls.tasks.list, project=project_id, page_size=100)
    out: dict[str, Any] = {}
    for t in _call(url, "list tasks", list, pager):
        clip = (t.data or {}).get("clip_id") if isinstance(t.data, dict) else None
        if isinstance(clip, str):
            out[clip] = t
    return out


def _model_versions(task: Any) -> set[str]:
    preds = getattr(task, "predictions", None) or []
    out = set()
    for p in preds:
        version = p.get("model_version") if isinstance(p, dict) else getattr(p, "model_version", None)
        if version:
            out.add(str(version))
    return out


def push(
    out: Path,
    url: str,
    *,
    project: str | None = None,
    token_env: str = DEFAULT_TOKEN_ENV,
    **which: Unpack[TaskOptions],
) -> PushResult:
    """Create or update the project of the build ``out`` on the server at ``url``; ``which``
    chooses the clips and their media as for ``annotate export`` (the same tasks)."""
    from indomer.annotate import label_config, labelstudio_tasks

    tasks, serving = labelstudio_tasks(out, **which)
    title = _project_name(out, project)
    ls = client(url, token_env)
    config = label_config()
    found = find_project(ls, url, title)
    if found is None:
        made = _call(
            url,
            f"create project '{title}'",
            ls.projects.create,
            title=title,
            label_config=config,
            description=f"IndoMER clips of {Path(out).absolute()} (indomer annotate push)",
        )
        result = PushResult(project_id=made.id, title=title, created=True)
    else:
        result = PushResult(project_id=found.id, title=title)
        current = _call(url, f"read project '{title}'", ls.projects.get, found.id)
        if (current.label_config or "").strip() != config.strip():
            _call(
                url,
                f"set the label config of '{title}'",
                ls.projects.update,
                found.id,
                label_config=config,
            )
            result.config_updated = True
    pid = result.project_id
    have = {
        str(Path(s.path))
        for s in _call(url, "list storages", ls.import_storage.local.list, project=pid)
        if getattr(s, "path", None)
    }
    for folder in serving["local_storage_paths"]:
        if folder in have:
            continue
        _call(
            url,
            f"connect the media folder {folder} (the server needs "
            "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and "
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT above it)",
            ls.import_storage.local.create,
            project=pid,
            path=folder,
            title=f"indomer clips: {Path(folder).name}",
            use_blob_urls=False,
        )
        result.storages.append(folder)
    existing = _tasks_by_clip(ls, url, pid) if not result.created else {}
    new = []
    for task in tasks:
        clip = task["data"]["clip_id"]
        there = existing.get(clip)
        if there is None:
            new.append(task)
            result.predictions += len(task.get("predictions", []))
            continue
        if _same(there.data, task["data"]):
            result.unchanged += 1
        else:
            _call(url, f"update the task of {clip}", ls.tasks.update, str(there.id), data=task["data"])
            result.updated += 1
        versions = _model_versions(there)
        for pred in task.get("predictions", []):
            if pred["model_version"] in versions:
                continue
            _call(
                url,
                f"add the pre-annotation of {clip}",
                ls.predictions.create,
                task=there.id,
                result=pred["result"],
                model_version=pred["model_version"],
            )
            result.predictions += 1
    if new:
        _call(url, f"import {len(new)} task(s)", ls.projects.import_tasks, pid, request=new)
        result.imported = len(new)
    return result


def download_export(ls: Any, url: str, project_id: int) -> bytes:
    """The project's full JSON export (every annotation, cancelled ones included)."""
    chunks: Iterable[bytes] = _call(
        url,
        "export the project",
        ls.projects.exports.download_sync,
        project_id,
        export_type="JSON",
    )
    return _call(url, "export the project", b"".join, chunks)


def pull(
    url: str,
    project: str,
    sheets: Path,
    *,
    token_env: str = DEFAULT_TOKEN_ENV,
    experts: list[str] | None = None,
    annotator_map: Path | None = None,
    known: set[str] | None = None,
) -> Any:
    """Fetch the project's export and import it into ``sheets`` (``annotate import``'s
    :class:`~indomer.annotate.ImportResult`)."""
    from indomer.annotate import import_export

    ls = client(url, token_env)
    found = find_project(ls, url, project)
    if found is None:
        raise UsageError(
            f"{url}: no project titled '{project}'; give --project the title 'annotate push' "
            "printed (by default 'indomer OUTNAME')"
        )
    data = download_export(ls, url, found.id)
    with tempfile.TemporaryDirectory(prefix="indomer-ls-") as tmp:
        path = Path(tmp) / f"project-{found.id}-export.json"  # holds e-mails: private, deleted
        path.write_bytes(data)
        return import_export(
            path, sheets, experts=experts or [], annotator_map=annotator_map, known=known
        )


__all__ = ["DEFAULT_TOKEN_ENV", "PushResult", "client", "find_project", "pull", "push"]

"""A real Label Studio server for the tests (issue 11): ``label-studio`` 1.23.2 from its own
virtual environment (``.cache/labelstudio-venv``, made by ``tools/install.sh test``), started
once per session on 127.0.0.1 with SQLite in a temporary data dir, local-files serving on and
a legacy API token (``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN``). Not starting is a failure."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("INDOMER_LABELSTUDIO_VENV", ROOT / ".cache" / "labelstudio-venv"))
VERSION = "1.23.2"
TOKEN = "indomer-test-token-0123456789"
ADMIN = "admin@indomer.test"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def api(self, method: str, path: str, body=None, raw: bool = False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                payload = resp.read()
                return (resp.status, payload) if raw else json.loads(payload or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(
                f"{method} {path}: HTTP {exc.code}: {exc.read()[:800]!r}"
            ) from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data_dir: Path, document_root: Path, timeout: float = 300.0) -> Server:
    """Start Label Studio and wait for /health; raise (the test fails) when it cannot."""
    return wait(launch(data_dir, document_root), timeout)


def launch(data_dir: Path, document_root: Path) -> Server:
    """Start Label Studio without waiting (the caller can work meanwhile, then :func:`wait`)."""
    exe = VENV / "bin" / "label-studio"
    if not exe.is_file():
        raise RuntimeError(
            f"{exe}: Label Studio {VERSION} is not installed; run tools/install.sh test"
        )
    port = _free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
        "LABEL_STUDIO_USERNAME": ADMIN,
        "LABEL_STUDIO_PASSWORD": "indomer-test-password",
        "LABEL_STUDIO_USER_TOKEN": TOKEN,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "false",
        "DJANGO_DB": "sqlite",
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    }
    log = data_dir / "server.log"
    fh = open(log, "wb")  # noqa: SIM115 (kept open for the server's lifetime)
    proc = subprocess.Popen(
        [
            str(exe),
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=fh,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=data_dir,
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    server.t0 = time.monotonic()  # type: ignore[attr-defined]
    return server


def wait(server: Server, timeout: float = 300.0) -> Server:
    """Wait for /health (200); stop the server and raise when it does not come up."""
    proc, log, t0 = server.proc, server.log, server.t0  # type: ignore[attr-defined]
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"label-studio exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=5) as resp:
                if resp.status == 200:
                    server.started_in = time.monotonic() - t0  # type: ignore[attr-defined]
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(2)
    stop(server)
    raise RuntimeError(
        f"label-studio did not answer /health in {timeout:.0f} s: {log.read_text()[-2000:]}"
    )


def stop(server: Server) -> None:
    """Stop the server this module started (its own process group)."""
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, 15)
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, 9)
            server.proc.wait()

"""quiet_server.py: the tests' HTTP servers stay silent when a client hangs up mid-answer
(which would put a traceback into a command's captured one-line stderr) and still report a
real handler fault."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest
from quiet_server import QuietHTTPServer


class _Raises(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        raise {"/reset": ConnectionResetError, "/pipe": BrokenPipeError}.get(
            self.path, ValueError
        )("raised by the handler")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def url():
    httpd = QuietHTTPServer(("127.0.0.1", 0), _Raises)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _get(url: str) -> None:
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, timeout=10)


def test_a_client_hang_up_prints_nothing(url, capfd):
    _get(f"{url}/reset")
    _get(f"{url}/pipe")
    assert "raised by the handler" not in capfd.readouterr().err


def test_a_real_handler_fault_is_still_printed(url, capfd):
    _get(f"{url}/other")
    err = capfd.readouterr().err
    assert "ValueError: raised by the handler" in err

"""The tests' local HTTP servers (fake OpenAI, fake Hub, release downloads, fetch's URL
source) on one base class that does not print a client's hang-up.

A client that stops reading once it has seen enough (an HTML page, a refused body, a cut
download) resets the connection while a handler still writes: that is the client's right,
not a server fault. socketserver prints it to ``sys.stderr``, which in a test is the
command's own captured stderr, so a test that checks the command's one-line error would
read the traceback and fail by chance."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer


class QuietHTTPServer(ThreadingHTTPServer):
    """A :class:`ThreadingHTTPServer` that stays silent when the client hangs up mid-answer
    and reports every other handler error as usual."""

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

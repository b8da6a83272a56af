"""`make bench` on a busy machine (issue 18): a set-up call the host sheds (503, storage stalled past the request's
budget) is sent again instead of stopping the run."""

from __future__ import annotations

import http.server
import threading

import requests

from bench.webhook import setup_call
from devhost.azurite import free_port


class _Host:
    """What the bench's set-up calls: a `call(method, path)` on a loopback server."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        return requests.request(method, self.url + path, timeout=10, **kwargs)


def test_a_shed_set_up_call_is_sent_again_and_its_answer_kept() -> None:
    answers = [503, 503, 201]
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            seen.append(self.path)
            self.send_response(answers.pop(0))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = setup_call(_Host(f"http://127.0.0.1:{server.server_address[1]}"), "PUT", "/api/vsts/integrations/x")
    finally:
        server.shutdown()
    assert answer.status_code == 201 and seen == ["/api/vsts/integrations/x"] * 3

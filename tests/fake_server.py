"""A local OpenAI-compatible server for tests: it answers DSPy's prompts and injects faults on demand.

    with FakeServer(responder) as server:
        lm = resolve_lm("openai/fake", api_base=server.url)

``responder(body)`` gets the JSON body of a ``/v1/chat/completions`` request and returns the reply's
text, or a ``Fault``: an HTTP error status, a delay before answering (a timeout for a short client
timeout), a dropped connection, or a raw body that is not an OpenAI response. ``$API_KEY`` in a reply or
an error message becomes the key the client sent, as a provider that echoes it would. It binds 127.0.0.1
only.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # answer with this HTTP status and an OpenAI-style error body
    delay: float = 0.0  # seconds to wait before answering (then answer ``text``)
    close: bool = False  # drop the connection without an answer
    body: str | None = None  # answer 200 with this raw body
    text: str = ""  # the reply text after a delay
    message: str = "injected fault"  # the error message of a status fault


Responder = Callable[[dict], "str | Fault"]

_OUTPUT_FIELDS = re.compile(r"Your output fields are:\n(.*?)(?:\n\n|\Z)", re.S)
_FIELD_NAME = re.compile(r"^\s*\d+\.\s+`(\w+)`", re.M)


def output_fields(body: dict) -> list[str]:
    """The output field names a DSPy adapter's system prompt asks for, in order."""
    system = next((m["content"] for m in body.get("messages", []) if m.get("role") == "system"), "")
    if isinstance(system, list):
        system = "".join(part.get("text", "") for part in system)
    block = _OUTPUT_FIELDS.search(system)
    return _FIELD_NAME.findall(block.group(1)) if block else []


def fields_reply(body: dict, values: dict[str, str]) -> str:
    """A reply that DSPy parses: each requested output field filled from ``values`` (default ``"x"``),
    in the ChatAdapter's ``[[ ## name ## ]]`` form, or as JSON when the request asks for JSON."""
    names = output_fields(body) or list(values)
    filled = {name: values.get(name, "x") for name in names}
    if body.get("response_format") or "JSON object" in json.dumps(body.get("messages", [])):
        return json.dumps(filled)  # the JSONAdapter, or the ChatAdapter's JSON retry after a parse failure
    return "\n\n".join(f"[[ ## {name} ## ]]\n{value}" for name, value in filled.items()) + "\n\n[[ ## completed ## ]]"


def last_user_text(body: dict) -> str:
    messages = [m for m in body.get("messages", []) if m.get("role") == "user"]
    content = messages[-1]["content"] if messages else ""
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 1024  # hundreds of calls in flight connect at once

    def handle_error(self, request, client_address):
        """A client that hung up (a timeout) is part of the test, not an error worth a traceback."""


class FakeServer:
    def __init__(self, responder: Responder, model: str = "fake", port: int = 0):
        self.responder = responder
        self.model = model
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each reply waits ~40 ms for a delayed ACK

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(body)
                key = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                reply = server.responder(body)
                if isinstance(reply, Fault):
                    reply = replace(reply, message=reply.message.replace("$API_KEY", key),
                                    text=reply.text.replace("$API_KEY", key),
                                    body=None if reply.body is None else reply.body.replace("$API_KEY", key))
                else:
                    reply = reply.replace("$API_KEY", key)
                if isinstance(reply, Fault):
                    if reply.delay:
                        time.sleep(reply.delay)
                    if reply.close:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if reply.status:
                        self._send(reply.status, {"error": {"message": reply.message, "type": "server_error",
                                                            "code": reply.status}})
                        return
                    if reply.body is not None:
                        self._send_raw(200, reply.body.encode())
                        return
                    reply = reply.text
                self._send(200, server._completion(body, reply))

            def _send(self, status: int, payload: dict):
                self._send_raw(status, json.dumps(payload).encode())

            def _send_raw(self, status: int, data: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _completion(self, body: dict, text: str) -> dict:
        n = int(body.get("n") or 1)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return {
            "id": f"fake-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": i, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}} for i in range(n)],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                      "total_tokens": prompt_tokens + len(text.split())},
        }

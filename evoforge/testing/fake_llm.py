"""A fake OpenAI-compatible chat server for tests, on the standard library only.

The server speaks real HTTP/1.1 on ``127.0.0.1`` (an ephemeral port) from a
background thread, so clients are exercised end to end: connection handling,
status codes, headers, timeouts and JSON decoding included. Replies are
scripted::

    with FakeLLMServer([Reply.text("hello"), Reply.error(429, retry_after=1)]) as srv:
        client = AsyncOpenAI(base_url=srv.base_url, api_key="none")
        ...
        assert srv.requests[0].body["model"] == "fake-model"

Endpoints: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Latency note: ``http.server`` answers about 40 ms late on kept-alive
connections when a response leaves in several small writes (Nagle's algorithm
meets delayed ACKs), so the handler disables Nagle and sends every response
(status line, headers and body) in a single write.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from evoforge.testing.replies import Reply, ReplyScript, _estimate_tokens, search_replace_block

__all__ = ["FakeLLMServer", "RecordedRequest", "Reply", "ReplyScript", "search_replace_block"]

_MAX_BODY = 64 * 1024 * 1024
_IDLE_TIMEOUT = 30.0  # seconds an idle kept-alive connection stays open
_POLL_INTERVAL = 0.01  # how soon serve_forever notices stop()


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake server received.

    Attributes:
        method: ``GET`` or ``POST``.
        path: the request path (``/v1/chat/completions``).
        headers: the headers, names in lower case.
        body: the parsed JSON body (None when empty or not JSON).
        raw: the raw body.
        time: ``time.monotonic()`` when the request arrived.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    time: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: FakeLLMServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away; report anything else."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) or self.owner._stopping.is_set():
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = _IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def do_GET(self) -> None:
        """Answer ``GET /v1/models``."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Answer ``POST /v1/chat/completions``."""
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        owner = self.server.owner
        raw = self._read_body()
        if raw is None:
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0].rstrip("/")
        owner._record(
            RecordedRequest(
                method=method,
                path=path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                raw=raw,
                time=time.monotonic(),
            )
        )
        if method == "GET" and path == "/v1/models" and owner.serve_models:
            reply = owner.models_reply
            if reply is not None and reply.delay > 0 and owner._stopping.wait(reply.delay):
                self.close_connection = True  # stopping: drop the reply
                return
            if reply is not None and reply.kind in ("error", "malformed"):
                self._send(reply.status, (reply.body or "").encode(), _extra_headers(reply))
                return
            data = [
                {"id": name, "object": "model", "created": 0, "owned_by": "evoforge-fake"}
                for name in owner.models
            ]
            self._send(200, json.dumps({"object": "list", "data": data}).encode())
        elif method == "POST" and path == "/v1/chat/completions":
            owner._enter()
            try:
                self._chat(owner, body)
            finally:
                owner._leave()
        else:
            error = {"message": f"fake server: no route {method} {path}", "type": "not_found"}
            self._send(404, json.dumps({"error": error}).encode())

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY:
            self.close_connection = True
            self._send(400, b'{"error": {"message": "bad Content-Length"}}')
            return None
        return self.rfile.read(length) if length else b""

    def _chat(self, owner: FakeLLMServer, request: Any) -> None:
        try:
            reply = owner._next_reply(request)
        except Exception as exc:  # a script function that raised
            message = f"fake server: the reply script raised {type(exc).__name__}: {exc}"
            self._send(500, json.dumps({"error": {"message": message}}).encode())
            return
        if reply is None:
            message = (
                f"fake server: the script is exhausted after {owner.replies_sent} replies "
                "and no default reply was given"
            )
            self._send(500, json.dumps({"error": {"message": message}}).encode())
            return
        if reply.delay > 0 and owner._stopping.wait(reply.delay):
            self.close_connection = True  # stopping: drop the reply
            return
        headers = _extra_headers(reply)
        if reply.kind in ("error", "malformed"):
            self._send(reply.status, (reply.body or "").encode(), headers)
            return
        model = request.get("model") if isinstance(request, dict) else None
        prompt = reply.prompt_tokens
        if prompt is None:
            messages = request.get("messages") if isinstance(request, dict) else None
            text = "".join(
                str(m.get("content") or "") for m in messages or [] if isinstance(m, dict)
            )
            prompt = _estimate_tokens(text)
        completion = reply.completion_tokens
        if completion is None:
            completion = _estimate_tokens(reply.content)
        payload = {
            "id": f"chatcmpl-fake-{owner._next_id()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model if isinstance(model, str) else owner.models[0],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        self._send(reply.status, json.dumps(payload).encode(), headers)

    def _send(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Send the whole response in one write (see the module note on latency)."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Status"
        lines = [
            f"HTTP/1.1 {status} {phrase}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            f"Connection: {'close' if self.close_connection else 'keep-alive'}",
            *(f"{name}: {value}" for name, value in headers),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + body)
        except OSError:  # the client went away (it timed out, say)
            self.close_connection = True


class FakeLLMServer:
    """A scripted OpenAI-compatible server on ``127.0.0.1`` in a background thread.

    Attributes:
        models: the model names ``GET /v1/models`` lists.
        default: the reply once a scripted list is exhausted (None: HTTP 500).
        serve_models: whether ``GET /v1/models`` exists (False: it answers 404).
        models_reply: how ``GET /v1/models`` answers (None: the model list at once).
        max_in_flight: the most chat requests that were being answered at once.
    """

    def __init__(
        self,
        script: ReplyScript = (),
        *,
        default: Reply | None = None,
        models: Sequence[str] = ("fake-model",),
        serve_models: bool = True,
        models_reply: Reply | None = None,
    ) -> None:
        """Prepare the server (it starts with ``start()`` or ``with``).

        Args:
            script: replies consumed in order, or a function from the request's JSON
                body to a reply.
            default: the reply once a list is exhausted (None: HTTP 500 saying so).
            models: the model names ``GET /v1/models`` lists.
            serve_models: False to answer 404 to ``GET /v1/models``.
            models_reply: how ``GET /v1/models`` answers: an error or malformed reply
                is sent as such (``Reply.error(401)``); any reply's delay is waited
                out (``Reply.slow(5, Reply.text(""))``) before the model list is sent.
                None: the model list at once.
        """
        if not models:
            raise ValueError("FakeLLMServer needs at least one model name")
        self._script: Callable[[Any], Reply] | None = script if callable(script) else None
        self._replies: list[Reply] = [] if callable(script) else list(script)
        self.default = default
        self.models = list(models)
        self.serve_models = serve_models
        self.models_reply = models_reply
        self.max_in_flight = 0
        self.replies_sent = 0
        self._in_flight = 0
        self._position = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Bind an ephemeral port on 127.0.0.1 and serve from a background thread.

        Returns:
            The server itself.
        """
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name="fake-llm-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, drop open connections and join the threads (bounded waits).

        Replies still waiting out a delay are abandoned.

        Args:
            timeout: seconds to wait for the threads in all.
        """
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        if thread is not None and thread.is_alive():
            httpd.shutdown()  # returns within the poll interval
        with self._lock:
            connections = list(self._connections.items())
        for conn, _ in connections:
            _shutdown_socket(conn)
        httpd.server_close()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        for _, worker in connections:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests look at -------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._httpd is None:
            raise RuntimeError("the fake LLM server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/chat/completions`` requests received so far."""
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    @property
    def in_flight(self) -> int:
        """Chat requests being answered now."""
        with self._lock:
            return self._in_flight

    @property
    def remaining(self) -> int:
        """Scripted replies not yet sent (0 for a script function)."""
        with self._lock:
            return len(self._replies) - self._position

    def add(self, *replies: Reply) -> None:
        """Append replies to a scripted list.

        Args:
            replies: the replies to append.
        """
        with self._lock:
            self._replies.extend(replies)

    # -- used by the handler threads ---------------------------------------------

    def _next_reply(self, request: Any) -> Reply | None:
        if self._script is not None:
            reply = self._script(request)
            with self._lock:
                self.replies_sent += 1
            return reply
        with self._lock:
            if self._position < len(self._replies):
                reply = self._replies[self._position]
                self._position += 1
            elif self.default is not None:
                reply = self.default
            else:
                return None
            self.replies_sent += 1
            return reply

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _register(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections[conn] = threading.current_thread()
        if self._stopping.is_set():
            _shutdown_socket(conn)

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.pop(conn, None)


def _extra_headers(reply: Reply) -> list[tuple[str, str]]:
    if reply.retry_after is None:
        return []
    return [("Retry-After", f"{reply.retry_after:g}")]


def _shutdown_socket(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
